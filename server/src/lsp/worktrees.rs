//! `gadugi/worktrees`: every Gadugi worktree on disk in the workspace's repositories, for the
//! editor's Worktrees view. Read from each repository's run states and `git worktree list`,
//! so worktrees of runs older than the tree's recent ones are listed too.

use std::path::Path;
use std::sync::Arc;

use tower_lsp_server::jsonrpc::Result;

use crate::layout::Layout;
use crate::lsp::errors::from_anyhow;
use crate::lsp::ext::{WorktreeList, WorktreeNode};
use crate::lsp::session::{lock, Shared};
use crate::lsp::tree::uri_string;

/// Lists the worktrees (on the blocking pool: it reads git and every run's state).
pub async fn list(shared: &Arc<Shared>) -> Result<WorktreeList> {
    let mut repos: Vec<_> = lock(&shared.roots).iter().map(|r| r.repo_root.clone()).collect();
    repos.sort();
    repos.dedup();
    tokio::task::spawn_blocking(move || -> anyhow::Result<WorktreeList> {
        let mut worktrees = vec![];
        for root in repos {
            worktrees.extend(of_repo(&root)?);
        }
        Ok(WorktreeList { worktrees })
    })
    .await
    .map_err(|e| from_anyhow(anyhow::anyhow!("listing worktrees panicked: {e}")))?
    .map_err(from_anyhow)
}

/// The Gadugi worktrees of one repository, newest run first.
fn of_repo(root: &Path) -> anyhow::Result<Vec<WorktreeNode>> {
    let repo = crate::ops::open_repo(Some(root.to_path_buf()))?;
    let registered = repo.list_worktrees()?;
    let layout = Layout::new(repo.root());
    let mut out = vec![];
    let mut seen = std::collections::HashSet::new();
    for run_id in layout.run_ids().into_iter().rev() {
        let Some(state) = layout.load_run(Some(&run_id))? else {
            continue;
        };
        for t in &state.tasks {
            let on_disk = t.worktree.is_dir()
                && registered
                    .iter()
                    .any(|w| crate::fsutil::same_path(&w.path, &t.worktree));
            // A later run may reuse a path (after cleanup): the newest run owns it.
            if !on_disk || !seen.insert(t.worktree.clone()) {
                continue;
            }
            out.push(WorktreeNode {
                path: t.worktree.display().to_string(),
                repo: uri_string(repo.root()),
                branch: t.branch.clone(),
                run_id: state.run_id.clone(),
                task_id: t.id.clone(),
                task_status: t.status,
                dirty: repo.is_dirty(&t.worktree).unwrap_or(false),
            });
        }
    }
    Ok(out)
}
