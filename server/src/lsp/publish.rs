//! Turns changes of the run tree into what the client sees: a debounced, versioned
//! `gadugi/treeChanged` notification, run diagnostics on prompt files, and one
//! `window/workDoneProgress` per running run (or `window/showMessage` at start and end for
//! clients without progress support).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tower_lsp_server::ls_types::notification::{Notification, Progress};
use tower_lsp_server::ls_types::*;

use crate::core::events::{RunStatus, TaskStatus};
use crate::core::state::RunState;
use crate::lsp::diagnostics::{self, Source};
use crate::lsp::ext::{self, TreeState};
use crate::lsp::session::{lock, Shared};

/// Changes closer together than this are published as one notification.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// `gadugi/treeChanged`.
pub enum TreeChanged {}

impl Notification for TreeChanged {
    type Params = TreeState;
    const METHOD: &'static str = ext::TREE_CHANGED;
}

/// The numbers a run's progress shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
    /// Set once the run finished.
    pub finished: Option<RunStatus>,
}

impl Counts {
    fn of(state: &RunState) -> Counts {
        Counts {
            total: state.tasks.len(),
            done: state.tasks.iter().filter(|t| t.status.is_final()).count(),
            running: state.count(TaskStatus::Running),
            failed: state.count(TaskStatus::Failed),
            skipped: state.count(TaskStatus::Skipped),
            cancelled: state.count(TaskStatus::Cancelled),
            finished: (state.status != RunStatus::Running).then_some(state.status),
        }
    }

    /// `3/8 done · 2 running · 1 failed` (skipped and cancelled when there are any).
    pub fn message(&self) -> String {
        let mut m = format!(
            "{}/{} done · {} running · {} failed",
            self.done, self.total, self.running, self.failed
        );
        if self.skipped > 0 {
            m.push_str(&format!(" · {} skipped", self.skipped));
        }
        if self.cancelled > 0 {
            m.push_str(&format!(" · {} cancelled", self.cancelled));
        }
        m
    }

    fn percentage(&self) -> u32 {
        (self.done * 100).checked_div(self.total).unwrap_or(100) as u32
    }
}

/// Starts the publisher task.
pub fn start(shared: &Arc<Shared>) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut progress: HashMap<String, watch::Sender<Counts>> = HashMap::new();
        let mut published = 0u64;
        let mut lens_key: Vec<(String, TaskStatus)> = vec![];
        let mut approvals_announced = std::collections::HashSet::new();
        loop {
            shared.changed.notified().await;
            tokio::time::sleep(DEBOUNCE).await;
            // The published view, not the tree's lock; the tree state (worktree stats) and the
            // run diagnostics (prompt files read for their title lines) are built on the
            // blocking pool.
            let view = shared.tree_view();
            if view.version == published {
                continue;
            }
            let runs: Vec<(Arc<RunState>, bool)> = view.runs.iter().map(|r| (r.state.clone(), r.owned)).collect();
            let diag_runs = runs.clone();
            let built = tokio::task::spawn_blocking(move || {
                (
                    view.snapshot(),
                    diagnostics::from_runs(diag_runs.iter().map(|(s, _)| s.as_ref())),
                )
            })
            .await;
            let Ok((snapshot, run_diags)) = built else {
                tracing::error!("building the tree state failed");
                continue;
            };
            published = snapshot.version;
            shared.client.send_notification::<TreeChanged>(snapshot).await;
            let states: Vec<Arc<RunState>> = runs.iter().map(|(s, _)| s.clone()).collect();
            crate::lsp::approvals::announce(&shared, &states, &mut approvals_announced).await;
            // Code lenses show task statuses: refresh them when one changed (not on output).
            let key: Vec<(String, TaskStatus)> = runs
                .iter()
                .flat_map(|(s, _)| s.tasks.iter().map(|t| (format!("{}/{}", s.run_id, t.id), t.status)))
                .collect();
            if key != lens_key && shared.lens_refresh_supported.load(Ordering::SeqCst) {
                // A request to the client: on its own task, never in the publisher's way.
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = shared.client.code_lens_refresh().await;
                });
            }
            lens_key = key;
            replace_diagnostics(&shared, Source::Run, run_diags).await;
            for (state, owned) in &runs {
                let counts = Counts::of(state);
                match progress.get(&state.run_id) {
                    Some(tx) => {
                        let _ = tx.send(counts.clone());
                    }
                    None if counts.finished.is_none() && (*owned || orchestrator_alive(state)) => {
                        let (tx, rx) = watch::channel(counts.clone());
                        progress.insert(state.run_id.clone(), tx);
                        tokio::spawn(drive_progress(shared.clone(), state.run_id.clone(), *owned, rx));
                    }
                    None => {}
                }
            }
            progress.retain(|_, tx| tx.borrow().finished.is_none());
        }
    });
}

