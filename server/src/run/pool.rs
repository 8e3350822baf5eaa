//! The warm worktree pool (`[pool]` of gadugi.toml): a succeeded task's clean worktree is
//! kept, detached, and a new task takes one by switching it to its new branch at its start
//! commit. Git rewrites only the files that differ and the ignored build outputs listed in
//! `keep` stay, so the task's first build is incremental.
//!
//! **A pooled worktree never moves.** Build tools key their caches on absolute paths (rustc's
//! incremental cache does not survive a move of the folder: measured, a one-line change
//! rebuilt in 0.41–0.52 s in place and 1.44–1.83 s after a move). So with the pool on, every
//! task worktree is made in a *slot*, `<worktree_dir>/.pool/<n>`, a folder that stays where
//! it is for its whole life, and the task's usual path `<worktree_dir>/<task>` is a symlink
//! to it. The agent's working directory resolves to the slot (`getcwd` returns the real
//! path), so each build in a slot sees the same paths as the previous one there.
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
//! - The pool's bookkeeping is the folder itself. A slot `<n>` is pooled (free to take) while
//!   a marker file `<n>.ready` sits beside it; the marker's modification time is the entry's
//!   age, its size a directory walk of the slot. A slot without a marker belongs to the task
//!   whose symlink points at it. Taking or evicting an entry first renames its marker to
//!   `<n>.taken.<pid>`, an atomic claim: two processes never take the same entry. A claim
//!   whose process is gone is garbage that [`prune`] removes, with its slot unless a task's
//!   symlink points at it (the process died after giving it to that task).
//! - A released slot loses its task's symlink before it gets its marker, so a pooled slot is
//!   never reachable through a finished task's path (a `gadugi cleanup` of that task cannot
//!   reach the next task's worktree).
//! - Pooled entries hold no work (detached, clean), so removing one is safe; [`prune`] still
//!   refuses one that `Repo::is_dirty` says has changes.
//! - The user's checkout is never touched: every command runs in a linked worktree or on
//!   git's metadata.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::git::Repo;
use crate::spec::config::Config;
use crate::spec::pool::PoolConfig;

/// Folder of the pool's slots inside the worktree folder.
pub const POOL_DIR: &str = ".pool";

/// Suffix of the marker beside a pooled slot: `<n>.ready`.
const READY: &str = ".ready";

/// The pool folder of a configuration: `<worktree_dir>/.pool`.
pub fn pool_dir(config: &Config) -> PathBuf {
    config.worktree_dir.join(POOL_DIR)
}

/// One pooled slot: its marker says it is free (`<n>.ready`) or being taken or removed
/// (`<n>.taken.<pid>`).
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The marker's file name: `<n>.ready`, or `<n>.taken.<pid>` while a process takes or
    /// removes the slot.
    pub name: String,
    /// The slot: the worktree's folder, `.pool/<n>`.
    pub path: PathBuf,
    /// The slot's number.
    pub number: u64,
    /// The process that claimed it, for a `.taken.<pid>` marker.
    pub claimed_by: Option<u32>,
    /// Seconds since it was pooled (the marker's modification time).
    pub age_secs: u64,
}

impl Entry {
    /// A claim whose process is gone: nobody will finish taking it.
    pub fn is_stale_claim(&self) -> bool {
        self.claimed_by
            .is_some_and(|pid| !crate::exec::supervisor::process_is_alive(pid, None))
    }

    /// Its marker file.
    fn marker(&self) -> PathBuf {
        self.path.with_file_name(&self.name)
    }
}

/// Every pooled slot under `dir` (`.pool`), ready entries and claims, oldest first.
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
        let Some((number, claimed_by)) = parse_marker(&name) else {
            continue;
        };
        let age_secs = item
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map_or(0, |d| d.as_secs());
        out.push(Entry {
            path: dir.join(number.to_string()),
            name,
            number,
            claimed_by,
            age_secs,
        });
    }
    out.sort_by_key(|e| (std::cmp::Reverse(e.age_secs), e.number, e.claimed_by));
    Ok(out)
}

/// `"7.ready"` → (7, None); `"7.taken.123"` → (7, Some(123)); anything else (a slot `"7"`
/// itself, a stray file) → None.
fn parse_marker(name: &str) -> Option<(u64, Option<u32>)> {
    if let Some(n) = name.strip_suffix(READY) {
        return Some((n.parse().ok()?, None));
    }
    let (n, pid) = name.split_once(".taken.")?;
    Some((n.parse().ok()?, Some(pid.parse().ok()?)))
}

