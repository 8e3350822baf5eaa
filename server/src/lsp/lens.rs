//! Code lenses on prompt files: run this task, its status in the latest run that included
//! it, and retry when it failed.

use serde_json::json;
use tower_lsp_server::ls_types::*;

use crate::core::events::TaskStatus;
use crate::lsp::ext::{ORCHESTRATE, RETRY_TASK, STATUS};
use crate::lsp::session::{lock, Shared};

/// The lenses of one prompt file (all on its first line).
pub fn lenses(shared: &Shared, uri: &Uri) -> Vec<CodeLens> {
    let Some(path) = uri.to_file_path().map(|p| p.into_owned()) else {
        return vec![];
    };
    let path = path.canonicalize().unwrap_or(path);
    if path.extension().is_none_or(|x| x != "md") || shared.root_of(&path).is_none() {
        return vec![];
    }
    let top = Range::new(Position::new(0, 0), Position::new(0, 0));
    let lens = |title: String, command: &str, args: serde_json::Value| CodeLens {
        range: top,
        command: Some(Command {
            title,
            command: command.to_string(),
            arguments: Some(vec![args]),
        }),
        data: None,
    };
    let mut out = vec![lens(
        "▶ Run this task".into(),
        ORCHESTRATE,
        json!({"files": [uri.as_str()]}),
    )];
    let tree = lock(&shared.tree);
    let latest = tree
        .runs()
        .filter_map(|r| r.state.tasks.iter().find(|t| t.prompt_file == path).map(|t| (r, t)))
        .last();
    if let Some((run, task)) = latest {
        let id = &run.state.run_id;
        let status = match task.status {
            TaskStatus::Running => format!("● running in run {id}"),
            TaskStatus::Queued => format!("○ queued in run {id}"),
            TaskStatus::Succeeded => format!("✓ succeeded in run {id}"),
            TaskStatus::Failed => format!("✗ failed in run {id}"),
            TaskStatus::Skipped => format!("⊘ skipped in run {id}"),
            TaskStatus::Cancelled => format!("■ cancelled in run {id}"),
        };
        out.push(lens(status, STATUS, json!({"runId": id})));
        if task.status == TaskStatus::Failed {
            out.push(lens(
                "↻ Retry".into(),
                RETRY_TASK,
                json!({"runId": id, "taskId": task.id}),
            ));
        }
    }
    out
}
