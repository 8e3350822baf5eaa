//! Agents that ask, in the editor: `gadugi/approvalRequested` for each question a task's
//! agent asked (of any run in the tree, own or started from the command line) and
//! `gadugi/answerApproval`, which answers through the same operation as `gadugi answer`.

use std::collections::HashSet;
use std::sync::Arc;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::notification::Notification;

use crate::agent::approve::AnsweredBy;
use crate::core::state::RunState;
use crate::lsp::errors::{from_anyhow, invalid_params};
use crate::lsp::ext::{self, AnswerApprovalParams, AnswerApprovalResult, ApprovalRequest};
use crate::lsp::session::Shared;
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
                let options = p.input["questions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|q| q["options"].as_array().into_iter().flatten())
                    .filter_map(|o| o["label"].as_str().map(str::to_string))
                    .collect();
                let request = ApprovalRequest {
                    run_id: state.run_id.clone(),
                    task_id: t.id.clone(),
                    id: p.id.clone(),
                    kind: serde_json::to_value(p.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    tool: p.tool.clone(),
                    summary: p.summary.clone(),
                    command: p.input["command"].as_str().map(str::to_string),
                    options,
                    deadline: p.deadline.to_rfc3339(),
                    default_decision: p.default.as_str().to_string(),
                };
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
        crate::ops::approvals::answer(&loaded, &task_id, &req, AnsweredBy::Editor)
    })
    .await
    .map_err(|e| from_anyhow(anyhow::anyhow!("answering failed: {e}")))?
    .map_err(from_anyhow)?;
    Ok(AnswerApprovalResult {
        id: answered.id,
        decision: answered.decision.as_str().to_string(),
    })
}
