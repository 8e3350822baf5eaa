//! Agents that ask, in the editor: `gadugi/approvalRequested` for each question a task's
//! agent asked (of any run in the tree, own or started from the command line) and
//! `gadugi/answerApproval`, which answers through the same operation as `gadugi answer`.

use std::collections::HashSet;
use std::sync::Arc;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::notification::Notification;

use crate::agent::approve::AnsweredBy;
use crate::core::state::RunState;
use crate::error::InputError;
use crate::lsp::errors::{from_anyhow, invalid_params};
use crate::lsp::ext::{self, AnswerApprovalParams, AnswerApprovalResult, ApprovalRequest};
use crate::lsp::session::Shared;
use crate::lsp::tree::approval_request;
use crate::run::questions::AnswerRequest;
use crate::spec::approvals::Decision;

/// `gadugi/approvalRequested`.
pub enum ApprovalRequested {}

impl Notification for ApprovalRequested {
    type Params = ApprovalRequest;
    const METHOD: &'static str = ext::APPROVAL_REQUESTED;
}

/// Sends one notification per pending question not announced yet (`announced` holds
/// `run/task/id`); forgets the answered ones.
pub async fn announce(shared: &Shared, runs: &[Arc<RunState>], announced: &mut HashSet<String>) {
    let mut pending = HashSet::new();
    for state in runs {
        for t in &state.tasks {
            for p in &t.pending_approvals {
                let key = format!("{}/{}/{}", state.run_id, t.id, p.id);
                pending.insert(key.clone());
                if announced.contains(&key) {
                    continue;
                }
                announced.insert(key);
                let request = approval_request(&state.run_id, &t.id, p);
                shared.client.send_notification::<ApprovalRequested>(request).await;
            }
        }
    }
    announced.retain(|k| pending.contains(k));
}

/// `gadugi/answerApproval`: `ops::approvals::answer` with the editor as the one who answered.
pub async fn answer(shared: &Shared, params: AnswerApprovalParams) -> Result<AnswerApprovalResult> {
    let decision = match params.decision.as_str() {
        "allow" => Decision::Allow,
        "deny" => Decision::Deny,
        other => {
            return Err(invalid_params(format!(
                "decision must be \"allow\" or \"deny\", not `{other}`"
            )))
        }
    };
    let repo_root = shared
        .tree_view()
        .runs
        .iter()
        .find(|r| r.state.run_id == params.run_id)
        .map(|r| r.state.repo_root.clone())
        .ok_or_else(|| {
            invalid_params(format!(
                "no run `{}` is known to this server (see gadugi/treeState)",
                params.run_id
            ))
        })?;
    let req = AnswerRequest {
        id: params.id,
        decision,
        message: params.message,
        command: params.command,
        choice: params.choice,
    };
    let (run_id, task_id) = (params.run_id, params.task_id);
    let answered = tokio::task::spawn_blocking(move || {
        let loaded = crate::ops::load_run(Some(repo_root), Some(run_id))?;
        crate::ops::approvals::answer(&loaded, &task_id, &req, AnsweredBy::Editor).map_err(|e| {
            match req.id.as_deref().and_then(|id| answered_before(&loaded, &task_id, id)) {
                Some(earlier) => earlier.into(),
                None => e,
            }
        })
    })
    .await
    .map_err(|e| from_anyhow(anyhow::anyhow!("answering failed: {e}")))?
    .map_err(from_anyhow)?;
    Ok(AnswerApprovalResult {
        id: answered.id,
        decision: answered.decision.as_str().to_string(),
    })
}

/// When the question `id` of `task` already has a valid answer (given in the terminal, in
/// another window, by a rule or by the deadline), the error that says so and by whom: an
/// editor whose person clicks late shows that instead of a bare "not pending".
fn answered_before(loaded: &crate::ops::LoadedRun, task: &str, id: &str) -> Option<InputError> {
    let (_, key) = crate::run::questions::ensure_key().ok()?;
    let dir = loaded.layout.questions_dir(&loaded.state.run_id, task);
    let (_, answer) = crate::agent::approve::load_questions(&dir, Some(&key))
        .into_iter()
        .find(|(q, _)| q.id == id)?;
    let answer = answer?;
    let by = match answer.by {
        AnsweredBy::Cli => "in the terminal (gadugi answer)",
        AnsweredBy::Editor => "in an editor",
        AnsweredBy::Policy => "by an [approvals] rule",
        AnsweredBy::Timeout => "by its deadline",
    };
    Some(InputError::new(
        format!(
            "question `{id}` of task `{task}` was already answered: {} {by}",
            match answer.decision {
                Decision::Allow => "allowed",
                Decision::Deny => "denied",
            }
        ),
        "nothing to do: the agent has its answer",
    ))
}
