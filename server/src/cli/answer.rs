//! `gadugi answer TASK allow|deny`: answers a question a task's agent asked (a tool use
//! that is not pre-approved, or an `AskUserQuestion`).

use anyhow::Result;

use crate::agent::approve::AnsweredBy;
use crate::error::EXIT_OK;
use crate::ops;
use crate::run::questions::AnswerRequest;
use crate::spec::approvals::Decision;

/// The arguments of `gadugi answer`.
#[derive(Debug, Clone)]
pub struct AnswerArgs {
    pub task: String,
    pub decision: Decision,
    pub message: Option<String>,
    pub command: Option<String>,
    pub choice: Option<String>,
    pub id: Option<String>,
    pub run: Option<String>,
}

/// Writes the answer and says what was answered.
pub fn answer(args: AnswerArgs) -> Result<i32> {
    let loaded = ops::load_run(None, args.run)?;
    let req = AnswerRequest {
        id: args.id,
        decision: args.decision,
        message: args.message,
        command: args.command,
        choice: args.choice,
    };
    let a = ops::approvals::answer(&loaded, &args.task, &req, AnsweredBy::Cli)?;
    let edited = if req.command.is_some() || req.choice.is_some() {
        " (edited)"
    } else {
        ""
    };
    println!("{}: {} {}{edited}", args.task, a.id, a.decision.as_str());
    // The agent is gone: the answer waits for the retry, which continues its session.
    if loaded.state.task(&args.task).is_some_and(|t| t.status.is_final()) {
        println!(
            "{}: its agent stopped while asking; `gadugi retry {}` continues its session with this answer",
            args.task, args.task
        );
    }
    Ok(EXIT_OK)
}
