//! The run loop: takes a checked plan, starts tasks under the concurrency limit in
//! ready-queue order (see `task_run.rs` for the life of one task), applies the circuit
//! breaker and resource limits, and publishes every step as an [`Event`]. Front-ends (CLI,
//! language server) only watch the events. A run can be resumed by a later process: the
//! request is saved as `run.json`, the state is the event log.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::agent::{AgentProfile, FailureClass};
use crate::config::Config;
use crate::events::{ConflictInfo, Event, EventRecord, RunStatus, TaskInit, TaskStatus};
use crate::git::Repo;
use crate::plan::Plan;
use crate::scheduler::{Scheduler, Slot};
use crate::state::{Layout, RunState, StateWriter};
use crate::task_run::{run_task, Resume};

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

/// `run.json`: the request without the repository handle, so that a later process can
/// resume the run with exactly the plan, profiles and settings it started with.
#[derive(Serialize, Deserialize)]
struct SavedRequest {
    config: Config,
    plan: Plan,
    profiles: Vec<AgentProfile>,
    run_id: String,
    base_commit: String,
    base_branch: Option<String>,
    max_parallel: usize,
}

impl RunRequest {
    fn saved_path(&self) -> PathBuf {
        self.layout.run_dir(&self.run_id).join("run.json")
    }

    /// Writes `run.json`.
    pub fn save(&self) -> Result<()> {
        let saved = SavedRequest {
            config: self.config.clone(),
            plan: self.plan.clone(),
            profiles: self.profiles.clone(),
            run_id: self.run_id.clone(),
            base_commit: self.base_commit.clone(),
            base_branch: self.base_branch.clone(),
            max_parallel: self.max_parallel,
        };
        std::fs::create_dir_all(self.layout.run_dir(&self.run_id))?;
        crate::fsutil::write_json_atomic(&self.saved_path(), &saved)
    }

    /// Reads the request a run was started with.
    pub fn load(repo: Arc<Repo>, layout: Layout, run_id: &str) -> Result<RunRequest> {
        let path = layout.run_dir(run_id).join("run.json");
        let s: SavedRequest = crate::fsutil::read_json(&path)?
            .with_context(|| format!("{} is missing; this run cannot be resumed", path.display()))?;
        Ok(RunRequest {
            repo,
            layout,
            config: s.config,
            plan: s.plan,
            profiles: s.profiles,
            run_id: s.run_id,
            base_commit: s.base_commit,
            base_branch: s.base_branch,
            max_parallel: s.max_parallel,
        })
    }
}

/// What a task future reports to the run loop.
pub(crate) enum TaskMsg {
    Event(Event),
    /// An attempt ended (`class` is None on success): feeds the circuit breaker.
    AttemptEnded {
        class: Option<FailureClass>,
        cause: String,
    },
    Done {
        index: usize,
        status: TaskStatus,
    },
}

/// Shared, read-only context of the task futures.
pub(crate) struct Ctx {
    pub req: RunRequest,
    pub exe: PathBuf,
    pub cancel: watch::Receiver<bool>,
    /// `git worktree add` reads every other worktree's metadata while it writes its own;
    /// two at once fail with "failed to read .git/worktrees/X/commondir". Serialized.
    pub worktree_lock: Arc<std::sync::Mutex<()>>,
}

