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

/// A held lock; released (the file removed) on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    info: LockInfo,
}

/// Reads the lock, if any (a torn or foreign file reads as `None`).
pub fn read_lock(layout: &Layout) -> Option<LockInfo> {
    crate::fsutil::read_json(&layout.lock_file()).ok().flatten()
}

impl RunLock {
    /// Takes the repository's lock for `run_id`, taking over a stale one.
    pub fn acquire(layout: &Layout, run_id: &str) -> Result<RunLock> {
        std::fs::create_dir_all(&layout.root).context("creating .gadugi")?;
        let path = layout.lock_file();
        let me = std::process::id();
        let info = LockInfo {
            pid: me,
            start_ticks: process_start_ticks(me),
            run_id: run_id.to_string(),
            acquired_at: Utc::now(),
        };
        let tmp = layout.root.join(format!(".lock.{me}.tmp"));
        crate::fsutil::write_json_atomic(&tmp, &info)?;
        let result = (|| {
            for _ in 0..3 {
                // link() creates the lock with its full content or fails because one exists.
                match std::fs::hard_link(&tmp, &path) {
                    Ok(()) => {
                        return Ok(RunLock {
                            path: path.clone(),
                            info: info.clone(),
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e).context("creating .gadugi/lock"),
                }
                match read_lock(layout) {
                    Some(owner) if owner.owner_alive() => {
                        return Err(InputError::new(
                            format!(
                                "another gadugi process (pid {}) is driving run {} in this repository",
                                owner.pid, owner.run_id
                            ),
                            "watch it with `gadugi status` or `gadugi logs TASK --follow`, cancel it with `gadugi cancel`, or wait for it to finish",
                        )
                        .into())
                    }
                    // Stale (its owner is gone) or unreadable: move it aside and try again.
                    _ => {
                        let aside = layout.root.join(format!("lock.stale.{me}"));
                        let _ = std::fs::rename(&path, &aside);
                        let _ = std::fs::remove_file(&aside);
                    }
                }
            }
            anyhow::bail!("could not take .gadugi/lock: it keeps changing under us")
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Only remove the lock if it is still ours.
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
