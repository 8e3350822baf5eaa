//! A real two-node Slurm cluster on this machine for a test: `scripts/slurm-cluster.sh up` in
//! a fresh temporary folder, on ports of its own (so several tests can each have one at
//! once), stopped by the pids in its pid files when the [`SlurmCluster`] is dropped.
//!
//! Slurm must be installed (Debian: `slurmctld slurmd slurm-client munge`, which
//! `scripts/setup.sh` installs): without it [`SlurmCluster::up`] fails the test, it does not
//! skip it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// One running cluster: controller and nodes `n1`, `n2` (one CPU each) in partition `agents`.
pub struct SlurmCluster {
    /// Its folder (configuration, state, logs, pid files, `jobcomp.txt`); kept when the test
    /// fails, for its logs.
    dir: Option<tempfile::TempDir>,
    /// Where the folder is (also once kept).
    path: PathBuf,
    /// The controller's port; the nodes listen on the next two.
    pub port_base: u16,
}

/// The cluster script of the repository.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-cluster.sh")
}

/// Whether 127.0.0.1:`port` is free now.
fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A base port in 20000..40000 whose next two ports are free too; bases differ between calls
/// and between processes (pid and clock), so clusters of parallel tests do not collide.
fn free_port_base() -> u16 {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut seed = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(nanos)
        .wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919));
    for _ in 0..200 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let base = 20000 + ((seed >> 8) % 6666) as u16 * 3;
        if (base..base + 3).all(free) {
            return base;
        }
    }
    panic!("no three free consecutive ports on 127.0.0.1 in 20000..40000");
}

/// Whether Slurm's daemons and clients are installed (Debian puts the daemons in /usr/sbin).
fn installed(program: &str) -> bool {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    on_path || Path::new("/usr/sbin").join(program).is_file()
}

fn show(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl SlurmCluster {
    /// Brings up a new cluster and waits until both nodes are idle. Fails the test (with the
    /// script's output and the daemons' logs) when it cannot.
    pub fn up() -> SlurmCluster {
        for program in ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"] {
            assert!(
                installed(program),
                "Slurm is not installed ({program} is missing): apt-get install --no-install-recommends \
                 slurmctld slurmd slurm-client munge (scripts/setup.sh does it when run as root)"
            );
        }
        let mut last = String::new();
        // A port found free may be taken by another process before the daemons bind it: then
        // the script fails and cleans up, and another base is tried.
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("gadugi-slurm-")
                .tempdir()
                .expect("temporary folder");
            let port_base = free_port_base();
            let out = Command::new("bash")
                .arg(script())
                .arg("up")
                .arg(dir.path())
                .arg(port_base.to_string())
                .stdin(Stdio::null())
                .output()
                .expect("bash runs");
            let path = dir.path().to_path_buf();
            let cluster = SlurmCluster {
                dir: Some(dir),
                path,
                port_base,
            };
            if out.status.success() {
                return cluster;
            }
            last = show(&out);
            eprintln!(
                "slurm-cluster.sh up {} {port_base} failed, trying again: {last}",
                cluster.path.display()
            );
            cluster.down();
        }
        panic!("scripts/slurm-cluster.sh up failed three times; the last time: {last}");
    }

    /// The cluster's folder.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Its `slurm.conf`.
    pub fn conf(&self) -> PathBuf {
        self.path.join("slurm.conf")
    }

    /// What Slurm's clients need in their environment to use this cluster (from the
    /// script's `DIR/env`: `SLURM_CONF`).
    pub fn env(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.path.join("env")).expect("the cluster's env file");
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A Slurm client command of this cluster (`squeue`, `sbatch`...), its environment set.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.envs(self.env()).stdin(Stdio::null());
        command
    }

    /// The lines of `jobcomp.txt`: one per job that ended.
    pub fn jobcomp_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.path.join("jobcomp.txt"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The nodes the jobs that ended ran on (sorted, each once).
    pub fn nodes_used(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .jobcomp_lines()
            .iter()
            .filter_map(|l| l.split(' ').find_map(|field| field.strip_prefix("NodeList=")))
            .filter(|n| !n.is_empty() && *n != "(null)")
            .map(String::from)
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The names of the jobs `squeue` lists as active (pending, running, completing).
    pub fn squeue_names(&self) -> Vec<String> {
        let out = self
            .command("squeue")
            .args(["-h", "-o", "%j"])
            .output()
            .expect("squeue runs");
        assert!(out.status.success(), "squeue: {}", show(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The pid of `node`'s slurmd, from its pid file.
    fn slurmd_pid(&self, node: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.path.join(format!("run/slurmd-{node}.pid"))).ok()?;
        text.trim().parse().ok()
    }

    /// Kills `node`'s slurmd with SIGKILL (its jobs' processes live on) and waits until it is
    /// gone.
    pub fn kill_slurmd(&self, node: &str) {
        let pid = self
            .slurmd_pid(node)
            .unwrap_or_else(|| panic!("no pid file for slurmd {node}"));
        assert!(!super::process_gone(pid), "slurmd {node} (pid {pid}) is not running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("SIGKILL to slurmd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !super::process_gone(pid) {
            assert!(Instant::now() < deadline, "slurmd {node} (pid {pid}) outlived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `node`'s slurmd again (after [`kill_slurmd`](Self::kill_slurmd)) and waits
    /// until it has written its new pid file.
    pub fn restart_slurmd(&self, node: &str) {
        let before = self.slurmd_pid(node);
        let out = Command::new("slurmd")
            .arg("-f")
            .arg(self.conf())
            .args(["-N", node])
            .env(
                "PATH",
                format!("{}:/usr/sbin", std::env::var("PATH").unwrap_or_default()),
            )
            .stdin(Stdio::null())
            .output()
            .expect("slurmd runs");
        assert!(out.status.success(), "slurmd -N {node}: {}", show(&out));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(pid) = self.slurmd_pid(node).filter(|p| Some(*p) != before) {
                if !super::process_gone(pid) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "slurmd {node} wrote no new pid file in 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemons (by their pid files); done on drop too.
    pub fn down(&self) {
        let out = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(&self.path)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success() || std::thread::panicking(),
            "slurm-cluster.sh down: {}",
            show(&out)
        );
    }
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        self.down();
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "the failed test's Slurm cluster (logs in log/) is kept in {}",
                    kept.display()
                );
            }
        }
    }
}
