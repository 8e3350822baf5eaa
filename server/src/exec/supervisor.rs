//! The process layer: one small supervisor process per agent attempt.
//!
//! `gadugi` never runs an agent as its own child. It starts `gadugi __supervise LAUNCH.json`,
//! which
//! 1. leaves the orchestrator's session (`setsid`), so a dying orchestrator, a closed
//!    terminal or a reloaded editor does not take the agent with it;
//! 2. starts the agent with argv (no shell), stdin closed (or, for an agent that takes a long
//!    prompt on stdin, the prompt file), stdout and stderr going straight to files (never a pipe, so the agent can never block on a slow reader and its output
//!    outlives every reader), in a new process group of its own;
//! 3. records the agent's pid and start time in `status.json`;
//! 4. enforces the timeout and handles SIGTERM (cancel): SIGTERM to the whole process group,
//!    a grace period, then SIGKILL — grandchildren included;
//! 5. after the agent exits, ends whatever it left running in its group, and writes
//!    `exit.json` atomically.
//!
//! The orchestrator waits for the supervisor and reads `exit.json`; a later orchestrator
//! (recovery) can find the same facts in the attempt directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::fsutil::{open_append, write_json_atomic};
use crate::layout::AttemptFiles;

/// Everything the supervisor needs to start and watch one agent attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchSpec {
    /// Program and arguments (argv[0] is looked up on PATH).
    pub argv: Vec<String>,
    /// Working directory: the task's worktree.
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// A file the agent reads as its stdin (the generated prompt, for an agent that takes a
    /// prompt too long for one argument on stdin); `None`: stdin is `/dev/null`.
    #[serde(default)]
    pub stdin: Option<PathBuf>,
    /// Where the agent's stdout goes.
    pub stdout: PathBuf,
    /// Where the agent's stderr goes.
    pub stderr: PathBuf,
    /// Written by the supervisor first thing: [`SupervisorInfo`].
    pub supervisor_file: PathBuf,
    /// Written once the agent runs: [`AgentStarted`].
    pub status_file: PathBuf,
    /// Written once the agent is gone: [`AgentExit`].
    pub exit_file: PathBuf,
    /// Kill the process group after this long.
    pub timeout_ms: u64,
    /// Between SIGTERM and SIGKILL.
    pub grace_ms: u64,
    /// The approval broker's questions folder, when the agent may ask the person: time
    /// spent with a question pending does not count toward the timeout (the broker's own
    /// deadline bounds it).
    #[serde(default)]
    pub questions_dir: Option<PathBuf>,
    /// A file of `NAME=value` lines (the model API keys) whose variables the agent gets on
    /// top of `env`; read only at the agent's start, so the values are in no file Gadugi
    /// writes. It must be readable by its owner only.
    #[serde(default)]
    pub env_file: Option<PathBuf>,
}

impl LaunchSpec {
    /// A launch whose files are those of one attempt.
    pub fn for_attempt(
        files: &AttemptFiles,
        argv: Vec<String>,
        stdin: Option<PathBuf>,
        cwd: PathBuf,
        env: Vec<(String, String)>,
        timeout: Duration,
        grace: Duration,
    ) -> LaunchSpec {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        LaunchSpec {
            argv,
            cwd,
            env,
            stdin,
            stdout: files.stdout.clone(),
            stderr: files.stderr.clone(),
            supervisor_file: files.supervisor.clone(),
            status_file: files.status.clone(),
            exit_file: files.exit.clone(),
            timeout_ms: ms(timeout),
            grace_ms: ms(grace),
            questions_dir: None,
            env_file: None,
        }
    }
}

/// Contents of `supervisor.json`: who supervises the attempt, so that a later orchestrator
/// can tell whether it still runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SupervisorInfo {
    pub pid: u32,
    /// Start time in clock ticks since boot; a reused pid never matches.
    pub start_ticks: Option<u64>,
}

/// Contents of `status.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentStarted {
    pub supervisor_pid: u32,
    pub agent_pid: u32,
    /// Start time of the agent process in clock ticks since boot (`/proc/PID/stat` field 22),
    /// so that a reused pid is never mistaken for the agent.
    pub agent_start_ticks: Option<u64>,
    pub started_at: DateTime<Utc>,
}

/// Contents of `exit.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentExit {
    /// Exit code when the agent exited normally.
    pub exit_code: Option<i32>,
    /// Signal number when it was killed by a signal.
    pub signal: Option<i32>,
    /// The supervisor stopped it because the timeout passed.
    pub timed_out: bool,
    /// The supervisor stopped it because it was asked to (SIGTERM/SIGINT to the supervisor).
    pub cancelled: bool,
    /// The agent could not be started at all.
    pub spawn_error: Option<String>,
    pub finished_at: DateTime<Utc>,
}