/// A run started elsewhere is shown as running only while its orchestrator lives.
fn orchestrator_alive(state: &RunState) -> bool {
    crate::exec::supervisor::process_is_alive(state.orchestrator_pid, None)
}

/// Sends one `$/progress` notification of the token (a run's, or a command's `workDoneToken`).
pub async fn send_progress(shared: &Shared, token: &NumberOrString, value: WorkDoneProgress) {
    shared
        .client
        .send_notification::<Progress>(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        })
        .await;
}

/// One run's progress, from the first state seen to the end.
async fn drive_progress(shared: Arc<Shared>, run_id: String, cancellable: bool, mut rx: watch::Receiver<Counts>) {
    let title = format!("Gadugi run {run_id}");
    let token_text = format!("gadugi-run-{run_id}");
    let token = NumberOrString::String(token_text.clone());
    let mut use_progress = shared.progress_supported.load(Ordering::SeqCst);
    if use_progress {
        // A request to the client: fine here, this is a spawned task, not a handler.
        if let Err(e) = shared.client.create_work_done_progress(token.clone()).await {
            tracing::warn!("client refused a progress token ({e}); falling back to messages");
            use_progress = false;
        }
    }
    let first = rx.borrow_and_update().clone();
    if use_progress {
        lock(&shared.progress_tokens).insert(token_text.clone(), run_id.clone());
        send_progress(
            &shared,
            &token,
            WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.clone(),
                cancellable: Some(cancellable),
                message: Some(first.message()),
                percentage: Some(first.percentage()),
            }),
        )
        .await;
    } else {
        shared
            .client
            .show_message(
                MessageType::INFO,
                format!("{title} started: {} task(s) · {}", first.total, first.message()),
            )
            .await;
    }
    let mut shown = first;
    let mut percentage = shown.percentage();
    loop {
        let now = rx.borrow_and_update().clone();
        if now.finished.is_none() && now != shown && use_progress {
            // The percentage only rises, even if a task's state is re-read from disk.
            percentage = percentage.max(now.percentage());
            send_progress(
                &shared,
                &token,
                WorkDoneProgress::Report(WorkDoneProgressReport {
                    cancellable: Some(cancellable),
                    message: Some(now.message()),
                    percentage: Some(percentage),
                }),
            )
            .await;
        }
        shown = now;
        if let Some(status) = shown.finished {
            let end = format!("{title} {}: {}", status_word(status), shown.message());
            if use_progress {
                send_progress(
                    &shared,
                    &token,
                    WorkDoneProgress::End(WorkDoneProgressEnd { message: Some(end) }),
                )
                .await;
                lock(&shared.progress_tokens).remove(&token_text);
            } else {
                let kind = if status == RunStatus::Succeeded {
                    MessageType::INFO
                } else {
                    MessageType::WARNING
                };
                shared.client.show_message(kind, end).await;
            }
            return;
        }
        if rx.changed().await.is_err() {
            // The publisher dropped the run without an end (cannot happen while it runs);
            // close the progress so the client does not show it forever.
            if use_progress {
                send_progress(
                    &shared,
                    &token,
                    WorkDoneProgress::End(WorkDoneProgressEnd {
                        message: Some(format!("{title}: no longer followed")),
                    }),
                )
                .await;
            }
            return;
        }
    }
}

fn status_word(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// Sets `source`'s diagnostics of `path` and publishes the file's list when it changed.
pub async fn set_diagnostics(shared: &Shared, path: &Path, source: Source, list: Vec<Diagnostic>) {
    let changed = lock(&shared.diagnostics).set(path, source, list);
    if let (Some(all), Some(uri)) = (changed, Uri::from_file_path(path)) {
        shared.client.publish_diagnostics(uri, all, None).await;
    }
}

/// Replaces every file's `source` diagnostics with `by_file` (files left out are cleared).
pub async fn replace_diagnostics(shared: &Shared, source: Source, mut by_file: HashMap<PathBuf, Vec<Diagnostic>>) {
    for p in lock(&shared.diagnostics).files_with(source) {
        by_file.entry(p).or_default();
    }
    for (path, list) in by_file {
        set_diagnostics(shared, &path, source, list).await;
    }
}
