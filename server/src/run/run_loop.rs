//! The run loop: takes a checked plan, starts tasks under the concurrency limit in
//! ready-queue order (see `task.rs` for the life of one task), applies the circuit
//! breaker and resource limits, and publishes every step as an [`Event`]. Front-ends (CLI,
//! language server) only watch the events. A run can be resumed by a later process: the
//! request is saved as `run.json`, the state is the event log.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::core::events::{ConflictInfo, Event, EventRecord, RunStatus, TaskInit, TaskStatus};
use crate::core::scheduler::{Scheduler, Slot};
use crate::core::state::{RunState, StateWriter};
use crate::git::Repo;
use crate::layout::Layout;
use crate::run::context::{finished_event, Ctx, TaskHandle, TaskMsg};
use crate::run::emitter::{Emitter, EventSink};
use crate::run::limiter::{Limiter, ResourceProbe};
use crate::run::request::RunRequest;
use crate::run::task::{run_task, Resume};

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
                branch: req.config.branch_name(&t.spec.id),
                worktree: req.config.worktree_path(&t.spec.id),
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
    let mut out = Emitter::new(state, writer, sinks);
    // Already in the log and the snapshot: only the views still need it.
    out.show(&rec);
    run_loop(req, out, cancel).await
}

/// Queues `task` of an ended run again, with every task skipped because of it, through the
/// run's one writer of events (`TaskRetried`, applied, persisted); a later `resume` runs it
/// on its branch with a new attempt. The caller holds the repository lock and checked that
/// the task can be retried. There are no views yet: the driver that takes over shows the state.
pub fn queue_retry(layout: &Layout, state: RunState, task: &str) -> Result<RunState> {
    let writer = StateWriter::open(layout.clone(), &state.run_id)?;
    let mut out = Emitter::new(state, writer, vec![]);
    out.emit(Event::TaskRetried { task: task.to_string() })?;
    Ok(out.state)
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
    let mut out = Emitter::new(state, writer, sinks);
    out.emit(Event::RunResumed {
        orchestrator_pid: std::process::id(),
    })?;
    run_loop(req, out, cancel).await
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
    let mut limiter = Limiter::new(req.max_parallel, req.config.circuit_breaker);
    let mut probe = ResourceProbe::new(req.config.min_available_memory_mb, req.config.max_load);
    let remote = crate::run::executor::Remote::for_request(&req, &exe)?.map(Arc::new);
    let ctx = Arc::new(Ctx {
        req,
        exe,
        cancel: cancel.clone(),
        worktree_lock: Arc::default(),
        branches: Arc::default(),
        remote,
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<TaskMsg>();
    let mut tasks = JoinSet::new();
    for i in adopt {
        let start_commit = out.state.tasks[i].start_commit.clone();
        let handle = TaskHandle::new(&ctx, i, tx.clone());
        tasks.spawn(drive_task(
            ctx.clone(),
            handle,
            vec![],
            String::new(),
            Some(Resume { start_commit }),
        ));
    }
    let mut cancel_rx = cancel;
    let mut cancelled = *cancel_rx.borrow();
    let mut watching_cancel = true;
    let mut breaker_open = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        cancelled = cancelled || ctx.req.layout.run_cancel_marker(&ctx.req.run_id).exists();
        if cancelled {
            for i in scheduler.cancel_waiting() {
                out.emit(finished_event(
                    &ctx.req.plan.tasks[i].spec.id,
                    TaskStatus::Cancelled,
                    "the run was cancelled before this task started".into(),
                ))?;
            }
        } else if !breaker_open {
            // This machine's memory and load limit only the agents that run on it.
            let pressure = if ctx.remote.is_some() { None } else { probe.pressure() };
            let (limit, reason) = limiter.decide(pressure);
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
                    .map(|&d| ctx.req.config.branch_name(&ctx.req.plan.tasks[d].spec.id))
                    .collect();
                let context = dependency_context(&ctx, &out.state, i);
                let handle = TaskHandle::new(&ctx, i, tx.clone());
                tasks.spawn(drive_task(ctx.clone(), handle, merge_from, context, None));
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
                            let attempts = limiter.streak();
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
                        let (job, tx) = (crate::integrate::predict::PredictJob::after_success(&out.state, &ctx.req.plan.tasks[index].spec.id), tx.clone());
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
                // Task futures catch their own panics (`drive_task`); one that still got
                // here was a prediction job, which has nothing to finish.
                if let Err(e) = joined {
                    tracing::error!("a background job of the run failed: {e}");
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

/// The whole life of one task on the run loop's `JoinSet`: runs it, catching a panic (which
/// fails this task, with the panic's message, and not the run), reports it done, and then
/// releases a succeeded task's worktree.
async fn drive_task(
    ctx: Arc<Ctx>,
    mut handle: TaskHandle,
    merge_from: Vec<String>,
    dep_context: String,
    resume: Option<Resume>,
) {
    let ran = AssertUnwindSafe(run_task(&ctx, &handle, merge_from, dep_context, resume))
        .catch_unwind()
        .await;
    match ran {
        Ok(status) => {
            // With the pool on, the worktree goes back to the pool before the scheduler hears
            // that the task is done, so that the task it starts next can take it.
            let succeeded = status == TaskStatus::Succeeded;
            let pool_first = succeeded && ctx.req.config.pool.enabled();
            if pool_first {
                release_worktree(&ctx, &handle).await;
            }
            handle.done(status);
            if succeeded && !pool_first {
                release_worktree(&ctx, &handle).await;
            }
        }
        Err(panic) => handle.panicked(panic),
    }
}

/// Removes a succeeded task's worktree as soon as the task is done (its branch stays),
/// unless `keep_worktrees` or it holds uncommitted changes. The folder is deleted directly
/// and git's metadata pruned once at the end of the run: `git worktree remove` per task
/// would serialize on git and add tens of milliseconds per task to the end of every run.
async fn release_worktree(ctx: &Arc<Ctx>, task: &TaskHandle) {
    if ctx.req.config.keep_worktrees {
        return;
    }
    let (ctx2, wt, branch) = (ctx.clone(), task.worktree.clone(), task.branch.clone());
    let removed = tokio::task::spawn_blocking(move || pool_or_delete(&ctx2, &wt, &branch)).await;
    match removed {
        Ok(Ok(true)) => task.send(Event::WorktreeRemoved { task: task.id.clone() }),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => tracing::warn!("keeping the worktree {}: {e:#}", task.worktree.display()),
        Err(e) => tracing::warn!("keeping the worktree {}: {e}", task.worktree.display()),
    }
}

/// Puts a succeeded task's clean worktree into the warm pool (`run/pool.rs`) when `[pool]`
/// is on and it fits, else deletes it when it is clean; false when it stays.
fn pool_or_delete(ctx: &Ctx, wt: &std::path::Path, branch: &str) -> Result<bool> {
    let (repo, config) = (&ctx.req.repo, &ctx.req.config);
    match crate::run::pool::release(repo, config, wt, branch, &ctx.worktree_lock) {
        Ok(crate::run::pool::Released::Pooled(_)) => return Ok(true),
        Ok(crate::run::pool::Released::NotPooled(why)) if config.pool.enabled() => {
            tracing::info!("not pooling {}: {why}", wt.display());
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("not pooling {}: {e:#}", wt.display()),
    }
    delete_clean_worktree(repo, config, wt)
}

/// Deletes a worktree folder (a pooled task's slot and its link) that has no uncommitted
/// changes; false when it has some, or when it holds a nested git repository (ignored ones
/// too: its commits exist nowhere else).
fn delete_clean_worktree(repo: &Repo, config: &crate::spec::config::Config, wt: &std::path::Path) -> Result<bool> {
    if !wt.is_dir() || repo.is_dirty(wt)? {
        return Ok(false);
    }
    let nested = crate::git::nested_repositories(wt).with_context(|| format!("reading {}", wt.display()))?;
    if !nested.is_empty() {
        return Ok(false);
    }
    crate::run::pool::remove_worktree_folder(config, wt)?;
    Ok(true)
}

/// End of a run: removes what `release_worktree` did not get to (tasks that succeeded before
/// a restart) and prunes git's metadata of every deleted worktree.
async fn remove_succeeded_worktrees(ctx: &Arc<Ctx>, out: &mut Emitter) -> Result<()> {
    for t in &ctx.req.plan.tasks {
        let succeeded = out.state.task(&t.spec.id).map(|s| s.status) == Some(TaskStatus::Succeeded);
        let wt = ctx.req.config.worktree_path(&t.spec.id);
        if !succeeded || !wt.is_dir() {
            continue;
        }
        let (ctx2, branch) = (ctx.clone(), ctx.req.config.branch_name(&t.spec.id));
        match tokio::task::spawn_blocking(move || pool_or_delete(&ctx2, &wt, &branch)).await? {
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
