//! One orchestrator per repository: `.gadugi/lock` names the process driving runs there.
//!
//! The lock holds the owner's pid and process start time, so a lock left by a dead process
//! (or by a process whose pid was since reused) is recognised as stale and taken over,
//! while a live owner gets a clear message. Other processes never need the lock to read:
//! they observe runs through the state files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::exec::supervisor::{process_is_alive, process_start_ticks};
use crate::layout::Layout;

/// Contents of `.gadugi/lock`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub pid: u32,
    pub start_ticks: Option<u64>,
    pub run_id: String,
    pub acquired_at: DateTime<Utc>,
}

impl LockInfo {
    /// Whether the owner process is still the one that took the lock.
    pub fn owner_alive(&self) -> bool {
        process_is_alive(self.pid, self.start_ticks)
    }
}

/// A held lock: an exclusive `flock` on `.gadugi/lock`, which the kernel drops when the
/// holder dies, so a lock is stale exactly when nobody holds it — no guessing from pids, and
/// no window in which two processes that both found it stale can both take it. The file also
/// names the holder (pid, start time, run) for readers. Released on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    info: LockInfo,
    /// The open file whose `flock` is the lock (close-on-exec: supervisors and agents never
    /// inherit it). Unlocked when dropped, after `Drop` removed the file.
    _file: nix::fcntl::Flock<std::fs::File>,
}

/// Reads the lock, if any (a torn or foreign file reads as `None`).
pub fn read_lock(layout: &Layout) -> Option<LockInfo> {
    crate::fsutil::read_json(&layout.lock_file()).ok().flatten()
}

impl RunLock {
    /// Takes the repository's lock for `run_id`. A lock whose holder is gone is free; a live
    /// holder gets a clear [`InputError`].
    pub fn acquire(layout: &Layout, run_id: &str) -> Result<RunLock> {
        use std::io::{Seek, Write};
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        std::fs::create_dir_all(&layout.root).context("creating .gadugi")?;
        let path = layout.lock_file();
        let me = std::process::id();
        let info = LockInfo {
            pid: me,
            start_ticks: process_start_ticks(me),
            run_id: run_id.to_string(),
            acquired_at: Utc::now(),
        };
        for _ in 0..10 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let mut file = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Err(held_by_another(layout).into()),
                Err((_, e)) => return Err(anyhow::anyhow!("locking {}: {e}", path.display())),
            };
            // Ownership re-checked after taking it: a holder that was releasing may have
            // removed the file we opened; then our lock is on a file nobody else sees.
            let same_file = std::fs::symlink_metadata(&path)
                .is_ok_and(|m| m.ino() == file.metadata().map(|f| f.ino()).unwrap_or(0));
            if !same_file {
                continue;
            }
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(&serde_json::to_vec_pretty(&info)?)?;
            file.sync_all()?;
            return Ok(RunLock {
                path,
                info,
                _file: file,
            });
        }
        anyhow::bail!("could not take .gadugi/lock: it keeps changing under us")
    }
}

/// The error for a lock another live process holds.
fn held_by_another(layout: &Layout) -> InputError {
    match read_lock(layout) {
        Some(owner) => InputError::new(
            format!(
                "another gadugi process (pid {}) is driving run {} in this repository",
                owner.pid, owner.run_id
            ),
            "watch it with `gadugi status` or `gadugi logs TASK --follow`, cancel it with `gadugi cancel`, or wait for it to finish",
        ),
        None => InputError::new(
            "another gadugi process is taking over a run in this repository right now",
            "wait a moment and see `gadugi status`",
        ),
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Only remove the lock if it is still ours; the flock goes with the file.
        if crate::fsutil::read_json::<LockInfo>(&self.path).ok().flatten().as_ref() == Some(&self.info) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_lock_is_refused_and_a_stale_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let held = RunLock::acquire(&layout, "r1").unwrap();
        let err = RunLock::acquire(&layout, "r2").unwrap_err();
        assert!(err.to_string().contains("another gadugi process"), "{err}");
        drop(held);
        assert!(read_lock(&layout).is_none());
        // A lock left by a process that no longer exists.
        let stale = LockInfo {
            pid: 999_999_999,
            start_ticks: Some(1),
            run_id: "old".into(),
            acquired_at: Utc::now(),
        };
        crate::fsutil::write_json_atomic(&layout.lock_file(), &stale).unwrap();
        let taken = RunLock::acquire(&layout, "r3").unwrap();
        assert_eq!(read_lock(&layout).unwrap().run_id, "r3");
        drop(taken);
        assert!(read_lock(&layout).is_none(), "released on drop");
    }
}