/// The number of a slot folder's name (`"7"` → 7).
fn parse_slot(name: &str) -> Option<u64> {
    name.parse().ok()
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

/// The slot behind a task's worktree path: `Some(slot)` when `wt` is a symlink to a folder
/// `<n>` of the pool (a worktree made while the pool was on), `None` for a plain folder.
pub fn slot_of(config: &Config, wt: &Path) -> Option<PathBuf> {
    if !wt.symlink_metadata().ok()?.file_type().is_symlink() {
        return None;
    }
    let target = std::fs::read_link(wt).ok()?;
    let target = if target.is_absolute() {
        target
    } else {
        wt.parent()?.join(target)
    };
    let in_pool = target
        .parent()
        .is_some_and(|p| crate::fsutil::same_path(p, &pool_dir(config)));
    let numbered = target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_slot)
        .is_some();
    (in_pool && numbered).then_some(target)
}

/// Makes the task's worktree path `wt` a symlink to a new, empty slot `.pool/<n>` and
/// returns the slot, in which the caller registers the worktree (git accepts an empty
/// folder). The number is reserved by creating the folder (atomic), so two processes never
/// share a slot. A leftover of a crash at `wt` — a symlink to a slot that is gone or still
/// empty — is replaced; anything else there is refused.
pub fn new_slot(config: &Config, wt: &Path) -> Result<PathBuf> {
    if wt.symlink_metadata().is_ok() {
        let Some(old) = slot_of(config, wt) else {
            bail!("{} already exists", wt.display());
        };
        let empty = std::fs::read_dir(&old).map(|mut d| d.next().is_none());
        match empty {
            Ok(true) => std::fs::remove_dir(&old).with_context(|| format!("removing {}", old.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => bail!("{} already exists (a worktree in {})", wt.display(), old.display()),
        }
        std::fs::remove_file(wt).with_context(|| format!("removing {}", wt.display()))?;
    }
    let dir = pool_dir(config);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut number = highest_number(&dir)? + 1;
    let slot = loop {
        let slot = std::path::absolute(dir.join(number.to_string()))?;
        match std::fs::create_dir(&slot) {
            Ok(()) => break slot,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => number += 1,
            Err(e) => return Err(e).with_context(|| format!("creating {}", slot.display())),
        }
    };
    if let Err(e) = std::os::unix::fs::symlink(&slot, wt) {
        let _ = std::fs::remove_dir(&slot);
        return Err(e).with_context(|| format!("linking {} to {}", wt.display(), slot.display()));
    }
    Ok(slot)
}

/// The highest number of a slot or marker under `dir` (0 when there is none).
fn highest_number(dir: &Path) -> Result<u64> {
    let read = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    Ok(read
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            parse_slot(&name).or_else(|| parse_marker(&name).map(|(n, _)| n))
        })
        .max()
        .unwrap_or(0))
}

/// Deletes a task's worktree folder: for a symlink to a slot, the slot and then the link;
/// for a plain folder, the folder. Callers have checked that it holds no work.
pub fn remove_worktree_folder(config: &Config, wt: &Path) -> Result<()> {
    if let Some(slot) = slot_of(config, wt) {
        match std::fs::remove_dir_all(&slot) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", slot.display()))
            }
            _ => {}
        }
        return std::fs::remove_file(wt).with_context(|| format!("removing {}", wt.display()));
    }
    std::fs::remove_dir_all(wt).with_context(|| format!("removing {}", wt.display()))
}

/// What [`release`] did with a worktree.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// Pooled: this slot is free for the next task.
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
    let Some(slot) = slot_of(config, wt) else {
        return Ok(Released::NotPooled(
            "it was made before the pool was on (not in a slot of .pool/)".into(),
        ));
    };
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
        let size = dir_size(&slot);
        if size > max {
            return Ok(Released::NotPooled(format!("it uses {size} bytes, more than max_disk")));
        }
    }
    // The task's path goes first: a pooled slot is never reachable through it.
    std::fs::remove_file(wt).with_context(|| format!("removing the link {}", wt.display()))?;
    let marker = slot.with_file_name(format!("{}{READY}", slot_number(&slot)));
    std::fs::File::create(&marker).with_context(|| format!("creating {}", marker.display()))?;
    if repo.branch_head(branch)? != tip {
        bail!("the branch {branch} moved while its worktree was pooled");
    }
    enforce_budget(repo, pool, &pool_dir(config), lock)?;
    Ok(Released::Pooled(slot))
}

/// The number in a slot's folder name (0 for anything else, which [`slot_of`] never returns).
fn slot_number(slot: &Path) -> u64 {
    slot.file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_slot)
        .unwrap_or(0)
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

