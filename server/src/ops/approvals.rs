//! Answering an agent's question: the one flow behind `gadugi answer` (and the editor's
//! answer). The answer is a signed file in the task's questions folder; the agent's broker
//! picks it up and the run loop records it as an event, whichever process drives the run.

use anyhow::Result;

use crate::agent::approve::{Answer, AnsweredBy};
use crate::core::events::TaskStatus;
use crate::error::InputError;
use crate::layout::Layout;
use crate::ops::{task_of, LoadedRun};
use crate::run::questions::AnswerRequest;

/// Answers a pending question of `task` in the loaded run. Nothing pending, an unknown id
/// or an answer that does not fit the question is an `InputError` (exit 2).
///
/// A failed or cancelled task's last attempt may have died while its question waited: that
/// question can still be answered, and `gadugi retry` continues the agent's session with
/// the answer (see `agent::approve::stored_answer`).
pub fn answer(loaded: &LoadedRun, task: &str, req: &AnswerRequest, by: AnsweredBy) -> Result<Answer> {
    let t = task_of(&loaded.state, task)?;
    if matches!(t.status, TaskStatus::Succeeded | TaskStatus::Skipped) {
        return Err(InputError::new(
            format!(
                "task `{task}` already ended ({}); its agent asks nothing any more",
                t.status.as_str()
            ),
            "see `gadugi status` for the tasks that wait for approval",
        )
        .into());
    }
    // Questions of an earlier attempt went with its agent: only the latest attempt's count.
    answer_in_run(&loaded.layout, &loaded.state.run_id, &t.id, t.attempts, req, by)
}

/// Answers a pending question of `task`'s attempt `attempt` (or a later one) in the run
/// this process drives: the terminal's inline prompt of `gadugi run`, which knows the
/// question from its event.
pub fn answer_in_run(
    layout: &Layout,
    run_id: &str,
    task: &str,
    attempt: u32,
    req: &AnswerRequest,
    by: AnsweredBy,
) -> Result<Answer> {
    let dir = layout.questions_dir(run_id, task);
    crate::run::questions::answer(&dir, task, attempt, req, by)
}
