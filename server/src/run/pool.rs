//! The warm worktree pool (`[pool]` of gadugi.toml): a succeeded task's clean worktree is
//! kept, detached, under `<worktree_dir>/.pool/<n>`, and a new task takes one by switching it
//! to its new branch at its start commit. Git rewrites only the files that differ and the
//! ignored build outputs listed in `keep` stay, so the task's first build is incremental.
//!
//! Safety rules, each enforced here:
//! - Only a worktree without uncommitted or untracked changes is pooled ([`release`] asks
//!   `Repo::is_dirty` first); a dirty one stays where it is. So does one holding a nested
//!   git repository (ignored ones too): cleaning would delete commits that exist nowhere else.
//! - Releasing never moves or deletes a branch: HEAD is detached (`git checkout --detach`)
//!   at the commit it is on, and the branch's tip is checked unchanged afterwards.
//! - Nothing but the kept, ignored paths passes from one task to the next: [`take`] runs
//!   `git checkout -f -b <branch> <start>`, `git clean -ffdx -e /<keep>...`, then checks with
//!   `git status --porcelain --ignored` that only kept ignored paths remain. On any failure
//!   the pooled worktree is removed and the task gets a fresh worktree, never a half-clean one.
//! - The pool's bookkeeping is the folder itself: entries are `.pool/<n>` (higher n: released
//!   later), their age is the folder's modification time, their size a directory walk (fine
//!   for now; a large `target/` makes it slow). Taking or evicting an entry first renames it
//!   to `.pool/<n>.taken.<pid>`, an atomic claim: two processes never take the same entry,
//!   and a claim whose process is gone is garbage that [`prune`] removes.
//! - Pooled entries hold no work (detached, clean), so removing one is safe; [`prune`] still
//!   refuses one that `Repo::is_dirty` says has changes.
//! - The user's checkout is never touched: every command runs in a linked worktree or on
//!   git's metadata.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::git::Repo;
use crate::spec::config::Config;
use crate::spec::pool::PoolConfig;

/// Folder of the pool inside the worktree folder.
pub const POOL_DIR: &str = ".pool";

/// The pool folder of a configuration: `<worktree_dir>/.pool`.
pub fn pool_dir(config: &Config) -> PathBuf {
    config.worktree_dir.join(POOL_DIR)
}

/// One folder under `.pool/`.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Folder name: `<n>`, or `<n>.taken.<pid>` while a process takes or removes it.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Release order (higher: later).
    pub number: u64,
    /// The process that claimed it, for a `.taken.<pid>` folder.
    pub claimed_by: Option<u32>,
    /// Seconds since it was pooled (the folder's modification time).
    pub age_secs: u64,
}

impl Entry {
    /// A claim whose process is gone: nobody will finish taking it.
    pub fn is_stale_claim(&self) -> bool {
        self.claimed_by
            .is_some_and(|pid| !crate::exec::supervisor::process_is_alive(pid, None))
    }
}

/// Every folder under `dir` (`.pool`), ready entries and claims, oldest first.
pub fn entries(dir: &Path) -> Result<Vec<Entry>> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut out = vec![];
    for item in read {
        let item = item?;
        let name = item.file_name().to_string_lossy().into_owned();
        let Some((number, claimed_by)) = parse_name(&name) else {
            continue;
        };
        let age_secs = item
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map_or(0, |d| d.as_secs());
        out.push(Entry {
            name,
            path: item.path(),
            number,
            claimed_by,
            age_secs,
        });
    }
    out.sort_by_key(|e| (e.number, e.claimed_by));
    Ok(out)
}

/// `"7"` → (7, None); `"7.taken.123"` → (7, Some(123)); anything else → None.
fn parse_name(name: &str) -> Option<(u64, Option<u32>)> {
    match name.split_once(".taken.") {
        None => Some((name.parse().ok()?, None)),
        Some((n, pid)) => Some((n.parse().ok()?, Some(pid.parse().ok()?))),
    }
}

