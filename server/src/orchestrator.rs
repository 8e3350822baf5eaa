//! The run loop: takes a checked plan, prepares one worktree per task, starts agents through
//! supervisors under the concurrency limit in ready-queue order, and emits every step as an
//! [`Event`]. Front-ends (CLI, language server) only watch the events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::agent::{AgentProfile, Placeholders};
use crate::config::Config;
use crate::events::{ConflictInfo, Event, EventRecord, RunStatus, TaskInit, TaskPhase, TaskStatus};
use crate::fsutil::write_json_atomic;
use crate::git::{MergeError, Repo};
use crate::plan::Plan;
use crate::scheduler::{Scheduler, Slot};
use crate::state::{Layout, RunState, StateWriter};
use crate::supervisor::{AgentExit, AgentStarted, LaunchSpec};

/// A view of the event stream (terminal progress, the language server, ...).
pub trait EventSink: Send {
    /// Called after `rec` has been applied to `state` and persisted.
    fn on_event(&mut self, rec: &EventRecord, state: &RunState);
}

/// Everything a run needs, checked before anything was created.
pub struct RunRequest {
    pub repo: Arc<Repo>,
    pub layout: Layout,
    pub config: Config,
    pub plan: Plan,
    /// Agent profile of each task, in plan order.
    pub profiles: Vec<AgentProfile>,
    pub run_id: String,
    pub base_commit: String,
    pub base_branch: Option<String>,
    /// Maximum agents at once (the flag, else the configuration).
    pub max_parallel: usize,
}

/// What a task future reports to the run loop.
enum TaskMsg {
    Event(Event),
    Done { index: usize, outcome: Slot },
}

/// Shared, read-only context of the task futures.
struct Ctx {
    req: RunRequest,
    exe: PathBuf,
    cancel: watch::Receiver<bool>,
    /// `git worktree add` reads every other worktree's metadata while it writes its own;
    /// two at once fail with "failed to read .git/worktrees/X/commondir". Serialized.
    worktree_lock: Arc<std::sync::Mutex<()>>,
}

impl Ctx {
    fn branch(&self, i: usize) -> String {
        format!("{}{}", self.req.config.branch_prefix, self.req.plan.tasks[i].spec.id)
    }
    fn worktree(&self, i: usize) -> PathBuf {
        self.req.config.worktree_dir.join(&self.req.plan.tasks[i].spec.id)
    }
}

/// Branch name of a task.
pub fn branch_name(config: &Config, task_id: &str) -> String {
    format!("{}{task_id}", config.branch_prefix)
}

/// Worktree path of a task.
pub fn worktree_path(config: &Config, task_id: &str) -> PathBuf {
    config.worktree_dir.join(task_id)
}