/// Claims `entry` (its marker renamed to `<n>.taken.<pid>`), deletes its slot, prunes git's
/// metadata, then deletes the marker. An entry someone else claimed first is left to them.
fn remove_entry(repo: &Repo, entry: &Entry, lock: &Mutex<()>) -> Result<()> {
    let marker = if entry.claimed_by.is_some() {
        entry.marker()
    } else {
        match claim(entry) {
            Some(claimed) => claimed,
            None => return Ok(()),
        }
    };
    match std::fs::remove_dir_all(&entry.path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", entry.path.display()))
        }
        _ => {}
    }
    {
        let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
        repo.prune_worktrees()?;
    }
    std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))
}

/// Renames a ready entry's marker to `<n>.taken.<this pid>`; `None` when it is gone (claimed
/// first). Returns the claim's marker.
fn claim(entry: &Entry) -> Option<PathBuf> {
    let claimed = entry
        .path
        .with_file_name(format!("{}.taken.{}", entry.number, std::process::id()));
    std::fs::rename(entry.marker(), &claimed).ok().map(|_| claimed)
}

/// The `git clean -e` patterns of the keep paths.
fn exclusions(pool: &PoolConfig) -> Vec<String> {
    pool.keep.iter().map(|k| k.clean_exclusion()).collect()
}