impl AgentExit {
    /// One-line description of how the attempt ended, or `None` for a clean exit 0.
    pub fn failure(&self) -> Option<String> {
        if let Some(e) = &self.spawn_error {
            return Some(format!("the agent could not be started: {e}"));
        }
        if self.cancelled {
            return Some("cancelled".into());
        }
        if self.timed_out {
            return Some("timed out; the agent's process group was stopped".into());
        }
        match (self.exit_code, self.signal) {
            (Some(0), _) => None,
            (Some(code), _) => Some(format!("the agent exited with code {code}")),
            (None, Some(sig)) => Some(format!("the agent was killed by signal {sig} ({})", signal_name(sig))),
            (None, None) => Some("the agent ended without an exit status".into()),
        }
    }
}

/// The variables of an agent's environment file: `NAME=value` lines (blank lines and `#`
/// comments skipped, `export ` allowed in front). Refused when others than its owner may read
/// it, or a line is not an assignment (the error names the line, never a value).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the agent's environment file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        anyhow::bail!(
            "the agent's environment file {} can be read by others than its owner (mode {:o}); run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut vars = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            anyhow::bail!("{}:{}: not a NAME=value line", path.display(), n + 1);
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            anyhow::bail!("{}:{}: `{name}` is not a variable's name", path.display(), n + 1);
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        vars.push((name.to_string(), value.to_string()));
    }
    Ok(vars)
}

/// Name of a signal number, such as `SIGKILL`.
pub fn signal_name(sig: i32) -> &'static str {
    Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("unknown signal")
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Entry point of `gadugi __supervise LAUNCH.json`. Returns the supervisor's exit code.
pub fn supervise(launch_file: &Path) -> Result<i32> {
    let spec: LaunchSpec = serde_json::from_slice(
        &std::fs::read(launch_file).with_context(|| format!("reading {}", launch_file.display()))?,
    )?;
    // Own session: no controlling terminal, not in the orchestrator's process group.
    let _ = nix::unistd::setsid();
    // Orphaned descendants of the agent are re-parented to us, not to init, so we can reap
    // them: a zombie still counts as a member of the agent's process group.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let me = std::process::id();
    write_json_atomic(
        &spec.supervisor_file,
        &SupervisorInfo {
            pid: me,
            start_ticks: process_start_ticks(me),
        },
    )?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal::signal(Signal::SIGTERM, SigHandler::Handler(request_stop))?;
        signal::signal(Signal::SIGINT, SigHandler::Handler(request_stop))?;
        signal::signal(Signal::SIGHUP, SigHandler::SigIgn)?;
    }
    let exit = run_agent(&spec);
    write_json_atomic(&spec.exit_file, &exit)?;
    Ok(0)
}

