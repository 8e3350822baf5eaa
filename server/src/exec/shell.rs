//! The one shell runner: every command line of the user's own (a task's `setup` and
//! `teardown`, its `verify`, `gadugi merge --verify`) runs here, under one set of rules.
//!
//! The line runs through `sh -c` (it comes from the user's committed files or command line)
//! in a given folder, stdin closed, stdout and stderr appended to a log file, in its own
//! process group. When the time limit passes, or the optional cancel signal turns true, the
//! whole group is stopped: SIGTERM, a grace period, then SIGKILL, so that nothing it started
//! in the background outlives it. When the command ends by itself, whatever it left running
//! in the background is left alone (a setup may start a service on purpose).
//!
//! [`ShellCommand::run`] is for async callers (the run loop); [`ShellCommand::run_blocking`]
//! for synchronous ones (`gadugi merge`, `gadugi cleanup`), which may be inside a runtime.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::time::Instant;

/// How many lines of the log an error message quotes.
pub const TAIL_LINES: usize = 5;

/// One command line of the user's, and where and how long to run it.
#[derive(Debug, Clone)]
pub struct ShellCommand {
    /// What the command is, for messages: `setup`, `verify`... (may be empty).
    pub what: String,
    /// The command line, run through `sh -c`.
    pub line: String,
    /// The folder it runs in.
    pub dir: PathBuf,
    /// Variables added to the environment.
    pub env: Vec<(String, String)>,
    /// The log its output is appended to (created with its folder when missing).
    pub log: PathBuf,
    /// Time limit, from the start of the command.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL when the group is stopped.
    pub grace: Duration,
}

/// How a command did not succeed. Each message names the command (and its log).
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The log could not be opened; the command did not start.
    #[error("opening {}: {source}", log.display())]
    Log {
        log: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `sh` could not be started.
    #[error("cannot run {name}: {source}")]
    Start {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the command failed.
    #[error("waiting for {name}: {source}")]
    Wait {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// It ended with a failing status; `tail` is the end of its log.
    #[error("{name} failed ({status}): {tail} (log: {})", log.display())]
    Failed {
        name: String,
        status: ExitStatus,
        tail: String,
        log: PathBuf,
    },
    /// It was still running after `after`; its group was stopped.
    #[error("{name} timed out after {} (log: {})", human(*after), log.display())]
    TimedOut {
        name: String,
        after: Duration,
        log: PathBuf,
    },
    /// The cancel signal came while it ran (or before it started); its group was stopped.
    #[error("{name} was stopped: the run was cancelled (log: {})", log.display())]
    Cancelled { name: String, log: PathBuf },
}

impl ShellCommand {
    /// How messages name the command: ``setup `npm ci` ``, or `` `make test` ``.
    pub fn name(&self) -> String {
        if self.what.is_empty() {
            format!("`{}`", self.line)
        } else {
            format!("{} `{}`", self.what, self.line)
        }
    }

    /// Runs the command to its end, its time limit, or `cancel` turning true (a closed
    /// channel never cancels).
    pub async fn run(&self, cancel: Option<watch::Receiver<bool>>) -> Result<(), ShellError> {
        let name = self.name();
        let cancelled = |name: String| ShellError::Cancelled {
            name,
            log: self.log.clone(),
        };
        if cancel.as_ref().is_some_and(|c| *c.borrow()) {
            return Err(cancelled(name));
        }
        let deadline = Instant::now() + self.timeout;
        let out = self.open_log()?;
        let err = out.try_clone().map_err(|source| self.log_error(source))?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.line)
            .current_dir(&self.dir)
            .envs(self.env.iter().cloned())
            // $PWD is the folder the command runs in, not gadugi's own (the user's checkout).
            .env("PWD", &self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| ShellError::Start {
                name: name.clone(),
                source,
            })?;
        let Some(pid) = child.id() else {
            // Already reaped: it ended before we looked.
            return self.judge(name, child.wait().await);
        };
        let mut group = Group {
            pgid: Pid::from_raw(pid as i32),
            armed: true,
        };
        let cancel_signal = async move {
            if let Some(mut c) = cancel {
                if c.wait_for(|v| *v).await.is_ok() {
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            status = child.wait() => {
                group.armed = false;
                self.judge(name, status)
            }
            () = tokio::time::sleep_until(deadline) => {
                group.stop(&mut child, self.grace).await;
                Err(ShellError::TimedOut { name, after: self.timeout, log: self.log.clone() })
            }
            () = cancel_signal => {
                group.stop(&mut child, self.grace).await;
                Err(cancelled(name))
            }
        }
    }

    /// [`run`](Self::run) without a cancel signal, for synchronous callers (see [`block_on`]).
    pub fn run_blocking(&self) -> Result<(), ShellError> {
        block_on(self.run(None)).unwrap_or_else(|source| {
            Err(ShellError::Start {
                name: self.name(),
                source,
            })
        })
    }

    /// Writes `line` (and a newline) to the log; for a caller's own notes around the command.
    pub fn note(&self, line: &str) -> Result<(), ShellError> {
        writeln!(self.open_log()?, "{line}").map_err(|source| self.log_error(source))
    }

    /// The log, opened for appending (created with its folder when missing).
    fn open_log(&self) -> Result<std::fs::File, ShellError> {
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir).map_err(|source| self.log_error(source))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| self.log_error(source))
    }

    fn log_error(&self, source: std::io::Error) -> ShellError {
        ShellError::Log {
            log: self.log.clone(),
            source,
        }
    }

    fn judge(&self, name: String, status: std::io::Result<ExitStatus>) -> Result<(), ShellError> {
        let status = status.map_err(|source| ShellError::Wait {
            name: name.clone(),
            source,
        })?;
        if status.success() {
            return Ok(());
        }
        Err(ShellError::Failed {
            name,
            status,
            tail: log_tail(&self.log, TAIL_LINES),
            log: self.log.clone(),
        })
    }
}

/// Runs `future` to its end on a thread of its own with a small runtime, so that a
/// synchronous caller can wait for [`ShellCommand::run`] even inside another runtime. An
/// error when that runtime cannot be built.
pub fn block_on<F: std::future::Future + Send>(future: F) -> std::io::Result<F::Output>
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            Ok(runtime.block_on(future))
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The last `lines` lines of the log, joined with ` | ` for a one-line message ("" when it
/// cannot be read).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = crate::agent::follower::read_tail(log, 64 * 1024);
    let mut tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.reverse();
    tail.join(" | ")
}

/// A duration as people write it in gadugi.toml: `5m`, `90s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{:.0}s", d.as_secs_f64())
    }
}

