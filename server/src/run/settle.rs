//! After each attempt (and after `verify`): the agent's work is brought onto its task branch
//! and what it left uncommitted is committed — or the task fails, saying where the work is,
//! when that cannot be done without losing or mangling it. Nothing here deletes anything.
//!
//! - An unfinished merge, rebase, cherry-pick or revert, or unresolved conflicts: nothing is
//!   committed (that would commit conflict markers as a merge); the task fails.
//! - HEAD detached or on another branch: when it descends from the task branch's tip, the
//!   branch is fast-forwarded to it and checked out again (a warning says so); otherwise its
//!   commit is kept under `refs/gadugi/orphans/<task>/<attempt>` and the task fails.
//! - A nested repository (a folder with its own `.git`) is never committed as a gitlink; it
//!   stays in the worktree, which is then never removed automatically (a warning says so).
//! - A leftover commit that fails (a stale `index.lock`, a hook) fails the task.

use std::path::PathBuf;
use std::sync::Arc;

use crate::core::events::{Event, TaskPhase};
use crate::git::Repo;
use crate::run::context::{Ctx, TaskHandle};

/// Why the work of an attempt could not be settled on its branch. The worktree is kept as it
/// is in every case.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error(
        "the agent left an unfinished {what} ({} exists); nothing was committed and the worktree {} is kept as it is: finish the {what} there (`git {what} --continue`) or abort it (`git {what} --abort`), then commit",
        marker.display(), worktree.display()
    )]
    Unfinished {
        what: &'static str,
        marker: PathBuf,
        worktree: PathBuf,
    },
    #[error(
        "the agent left unresolved conflicts in {}; nothing was committed and the worktree {} is kept as it is",
        files.join(", "), worktree.display()
    )]
    Unresolved { files: Vec<String>, worktree: PathBuf },
    #[error(
        "the agent {how}, which does not descend from the task branch {branch} (at {tip}); its work is kept under {kept} and in the worktree {} (nothing was committed or moved): bring it onto {branch} yourself, for example with `git cherry-pick`",
        worktree.display()
    )]
    Diverged {
        how: String,
        branch: String,
        tip: String,
        kept: String,
        worktree: PathBuf,
    },
    #[error(
        "could not commit the changes the agent left: a stale lock file {} blocks git (remove it if no git process runs in {}); the changes stay uncommitted in the kept worktree",
        lock.display(), worktree.display()
    )]
    Locked { lock: PathBuf, worktree: PathBuf },
    #[error(
        "could not commit the changes the agent left ({source:#}); they stay uncommitted in the kept worktree {}",
        worktree.display()
    )]
    Commit { source: anyhow::Error, worktree: PathBuf },
    #[error("cannot inspect the worktree {}: {source:#}", worktree.display())]
    Inspect { source: anyhow::Error, worktree: PathBuf },
    #[error("internal error: {0}")]
    Internal(#[from] tokio::task::JoinError),
}

/// What settling did: warnings the user should see even when the task succeeds, and the
/// leftover commit (or why the work could not be settled).
struct Settled {
    warnings: Vec<String>,
    result: Result<Option<String>, Failed>,
}

/// Settles attempt `attempt` of `task` (see the module's documentation). Warnings not yet
/// in `warned` are sent as `TaskWarning` events and added to it.
pub(crate) async fn settle_attempt(
    ctx: &Arc<Ctx>,
    task: &TaskHandle,
    attempt: u32,
    warned: &mut Vec<String>,
) -> Result<(), Failed> {
    task.send(Event::TaskPhase {
        task: task.id.clone(),
        phase: TaskPhase::Committing,
    });
    let (repo, wt, branch, id) = (
        ctx.req.repo.clone(),
        task.worktree.clone(),
        task.branch.clone(),
        task.id.clone(),
    );
    let Settled { warnings, result } = tokio::task::spawn_blocking(move || settle(&repo, &wt, &branch, &id, attempt))
        .await
        .map_err(|e| Box::new(SettleError::Internal(e)))?;
    for warning in warnings {
        if !warned.contains(&warning) {
            warned.push(warning.clone());
            task.send(Event::TaskWarning {
                task: task.id.clone(),
                warning,
            });
        }
    }
    if let Some(commit) = result? {
        task.send(Event::LeftoversCommitted {
            task: task.id.clone(),
            commit,
        });
    }
    Ok(())
}

type Failed = Box<SettleError>;