impl Ctx {
    pub fn branch(&self, i: usize) -> String {
        branch_name(&self.req.config, &self.req.plan.tasks[i].spec.id)
    }
    pub fn worktree(&self, i: usize) -> PathBuf {
        worktree_path(&self.req.config, &self.req.plan.tasks[i].spec.id)
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

/// A final `TaskFinished` event carrying only an error.
pub(crate) fn finished_event(task: &str, status: TaskStatus, error: String) -> Event {
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

fn run_started(req: &RunRequest) -> Event {
    let ids: Vec<&str> = req.plan.tasks.iter().map(|t| t.spec.id.as_str()).collect();
    Event::RunStarted {
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
    }
}

/// Runs a new plan to the end (or until `cancel` turns true) and returns the final state.
pub async fn execute(
    req: RunRequest,
    sinks: Vec<Box<dyn EventSink>>,
    cancel: watch::Receiver<bool>,
) -> Result<RunState> {
    req.save()?;
    let rec = EventRecord {
        ts: Utc::now(),
        event: run_started(&req),
    };
    let state = RunState::from_start(&rec).context("run start")?;
    let writer = StateWriter::create(req.layout.clone(), &rec, &state)?;
    let mut out = Emitter {
        state,
        writer,
        sinks,
        unsaved: false,
    };
    // Already in the log and the snapshot: only the views still need it.
    for s in &mut out.sinks {
        s.on_event(&rec, &out.state);
    }
    run_loop(req, out, cancel).await
}

/// Continues a run whose orchestrator is gone: running agents are re-attached (never
/// restarted), finished attempts are collected, queued tasks start.
pub async fn resume(
    req: RunRequest,
    state: RunState,
    sinks: Vec<Box<dyn EventSink>>,
    cancel: watch::Receiver<bool>,
) -> Result<RunState> {
    let writer = StateWriter::open(req.layout.clone(), &req.run_id)?;
    let mut out = Emitter {
        state,
        writer,
        sinks,
        unsaved: false,
    };
    out.emit(Event::RunResumed {
        orchestrator_pid: std::process::id(),
    })?;
    run_loop(req, out, cancel).await
}

/// How many agents may start now, and why fewer than asked.
struct Limiter {
    max: usize,
    systemic_streak: Vec<String>,
    breaker: u32,
    min_memory_mb: u64,
    max_load: f64,
    system: sysinfo::System,
    sampled: Option<(Instant, Option<String>)>,
    current: Option<(usize, Option<String>)>,
}

impl Limiter {
    /// Resource pressure, sampled at most once a second.
    fn pressure(&mut self) -> Option<String> {
        if let Some((at, reason)) = &self.sampled {
            if at.elapsed() < Duration::from_secs(1) {
                return reason.clone();
            }
        }
        self.system.refresh_memory();
        let available = self.system.available_memory() / (1024 * 1024);
        let load = sysinfo::System::load_average().one;
        let reason = if available < self.min_memory_mb {
            Some(format!(
                "available memory {available} MiB is under min_available_memory_mb = {}",
                self.min_memory_mb
            ))
        } else if load > self.max_load {
            Some(format!(
                "load average {load:.1} is over max_load = {:.1}",
                self.max_load
            ))
        } else {
            None
        };
        self.sampled = Some((Instant::now(), reason.clone()));
        reason
    }

    /// The limit now, with the reason when it is below the maximum.
    fn limit(&mut self) -> (usize, Option<String>) {
        if let Some(cause) = self.systemic_streak.last() {
            return (
                1,
                Some(format!(
                    "an attempt failed ({cause}); starting one task at a time until one succeeds"
                )),
            );
        }
        match self.pressure() {
            Some(reason) => (1, Some(format!("{reason}; starting one task at a time"))),
            None => (self.max, None),
        }
    }

    /// Records an attempt's end; returns the cause when the circuit breaker trips.
    fn attempt_ended(&mut self, class: Option<FailureClass>, cause: String) -> Option<String> {
        match class {
            None => self.systemic_streak.clear(),
            Some(FailureClass::Systemic) => {
                if self.systemic_streak.last().is_some_and(|c| *c != cause) {
                    self.systemic_streak.clear();
                }
                self.systemic_streak.push(cause.clone());
                if self.systemic_streak.len() >= self.breaker as usize {
                    return Some(cause);
                }
            }
            Some(_) => {}
        }
        None
    }
}

async fn run_loop(req: RunRequest, mut out: Emitter, cancel: watch::Receiver<bool>) -> Result<RunState> {
    let exe = std::env::current_exe().context("locating the gadugi executable")?;
    let mut scheduler = Scheduler::new(&req.plan);
    let mut adopt = vec![];
    for (i, t) in out.state.tasks.iter().enumerate() {
        let slot = match t.status {
            TaskStatus::Queued => continue,
            TaskStatus::Running => {
                adopt.push(i);
                Slot::Running
            }
            TaskStatus::Succeeded => Slot::Succeeded,
            TaskStatus::Failed => Slot::Failed,
            TaskStatus::Skipped => Slot::Skipped,
            TaskStatus::Cancelled => Slot::Cancelled,
        };
        scheduler.restore(i, slot);
    }
    let mut limiter = Limiter {
        max: req.max_parallel.max(1),
        systemic_streak: vec![],
        breaker: req.config.circuit_breaker.max(1),
        min_memory_mb: req.config.min_available_memory_mb,
        max_load: req.config.max_load,
        system: sysinfo::System::new(),
        sampled: None,
        current: None,
    };
    let ctx = Arc::new(Ctx {
        req,
        exe,
        cancel: cancel.clone(),
        worktree_lock: Arc::default(),
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<TaskMsg>();
    let mut tasks = JoinSet::new();
    for i in adopt {
        let start_commit = out.state.tasks[i].start_commit.clone();
        let (ctx, tx) = (ctx.clone(), tx.clone());
        tasks.spawn(async move {
            let status = run_task(&ctx, i, vec![], String::new(), Some(Resume { start_commit }), &tx).await;
            let _ = tx.send(TaskMsg::Done { index: i, status });
            if status == TaskStatus::Succeeded {
                release_worktree(&ctx, i, &tx).await;
            }
        });
    }
    let mut cancel_rx = cancel;
    let mut cancelled = *cancel_rx.borrow();
    let mut watching_cancel = true;
    let mut breaker_open = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        cancelled = cancelled || run_cancel_marker(&ctx.req.layout, &ctx.req.run_id).exists();
        if cancelled {
            for i in scheduler.cancel_waiting() {
                out.emit(finished_event(
                    &ctx.req.plan.tasks[i].spec.id,
                    TaskStatus::Cancelled,
                    "the run was cancelled before this task started".into(),
                ))?;
            }
        } else if !breaker_open {
            let (limit, reason) = limiter.limit();
            if limiter.current.as_ref() != Some(&(limit, reason.clone())) {
                limiter.current = Some((limit, reason.clone()));
                out.emit(Event::ParallelismLimited { limit, reason })?;
            }
            for i in scheduler.take_ready(limit.saturating_sub(scheduler.running())) {
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
                    let status = run_task(&ctx, i, merge_from, context, None, &tx).await;
                    let _ = tx.send(TaskMsg::Done { index: i, status });
                    if status == TaskStatus::Succeeded {
                        release_worktree(&ctx, i, &tx).await;
                    }
                });
            }
        }
        if scheduler.is_done() && tasks.is_empty() {
            break;
        }
        tokio::select! {
            Some(msg) = rx.recv() => match msg {
                TaskMsg::Event(e) => out.emit(e)?,
                TaskMsg::AttemptEnded { class, cause } => {
                    if let Some(cause) = limiter.attempt_ended(class, cause) {
                        if !breaker_open {
                            breaker_open = true;
                            let attempts = limiter.systemic_streak.len() as u32;
                            out.emit(Event::CircuitOpened { cause: cause.clone(), attempts })?;
                            for skip in scheduler.skip_waiting() {
                                out.emit(Event::TaskSkipped {
                                    task: ctx.req.plan.tasks[skip].spec.id.clone(),
                                    reason: format!("circuit breaker: {attempts} attempts in a row failed with: {cause}"),
                                })?;
                            }
                        }
                    }
                }
                TaskMsg::Done { index, status } => {
                    if status == TaskStatus::Succeeded {
                        let (job, tx) = (crate::integrate::PredictJob::after_success(&out.state, &ctx.req.plan.tasks[index].spec.id), tx.clone());
                        tasks.spawn(async move { let _ = tx.send(TaskMsg::Event(job.run().await)); });
                    }
                    let slot = match status {
                        TaskStatus::Succeeded => Slot::Succeeded,
                        TaskStatus::Cancelled => Slot::Cancelled,
                        _ => Slot::Failed,
                    };
                    for skip in scheduler.finish(index, slot) {
                        out.emit(Event::TaskSkipped {
                            task: ctx.req.plan.tasks[skip.task].spec.id.clone(),
                            reason: skip.reason,
                        })?;
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
            _ = tick.tick() => out.save_if_needed()?,
        }
    }
    // Events sent by futures just before they ended (worktree removals, conflict
    // predictions) may still be queued when the loop sees the last future end.
    while let Ok(msg) = rx.try_recv() {
        if let TaskMsg::Event(e) = msg {
            out.emit(e)?;
        }
    }
    if !ctx.req.config.keep_worktrees {
        remove_succeeded_worktrees(&ctx, &mut out).await?;
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

/// Queues a finished task of an ended run again — with every task skipped because of it —
/// by appending `TaskRetried` to the run's event log; the caller then resumes the run, and
/// the task continues on its branch with a new attempt. The caller holds the repository lock.
pub fn queue_retry(layout: &Layout, state: &mut RunState, task: &str) -> Result<()> {
    if state.status == RunStatus::Running {
        return Err(crate::error::InputError::new(
            format!("run {} is still going", state.run_id),
            "retry a task once the run has ended (gadugi cancel ends it)",
        )
        .into());
    }
    let Some(t) = state.task(task) else {
        let ids: Vec<&str> = state.tasks.iter().map(|t| t.id.as_str()).collect();
        return Err(crate::error::InputError::new(
            format!("run {} has no task `{task}`", state.run_id),
            format!("use one of: {}", ids.join(", ")),
        )
        .into());
    };
    if t.status == TaskStatus::Succeeded {
        return Err(crate::error::InputError::new(
            format!("task `{task}` succeeded; there is nothing to retry"),
            "retry a failed, cancelled or skipped task",
        )
        .into());
    }
    // Old cancel requests would stop the retry at once.
    let _ = std::fs::remove_file(crate::task_run::cancel_marker(layout, &state.run_id, task));
    let _ = std::fs::remove_file(run_cancel_marker(layout, &state.run_id));
    let rec = EventRecord {
        ts: Utc::now(),
        event: Event::TaskRetried { task: task.to_string() },
    };
    state.apply(&rec);
    StateWriter::open(layout.clone(), &state.run_id)?.record(&rec, state)?;
    Ok(())
}

/// Marker file `gadugi cancel` writes to cancel a whole run, whichever process drives it.
pub fn run_cancel_marker(layout: &Layout, run_id: &str) -> PathBuf {
    layout.run_dir(run_id).join("cancel")
}

/// Removes a succeeded task's worktree as soon as the task is done (its branch stays),
/// unless `keep_worktrees` or it holds uncommitted changes. The folder is deleted directly
/// and git's metadata pruned once at the end of the run: `git worktree remove` per task
/// would serialize on git and add tens of milliseconds per task to the end of every run.
async fn release_worktree(ctx: &Arc<Ctx>, i: usize, tx: &mpsc::UnboundedSender<TaskMsg>) {
    if ctx.req.config.keep_worktrees {
        return;
    }
    let (repo, wt) = (ctx.req.repo.clone(), ctx.worktree(i));
    let removed = tokio::task::spawn_blocking(move || delete_clean_worktree(&repo, &wt)).await;
    match removed {
        Ok(Ok(true)) => {
            let _ = tx.send(TaskMsg::Event(Event::WorktreeRemoved {
                task: ctx.req.plan.tasks[i].spec.id.clone(),
            }));
        }
        Ok(Ok(false)) => {}
        Ok(Err(e)) => tracing::warn!("keeping the worktree {}: {e:#}", ctx.worktree(i).display()),
        Err(e) => tracing::warn!("keeping the worktree {}: {e}", ctx.worktree(i).display()),
    }
}

/// Deletes a worktree folder that has no uncommitted changes; false when it has some.
fn delete_clean_worktree(repo: &Repo, wt: &std::path::Path) -> Result<bool> {
    if !wt.is_dir() || repo.is_dirty(wt)? {
        return Ok(false);
    }
    std::fs::remove_dir_all(wt).with_context(|| format!("removing {}", wt.display()))?;
    Ok(true)
}

/// End of a run: removes what `release_worktree` did not get to (tasks that succeeded before
/// a restart) and prunes git's metadata of every deleted worktree.
async fn remove_succeeded_worktrees(ctx: &Arc<Ctx>, out: &mut Emitter) -> Result<()> {
    for (i, t) in ctx.req.plan.tasks.iter().enumerate() {
        let succeeded = out.state.task(&t.spec.id).map(|s| s.status) == Some(TaskStatus::Succeeded);
        if !succeeded || !ctx.worktree(i).is_dir() {
            continue;
        }
        let (repo, wt) = (ctx.req.repo.clone(), ctx.worktree(i));
        match tokio::task::spawn_blocking(move || delete_clean_worktree(&repo, &wt)).await? {
            Ok(true) => out.emit(Event::WorktreeRemoved {
                task: t.spec.id.clone(),
            })?,
            Ok(false) => {}
            Err(e) => tracing::warn!("keeping the worktree of {}: {e:#}", t.spec.id),
        }
    }
    let repo = ctx.req.repo.clone();
    tokio::task::spawn_blocking(move || repo.prune_worktrees()).await??;
    Ok(())
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
