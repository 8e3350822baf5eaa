//! Answering an agent's question: the one flow behind `gadugi answer` (and the editor's
//! answer). The answer is a signed file in the task's questions folder; the agent's broker
//! picks it up and the run loop records it as an event, whichever process drives the run.

use anyhow::Result;

use crate::agent::approve::{Answer, AnsweredBy};
use crate::core::events::TaskStatus;
use crate::error::InputError;
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
    let dir = loaded.layout.questions_dir(&loaded.state.run_id, &t.id);
    // Questions of an earlier attempt went with its agent: only the latest attempt's count.
    crate::run::questions::answer(&dir, &t.id, t.attempts, req, by)
}