/// Bytes of the files under `path` (symlinks not followed): a directory walk.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = path.symlink_metadata() else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|read| read.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// What [`release`] did with a worktree.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// Moved into the pool at this path.
    Pooled(PathBuf),
    /// Not pooled, for this reason; the worktree is where it was (maybe detached).
    NotPooled(String),
}

/// Puts the clean worktree `wt` of a finished task (on `branch`) into the pool, within the
/// budget; `lock` serializes git's worktree metadata with the run's other worktree steps.
pub fn release(repo: &Repo, config: &Config, wt: &Path, branch: &str, lock: &Mutex<()>) -> Result<Released> {
    let pool = &config.pool;
    if !pool.enabled() {
        return Ok(Released::NotPooled("the pool is off".into()));
    }
    if !wt.is_dir() {
        return Ok(Released::NotPooled("the worktree is gone".into()));
    }
    if repo.is_dirty(wt)? {
        return Ok(Released::NotPooled("it has uncommitted changes".into()));
    }
    // `git clean -ffdx` would delete a nested repository, whose commits exist nowhere else.
    if !crate::git::nested_repositories(wt)?.is_empty() {
        return Ok(Released::NotPooled("it holds a nested git repository".into()));
    }
    let tip = repo.branch_head(branch)?;
    repo.detach_worktree(wt)?;
    repo.clean_worktree(wt, &exclusions(pool))?;
    if let Some(max) = pool.max_disk {
        let size = dir_size(wt);
        if size > max {
            return Ok(Released::NotPooled(format!("it uses {size} bytes, more than max_disk")));
        }
    }
    let dir = pool_dir(config);
    let dest = {
        let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let next = entries(&dir)?.iter().map(|e| e.number + 1).max().unwrap_or(1);
        let dest = dir.join(next.to_string());
        repo.move_worktree(wt, &dest)?;
        dest
    };
    // The age of an entry is its folder's modification time: now.
    if let Ok(folder) = std::fs::File::open(&dest) {
        let _ = folder.set_modified(SystemTime::now());
    }
    if repo.branch_head(branch)? != tip {
        bail!("the branch {branch} moved while its worktree was pooled");
    }
    enforce_budget(repo, pool, &dir, lock)?;
    Ok(Released::Pooled(dest))
}

/// Removes the oldest entries until the pool holds at most `max_worktrees` and, when
/// `max_disk` is set, uses at most that much disk.
fn enforce_budget(repo: &Repo, pool: &PoolConfig, dir: &Path, lock: &Mutex<()>) -> Result<()> {
    let ready: Vec<Entry> = entries(dir)?.into_iter().filter(|e| e.claimed_by.is_none()).collect();
    let sizes: Vec<u64> = match pool.max_disk {
        Some(_) => ready.iter().map(|e| dir_size(&e.path)).collect(),
        None => vec![0; ready.len()],
    };
    let (mut count, mut total) = (ready.len(), sizes.iter().sum::<u64>());
    for (entry, size) in ready.iter().zip(sizes) {
        let over_disk = pool.max_disk.is_some_and(|max| total > max);
        if count <= pool.max_worktrees && !over_disk {
            break;
        }
        remove_entry(repo, entry, lock)?;
        count -= 1;
        total -= size;
    }
    Ok(())
}

/// Claims `entry` (rename to `<n>.taken.<pid>`), deletes its folder and prunes git's
/// metadata. An entry someone else claimed first is left to them.
fn remove_entry(repo: &Repo, entry: &Entry, lock: &Mutex<()>) -> Result<()> {
    let claimed = if entry.claimed_by.is_some() {
        entry.path.clone()
    } else {
        match claim(entry) {
            Some(claimed) => claimed,
            None => return Ok(()),
        }
    };
    std::fs::remove_dir_all(&claimed).with_context(|| format!("removing {}", claimed.display()))?;
    let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
    repo.prune_worktrees()
}