/// Runs the plan to the end (or until `cancel` turns true) and returns the final state.
pub async fn execute(
    req: RunRequest,
    sinks: Vec<Box<dyn EventSink>>,
    cancel: watch::Receiver<bool>,
) -> Result<RunState> {
    let exe = std::env::current_exe().context("locating the gadugi executable")?;
    let ids: Vec<&str> = req.plan.tasks.iter().map(|t| t.spec.id.as_str()).collect();
    let start = Event::RunStarted {
        run_id: req.run_id.clone(),
        repo_root: req.repo.root().to_path_buf(),
        base_commit: req.base_commit.clone(),
        base_branch: req.base_branch.clone(),
        max_parallel: req.max_parallel,
        orchestrator_pid: std::process::id(),
        tasks: req
            .plan
            .tasks
            .iter()
            .zip(&req.profiles)
            .map(|(t, p)| TaskInit {
                id: t.spec.id.clone(),
                title: t.spec.title.clone(),
                prompt_file: t.spec.prompt_file.clone(),
                branch: branch_name(&req.config, &t.spec.id),
                worktree: worktree_path(&req.config, &t.spec.id),
                depends_on: t.deps.iter().map(|&d| ids[d].to_string()).collect(),
                after: t.after.iter().map(|&d| ids[d].to_string()).collect(),
                agent: p.name.clone(),
            })
            .collect(),
        critical_path: req.plan.critical_path.iter().map(|&i| ids[i].to_string()).collect(),
        conflicts: req
            .plan
            .conflicts
            .iter()
            .map(|c| ConflictInfo::from_plan(c, &ids))
            .collect(),
    };
    let rec = EventRecord {
        ts: Utc::now(),
        event: start,
    };
    let state = RunState::from_start(&rec).context("run start")?;
    std::fs::create_dir_all(req.layout.run_dir(&req.run_id))?;
    let writer = StateWriter::open(req.layout.clone(), &req.run_id)?;
    let mut out = Emitter {
        state,
        writer,
        sinks,
        unsaved: false,
    };
    out.publish(rec)?;

    let mut scheduler = Scheduler::new(&req.plan);
    let max_parallel = req.max_parallel.max(1);
    let ctx = Arc::new(Ctx {
        req,
        exe,
        cancel: cancel.clone(),
        worktree_lock: Arc::default(),
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<TaskMsg>();
    let mut tasks = JoinSet::new();
    let mut cancel_rx = cancel;
    let mut cancelled = *cancel_rx.borrow();
    let mut watching_cancel = true;
    let mut snapshot_tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        if cancelled {
            for i in scheduler.cancel_waiting() {
                out.emit(finished_event(
                    &ctx.req.plan.tasks[i].spec.id,
                    TaskStatus::Cancelled,
                    "cancelled before it started".into(),
                ))?;
            }
        } else {
            let free = max_parallel - scheduler.running();
            for i in scheduler.take_ready(free) {
                let merge_from: Vec<String> = ctx.req.plan.tasks[i]
                    .deps
                    .iter()
                    .chain(&ctx.req.plan.tasks[i].after)
                    .filter(|&&d| scheduler.slots()[d] == Slot::Succeeded)
                    .map(|&d| ctx.branch(d))
                    .collect();
                let context = dependency_context(&ctx, &out.state, i);
                let (ctx, tx) = (ctx.clone(), tx.clone());
                tasks.spawn(async move {
                    let outcome = run_task(&ctx, i, merge_from, context, &tx).await;
                    let _ = tx.send(TaskMsg::Done { index: i, outcome });
                });
            }
        }
        if scheduler.is_done() && tasks.is_empty() {
            break;
        }
        tokio::select! {
            Some(msg) = rx.recv() => match msg {
                TaskMsg::Event(e) => out.emit(e)?,
                TaskMsg::Done { index, outcome } => {
                    if outcome == Slot::Succeeded {
                        let (job, tx) = (crate::integrate::PredictJob::after_success(&out.state, &ctx.req.plan.tasks[index].spec.id), tx.clone());
                        tasks.spawn(async move { let _ = tx.send(TaskMsg::Event(job.run().await)); });
                    }
                    for skip in scheduler.finish(index, outcome) {
                        out.emit(Event::TaskSkipped { task: ctx.req.plan.tasks[skip.task].spec.id.clone(), reason: skip.reason })?;
                    }
                }
            },
            Some(joined) = tasks.join_next() => {
                if let Err(e) = joined {
                    anyhow::bail!("a task future panicked: {e}");
                }
            }
            changed = cancel_rx.changed(), if watching_cancel && !cancelled => match changed {
                Ok(()) => cancelled = *cancel_rx.borrow(),
                // The sender is gone: nobody can cancel any more.
                Err(_) => watching_cancel = false,
            },
            _ = snapshot_tick.tick() => out.save_if_needed()?,
        }
    }
    // A conflict prediction sends its event just before its future ends; if the loop saw the
    // end first, the event still waits in the channel.
    while let Ok(TaskMsg::Event(e)) = rx.try_recv() {
        out.emit(e)?;
    }
    let status = if cancelled {
        RunStatus::Cancelled
    } else if out.state.tasks.iter().all(|t| t.status == TaskStatus::Succeeded) {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    out.emit(Event::RunFinished { status })?;
    Ok(out.state)
}

/// Applies events to the run state, persists them and hands them to the views, in that
/// order. The only place events are published.
struct Emitter {
    state: RunState,
    writer: StateWriter,
    sinks: Vec<Box<dyn EventSink>>,
    /// Frequent events (activity, heartbeats) are logged at once but snapshotted lazily.
    unsaved: bool,
}

impl Emitter {
    fn emit(&mut self, event: Event) -> Result<()> {
        let rec = EventRecord { ts: Utc::now(), event };
        self.state.apply(&rec);
        self.publish(rec)
    }

    fn publish(&mut self, rec: EventRecord) -> Result<()> {
        let snapshot = self.writer.record(&rec, &self.state)?;
        self.unsaved = !snapshot;
        for s in &mut self.sinks {
            s.on_event(&rec, &self.state);
        }
        Ok(())
    }

    fn save_if_needed(&mut self) -> Result<()> {
        if self.unsaved {
            self.writer.snapshot(&self.state)?;
            self.unsaved = false;
        }
        Ok(())
    }
}

fn finished_event(task: &str, status: TaskStatus, error: String) -> Event {
    Event::TaskFinished {
        task: task.to_string(),
        status,
        exit_code: None,
        signal: None,
        commits: 0,
        files_changed: vec![],
        error: Some(error),
    }
}

/// What the task's dependencies produced, for its generated prompt.
fn dependency_context(ctx: &Ctx, state: &RunState, i: usize) -> String {
    let t = &ctx.req.plan.tasks[i];
    let mut out = String::new();
    for &d in t.deps.iter().chain(&t.after) {
        let Some(dep) = state.task(&ctx.req.plan.tasks[d].spec.id) else {
            continue;
        };
        if dep.status != TaskStatus::Succeeded {
            continue;
        }
        let files = if dep.files_changed.is_empty() {
            "no files".to_string()
        } else {
            dep.files_changed.join(", ")
        };
        out.push_str(&format!(
            "- `{}` ({}), branch `{}`: {} commit(s), changed {}\n",
            dep.id, dep.title, dep.branch, dep.commits, files
        ));
    }
    out
}

fn send(tx: &mpsc::UnboundedSender<TaskMsg>, e: Event) {
    let _ = tx.send(TaskMsg::Event(e));
}

/// One task from worktree to final status.
async fn run_task(
    ctx: &Arc<Ctx>,
    i: usize,
    merge_from: Vec<String>,
    dep_context: String,
    tx: &mpsc::UnboundedSender<TaskMsg>,
) -> Slot {
    let id = ctx.req.plan.tasks[i].spec.id.clone();
    let fail = |status: TaskStatus, error: String| {
        send(tx, finished_event(&id, status, error));
        if status == TaskStatus::Cancelled {
            Slot::Cancelled
        } else {
            Slot::Failed
        }
    };
    send(
        tx,
        Event::TaskPhase {
            task: id.clone(),
            phase: TaskPhase::Preparing,
        },
    );
    let start_commit = match prepare_worktree(ctx, i, &merge_from).await {
        Ok(c) => c,
        Err(e) => return fail(TaskStatus::Failed, e),
    };
    send(
        tx,
        Event::TaskPrepared {
            task: id.clone(),
            start_commit: start_commit.clone(),
        },
    );
    let prompt_file = ctx.req.layout.task_dir(&ctx.req.run_id, &id).join("prompt.md");
    let prompt = generated_prompt(ctx, i, &start_commit, &dep_context);
    if let Err(e) = std::fs::create_dir_all(ctx.req.layout.task_dir(&ctx.req.run_id, &id))
        .and_then(|_| std::fs::write(&prompt_file, &prompt))
    {
        return fail(TaskStatus::Failed, format!("cannot write the generated prompt: {e}"));
    }

    let spec = &ctx.req.plan.tasks[i].spec;
    let retries = spec.retries.unwrap_or(ctx.req.config.retries);
    let verify = spec.verify.clone().or_else(|| ctx.req.config.verify.clone());
    let mut last = AttemptResult {
        error: None,
        exit_code: None,
        signal: None,
        cancelled: false,
    };
    for attempt in 1..=retries + 1 {
        last = run_attempt(ctx, i, attempt, &prompt_file, &prompt, tx).await;
        commit_leftovers(ctx, i, tx).await;
        if last.error.is_none() && !last.cancelled {
            if let Some(cmd) = &verify {
                send(
                    tx,
                    Event::TaskPhase {
                        task: id.clone(),
                        phase: TaskPhase::Verifying,
                    },
                );
                last.error = run_verify(ctx, i, attempt, cmd).await.err();
                commit_leftovers(ctx, i, tx).await;
            }
        }
        if last.error.is_none() || last.cancelled || attempt > retries {
            break;
        }
        let delay = retry_delay(attempt);
        send(
            tx,
            Event::AttemptFailed {
                task: id.clone(),
                attempt,
                error: last.error.clone().unwrap_or_default(),
                retry_in_ms: millis(delay),
            },
        );
        let mut cancel = ctx.cancel.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            Ok(_) = cancel.wait_for(|c| *c) => { last.cancelled = true; break; }
        }
    }

    let (repo, branch, start) = (ctx.req.repo.clone(), ctx.branch(i), start_commit.clone());
    let (commits, files) = tokio::task::spawn_blocking(move || {
        (
            repo.commits_ahead(&branch, &start).unwrap_or(0),
            repo.files_changed(&branch, &start).unwrap_or_default(),
        )
    })
    .await
    .unwrap_or_default();
    let status = if last.cancelled {
        TaskStatus::Cancelled
    } else if last.error.is_some() {
        TaskStatus::Failed
    } else {
        TaskStatus::Succeeded
    };
    let error = if last.cancelled {
        Some(last.error.unwrap_or_else(|| "cancelled".into()))
    } else {
        last.error
    };
    send(
        tx,
        Event::TaskFinished {
            task: id,
            status,
            exit_code: last.exit_code,
            signal: last.signal,
            commits,
            files_changed: files,
            error,
        },
    );
    match status {
        TaskStatus::Succeeded => Slot::Succeeded,
        TaskStatus::Cancelled => Slot::Cancelled,
        _ => Slot::Failed,
    }
}

/// Exponential backoff with jitter: about 1 s, 2 s, 4 s ... capped at 60 s.
fn retry_delay(attempt: u32) -> Duration {
    let base = 1000u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(60_000);
    let jitter = (Utc::now().timestamp_subsec_nanos() as u64 % 250) * base / 1000;
    Duration::from_millis(base + jitter)
}

/// Creates the task's worktree and branch: from the base commit, or from its dependencies'
/// branches (merged when there are several). Returns the commit the task starts from.
async fn prepare_worktree(ctx: &Arc<Ctx>, i: usize, merge_from: &[String]) -> std::result::Result<String, String> {
    let (repo, wt, branch, base) = (
        ctx.req.repo.clone(),
        ctx.worktree(i),
        ctx.branch(i),
        ctx.req.base_commit.clone(),
    );
    let merge_from = merge_from.to_vec();
    let lock = ctx.worktree_lock.clone();
    tokio::task::spawn_blocking(move || -> std::result::Result<String, String> {
        let start = match merge_from.first() {
            None => base,
            Some(b) => repo
                .branch_head(b)
                .map_err(|e| format!("{e:#}"))?
                .ok_or_else(|| format!("branch {b} of a dependency no longer exists"))?,
        };
        if let Some(parent) = wt.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        {
            let _serialized = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            repo.create_worktree(&wt, &branch, &start)
                .map_err(|e| format!("cannot create the worktree: {e:#}"))?;
        }
        if merge_from.len() > 1 {
            repo.merge_branches(&wt, &merge_from[1..]).map_err(|e| match e {
                MergeError::Conflict { branch, files } => format!(
                    "merging the branches of its dependencies conflicts: {branch} conflicts in {}",
                    files.join(", ")
                ),
                MergeError::Other(e) => format!("merging the branches of its dependencies failed: {e:#}"),
            })?;
        }
        repo.branch_head(&branch)
            .map_err(|e| format!("{e:#}"))?
            .ok_or_else(|| format!("branch {branch} vanished"))
    })
    .await
    .unwrap_or_else(|e| Err(format!("internal error: {e}")))
}

fn generated_prompt(ctx: &Ctx, i: usize, start_commit: &str, dep_context: &str) -> String {
    let spec = &ctx.req.plan.tasks[i].spec;
    let mut p = String::new();
    p.push_str(spec.body.trim_end());
    p.push_str("\n\n---\n\n## How to work on this task (from Gadugi)\n\n");
    p.push_str(&format!(
        "- Your working directory is the git worktree `{}` on branch `{}`, which starts at commit {}.\n",
        ctx.worktree(i).display(),
        ctx.branch(i),
        short(start_commit)
    ));
    p.push_str(
        "- Work only inside this worktree. Do not switch branches, do not push, do not touch other worktrees.\n",
    );
    if dep_context.is_empty() {
        p.push_str("- No other task's work is part of this one.\n");
    } else {
        p.push_str("- This task builds on the work of these tasks, already merged into your worktree:\n");
        for line in dep_context.lines() {
            p.push_str(&format!("  {line}\n"));
        }
    }
    if let Some(v) = spec.verify.as_ref().or(ctx.req.config.verify.as_ref()) {
        p.push_str(&format!(
            "- When you are done, `{v}` is run in the worktree; it must pass.\n"
        ));
    }
    p.push_str("- Commit your changes on this branch with a message that says what you did. Anything left uncommitted is committed for you when you exit.\n");
    p
}

/// Milliseconds of a duration, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

struct AttemptResult {
    error: Option<String>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    cancelled: bool,
}

/// Starts one attempt through a supervisor and follows it until it ends.
async fn run_attempt(
    ctx: &Arc<Ctx>,
    i: usize,
    attempt: u32,
    prompt_file: &Path,
    prompt: &str,
    tx: &mpsc::UnboundedSender<TaskMsg>,
) -> AttemptResult {
    let spec = &ctx.req.plan.tasks[i].spec;
    let profile = &ctx.req.profiles[i];
    let id = spec.id.clone();
    let failed = |e: String| AttemptResult {
        error: Some(e),
        exit_code: None,
        signal: None,
        cancelled: false,
    };
    let dir = ctx.req.layout.attempt_dir(&ctx.req.run_id, &id, attempt);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return failed(format!("cannot create {}: {e}", dir.display()));
    }
    let (worktree, branch) = (ctx.worktree(i), ctx.branch(i));
    let argv = profile.expand(&Placeholders {
        prompt_file,
        prompt,
        worktree: &worktree,
        branch: &branch,
        task_id: &id,
        run_id: &ctx.req.run_id,
    });
    let env = vec![
        ("GADUGI_RUN_ID".to_string(), ctx.req.run_id.clone()),
        ("GADUGI_TASK_ID".to_string(), id.clone()),
        ("GADUGI_WORKTREE".to_string(), worktree.to_string_lossy().into_owned()),
        ("GADUGI_BRANCH".to_string(), branch.clone()),
        (
            "GADUGI_PROMPT_FILE".to_string(),
            prompt_file.to_string_lossy().into_owned(),
        ),
        ("GADUGI_ATTEMPT".to_string(), attempt.to_string()),
    ];
    let launch = LaunchSpec {
        argv,
        cwd: worktree.clone(),
        env,
        stdout: dir.join("stdout.log"),
        stderr: dir.join("stderr.log"),
        status_file: dir.join("status.json"),
        exit_file: dir.join("exit.json"),
        timeout_ms: millis(spec.timeout.unwrap_or(ctx.req.config.timeout)),
        grace_ms: millis(ctx.req.config.kill_grace),
    };
    let launch_file = dir.join("launch.json");
    if let Err(e) = write_json_atomic(&launch_file, &launch) {
        return failed(format!("{e:#}"));
    }
    let supervisor_log = match crate::fsutil::open_append(&dir.join("supervisor.log")) {
        Ok(f) => f,
        Err(e) => return failed(format!("{e:#}")),
    };
    let mut child = match tokio::process::Command::new(&ctx.exe)
        .arg("__supervise")
        .arg(&launch_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(supervisor_log)
        .kill_on_drop(false)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start the supervisor: {e}")),
    };
    let supervisor_pid = child.id().unwrap_or_default();
    let mut cancel = ctx.cancel.clone();
    let mut announced: Option<AgentStarted> = None;
    let mut follower = crate::progress::OutputFollower::new(launch.stdout.clone(), profile.protocol);
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    let mut last_heartbeat = std::time::Instant::now();
    let mut sent_stop = false;
    loop {
        tokio::select! {
            _ = child.wait() => break,
            _ = tick.tick() => {
                if announced.is_none() {
                    if let Ok(Some(started)) = crate::fsutil::read_json::<AgentStarted>(&launch.status_file) {
                        send(tx, Event::AgentStarted { task: id.clone(), attempt, pid: started.agent_pid, supervisor_pid });
                        announced = Some(started);
                        tick = tokio::time::interval(Duration::from_millis(500));
                    }
                } else if let Some(line) = follower.poll() {
                    send(tx, Event::TaskActivity { task: id.clone(), line });
                    last_heartbeat = std::time::Instant::now();
                } else if last_heartbeat.elapsed() >= Duration::from_secs(5) {
                    if let Some(s) = &announced {
                        if crate::supervisor::process_is_alive(s.agent_pid, s.agent_start_ticks) {
                            send(tx, Event::Heartbeat { task: id.clone() });
                        }
                    }
                    last_heartbeat = std::time::Instant::now();
                }
            }
            Ok(_) = cancel.wait_for(|c| *c), if !sent_stop => {
                sent_stop = true;
                if supervisor_pid != 0 {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(supervisor_pid as i32), nix::sys::signal::Signal::SIGTERM);
                }
            }
        }
    }
    if announced.is_none() {
        // The agent ended before the first look at status.json.
        if let Ok(Some(started)) = crate::fsutil::read_json::<AgentStarted>(&launch.status_file) {
            send(
                tx,
                Event::AgentStarted {
                    task: id.clone(),
                    attempt,
                    pid: started.agent_pid,
                    supervisor_pid,
                },
            );
        }
    }
    if let Some(line) = follower.poll() {
        send(tx, Event::TaskActivity { task: id.clone(), line });
    }
    let exit: AgentExit = match crate::fsutil::read_json(&launch.exit_file) {
        Ok(Some(e)) => e,
        Ok(None) => {
            return failed(format!(
                "the supervisor ended without recording the agent's exit (see {})",
                dir.join("supervisor.log").display()
            ))
        }
        Err(e) => return failed(format!("{e:#}")),
    };
    let error = exit.failure().or_else(|| profile.reported_error(&launch.stdout));
    AttemptResult {
        error,
        exit_code: exit.exit_code,
        signal: exit.signal,
        cancelled: exit.cancelled,
    }
}

