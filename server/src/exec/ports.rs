//! Port blocks: each running task gets `GADUGI_PORT`, the first of a block of
//! `GADUGI_PORT_COUNT` consecutive TCP ports nobody else holds, so that the dev servers of
//! parallel agents never collide. The block is released when the task ends.
//!
//! Two things make a block "free": no other Gadugi task holds it, and nothing listens on it
//! right now. The first is a lock file per port (`flock`, in a per-user folder under the
//! temporary directory): locks are held by an open file, so they keep working across
//! several Gadugi processes, and the kernel drops them when the holder dies, so a crash never
//! leaks ports. The second is a test bind on the IPv4 and IPv6 wildcard addresses. Blocks
//! are aligned (`start + k * size`) and taken from a range below the kernel's ephemeral
//! ports (32768 and up on Linux), which outgoing connections use.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};

/// A block of ports held for one task. Dropping it releases the ports.
#[derive(Debug)]
pub struct PortBlock {
    /// First port of the block (`GADUGI_PORT`).
    pub first: u16,
    /// Number of ports (`GADUGI_PORT_COUNT`).
    pub count: u16,
    /// The key under which [`env`] finds the block.
    key: Option<(String, String)>,
    _locks: Vec<Flock<File>>,
}

impl PortBlock {
    /// The variables a task's processes get: `GADUGI_PORT` and `GADUGI_PORT_COUNT`.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("GADUGI_PORT".to_string(), self.first.to_string()),
            ("GADUGI_PORT_COUNT".to_string(), self.count.to_string()),
        ]
    }

    /// Registers the block as the one of `task` in `run`, for [`env`].
    pub fn register(&mut self, run: &str, task: &str) {
        let key = (run.to_string(), task.to_string());
        held()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), self.vars());
        self.key = Some(key);
    }
}

impl Drop for PortBlock {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            held().lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        }
    }
}

/// The variables of each registered block, by (run, task).
type Registry = Mutex<HashMap<(String, String), Vec<(String, String)>>>;

/// Blocks registered in this process.
fn held() -> &'static Registry {
    static HELD: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    HELD.get_or_init(Mutex::default)
}

/// The port variables of `task` in `run` while its block is held; empty when it has none
/// (ports are switched off with `ports = 0`).
pub fn env(run: &str, task: &str) -> Vec<(String, String)> {
    held()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(run.to_string(), task.to_string()))
        .cloned()
        .unwrap_or_default()
}

/// Why no port block could be taken.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The lock folder or a lock file could not be created or opened.
    #[error("cannot {what} {}: {source}", path.display())]
    LockFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The range is smaller than one block.
    #[error("the port range {low}-{high} holds no block of {count} ports")]
    RangeTooSmall { low: u16, high: u16, count: u16 },
    /// Every block of the range is held or in use.
    #[error("no block of {count} free ports left in {low}-{high}: other tasks or programs hold them all")]
    NoneFree { low: u16, high: u16, count: u16 },
}

/// Folder of the per-port lock files (one per user, so another user's files never get in
/// the way; blocks of other users are still avoided by the test bind).
fn lock_dir() -> PathBuf {
    let uid = nix::unistd::getuid();
    std::env::temp_dir().join(format!("gadugi-ports-{uid}"))
}

/// Takes a free block of `count` ports from `range` (inclusive). Tries every aligned block
/// once, starting at a block picked from the process id and time so that runs started
/// together rarely race for the same one.
pub fn allocate(count: u16, range: (u16, u16)) -> Result<PortBlock, PortError> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).map_err(|source| PortError::LockFile {
        what: "create",
        path: dir.clone(),
        source,
    })?;
    let (low, high) = range;
    let blocks = (u32::from(high) + 1).saturating_sub(u32::from(low)) / u32::from(count.max(1));
    if count == 0 || blocks == 0 {
        return Err(PortError::RangeTooSmall { low, high, count });
    }
    let seed = std::process::id() ^ chrono::Utc::now().timestamp_subsec_nanos();
    for k in 0..blocks {
        let first = u32::from(low) + ((seed.wrapping_add(k)) % blocks) * u32::from(count);
        let Ok(first) = u16::try_from(first) else { continue };
        if let Some(locks) = try_block(&dir, first, count)? {
            return Ok(PortBlock {
                first,
                count,
                key: None,
                _locks: locks,
            });
        }
    }
    Err(PortError::NoneFree { low, high, count })
}

/// Locks every port of the block and checks nothing listens on it; `None` when any port is
/// taken (the locks taken so far are released).
fn try_block(dir: &std::path::Path, first: u16, count: u16) -> Result<Option<Vec<Flock<File>>>, PortError> {
    let mut locks = Vec::with_capacity(usize::from(count));
    for port in first..first.saturating_add(count) {
        let path = dir.join(format!("{port}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| PortError::LockFile {
                what: "open",
                path: path.clone(),
                source,
            })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => locks.push(lock),
            Err(_) => return Ok(None),
        }
        if !is_free(port) {
            return Ok(None);
        }
    }
    Ok(Some(locks))
}

/// Whether a TCP listener could bind `port` on every address right now.
pub fn is_free(port: u16) -> bool {
    // One at a time: the IPv6 wildcard is dual-stack and would collide with our own probe.
    if TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).is_err() {
        return false;
    }
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Ok(_) => true,
        // No IPv6 on this machine: the IPv4 bind is all there is to check.
        Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_held_at_once_are_disjoint_and_free_again_after_release() {
        let range = (41000, 41019);
        let a = allocate(10, range).unwrap();
        let b = allocate(10, range).unwrap();
        let mut firsts = [a.first, b.first];
        firsts.sort();
        assert_eq!(firsts, [41000, 41010], "two aligned, disjoint blocks");
        let err = allocate(10, range).unwrap_err().to_string();
        assert!(err.contains("no block of 10 free ports"), "{err}");
        let first_a = a.first;
        drop(a);
        assert_eq!(allocate(10, range).unwrap().first, first_a);
    }

    #[test]
    fn a_port_someone_listens_on_is_never_handed_out() {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let busy = listener.local_addr().unwrap().port();
        assert!(!is_free(busy));
        let err = allocate(1, (busy, busy)).unwrap_err().to_string();
        assert!(err.contains("no block"), "{err}");
        drop(listener);
        assert_eq!(allocate(1, (busy, busy)).unwrap().first, busy);
    }

    #[test]
    fn registered_blocks_give_the_task_its_variables_until_dropped() {
        let mut block = allocate(3, (41100, 41199)).unwrap();
        block.register("run-x", "web");
        let vars = env("run-x", "web");
        assert_eq!(vars[0], ("GADUGI_PORT".into(), block.first.to_string()));
        assert_eq!(vars[1], ("GADUGI_PORT_COUNT".into(), "3".into()));
        assert!(env("run-x", "other").is_empty());
        drop(block);
        assert!(env("run-x", "web").is_empty());
    }
}