/// Renames a ready entry to `<n>.taken.<this pid>`; `None` when it is gone (claimed first).
fn claim(entry: &Entry) -> Option<PathBuf> {
    let claimed = entry
        .path
        .with_file_name(format!("{}.taken.{}", entry.number, std::process::id()));
    std::fs::rename(&entry.path, &claimed).ok().map(|_| claimed)
}

/// The `git clean -e` patterns of the keep paths.
fn exclusions(pool: &PoolConfig) -> Vec<String> {
    pool.keep.iter().map(|k| k.clean_exclusion()).collect()
}

/// Gives the task the newest pooled worktree at `wt` on its new branch `branch` at `start`.
/// `Ok(false)`: the pool is off or empty (or the branch or `wt` exists: resuming), nothing
/// changed. An error: an entry was taken but could not be made exactly the start commit; it
/// was removed (and the branch, still at `start`, deleted), and the caller makes a fresh one.
pub fn take(repo: &Repo, config: &Config, wt: &Path, branch: &str, start: &str, lock: &Mutex<()>) -> Result<bool> {
    let pool = &config.pool;
    if !pool.enabled() || wt.symlink_metadata().is_ok() || repo.branch_exists(branch)? {
        return Ok(false);
    }
    {
        let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(claimed) = entries(&pool_dir(config))?
            .iter()
            .rev()
            .filter(|e| e.claimed_by.is_none())
            .find_map(claim)
        else {
            return Ok(false);
        };
        let moved = std::fs::rename(&claimed, wt)
            .with_context(|| format!("moving {} to {}", claimed.display(), wt.display()))
            .and_then(|_| repo.repair_worktree(wt));
        if let Err(e) = moved {
            let left = if wt.exists() { wt } else { &claimed };
            let _ = std::fs::remove_dir_all(left);
            let _ = repo.prune_worktrees();
            return Err(e);
        }
    }
    if let Err(e) = recycle(repo, wt, branch, start, pool) {
        discard_taken(repo, wt, branch, start, lock);
        return Err(e.context(format!("recycling a pooled worktree for {branch}")));
    }
    Ok(true)
}

/// Switches the pooled worktree `wt` to the new branch at `start`, deletes everything
/// untracked but the keep paths, and checks that only kept ignored paths remain.
fn recycle(repo: &Repo, wt: &Path, branch: &str, start: &str, pool: &PoolConfig) -> Result<()> {
    repo.checkout_new_branch(wt, branch, start)?;
    repo.clean_worktree(wt, &exclusions(pool))?;
    let keep: Vec<&str> = pool.keep.iter().map(|k| k.trimmed()).collect();
    for (code, path) in repo.status_with_ignored(wt)? {
        if code != "!!" {
            bail!("after recycling, `{path}` is not the start commit's (git status: {code})");
        }
        if !only_kept(wt, path.trim_end_matches('/'), &keep) {
            bail!("after recycling, the ignored `{path}` is not a keep path");
        }
    }
    let head = repo.git(wt, &["rev-parse", "HEAD"])?;
    if repo.branch_head(branch)?.as_deref() != Some(head.trim()) {
        bail!("after recycling, HEAD is not the branch {branch}");
    }
    Ok(())
}

/// Whether the ignored `path` of `wt` is a keep path, inside one, or a folder holding
/// nothing but (folders leading to) keep paths.
fn only_kept(wt: &Path, path: &str, keep: &[&str]) -> bool {
    if keep.iter().any(|k| path == *k || path.starts_with(&format!("{k}/"))) {
        return true;
    }
    let prefix = format!("{path}/");
    if !keep.iter().any(|k| k.starts_with(&prefix)) {
        return false;
    }
    let Ok(read) = std::fs::read_dir(wt.join(path)) else {
        return false;
    };
    read.flatten().all(|e| {
        let child = format!("{prefix}{}", e.file_name().to_string_lossy());
        e.file_type().is_ok_and(|t| t.is_dir()) && only_kept(wt, &child, keep)
    })
}

