//! Live from anywhere: watches each workspace repository's `.gadugi/runs` (a run started
//! from the CLI shows up and moves in the editor) and the folders of open prompt files (a
//! prompt edited on disk, or one its dependencies name, is re-checked).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use tokio::sync::mpsc;

use crate::layout::{Layout, STATE_DIR};
use crate::lsp::session::{lock, Shared};
use crate::lsp::tree::RECENT_RUNS;
use crate::lsp::watcher::Watcher;

/// File-system events closer together than this are handled as one batch.
const SETTLE: Duration = Duration::from_millis(100);

/// Loads the recent runs of every workspace repository and starts watching.
pub fn start(shared: &Arc<Shared>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let inner = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
        Ok(event) => {
            for p in event.paths {
                let _ = tx.send(p);
            }
        }
        Err(e) => tracing::warn!("file watcher: {e}"),
    });
    let inner = match inner {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cannot start the file watcher ({e}); runs started elsewhere will not show live");
            return;
        }
    };
    *lock(&shared.watcher) = Some(Watcher::new(inner));
    let repos: BTreeSet<PathBuf> = lock(&shared.roots).iter().map(|r| r.repo_root.clone()).collect();
    for repo in &repos {
        watch_repo(shared, repo);
        let layout = Layout::new(repo);
        let ids = layout.run_ids();
        for id in ids.iter().rev().take(RECENT_RUNS) {
            reload_run(shared, repo, id);
        }
    }
    shared.touch();
    let shared = shared.clone();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            tokio::time::sleep(SETTLE).await;
            while let Ok(p) = rx.try_recv() {
                batch.push(p);
            }
            // Lists folders and replays event logs: on the blocking pool, off the workers
            // that answer requests.
            let (shared, repos) = (shared.clone(), repos.clone());
            if let Err(e) = tokio::task::spawn_blocking(move || handle_batch(&shared, &repos, batch)).await {
                tracing::error!("handling file changes failed: {e}");
            }
        }
    });
}

/// The repository root (non-recursive, to see `.gadugi` appear) and `.gadugi/runs`
/// (recursive) once it exists.
fn watch_repo(shared: &Shared, repo: &Path) {
    if let Some(w) = lock(&shared.watcher).as_mut() {
        w.watch(repo, RecursiveMode::NonRecursive);
        let state_dir = repo.join(STATE_DIR);
        if state_dir.is_dir() {
            w.watch(&state_dir, RecursiveMode::NonRecursive);
        }
        let runs = Layout::new(repo).runs_dir();
        if runs.is_dir() {
            w.watch(&runs, RecursiveMode::Recursive);
        }
    }
}

fn handle_batch(shared: &Arc<Shared>, repos: &BTreeSet<PathBuf>, batch: Vec<PathBuf>) {
    let mut runs: BTreeSet<(PathBuf, String)> = BTreeSet::new();
    let mut prompt_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for p in &batch {
        for repo in repos {
            let runs_dir = Layout::new(repo).runs_dir();
            if let Ok(rel) = p.strip_prefix(&runs_dir) {
                let mut parts = rel.components();
                let id = parts.next().map(|c| c.as_os_str().to_string_lossy().into_owned());
                // Only the run's own files: agents' output logs change constantly.
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                if let (Some(id), Some("state.json" | "events.jsonl")) = (id, name.as_deref()) {
                    if parts.count() == 1 {
                        runs.insert((repo.clone(), id));
                    }
                }
            } else if p.starts_with(repo.join(STATE_DIR)) || p == &repo.join(STATE_DIR) {
                watch_repo(shared, repo);
                for id in Layout::new(repo).run_ids().iter().rev().take(RECENT_RUNS) {
                    runs.insert((repo.clone(), id.clone()));
                }
            }
        }
        if p.extension().is_some_and(|x| x == "md") {
            if let Some(dir) = p.parent() {
                prompt_dirs.insert(dir.to_path_buf());
            }
        }
    }
    let mut changed = false;
    for (repo, id) in runs {
        changed |= reload_run(shared, &repo, &id);
    }
    if changed {
        shared.touch();
    }
    for dir in prompt_dirs {
        crate::lsp::documents::recheck_folder(shared, &dir);
    }
}

/// Reads a run from disk into the tree (unless this process runs it). The event log is
/// preferred: it has every activity line, the snapshot only lifecycle events.
fn reload_run(shared: &Shared, repo: &Path, id: &str) -> bool {
    let layout = Layout::new(repo);
    // A run this process drives is known by its cancel switch from before its first event:
    // its files on disk must not make it look like someone else's run meanwhile.
    if lock(&shared.tree).is_owned(id) || lock(&shared.cancels).contains_key(id) {
        return false;
    }
    let log = layout.events_file(id);
    // The log is read with the tail taken out of the watcher, not under its lock.
    let mut tail = match lock(&shared.watcher).as_mut() {
        Some(w) => w.tails.remove(&log).unwrap_or_default(),
        None => return false,
    };
    let from_log = tail.advance(&log);
    if let Some(w) = lock(&shared.watcher).as_mut() {
        w.tails.insert(log.clone(), tail);
    }
    let state = match from_log {
        Some(s) => Some(s),
        None => layout.load_run(Some(id)).ok().flatten(),
    };
    match state {
        Some(s) => shared.change_tree(|tree| tree.update(s, false)),
        None => false,
    }
}
