//! `gadugi/worktrees`: every Gadugi worktree on disk in the workspace's repositories, for the
//! editor's Worktrees view. Read from each repository's run states and `git worktree list`,
//! so worktrees of runs older than the tree's recent ones are listed too; and the entries
//! of each repository's warm worktree pool, which `gadugi.poolPrune` empties.

use std::path::Path;
use std::sync::Arc;

use tower_lsp_server::jsonrpc::Result;

use crate::layout::Layout;
use crate::lsp::errors::from_anyhow;
use crate::lsp::ext::CleanupResult;
use crate::lsp::ext::PoolEntryNode;
use crate::lsp::ext::PoolPruneArgs;
use crate::lsp::ext::WorktreeList;
use crate::lsp::ext::WorktreeNode;
use crate::lsp::session::{lock, Shared};
use crate::lsp::tree::uri_string;

/// The repository roots of the workspace, each once.
fn repo_roots(shared: &Shared) -> Vec<std::path::PathBuf> {
    let mut repos: Vec<_> = lock(&shared.roots).iter().map(|r| r.repo_root.clone()).collect();
    repos.sort();
    repos.dedup();
    repos
}

/// Runs `work` on the blocking pool (it reads git, run states and walks folders) and turns
/// its error or panic into a JSON-RPC error.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| from_anyhow(anyhow::anyhow!("{what} panicked: {e}")))?
        .map_err(from_anyhow)
}

/// Lists the worktrees and the pooled ones.
pub async fn list(shared: &Arc<Shared>) -> Result<WorktreeList> {
    let repos = repo_roots(shared);
    blocking("listing worktrees", move || {
        let mut list = WorktreeList {
            worktrees: vec![],
            pool: vec![],
        };
        for root in repos {
            list.worktrees.extend(of_repo(&root)?);
            list.pool.extend(pool_of_repo(&root)?);
        }
        Ok(list)
    })
    .await
}

/// `gadugi.poolPrune`: empties the pool of one repository (`args.repo`) or of all of them,
/// with the lines `gadugi pool prune` prints.
pub async fn prune_pool(shared: &Arc<Shared>, args: PoolPruneArgs) -> Result<CleanupResult> {
    let roots = repo_roots(shared);
    // Only a repository of the workspace: a client cannot name any folder on the machine.
    let repos = match &args.repo {
        None => roots,
        Some(uri) => match roots.iter().find(|r| uri_string(r) == *uri) {
            Some(root) => vec![root.clone()],
            None => {
                let known: Vec<String> = roots.iter().map(|r| uri_string(r)).collect();
                return Err(crate::lsp::errors::invalid_params(format!(
                    "`repo` {uri} is not a repository of the workspace (they are: {}); use a `repo` of gadugi/worktrees' `pool` entries",
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                )));
            }
        },
    };
    blocking("emptying the worktree pool", move || {
        let mut lines = vec![];
        for root in repos {
            let repo = crate::ops::open_repo(Some(root))?;
            lines.extend(crate::ops::pool_prune(&repo, args.all)?);
        }
        if lines.is_empty() {
            lines.push("the worktree pool is empty: nothing to remove".into());
        }
        Ok(CleanupResult { lines })
    })
    .await
}

/// The warm pool's entries of one repository, oldest first.
fn pool_of_repo(root: &Path) -> anyhow::Result<Vec<PoolEntryNode>> {
    let repo = crate::ops::open_repo(Some(root.to_path_buf()))?;
    Ok(crate::ops::pool_status(&repo)?
        .into_iter()
        .map(|e| PoolEntryNode {
            path: e.entry.path.display().to_string(),
            repo: uri_string(repo.root()),
            age_secs: e.entry.age_secs,
            size: e.size,
            claimed: e.entry.claimed_by.is_some(),
        })
        .collect())
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