/// Removes a taken worktree that could not be recycled, and its new branch when it is
/// still at `start` (it holds no commit then).
fn discard_taken(repo: &Repo, wt: &Path, branch: &str, start: &str, lock: &Mutex<()>) {
    let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = std::fs::remove_dir_all(wt) {
        tracing::warn!("removing the unrecyclable worktree {}: {e}", wt.display());
    }
    let _ = repo.prune_worktrees();
    let start = repo.git(repo.root(), &["rev-parse", &format!("{start}^{{commit}}")]);
    if let (Ok(Some(tip)), Ok(start)) = (repo.branch_head(branch), start) {
        if tip == start.trim() {
            if let Err(e) = repo.delete_branch(branch) {
                tracing::warn!("removing the branch {branch} of an unrecyclable worktree: {e:#}");
            }
        }
    }
}

/// `gadugi pool status`: every entry with its size.
#[derive(Debug, Clone, Serialize)]
pub struct EntryStatus {
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
    /// Bytes on disk (a directory walk).
    pub size: u64,
}

/// The pool's entries, oldest first, with their sizes.
pub fn status(config: &Config) -> Result<Vec<EntryStatus>> {
    Ok(entries(&pool_dir(config))?
        .into_iter()
        .map(|entry| EntryStatus {
            size: dir_size(&entry.path),
            entry,
        })
        .collect())
}

/// `gadugi pool prune`: removes stale claims and the entries over the budget, or every
/// entry with `all`. An entry with changes is kept (it should not exist). Returns one line
/// per entry removed or kept.
pub fn prune(repo: &Repo, config: &Config, all: bool) -> Result<Vec<String>> {
    let dir = pool_dir(config);
    let lock = Mutex::new(());
    let mut lines = vec![];
    let mut ready = vec![];
    for entry in entries(&dir)? {
        if entry.claimed_by.is_some() {
            if entry.is_stale_claim() {
                remove_entry(repo, &entry, &lock)?;
                lines.push(format!(
                    "removed {} (left by a process that is gone)",
                    entry.path.display()
                ));
            }
            continue;
        }
        if repo.is_dirty(&entry.path).unwrap_or(true) {
            lines.push(format!(
                "kept    {}: git reports changes in it (look, then delete it yourself)",
                entry.path.display()
            ));
            continue;
        }
        ready.push(entry);
    }
    if all {
        for entry in &ready {
            remove_entry(repo, entry, &lock)?;
            lines.push(format!("removed {}", entry.path.display()));
        }
    } else {
        let before: Vec<PathBuf> = ready.iter().map(|e| e.path.clone()).collect();
        enforce_budget(repo, &config.pool, &dir, &lock)?;
        for path in before.iter().filter(|p| !p.exists()) {
            lines.push(format!("removed {} (over the budget)", path.display()));
        }
    }
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(parse_name("7"), Some((7, None)));
        assert_eq!(parse_name("7.taken.123"), Some((7, Some(123))));
        for bad in ["x", "7.taken.", "7.tmp", ".taken.1", ""] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_keep_paths_and_their_folders_pass() {
        let tmp = tempfile::tempdir().unwrap();
        let wt = tmp.path();
        std::fs::create_dir_all(wt.join("node_modules/.cache/x")).unwrap();
        let keep = ["target", "node_modules/.cache"];
        assert!(only_kept(wt, "target", &keep));
        assert!(only_kept(wt, "target/debug", &keep));
        assert!(only_kept(wt, "node_modules", &keep));
        assert!(!only_kept(wt, "targets", &keep));
        assert!(!only_kept(wt, "build.log", &keep));
        std::fs::create_dir_all(wt.join("node_modules/pkg")).unwrap();
        assert!(
            !only_kept(wt, "node_modules", &keep),
            "another folder beside the kept one"
        );
    }
}
