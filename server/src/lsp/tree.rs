//! What the server knows about runs: the latest [`RunState`] of every run it runs itself or
//! has seen under a workspace's `.gadugi/`, and the versioned [`TreeState`] built from them.
//!
//! Run states are shared (`Arc`), so a [`TreeView`] — what `gadugi/treeState` and the
//! publisher read — costs one `Arc` clone per run to take, and the [`TreeState`] (which stats
//! worktrees and checks processes) is built from it outside every lock.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tower_lsp_server::ls_types::Uri;

use crate::core::events::RunStatus;
use crate::core::state::{rfc3339, PendingApproval, RunState};
use crate::layout::Layout;
use crate::lsp::ext::{ApprovalRequest, RunNode, TaskNode, TreeState};

/// Runs known to watching from `.gadugi/` at start-up, per repository (older ones are on
/// disk and in `gadugi status`).
pub const RECENT_RUNS: usize = 20;

/// One run.
#[derive(Debug, Clone)]
pub struct TrackedRun {
    pub state: Arc<RunState>,
    /// Run by this server process.
    pub owned: bool,
}

/// Every known run by id (ids sort by start time), with a version that rises on each change.
#[derive(Debug, Default)]
pub struct Tree {
    runs: BTreeMap<String, TrackedRun>,
    version: u64,
}

impl Tree {
    /// Replaces (or adds) a run's state. An owned run is never replaced by a state read from
    /// disk: its own event stream is newer. Returns whether anything changed.
    pub fn update(&mut self, state: RunState, owned: bool) -> bool {
        if let Some(known) = self.runs.get_mut(&state.run_id) {
            if known.owned && !owned {
                return false;
            }
            if *known.state == state {
                // The same state, now from its own driver: only ownership changes.
                if owned && !known.owned {
                    known.owned = true;
                    self.version += 1;
                    return true;
                }
                return false;
            }
        }
        let state = Arc::new(state);
        self.runs.insert(state.run_id.clone(), TrackedRun { state, owned });
        self.version += 1;
        true
    }

    /// Marks a run as no longer run by this process (its orchestrator task ended).
    pub fn release(&mut self, run_id: &str) {
        if let Some(r) = self.runs.get_mut(run_id) {
            r.owned = false;
        }
    }

    /// Whether this server runs `run_id` now.
    pub fn is_owned(&self, run_id: &str) -> bool {
        self.runs.get(run_id).is_some_and(|r| r.owned)
    }

    pub fn get(&self, run_id: &str) -> Option<&TrackedRun> {
        self.runs.get(run_id)
    }

    /// Runs, oldest first.
    pub fn runs(&self) -> impl Iterator<Item = &TrackedRun> {
        self.runs.values()
    }

    /// The newest run.
    pub fn latest(&self) -> Option<&TrackedRun> {
        self.runs.values().next_back()
    }

    /// Marks a change not carried by a run state (worktrees removed by cleanup).
    pub fn bump(&mut self) {
        self.version += 1;
    }

    /// The runs as they are now: one `Arc` clone per run, so it is cheap to take under the
    /// lock; build the [`TreeState`] from it after letting go.
    pub fn view(&self) -> TreeView {
        TreeView {
            version: self.version,
            runs: self.runs.values().cloned().collect(),
        }
    }
}

/// The runs at one version (oldest first), detached from the [`Tree`].
#[derive(Debug, Clone, Default)]
pub struct TreeView {
    pub version: u64,
    pub runs: Vec<TrackedRun>,
}

impl TreeView {
    /// The tree views' state, newest run first. Stats worktrees and checks orchestrator
    /// processes: call it with no lock held.
    pub fn snapshot(&self) -> TreeState {
        TreeState {
            version: self.version,
            runs: self.runs.iter().rev().map(run_node).collect(),
        }
    }
}

/// `file://` URI of a path (the path itself when it cannot be one).
pub fn uri_string(path: &Path) -> String {
    Uri::from_file_path(path)
        .map(|u| u.as_str().to_string())
        .unwrap_or_else(|| path.display().to_string())
}

