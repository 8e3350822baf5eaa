//! Answering an agent's question: the one flow behind `gadugi answer` (and the editor's
//! answer). The answer is a signed file in the task's questions folder; the agent's broker
//! picks it up and the run loop records it as an event, whichever process drives the run.

use anyhow::Result;

use crate::agent::approve::{Answer, AnsweredBy};
use crate::ops::{task_of, LoadedRun};
use crate::run::questions::AnswerRequest;

/// Answers a pending question of `task` in the loaded run. Nothing pending, an unknown id
/// or an answer that does not fit the question is an `InputError` (exit 2).
pub fn answer(loaded: &LoadedRun, task: &str, req: &AnswerRequest, by: AnsweredBy) -> Result<Answer> {
    let t = task_of(&loaded.state, task)?;
    let dir = loaded.layout.questions_dir(&loaded.state.run_id, &t.id);
    crate::run::questions::answer(&dir, &t.id, req, by)
}