/// Gives the task the most recently pooled worktree, at `wt` (a symlink to its slot) on its
/// new branch `branch` at `start`. `Ok(false)`: the pool is off or empty (or the branch or
/// `wt` exists: resuming), nothing changed. An error: an entry was taken but could not be
/// made exactly the start commit; it was removed (and the branch, still at `start`,
/// deleted), and the caller makes a fresh one.
pub fn take(repo: &Repo, config: &Config, wt: &Path, branch: &str, start: &str, lock: &Mutex<()>) -> Result<bool> {
    let pool = &config.pool;
    if !pool.enabled() || wt.symlink_metadata().is_ok() || repo.branch_exists(branch)? {
        return Ok(false);
    }
    let (slot, marker) = {
        let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
        let ready: Vec<Entry> = entries(&pool_dir(config))?
            .into_iter()
            .filter(|e| e.claimed_by.is_none())
            .collect();
        // Newest first: the most recently pooled slot is likely the nearest to `start`.
        let Some((entry, marker)) = ready.iter().rev().find_map(|e| claim(e).map(|m| (e, m))) else {
            return Ok(false);
        };
        if let Err(e) = std::os::unix::fs::symlink(&entry.path, wt) {
            // Give it back: nothing was changed in it.
            let _ = std::fs::rename(&marker, entry.marker());
            return Err(e).with_context(|| format!("linking {} to {}", wt.display(), entry.path.display()));
        }
        (entry.path.clone(), marker)
    };
    if let Err(e) = recycle(repo, wt, branch, start, pool) {
        discard_taken(repo, config, wt, branch, start, lock);
        let _ = std::fs::remove_file(&marker);
        return Err(e.context(format!("recycling the pooled worktree {} for {branch}", slot.display())));
    }
    // The slot is the task's now (its symlink points at it): the claim is done.
    std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
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

/// Removes a taken worktree that could not be recycled (its slot and the task's symlink),
/// and its new branch when it is still at `start` (it holds no commit then).
fn discard_taken(repo: &Repo, config: &Config, wt: &Path, branch: &str, start: &str, lock: &Mutex<()>) {
    let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = remove_worktree_folder(config, wt) {
        tracing::warn!("removing the unrecyclable worktree {}: {e:#}", wt.display());
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

/// git's metadata step of a task's new worktree (callers hold the run's worktree lock, see
/// `Repo::register_worktree`): with the pool on in a new slot that `wt` links to
/// ([`new_slot`]), else at `wt` itself. An existing `branch` (a task resumed after a crash
/// between creating its branch and recording it) is checked out; else the branch is made at
/// `start`. Returns whether it made the branch. A failure leaves neither slot nor link.
pub fn register(repo: &Repo, config: &Config, wt: &Path, branch: &str, start: &str) -> Result<bool> {
    let existing = repo.branch_exists(branch)?;
    register_in_slot(config, wt, |at| {
        if existing {
            repo.add_worktree_for_branch(at, branch).map(|()| false)
        } else {
            repo.register_worktree(at, branch, start).map(|()| true)
        }
    })
}

/// [`register`] for a `branch` the caller has just made for this worktree
/// (`Repo::create_branches`, in a batch with other tasks' branches; only where
/// `Repo::writes_worktree_metadata`). On failure the branch is deleted again and neither slot
/// nor link is left. Callers hold the run's worktree lock.
pub fn register_on_new_branch(repo: &Repo, config: &Config, wt: &Path, branch: &str) -> Result<()> {
    let registered = register_in_slot(config, wt, |at| repo.register_worktree_on_new_branch(at, branch));
    if registered.is_err() {
        if let Err(e) = repo.delete_branch(branch) {
            tracing::warn!("removing the branch {branch} of a worktree not made: {e:#}");
        }
    }
    registered
}

/// Runs `register_at` on where the worktree goes: with the pool on a new slot that `wt` links
/// to, else `wt` itself. A failure leaves neither slot nor link.
fn register_in_slot<T>(config: &Config, wt: &Path, register_at: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let at = if config.pool.enabled() {
        new_slot(config, wt)?
    } else {
        wt.to_path_buf()
    };
    let made = register_at(&at);
    if made.is_err() && at != wt {
        let _ = std::fs::remove_file(wt);
        let _ = std::fs::remove_dir(&at);
    }
    made
}

/// A task's new worktree, whole: [`register`] under `lock`, then its files checked out
/// outside it. A failed checkout removes the worktree and the branch it made.
pub fn create_worktree(
    repo: &Repo,
    config: &Config,
    wt: &Path,
    branch: &str,
    start: &str,
    lock: &Mutex<()>,
) -> Result<()> {
    let new_branch = {
        let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
        register(repo, config, wt, branch, start)?
    };
    if let Err(e) = repo.populate_worktree(wt, branch) {
        if new_branch {
            let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
            repo.discard_new_worktree(wt, branch);
        }
        return Err(e);
    }
    Ok(())
}

/// The slots the task symlinks in the worktree folder point at.
fn linked_slots(config: &Config) -> HashSet<PathBuf> {
    let Ok(read) = std::fs::read_dir(&config.worktree_dir) else {
        return HashSet::new();
    };
    read.flatten()
        .filter_map(|e| slot_of(config, &e.path()))
        .filter_map(|slot| std::path::absolute(slot).ok())
        .collect()
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
/// entry with `all`, and slots that nothing points at (left by a crash between a release's
/// two steps) when they are clean. An entry or slot with changes is kept. Returns one line
/// per slot removed or kept.
pub fn prune(repo: &Repo, config: &Config, all: bool) -> Result<Vec<String>> {
    let dir = pool_dir(config);
    let lock = Mutex::new(());
    let linked = linked_slots(config);
    let is_linked = |slot: &Path| std::path::absolute(slot).is_ok_and(|s| linked.contains(&s));
    let mut lines = vec![];
    let mut ready = vec![];
    let mut marked = HashSet::new();
    for entry in entries(&dir)? {
        marked.insert(entry.number);
        if entry.claimed_by.is_some() {
            if entry.is_stale_claim() {
                if is_linked(&entry.path) {
                    // Its process died after giving it to a task: the task's now.
                    std::fs::remove_file(entry.marker())
                        .with_context(|| format!("removing {}", entry.marker().display()))?;
                    lines.push(format!(
                        "kept    {}: a task's worktree (dropped the claim of a process that is gone)",
                        entry.path.display()
                    ));
                } else {
                    remove_entry(repo, &entry, &lock)?;
                    lines.push(format!(
                        "removed {} (left by a process that is gone)",
                        entry.path.display()
                    ));
                }
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
    lines.extend(prune_unlinked_slots(repo, &dir, &marked, &is_linked)?);
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

/// Slots with neither a marker nor a task's symlink: a crash between a release's two steps
/// (link removed, marker not yet written), or a link the user deleted. A clean one is
/// removed (its branch, if any, keeps every commit); one with changes, or a nested
/// repository, is kept and named.
fn prune_unlinked_slots(
    repo: &Repo,
    dir: &Path,
    marked: &HashSet<u64>,
    is_linked: &dyn Fn(&Path) -> bool,
) -> Result<Vec<String>> {
    let mut lines = vec![];
    let Ok(read) = std::fs::read_dir(dir) else {
        return Ok(lines);
    };
    for item in read.flatten() {
        let path = item.path();
        let name = item.file_name().to_string_lossy().into_owned();
        let Some(number) = parse_slot(&name) else { continue };
        if marked.contains(&number) || is_linked(&path) || !path.is_dir() {
            continue;
        }
        let nested = crate::git::nested_repositories(&path).map(|n| !n.is_empty());
        if repo.is_dirty(&path).unwrap_or(true) || nested.unwrap_or(true) {
            lines.push(format!(
                "kept    {}: no task points at it, but it has changes (look, then delete it yourself)",
                path.display()
            ));
            continue;
        }
        std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        repo.prune_worktrees()?;
        lines.push(format!("removed {} (no task points at it)", path.display()));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names() {
        assert_eq!(parse_marker("7.ready"), Some((7, None)));
        assert_eq!(parse_marker("7.taken.123"), Some((7, Some(123))));
        for bad in ["7", "x", "7.taken.", "7.tmp", ".taken.1", ".ready", "x.ready", ""] {
            assert_eq!(parse_marker(bad), None, "{bad}");
        }
        assert_eq!(parse_slot("7"), Some(7));
        assert_eq!(parse_slot("7.ready"), None);
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