fn run_node(r: &TrackedRun) -> RunNode {
    let s = &r.state;
    let layout = Layout::new(&s.repo_root);
    let running = s.status == RunStatus::Running;
    RunNode {
        run_id: s.run_id.clone(),
        repo: uri_string(&s.repo_root),
        status: s.status,
        owned: r.owned,
        started_at: rfc3339(s.started_at),
        finished_at: s.finished_at.map(rfc3339),
        max_parallel: s.max_parallel,
        driver_alive: running && (r.owned || crate::exec::supervisor::process_is_alive(s.orchestrator_pid, None)),
        tasks: s
            .tasks
            .iter()
            .map(|t| TaskNode {
                id: t.id.clone(),
                title: t.title.clone(),
                status: t.status,
                phase: t.phase,
                prompt_file: uri_string(&t.prompt_file),
                branch: t.branch.clone(),
                worktree: t.worktree.display().to_string(),
                worktree_exists: t.worktree.is_dir(),
                depends_on: t.depends_on.clone(),
                attempts: t.attempts,
                exit_code: t.exit_code,
                duration_seconds: t.duration_seconds,
                commits: t.commits,
                error: t.error.clone(),
                last_activity: t.last_activity.clone(),
                cost_usd: t.cost_usd,
                log_file: layout
                    .attempt_dir(&s.run_id, &t.id, t.attempts.max(1))
                    .join("stdout.log")
                    .display()
                    .to_string(),
                pending_approvals: t
                    .pending_approvals
                    .iter()
                    .map(|p| approval_request(&s.run_id, &t.id, p))
                    .collect(),
                placement: t.placement.as_ref().map(ToString::to_string),
            })
            .collect(),
    }
}

/// What the editor is told about a pending question: in `gadugi/approvalRequested` and in
/// each task's `pendingApprovals` of the tree.
pub fn approval_request(run_id: &str, task_id: &str, p: &PendingApproval) -> ApprovalRequest {
    let options = p.input["questions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|q| q["options"].as_array().into_iter().flatten())
        .filter_map(|o| o["label"].as_str().map(str::to_string))
        .collect();
    ApprovalRequest {
        run_id: run_id.to_string(),
        task_id: task_id.to_string(),
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
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::approval_request;
    use crate::agent::approve::QuestionKind;
    use crate::core::state::PendingApproval;
    use crate::spec::approvals::Decision;

    fn pending(kind: QuestionKind, tool: &str, input: serde_json::Value) -> PendingApproval {
        PendingApproval {
            id: "a1-001".into(),
            attempt: 1,
            kind,
            tool: tool.into(),
            summary: "the summary".into(),
            input,
            deadline: Utc.with_ymd_and_hms(2026, 11, 30, 22, 0, 0).unwrap(),
            default: Decision::Deny,
        }
    }

    #[test]
    fn a_bash_request_carries_its_command_to_edit() {
        let p = pending(QuestionKind::Permission, "Bash", json!({"command": "rm -rf dist"}));
        let r = approval_request("run1", "a", &p);
        assert_eq!(
            (r.run_id.as_str(), r.task_id.as_str(), r.id.as_str()),
            ("run1", "a", "a1-001")
        );
        assert_eq!(r.kind, "permission");
        assert_eq!(r.command.as_deref(), Some("rm -rf dist"));
        assert!(r.options.is_empty());
        assert_eq!(r.deadline, "2026-11-30T22:00:00+00:00");
        assert_eq!(r.default_decision, "deny");
    }

    #[test]
    fn a_question_carries_its_option_labels() {
        let input = json!({"questions": [{"question": "Which?", "header": "Pick", "multiSelect": false,
            "options": [{"label": "red", "description": "warm"}, {"label": "blue", "description": "cold"}]}]});
        let r = approval_request("run1", "a", &pending(QuestionKind::Question, "AskUserQuestion", input));
        assert_eq!(r.kind, "question");
        assert_eq!(r.options, vec!["red", "blue"]);
        assert_eq!(r.command, None);
    }
}