/// Turns an error while looking at worktree `wt` into a failure.
fn inspecting(wt: &std::path::Path) -> impl Fn(anyhow::Error) -> Failed + Copy + '_ {
    move |source| {
        Box::new(SettleError::Inspect {
            source,
            worktree: wt.to_path_buf(),
        })
    }
}

fn settle(repo: &Repo, wt: &std::path::Path, branch: &str, id: &str, attempt: u32) -> Settled {
    let mut warnings = vec![];
    let result = settle_into(repo, wt, branch, id, attempt, &mut warnings);
    Settled { warnings, result }
}

fn settle_into(
    repo: &Repo,
    wt: &std::path::Path,
    branch: &str,
    id: &str,
    attempt: u32,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, Failed> {
    let worktree = wt.to_path_buf();
    let inspect = inspecting(wt);
    if let Some((what, marker)) = repo.operation_in_progress(wt).map_err(inspect)? {
        return Err(Box::new(SettleError::Unfinished { what, marker, worktree }));
    }
    let files = repo.unmerged_paths(wt).map_err(inspect)?;
    if !files.is_empty() {
        return Err(Box::new(SettleError::Unresolved { files, worktree }));
    }
    warnings.extend(bring_head_onto_branch(repo, wt, branch, id, attempt)?);
    let message = format!("gadugi: changes left uncommitted by the agent of task {id}");
    match repo.commit_leftovers(wt, &message) {
        Ok(left) => {
            warnings.extend(left.nested.iter().map(|p| {
                format!(
                    "the agent created a nested git repository in {p}/ (its own .git); it was not committed (it would be a gitlink to commits that exist nowhere else) and the worktree {} is kept with it: move its files into the task, or push that repository somewhere",
                    wt.display()
                )
            }));
            Ok(left.commit)
        }
        Err(source) => {
            let lock = repo
                .worktree_git_dir(wt)
                .map(|d| d.join("index.lock"))
                .ok()
                .filter(|l| l.exists());
            Err(Box::new(match lock {
                Some(lock) => SettleError::Locked { lock, worktree },
                None => SettleError::Commit { source, worktree },
            }))
        }
    }
}

/// When the worktree's HEAD is not on the task branch: fast-forwards the branch to it and
/// checks the branch out again (returns the warning), or keeps its commit under an orphan
/// reference and fails.
fn bring_head_onto_branch(
    repo: &Repo,
    wt: &std::path::Path,
    branch: &str,
    id: &str,
    attempt: u32,
) -> Result<Option<String>, Failed> {
    let worktree = wt.to_path_buf();
    let inspect = inspecting(wt);
    let head = repo.worktree_head(wt).map_err(inspect)?;
    if head.branch.as_deref() == Some(branch) {
        return Ok(None);
    }
    let tip = repo
        .branch_head(branch)
        .map_err(inspect)?
        .ok_or_else(|| inspect(anyhow::anyhow!("the task branch {branch} is gone")))?;
    let short = |c: &str| c.get(..10).unwrap_or(c).to_string();
    let how = match (&head.branch, &head.commit) {
        (None, Some(c)) => format!("left HEAD detached at {}", short(c)),
        (Some(b), Some(c)) => format!("switched to the branch {b} (at {})", short(c)),
        (Some(b), None) => format!("switched to the branch {b}, which has no commits"),
        (None, None) => "left HEAD nowhere".to_string(),
    };
    let Some(commit) = head.commit else {
        return Err(Box::new(SettleError::Diverged {
            how,
            branch: branch.to_string(),
            tip: short(&tip),
            kept: "no reference (there is no commit)".into(),
            worktree,
        }));
    };
    if repo.is_ancestor(&tip, &commit).map_err(inspect)? {
        let ahead = repo.commits_ahead(&commit, &tip).unwrap_or(0);
        repo.fast_forward_and_attach(wt, branch, &commit, &tip)
            .map_err(inspect)?;
        return Ok(Some(format!(
            "the agent {how}; its {ahead} commit(s) were brought onto {branch} (a fast-forward), which is checked out in the worktree again"
        )));
    }
    let kept = repo
        .keep_commit(&format!("refs/gadugi/orphans/{id}/{attempt}"), &commit)
        .map_err(inspect)?;
    Err(Box::new(SettleError::Diverged {
        how,
        branch: branch.to_string(),
        tip: short(&tip),
        kept,
        worktree,
    }))
}