/// Commits whatever the agent left uncommitted, on its own branch: work is never dropped.
async fn commit_leftovers(ctx: &Arc<Ctx>, i: usize, tx: &mpsc::UnboundedSender<TaskMsg>) {
    let id = ctx.req.plan.tasks[i].spec.id.clone();
    send(
        tx,
        Event::TaskPhase {
            task: id.clone(),
            phase: TaskPhase::Committing,
        },
    );
    let (repo, wt) = (ctx.req.repo.clone(), ctx.worktree(i));
    let message = format!("gadugi: changes left uncommitted by the agent of task {id}");
    match tokio::task::spawn_blocking(move || repo.commit_all(&wt, &message)).await {
        Ok(Ok(Some(commit))) => send(tx, Event::LeftoversCommitted { task: id, commit }),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => send(
            tx,
            Event::TaskActivity {
                task: id,
                line: format!("could not commit leftovers: {e:#}"),
            },
        ),
        Err(e) => send(
            tx,
            Event::TaskActivity {
                task: id,
                line: format!("could not commit leftovers: {e}"),
            },
        ),
    }
}

/// Runs the task's `verify` command in its worktree (through `sh -c`: it is the user's own
/// command line from a committed file). Output goes to `verify.log` in the attempt directory.
async fn run_verify(ctx: &Arc<Ctx>, i: usize, attempt: u32, cmd: &str) -> std::result::Result<(), String> {
    let spec = &ctx.req.plan.tasks[i].spec;
    let log_path = ctx
        .req
        .layout
        .attempt_dir(&ctx.req.run_id, &spec.id, attempt)
        .join("verify.log");
    let log = crate::fsutil::open_append(&log_path).map_err(|e| format!("{e:#}"))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .current_dir(ctx.worktree(i))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| format!("cannot run verify `{cmd}`: {e}"))?;
    let timeout = spec.timeout.unwrap_or(ctx.req.config.timeout);
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => s.map_err(|e| e.to_string())?,
        Err(_) => {
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(-(pid as i32)),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(format!(
                "verify `{cmd}` timed out after {}s (log: {})",
                timeout.as_secs(),
                log_path.display()
            ));
        }
    };
    if status.success() {
        return Ok(());
    }
    let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
    let tail: Vec<&str> = tail.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "verify `{cmd}` failed ({status}): {} (log: {})",
        tail.join(" | "),
        log_path.display()
    ))
}