/// The process group of a running command; SIGKILLed when dropped while armed (the future
/// was dropped before the command ended).
struct Group {
    pgid: Pid,
    armed: bool,
}

impl Group {
    /// SIGTERM to the group, up to `grace` for every process of it to end, then SIGKILL;
    /// reaps the child.
    async fn stop(&mut self, child: &mut tokio::process::Child, grace: Duration) {
        self.armed = false;
        let _ = killpg(self.pgid, Signal::SIGTERM);
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if matches!(child.try_wait(), Ok(Some(_))) && killpg(self.pgid, None).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = killpg(self.pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(dir: &Path, line: &str, timeout: Duration) -> ShellCommand {
        ShellCommand {
            what: "test".into(),
            line: line.into(),
            dir: dir.to_path_buf(),
            env: vec![("GADUGI_TEST_VAR".into(), "from-env".into())],
            log: dir.join("logs/test.log"),
            timeout,
            grace: Duration::from_millis(300),
        }
    }

    /// Whether a process is gone (or a zombie nobody reaped yet), allowing a killed process
    /// a moment to die: SIGKILL is delivered at once, but the exit takes a scheduler turn.
    fn gone(pid: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone_now(pid) {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn gone_now(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    /// Pids a command wrote to `pids` (its own, then its background child's).
    fn pids(dir: &Path) -> Vec<String> {
        for _ in 0..100 {
            let text = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
            if text.lines().count() == 2 {
                return text.lines().map(str::to_string).collect();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the command never wrote its pids");
    }

    /// Starts a background sleeper that ignores SIGTERM, and waits.
    const STUBBORN: &str = "sh -c 'trap \"\" TERM; sleep 300' & echo $$ > pids; echo $! >> pids; wait";

    #[test]
    fn output_goes_to_the_log_and_a_failure_reports_its_status_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let ok = command(
            dir.path(),
            "echo out; echo err >&2; echo $GADUGI_TEST_VAR",
            Duration::from_secs(30),
        );
        ok.note("$ first").unwrap();
        ok.run_blocking().unwrap();
        let bad = command(dir.path(), "echo one; echo two >&2; exit 7", Duration::from_secs(30));
        let e = bad.run_blocking().unwrap_err();
        assert!(
            matches!(&e, ShellError::Failed { status, .. } if status.code() == Some(7)),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("test `echo one; echo two >&2; exit 7` failed (exit status: 7)"),
            "{text}"
        );
        assert!(text.contains("from-env | one | two (log: "), "{text}");
        let log = std::fs::read_to_string(dir.path().join("logs/test.log")).unwrap();
        assert_eq!(log, "$ first\nout\nerr\nfrom-env\none\ntwo\n");
        assert_eq!(log_tail(&dir.path().join("logs/test.log"), 2), "one | two");
    }

    #[test]
    fn a_timeout_stops_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let e = command(dir.path(), STUBBORN, Duration::from_secs(1))
            .run_blocking()
            .unwrap_err();
        assert!(matches!(e, ShellError::TimedOut { .. }), "{e}");
        assert!(e.to_string().contains("timed out after 1s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(20));
        for pid in pids(dir.path()) {
            assert!(gone(&pid), "process {pid} of the group still runs");
        }
    }

    #[tokio::test]
    async fn cancel_stops_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = watch::channel(false);
        let cmd = command(dir.path(), STUBBORN, Duration::from_secs(300));
        let path = dir.path().to_path_buf();
        let canceller = tokio::task::spawn_blocking(move || {
            let pids = pids(&path);
            tx.send(true).unwrap();
            pids
        });
        let e = cmd.run(Some(rx)).await.unwrap_err();
        assert!(matches!(e, ShellError::Cancelled { .. }), "{e}");
        for pid in canceller.await.unwrap() {
            assert!(gone(&pid), "process {pid} of the group still runs");
        }
        // Already cancelled: nothing starts.
        let (_tx, rx) = watch::channel(true);
        let e = command(dir.path(), "touch started", Duration::from_secs(30))
            .run(Some(rx))
            .await
            .unwrap_err();
        assert!(matches!(e, ShellError::Cancelled { .. }), "{e}");
        assert!(!dir.path().join("started").exists());
    }

    #[test]
    fn a_missing_folder_is_a_start_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command(dir.path(), "true", Duration::from_secs(30));
        cmd.dir = dir.path().join("missing");
        let e = cmd.run_blocking().unwrap_err();
        assert!(matches!(e, ShellError::Start { .. }), "{e}");
        assert!(e.to_string().starts_with("cannot run test `true`: "), "{e}");
    }
}