fn run_agent(spec: &LaunchSpec) -> AgentExit {
    let finished = |spawn_error: Option<String>| AgentExit {
        exit_code: None,
        signal: None,
        timed_out: false,
        cancelled: false,
        spawn_error,
        finished_at: Utc::now(),
    };
    let files = open_append(&spec.stdout).and_then(|out| Ok((out, open_append(&spec.stderr)?)));
    let (stdout, stderr) = match files {
        Ok(f) => f,
        Err(e) => return finished(Some(format!("{e:#}"))),
    };
    let Some((program, args)) = spec.argv.split_first() else {
        return finished(Some("empty command line".into()));
    };
    let stdin = match &spec.stdin {
        None => Stdio::null(),
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => Stdio::from(f),
            Err(e) => return finished(Some(format!("cannot open {} as its stdin: {e}", path.display()))),
        },
    };
    let secrets = match spec.env_file.as_deref().map(read_env_file).transpose() {
        Ok(vars) => vars.unwrap_or_default(),
        Err(e) => return finished(Some(format!("{e:#}"))),
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(secrets)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        // Programs that take their working directory from $PWD (opencode does) must see the
        // worktree, never the directory gadugi was started in: the user's checkout.
        .env("PWD", &spec.cwd)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return finished(Some(format!("{program}: {e}"))),
    };
    let pid = child.id();
    let group = Pid::from_raw(-(pid as i32));
    let started = AgentStarted {
        supervisor_pid: std::process::id(),
        agent_pid: pid,
        agent_start_ticks: process_start_ticks(pid),
        started_at: Utc::now(),
    };
    let _ = write_json_atomic(&spec.status_file, &started);

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let now = Instant::now();
    // A timeout too large to represent means "no practical limit", never a panic.
    let mut deadline = now
        .checked_add(Duration::from_millis(spec.timeout_ms))
        .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 86_400));
    let grace = Duration::from_millis(spec.grace_ms);
    let mut timed_out = false;
    let mut cancelled = false;
    let mut last_look = Instant::now();
    let status = loop {
        let now = Instant::now();
        if let Some(dir) = &spec.questions_dir {
            // Every half second: while the agent waits for the person, its clock stops.
            let since = now.saturating_duration_since(last_look);
            if since >= Duration::from_millis(500) {
                last_look = now;
                if crate::layout::question_ids(dir).iter().any(|(_, answered)| !answered) {
                    deadline += since;
                }
            }
        }
        let slice = deadline.saturating_duration_since(now).min(Duration::from_millis(50));
        match rx.recv_timeout(slice) {
            Ok(status) => break status,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(std::io::Error::other("lost the agent's wait thread"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let stop = STOP_REQUESTED.load(Ordering::SeqCst);
        if stop || Instant::now() >= deadline {
            cancelled = stop;
            timed_out = !stop;
            break terminate_group(group, grace, &rx);
        }
    };
    // Whatever the agent left running in its group (a dev server, a stray test runner) ends
    // with it: the task is over.
    if group_alive(group) {
        let _ = signal::kill(group, Signal::SIGTERM);
        let until = Instant::now() + grace.min(Duration::from_secs(2));
        while group_alive(group) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = signal::kill(group, Signal::SIGKILL);
        let until = Instant::now() + Duration::from_secs(2);
        while group_alive(group) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // And whatever escaped the group (`setsid`, a new process group): we are the subreaper, so
    // every such orphan is our child now; it ends too, its own group with it.
    end_orphans(grace);
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => AgentExit {
            exit_code: s.code(),
            signal: s.signal(),
            timed_out,
            cancelled,
            spawn_error: None,
            finished_at: Utc::now(),
        },
        Err(e) => finished(Some(e.to_string())),
    }
}

/// Reaps exited descendants (we are their subreaper), then tells whether any member of the
/// process group is left.
fn group_alive(group: Pid) -> bool {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
    signal::kill(group, None).is_ok()
}

/// Ends every process left under the supervisor once the agent's group is gone: processes
/// that left the group (`setsid`, `setpgid`) were re-parented to us, the subreaper, when
/// their parents died. Each gets SIGTERM (with its process group), then, after at most
/// `grace` (2 s at most), SIGKILL; repeated while killing one re-parents more of them.
fn end_orphans(grace: Duration) {
    let me = std::process::id();
    for _ in 0..20 {
        reap();
        if !has_children() {
            // The usual end: nothing left to look for, and no scan of every process's
            // /proc/PID/stat (64 supervisors ending together each read hundreds).
            return;
        }
        let orphans = children_of(me);
        if orphans.is_empty() {
            return;
        }
        let signal_all = |sig: Signal| {
            for &(pid, pgrp) in &orphans {
                if pgrp != 0 && pgrp != me {
                    let _ = signal::kill(Pid::from_raw(-(pgrp as i32)), sig);
                }
                let _ = signal::kill(Pid::from_raw(pid as i32), sig);
            }
        };
        signal_all(Signal::SIGTERM);
        let until = Instant::now() + grace.min(Duration::from_secs(2));
        while Instant::now() < until {
            reap();
            if orphans.iter().all(|&(pid, _)| !is_child_alive(pid, me)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        signal_all(Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(10));
    }
    reap();
}

/// Reaps every exited child (we are the subreaper of the agent's descendants).
fn reap() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Whether this process has a child at all, live or not yet reaped (`waitpid` answers ECHILD
/// when it has none).
fn has_children() -> bool {
    use nix::errno::Errno;
    use nix::sys::wait::{waitpid, WaitPidFlag};
    // A child that ended meanwhile is reaped here; it counts as one (the caller looks again).
    !matches!(waitpid(None, Some(WaitPidFlag::WNOHANG)), Err(Errno::ECHILD))
}

/// Live (not zombie) children of `parent`: (pid, process group), from `/proc`.
fn children_of(parent: u32) -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (state, ppid, pgrp) = stat_fields(pid)?;
            (ppid == parent && state != 'Z').then_some((pid, pgrp))
        })
        .collect()
}

/// Whether `pid` is still a live child of `parent`.
fn is_child_alive(pid: u32, parent: u32) -> bool {
    stat_fields(pid).is_some_and(|(state, ppid, _)| ppid == parent && state != 'Z')
}

/// State, parent pid and process group of `pid`, from `/proc/PID/stat`.
fn stat_fields(pid: u32) -> Option<(char, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// SIGTERM to the group, wait up to `grace` for the agent, then SIGKILL to the group.
fn terminate_group(
    group: Pid,
    grace: Duration,
    rx: &mpsc::Receiver<std::io::Result<std::process::ExitStatus>>,
) -> std::io::Result<std::process::ExitStatus> {
    let _ = signal::kill(group, Signal::SIGTERM);
    if let Ok(status) = rx.recv_timeout(grace) {
        let _ = signal::kill(group, Signal::SIGKILL);
        return status;
    }
    let _ = signal::kill(group, Signal::SIGKILL);
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("lost the agent's wait thread")))
}

/// Start time of a process in clock ticks since boot, from `/proc/PID/stat` field 22.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is alive and is the same process that started at `start_ticks`. A zombie
/// (exited, not yet reaped by a parent that may be slow or gone) is not alive.
pub fn process_is_alive(pid: u32, start_ticks: Option<u64>) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
        .unwrap_or(false);
    if zombie {
        return false;
    }
    match (process_start_ticks(pid), start_ticks) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}
