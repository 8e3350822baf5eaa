//! The life of one task: its worktree and branch, its generated prompt, its attempts (each
//! through a supervisor, adopted after a restart when one is still running), leftovers,
//! `verify` (through the shell runner, `exec::shell`), and its final status. Everything it
//! learns it sends to the run loop as events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::agent::approve::{left_questions, BrokerArgs};
use crate::agent::follower::OutputFollower;
use crate::agent::profile::Placeholders;
use crate::agent::report::{FailureClass, OutputProtocol};
use crate::core::events::{Event, TaskPhase, TaskStatus};
use crate::exec::shell::{ShellCommand, ShellError};
use crate::exec::supervisor::{process_is_alive, AgentExit, AgentStarted, LaunchSpec, SupervisorInfo};
use crate::fsutil::{read_json, write_json_atomic};
use crate::git::MergeError;
use crate::run::classify::{classify, AttemptOutcome};
use crate::run::context::{Ctx, TaskHandle};
use crate::run::questions::QuestionWatch;
use crate::run::settle::settle_attempt;

/// Why a task's worktree and branch could not be made or found.
#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("{0:#}")]
    Git(anyhow::Error),
    /// The task's own branch no longer exists.
    #[error("branch {0} is gone")]
    BranchGone(String),
    /// The task's branch disappeared right after it was made.
    #[error("branch {0} vanished")]
    BranchVanished(String),
    #[error("branch {0} of a dependency no longer exists")]
    DependencyGone(String),
    /// The folder of the worktrees could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the worktree: {0:#}")]
    Create(anyhow::Error),
    #[error("merging the branches of its dependencies conflicts: {branch} conflicts in {}", files.join(", "))]
    Conflict { branch: String, files: Vec<String> },
    #[error("merging the branches of its dependencies failed: {0:#}")]
    Merge(anyhow::Error),
    #[error("internal error: {0}")]
    Internal(#[from] tokio::task::JoinError),
}

/// Where a task picks up after an orchestrator restart.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The commit its branch started from, when that was recorded.
    pub start_commit: Option<String>,
}

/// Runs `task` to its final status. `merge_from` are the branches it starts from;
/// `resume` is set when the task was already running before a restart.
pub(crate) async fn run_task(
    ctx: &Arc<Ctx>,
    task: &TaskHandle,
    merge_from: Vec<String>,
    dep_context: String,
    resume: Option<Resume>,
) -> TaskStatus {
    // Test hook, debug builds only: `GADUGI_TEST_PANIC_TASK=<task id>` makes this task's
    // future panic, so the tests can check that a panic fails only that task.
    #[cfg(debug_assertions)]
    if std::env::var("GADUGI_TEST_PANIC_TASK").is_ok_and(|v| v == task.id) {
        panic!("injected panic for task {}", task.id);
    }
    let (i, id) = (task.index, task.id.clone());
    let finish = |status: TaskStatus, error: String| {
        task.finish_with_error(status, error);
        status
    };
    if let Some(remote) = ctx.remote.clone() {
        return run_remote_task(ctx, task, &remote, merge_from, &dep_context, resume).await;
    }
    // Whatever exists on disk for this task was made by this run (a new run refuses existing
    // branches and worktrees), so after a restart it is picked up, never redone.
    let task_dir = ctx.req.layout.task_dir(&ctx.req.run_id, &id);
    let start_file = task_dir.join("start_commit");
    let recorded_start = recorded_start(resume.as_ref(), &start_file);
    if recorded_start.is_none() && crate::git::Repo::clear_unfinished_worktree(&task.worktree) {
        // A crash inside the worktree's registration: register it again below.
        tracing::info!("{id}: finishing the registration of {}", task.worktree.display());
    }
    // An empty folder (or a pool slot's link to one) is a registration still to do.
    let made = task.worktree.is_dir() && std::fs::read_dir(&task.worktree).is_ok_and(|mut d| d.next().is_some());
    let start_commit = match recorded_start {
        Some(c) if task.worktree.is_dir() => c,
        // Worktree made, start not yet recorded: nothing ran in it, its head is the start.
        None if made && ctx.req.repo.branch_exists(&task.branch).unwrap_or(false) => {
            // A crash may have come between registering the worktree and checking out its
            // files: finish that (it does nothing to a worktree that has its files).
            let (repo, wt, branch) = (ctx.req.repo.clone(), task.worktree.clone(), task.branch.clone());
            let populated = tokio::task::spawn_blocking(move || repo.populate_worktree(&wt, &branch)).await;
            if let Err(e) = populated.map_err(|e| anyhow::anyhow!("{e}")).and_then(|r| r) {
                return finish(
                    TaskStatus::Failed,
                    format!("cannot check out the worktree's files: {e:#}"),
                );
            }
            match branch_head(ctx, task).await {
                Ok(c) => c,
                Err(e) => return finish(TaskStatus::Failed, e.to_string()),
            }
        }
        _ => {
            task.send(Event::TaskPhase {
                task: id.clone(),
                phase: TaskPhase::Preparing,
            });
            match prepare_worktree(ctx, task, &merge_from).await {
                Ok(c) => c,
                Err(e) => return finish(TaskStatus::Failed, e.to_string()),
            }
        }
    };
    if let Err(e) = std::fs::create_dir_all(&task_dir).and_then(|_| std::fs::write(&start_file, &start_commit)) {
        return finish(TaskStatus::Failed, format!("cannot record the start commit: {e}"));
    }
    task.send(Event::TaskPrepared {
        task: id.clone(),
        start_commit: start_commit.clone(),
    });
    // After a restart, the latest attempt on disk may still be running: adopt it. One whose
    // supervisor never started (the orchestrator died in between) starts now, same number.
    // A task that was queued again (`gadugi retry`) starts a new attempt after its last
    // finished one; a finished attempt is collected only for a task that was running.
    let latest = latest_attempt(ctx, &id);
    let mut adopt = match latest {
        Some(n) => attempt_was_launched(ctx, &id, n).await,
        None => false,
    };
    let mut next_attempt = latest.unwrap_or(1).max(1);
    if let Some(n) = latest {
        let finished = ctx.req.layout.attempt(&ctx.req.run_id, &id, n).exit.exists();
        if adopt && finished && resume.is_none() {
            adopt = false;
            next_attempt = n + 1;
        }
    }
    // Local files, caches, setup commands and the port block, before the agent costs
    // anything. An adopted attempt already has its set-up worktree (and its agent running).
    let _workspace = if adopt {
        None
    } else {
        match crate::run::workspace::prepare(&ctx.req, i, ctx.cancel.clone(), |e| task.send(e)).await {
            Ok(w) => Some(w),
            Err(e) => return finish(e.status(), e.to_string()),
        }
    };
    let prompt_file = ctx.req.layout.prompt_file(&ctx.req.run_id, &id);
    let prompt = match std::fs::read_to_string(&prompt_file) {
        Ok(p) => p,
        _ => {
            let p = generated_prompt(ctx, task, &start_commit, &dep_context);
            if let Err(e) = std::fs::create_dir_all(&task_dir).and_then(|_| std::fs::write(&prompt_file, &p)) {
                return finish(TaskStatus::Failed, format!("cannot write the generated prompt: {e}"));
            }
            p
        }
    };

    let spec = &ctx.req.plan.tasks[i].spec;
    let retries = spec.retries.unwrap_or(ctx.req.config.retries);
    let verify = spec.verify.clone().or_else(|| ctx.req.config.verify.clone());
    let mut attempt = next_attempt;
    let mut failures = 0;
    // Session of the previous attempt, continued when it failed transiently.
    let mut resume_session: Option<String> = None;
    // Warnings already sent (settling runs after the agent and again after verify).
    let mut warned: Vec<String> = Vec::new();
    let last = loop {
        if cancel_requested(ctx, &id) {
            break AttemptOutcome {
                cancelled: true,
                ..AttemptOutcome::failed("cancelled".into(), FailureClass::Task)
            };
        }
        let mut outcome = if adopt {
            adopt = false;
            follow_attempt(ctx, task, attempt, None).await
        } else if let Some(recovery) = recovery_for(ctx, task, attempt - 1) {
            // The previous agent died while asking: its session goes on with a note, and
            // the repeated call gets the answer given meanwhile (the broker's stored answer).
            task.send(Event::TaskActivity {
                task: id.clone(),
                line: format!(
                    "continuing session {} of attempt {}, which stopped while asking",
                    recovery.session,
                    attempt - 1
                ),
            });
            start_attempt(
                ctx,
                task,
                attempt,
                &recovery.note_file,
                &recovery.note,
                Some(&recovery.session),
            )
            .await
        } else {
            start_attempt(ctx, task, attempt, &prompt_file, &prompt, resume_session.as_deref()).await
        };
        settle(ctx, task, attempt, &mut outcome, &mut warned).await;
        if outcome.error.is_none() && !outcome.cancelled {
            if let Some(cmd) = &verify {
                task.send(Event::TaskPhase {
                    task: id.clone(),
                    phase: TaskPhase::Verifying,
                });
                if let Err(e) = run_verify(ctx, task, attempt, cmd).await {
                    outcome = AttemptOutcome {
                        error: Some(e.to_string()),
                        class: Some(FailureClass::Task),
                        ..outcome
                    };
                }
                settle(ctx, task, attempt, &mut outcome, &mut warned).await;
            }
        }
        resume_session = outcome.resume_session.clone();
        if let Some(last) = after_attempt(ctx, task, attempt, outcome, &mut failures, retries).await {
            break last;
        }
        attempt += 1;
    };

    finish_task(ctx, task, &start_commit, last).await
}

/// After an attempt: tells the circuit breaker, and either returns the task's last outcome
/// or — for a transient failure with retries left — announces the retry and waits its
/// backoff (`None`: go on with the next attempt).
async fn after_attempt(
    ctx: &Arc<Ctx>,
    task: &TaskHandle,
    attempt: u32,
    outcome: AttemptOutcome,
    failures: &mut u32,
    retries: u32,
) -> Option<AttemptOutcome> {
    task.attempt_ended(outcome.class, outcome.error.clone().unwrap_or_default());
    let retry = outcome.class == Some(FailureClass::Transient) && *failures < retries && !outcome.cancelled;
    if outcome.error.is_none() || !retry {
        return Some(outcome);
    }
    *failures += 1;
    let delay = retry_delay(*failures);
    task.send(Event::AttemptFailed {
        task: task.id.clone(),
        attempt,
        error: outcome.error.clone().unwrap_or_default(),
        retry_in_ms: millis(delay),
    });
    if !wait_unless_cancelled(ctx, &task.id, delay).await {
        return Some(AttemptOutcome {
            cancelled: true,
            ..outcome
        });
    }
    None
}

/// A task whose attempts run on a cluster (`run/remote.rs`): its branch here (from the base,
/// its dependency, or its dependencies merged in memory: no worktree on this machine), then
/// attempts as jobs — one submitted before a restart is followed, never submitted again —
/// with retries and backoff as for local attempts. Set-up, settling and `verify` happen on
/// the node.
async fn run_remote_task(
    ctx: &Arc<Ctx>,
    task: &TaskHandle,
    remote: &Arc<crate::run::executor::Remote>,
    merge_from: Vec<String>,
    dep_context: &str,
    resume: Option<Resume>,
) -> TaskStatus {
    let id = task.id.clone();
    let finish = |status: TaskStatus, error: String| {
        task.finish_with_error(status, error);
        status
    };
    let task_dir = ctx.req.layout.task_dir(&ctx.req.run_id, &id);
    let start_file = task_dir.join("start_commit");
    let recorded_start = recorded_start(resume.as_ref(), &start_file);
    let start_commit = match recorded_start {
        Some(c) if ctx.req.repo.branch_exists(&task.branch).unwrap_or(false) => c,
        _ => {
            task.send(Event::TaskPhase {
                task: id.clone(),
                phase: TaskPhase::Preparing,
            });
            let (ctx2, branch) = (ctx.clone(), task.branch.clone());
            let made = tokio::task::spawn_blocking(move || {
                crate::run::remote::prepare_branch(&ctx2.req, &branch, &merge_from)
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|r| r);
            match made {
                Ok(c) => c,
                Err(e) => return finish(TaskStatus::Failed, format!("{e:#}")),
            }
        }
    };
    let prompt_file = ctx.req.layout.prompt_file(&ctx.req.run_id, &id);
    let prompt = prompt_text(
        &ctx.req.plan.tasks[task.index].spec,
        ctx.req.config.verify.as_deref(),
        Path::new("(the job's clone, on the node that runs it)"),
        &task.branch,
        &start_commit,
        dep_context,
    );
    let recorded = std::fs::create_dir_all(&task_dir)
        .and_then(|_| std::fs::write(&start_file, &start_commit))
        .and_then(|_| match prompt_file.exists() {
            true => Ok(()),
            false => std::fs::write(&prompt_file, prompt),
        });
    if let Err(e) = recorded {
        return finish(TaskStatus::Failed, format!("cannot record the task's start: {e}"));
    }
    task.send(Event::TaskPrepared {
        task: id.clone(),
        start_commit: start_commit.clone(),
    });
    // The latest attempt handed to the cluster is followed (or its end collected) when the
    // task was running; a task queued again starts a new attempt after it.
    let mut attempt = match latest_attempt(ctx, &id) {
        Some(n) => {
            let (submitted, ended) = crate::run::remote::attempt_on_record(ctx, &id, n);
            if submitted && ended && resume.is_none() {
                n + 1
            } else {
                n
            }
        }
        None => 1,
    };
    let spec = &ctx.req.plan.tasks[task.index].spec;
    let retries = spec.retries.unwrap_or(ctx.req.config.retries);
    let mut failures = 0;
    let last = loop {
        if cancel_requested(ctx, &id) && !crate::run::remote::attempt_on_record(ctx, &id, attempt).0 {
            break AttemptOutcome {
                cancelled: true,
                ..AttemptOutcome::failed("cancelled".into(), FailureClass::Task)
            };
        }
        let outcome = crate::run::remote::run_attempt(ctx, remote, task, attempt, dep_context).await;
        if let Some(last) = after_attempt(ctx, task, attempt, outcome, &mut failures, retries).await {
            break last;
        }
        attempt += 1;
    };
    finish_task(ctx, task, &start_commit, last).await
}

/// Sends the task's `TaskFinished`, with the commits and files its branch gained since
/// `start_commit`, and returns its status.
async fn finish_task(ctx: &Arc<Ctx>, task: &TaskHandle, start_commit: &str, last: AttemptOutcome) -> TaskStatus {
    let id = task.id.clone();
    let (repo, branch, start) = (ctx.req.repo.clone(), task.branch.clone(), start_commit.to_string());
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
    task.send(Event::TaskFinished {
        task: id,
        status,
        exit_code: last.exit_code,
        signal: last.signal,
        commits,
        files_changed: files,
        error: if last.cancelled {
            Some(last.error.unwrap_or_else(|| "cancelled".into()))
        } else {
            last.error
        },
        class: last.class,
    });
    status
}

/// Where the task's branch started, as a restart finds it recorded: in the run state, else
/// in the task's `start_commit` file.
fn recorded_start(resume: Option<&Resume>, start_file: &Path) -> Option<String> {
    resume
        .and_then(|r| r.start_commit.clone())
        .or_else(|| std::fs::read_to_string(start_file).ok().map(|s| s.trim().to_string()))
}

/// How an attempt continues one that died with a question left (issue 20, recovery).
struct Recovery {
    /// The dead attempt's Claude Code session.
    session: String,
    /// The prompt of the continued session: what happened and what to do.
    note: String,
    /// Where the note is kept (the attempt's `resume_note.md`), for `{prompt_file}`.
    note_file: PathBuf,
}

/// The recovery of attempt `previous` when it ended with a question unanswered (or
/// answered once its agent was gone) and its profile can continue a session; `None`
/// otherwise (the new attempt starts as usual).
fn recovery_for(ctx: &Ctx, task: &TaskHandle, previous: u32) -> Option<Recovery> {
    let profile = &ctx.req.profiles[task.index];
    if previous == 0 || !profile.approvals || !profile.can_resume() {
        return None;
    }
    let files = ctx.req.layout.attempt(&ctx.req.run_id, &task.id, previous);
    let exit: AgentExit = read_json(&files.exit).ok().flatten()?;
    let (_, key) = crate::run::questions::ensure_key().ok()?;
    let dir = ctx.req.layout.questions_dir(&ctx.req.run_id, &task.id);
    let left = left_questions(&dir, previous, exit.finished_at, &key);
    if left.is_empty() {
        return None;
    }
    let session = profile
        .report(&files.stdout, &files.stderr, exit.exit_code)
        .session_id?;
    let calls: Vec<&str> = left.iter().map(|(q, _)| q.summary.as_str()).collect();
    let note = format!(
        "(From Gadugi) Your session stopped while you waited for the person's answer to: {}. \
         Go on with the task from where you were: make that call again exactly as before; \
         the person's answer, if they gave one meanwhile, applies to it.\n",
        calls.join("; ")
    );
    let next = ctx.req.layout.attempt(&ctx.req.run_id, &task.id, previous + 1);
    let note_file = next.dir.join("resume_note.md");
    std::fs::create_dir_all(&next.dir)
        .and_then(|_| std::fs::write(&note_file, &note))
        .ok()?;
    Some(Recovery {
        session,
        note,
        note_file,
    })
}

/// Highest attempt number with a directory on disk.
fn latest_attempt(ctx: &Ctx, id: &str) -> Option<u32> {
    std::fs::read_dir(ctx.req.layout.task_dir(&ctx.req.run_id, id))
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("attempt-")?.parse().ok())
        .max()
}

/// Whether attempt `n` got as far as a supervisor (waiting briefly for one just spawned).
async fn attempt_was_launched(ctx: &Ctx, id: &str, n: u32) -> bool {
    let files = ctx.req.layout.attempt(&ctx.req.run_id, id, n);
    if !files.launch.exists() {
        return false;
    }
    for _ in 0..40 {
        if files.supervisor.exists() || files.exit.exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

fn cancel_requested(ctx: &Ctx, id: &str) -> bool {
    ctx.cancel_requested(id)
}

/// Sleeps for `delay`; false when the run or the task was cancelled meanwhile.
async fn wait_unless_cancelled(ctx: &Ctx, id: &str, delay: Duration) -> bool {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if cancel_requested(ctx, id) {
            return false;
        }
        tokio::time::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200)),
        )
        .await;
    }
    !cancel_requested(ctx, id)
}

/// Exponential backoff with jitter: about 1 s, 2 s, 4 s ... capped at 60 s.
pub fn retry_delay(failures: u32) -> Duration {
    let base = 1000u64
        .saturating_mul(1 << failures.saturating_sub(1).min(6))
        .min(60_000);
    let jitter = (Utc::now().timestamp_subsec_nanos() as u64 % 250) * base / 1000;
    Duration::from_millis(base + jitter)
}

/// Milliseconds of a duration, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn branch_head(ctx: &Arc<Ctx>, task: &TaskHandle) -> Result<String, WorktreeError> {
    let (repo, branch) = (ctx.req.repo.clone(), task.branch.clone());
    tokio::task::spawn_blocking(move || {
        repo.branch_head(&branch)
            .map_err(WorktreeError::Git)?
            .ok_or(WorktreeError::BranchGone(branch))
    })
    .await?
}

/// Creates the task's worktree and branch: from the base commit, or from its dependencies'
/// branches (merged when there are several). Returns the commit the task starts from.
async fn prepare_worktree(ctx: &Arc<Ctx>, task: &TaskHandle, merge_from: &[String]) -> Result<String, WorktreeError> {
    let (repo, wt, branch, base) = (
        ctx.req.repo.clone(),
        task.worktree.clone(),
        task.branch.clone(),
        ctx.req.base_commit.clone(),
    );
    let merge_from = merge_from.to_vec();
    let lock = ctx.worktree_lock.clone();
    let branches = ctx.branches.clone();
    let config = ctx.req.config.clone();
    tokio::task::spawn_blocking(move || -> Result<String, WorktreeError> {
        let start = match merge_from.first() {
            None => base,
            Some(b) => repo
                .branch_head(b)
                .map_err(WorktreeError::Git)?
                .ok_or_else(|| WorktreeError::DependencyGone(b.clone()))?,
        };
        if let Some(parent) = wt.parent() {
            std::fs::create_dir_all(parent).map_err(|source| WorktreeError::Folder {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // Only git's metadata step is serialized (two `git worktree add` at once fail on it);
        // the checkout of the files, the expensive part, runs in parallel with the others.
        // A warm worktree from the pool, switched to the new branch at `start` (only ignored
        // `keep` paths survive); on any failure it was removed and a fresh one is made.
        let recycled = crate::run::pool::take(&repo, &config, &wt, &branch, &start, &lock)
            .inspect_err(|e| tracing::warn!("not using the worktree pool: {e:#}"))
            .unwrap_or(false);
        let new_branch = if recycled {
            true
        } else if repo.writes_worktree_metadata() && !repo.branch_exists(&branch).map_err(WorktreeError::Git)? {
            // The branch first, outside the lock, in one git process with the branches of
            // the other tasks starting now (run/branches.rs); then the metadata, serialized.
            branches.create(&repo, &branch, &start).map_err(WorktreeError::Create)?;
            let _serialized = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            crate::run::pool::register_on_new_branch(&repo, &config, &wt, &branch).map_err(WorktreeError::Create)?;
            true
        } else {
            let _serialized = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // After a crash between creating the branch and recording it, the branch is ours:
            // it is checked out again instead of refused. With the pool on the worktree is
            // made in a slot that never moves, and `wt` links to it.
            crate::run::pool::register(&repo, &config, &wt, &branch, &start).map_err(WorktreeError::Create)?
        };
        if let Err(e) = repo.populate_worktree(&wt, &branch) {
            if new_branch {
                repo.discard_new_worktree(&wt, &branch);
            }
            return Err(WorktreeError::Create(e));
        }
        if merge_from.len() > 1 {
            repo.merge_branches(&wt, &merge_from[1..]).map_err(|e| match e {
                MergeError::Conflict { branch, files } => WorktreeError::Conflict { branch, files },
                MergeError::Other(e) => WorktreeError::Merge(e),
            })?;
        }
        repo.branch_head(&branch)
            .map_err(WorktreeError::Git)?
            .ok_or(WorktreeError::BranchVanished(branch))
    })
    .await?
}

fn generated_prompt(ctx: &Ctx, task: &TaskHandle, start_commit: &str, dep_context: &str) -> String {
    prompt_text(
        &ctx.req.plan.tasks[task.index].spec,
        ctx.req.config.verify.as_deref(),
        &task.worktree,
        &task.branch,
        start_commit,
        dep_context,
    )
}

/// The prompt an agent receives: the task's own text, then how to work on it (its worktree,
/// branch, start, the work of the tasks it builds on, the verify command). A remote task
/// writes it on its node, with the node's worktree.
pub(crate) fn prompt_text(
    spec: &crate::spec::task::TaskSpec,
    default_verify: Option<&str>,
    worktree: &Path,
    branch: &str,
    start_commit: &str,
    dep_context: &str,
) -> String {
    let mut p = String::new();
    p.push_str(spec.body.trim_end());
    p.push_str("\n\n---\n\n## How to work on this task (from Gadugi)\n\n");
    p.push_str(&format!(
        "- Your working directory is the git worktree `{}` on branch `{}`, which starts at commit {}.\n",
        worktree.display(),
        branch,
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
    if let Some(v) = spec.verify.as_deref().or(default_verify) {
        p.push_str(&format!(
            "- When you are done, `{v}` is run in the worktree; it must pass.\n"
        ));
    }
    p.push_str(
        "- Commit your changes on this branch with a message that says what you did. Anything left uncommitted is committed for you when you exit.\n",
    );
    p
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// Starts attempt `attempt` through a new supervisor and follows it to its end.
async fn start_attempt(
    ctx: &Arc<Ctx>,
    task: &TaskHandle,
    attempt: u32,
    prompt_file: &Path,
    prompt: &str,
    resume_session: Option<&str>,
) -> AttemptOutcome {
    let spec = &ctx.req.plan.tasks[task.index].spec;
    let profile = &ctx.req.profiles[task.index];
    let id = task.id.clone();
    let files = ctx.req.layout.attempt(&ctx.req.run_id, &id, attempt);
    let dir = files.dir.clone();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return AttemptOutcome::failed(format!("cannot create {}: {e}", dir.display()), FailureClass::Systemic);
    }
    let (worktree, branch) = (task.worktree.clone(), task.branch.clone());
    // A prompt too long for the command line goes on stdin, or (for a profile that takes it
    // only as an argument) fails here, never as E2BIG from the spawn: this task's own
    // failure, not one that trips the circuit breaker.
    // Named writable for an agent whose sandbox protects them (codex), so it can commit.
    let git_dirs: Vec<PathBuf> = crate::git::worktree_git_dirs(&worktree)
        .map(|(own, common)| vec![common, own])
        .unwrap_or_default();
    // With approvals on, the attempt's broker gets its policy, the task's questions folder
    // and the key's path; a failure to set it up fails the attempt rather than run the
    // agent without anyone to ask.
    let untrusted = &ctx.req.config.approvals.untrusted;
    if profile.approvals && attempt == 1 && !untrusted.is_empty() {
        task.send(Event::TaskWarning {
            task: id.clone(),
            warning: format!(
                "gadugi.toml [approvals] asks for {}, which counts only while the repository's configuration is trusted as it is (`gadugi trust`) or from your own {}",
                untrusted.join(", "),
                crate::spec::approvals::user_approvals_file()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.config/gadugi/approvals.toml".into())
            ),
        });
    }
    let broker = if profile.approvals {
        match broker_for(ctx, &id, attempt, &worktree) {
            Ok(b) => Some(b),
            Err(e) => return AttemptOutcome::failed(format!("{e:#}"), FailureClass::Systemic),
        }
    } else {
        None
    };
    let invocation = profile.invocation(
        &Placeholders {
            prompt_file,
            prompt,
            worktree: &worktree,
            branch: &branch,
            task_id: &id,
            run_id: &ctx.req.run_id,
            git_dirs: &git_dirs,
            approvals: broker.as_ref(),
        },
        resume_session,
    );
    let invocation = match invocation {
        Ok(i) => i,
        Err(e) => return AttemptOutcome::failed(e, FailureClass::Task),
    };
    let mut env = vec![
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
    env.extend(profile.env.iter().cloned());
    env.extend(crate::exec::ports::env(&ctx.req.run_id, &id));
    let mut launch = LaunchSpec::for_attempt(
        &files,
        invocation.argv,
        invocation.stdin,
        worktree,
        env,
        spec.timeout.unwrap_or(ctx.req.config.timeout),
        ctx.req.config.kill_grace,
    );
    launch.questions_dir = broker.as_ref().map(|b| b.questions.clone());
    launch.env_file = ctx.req.config.executor.agent_env_file.clone();
    let launch_file = files.launch.clone();
    if let Err(e) = write_json_atomic(&launch_file, &launch) {
        return AttemptOutcome::failed(format!("{e:#}"), FailureClass::Systemic);
    }
    let supervisor_log = match crate::fsutil::open_append(&files.supervisor_log) {
        Ok(f) => f,
        Err(e) => return AttemptOutcome::failed(format!("{e:#}"), FailureClass::Systemic),
    };
    let child = tokio::process::Command::new(&ctx.exe)
        .arg("__supervise")
        .arg(&launch_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(supervisor_log)
        .kill_on_drop(false)
        .spawn();
    match child {
        Ok(c) => follow_attempt(ctx, task, attempt, Some(c)).await,
        Err(e) => AttemptOutcome::failed(format!("cannot start the supervisor: {e}"), FailureClass::Systemic),
    }
}

/// The approval broker of an attempt: the run's policy written next to the attempt, the
/// task's questions folder in the main repository's state folder, and the key.
fn broker_for(ctx: &Ctx, task: &str, attempt: u32, worktree: &Path) -> anyhow::Result<BrokerArgs> {
    let (key, _) = crate::run::questions::ensure_key()?;
    let layout = &ctx.req.layout;
    let policy = layout.approvals_policy_file(&ctx.req.run_id, task, attempt);
    write_json_atomic(&policy, &ctx.req.config.approvals)?;
    let questions = layout.questions_dir(&ctx.req.run_id, task);
    std::fs::create_dir_all(&questions)?;
    Ok(BrokerArgs {
        questions,
        policy,
        key,
        attempt,
        cwd: worktree.to_path_buf(),
    })
}

/// The supervisor of an attempt: our child, or one adopted after a restart.
enum Supervisor {
    Child(tokio::process::Child),
    /// With the attempt's `exit.json`, whose appearance ends it too.
    Adopted(SupervisorInfo, PathBuf),
}

impl Supervisor {
    /// Waits up to `slice` for the supervisor to end; true when it has.
    async fn ended_within(&mut self, slice: Duration) -> bool {
        match self {
            Supervisor::Child(c) => tokio::time::timeout(slice, c.wait()).await.is_ok(),
            Supervisor::Adopted(info, exit_file) => {
                tokio::time::sleep(slice).await;
                exit_file.exists() || !process_is_alive(info.pid, info.start_ticks)
            }
        }
    }
}

/// Follows an attempt until its supervisor ends: announces the agent, reports activity,
/// heartbeats and stalls, forwards cancellation; then reads how it ended.
async fn follow_attempt(
    ctx: &Arc<Ctx>,
    task: &TaskHandle,
    attempt: u32,
    child: Option<tokio::process::Child>,
) -> AttemptOutcome {
    let id = task.id.clone();
    let profile = &ctx.req.profiles[task.index];
    let files = ctx.req.layout.attempt(&ctx.req.run_id, &id, attempt);
    let launch: LaunchSpec = match read_json(&files.launch) {
        Ok(Some(l)) => l,
        _ => {
            return AttemptOutcome::failed(
                format!("attempt {attempt} has no readable launch.json"),
                FailureClass::Transient,
            )
        }
    };
    let mut supervisor = match child {
        Some(c) => Supervisor::Child(c),
        None => {
            // Adopted: the supervisor records itself first thing; give a just-started one a moment.
            let mut info = None;
            for _ in 0..20 {
                if let Ok(Some(s)) = read_json::<SupervisorInfo>(&launch.supervisor_file) {
                    info = Some(s);
                    break;
                }
                if launch.exit_file.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            match info {
                Some(s) => Supervisor::Adopted(s, launch.exit_file.clone()),
                None if launch.exit_file.exists() => Supervisor::Adopted(
                    SupervisorInfo {
                        pid: 0,
                        start_ticks: None,
                    },
                    launch.exit_file.clone(),
                ),
                None => {
                    return AttemptOutcome::failed(
                        "the attempt's supervisor never started (the orchestrator stopped while starting it)".into(),
                        FailureClass::Transient,
                    )
                }
            }
        }
    };
    let supervisor_pid = match &supervisor {
        Supervisor::Child(c) => c.id().unwrap_or_default(),
        Supervisor::Adopted(s, _) => s.pid,
    };
    // Reads status.json and, once the agent runs, tells the run loop.
    let announce = || {
        let started = read_json::<AgentStarted>(&launch.status_file).ok().flatten()?;
        task.send(Event::AgentStarted {
            task: id.clone(),
            attempt,
            pid: started.agent_pid,
            supervisor_pid,
        });
        Some(started)
    };
    let mut announced: Option<AgentStarted> = None;
    let mut follower = OutputFollower::new(launch.stdout.clone(), profile.protocol);
    let mut output_size = 0u64;
    let mut last_output = Instant::now();
    let mut last_heartbeat = Instant::now();
    let mut stalled = false;
    let mut stop_sent = false;
    let stall_after = ctx.req.config.stall_after;
    let mut slice = Duration::from_millis(25);
    // The agent's questions to the person, as the broker stores them.
    let mut questions = match (&launch.questions_dir, profile.approvals) {
        (Some(dir), true) => crate::run::questions::ensure_key()
            .ok()
            .map(|(_, key)| QuestionWatch::new(dir.clone(), &id, attempt, key)),
        _ => None,
    };
    loop {
        if supervisor.ended_within(slice).await {
            break;
        }
        if announced.is_none() {
            announced = announce();
            if announced.is_some() {
                slice = Duration::from_millis(250);
            }
        }
        if !stop_sent && cancel_requested(ctx, &id) && supervisor_pid != 0 {
            stop_sent = true;
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(supervisor_pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if let Some(q) = &mut questions {
            for event in q.poll() {
                task.send(event);
            }
            if q.waiting() {
                // Waiting for the person is waiting, not a stall.
                last_output = Instant::now();
                stalled = false;
            }
        }
        let size = file_len(&launch.stdout) + file_len(&launch.stderr);
        if size != output_size {
            output_size = size;
            last_output = Instant::now();
            if let Some(line) = follower.poll() {
                task.send(Event::TaskActivity { task: id.clone(), line });
                last_heartbeat = Instant::now();
            } else if stalled {
                task.send(Event::Heartbeat { task: id.clone() });
            }
            stalled = false;
        } else if !stalled && last_output.elapsed() >= stall_after {
            stalled = true;
            task.send(Event::TaskStalled {
                task: id.clone(),
                silent_seconds: last_output.elapsed().as_secs(),
            });
        }
        if last_heartbeat.elapsed() >= Duration::from_secs(5) {
            if let Some(s) = &announced {
                if process_is_alive(s.agent_pid, s.agent_start_ticks) {
                    task.send(Event::Heartbeat { task: id.clone() });
                }
            }
            last_heartbeat = Instant::now();
        }
    }
    if announced.is_none() {
        // The agent ended before the first look at status.json.
        announce();
    }
    for event in questions.map(QuestionWatch::finish).unwrap_or_default() {
        task.send(event);
    }
    if let Some(line) = follower.poll() {
        task.send(Event::TaskActivity { task: id.clone(), line });
    }
    let exit: AgentExit = match read_json(&launch.exit_file) {
        Ok(Some(e)) => e,
        Ok(None) => {
            return AttemptOutcome::failed(
                format!(
                    "the supervisor ended without recording the agent's exit (see {})",
                    files.supervisor_log.display()
                ),
                FailureClass::Transient,
            )
        }
        Err(e) => return AttemptOutcome::failed(format!("{e:#}"), FailureClass::Transient),
    };
    let report = profile.report(&launch.stdout, &launch.stderr, exit.exit_code);
    if profile.protocol != OutputProtocol::Plain {
        task.send(Event::AgentReported {
            task: id.clone(),
            attempt,
            report: Box::new(report.clone()),
        });
    }
    classify(&ctx.req.config, &exit, report, &launch, profile.can_resume())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Brings the attempt's work onto the task branch and commits what the agent left (see
/// `run::settle`). When that cannot be done without losing or mangling work, the attempt
/// fails as the task's own failure (no retry: the worktree needs a person), keeping the
/// attempt's own error after it.
async fn settle(
    ctx: &Arc<Ctx>,
    task: &TaskHandle,
    attempt: u32,
    outcome: &mut AttemptOutcome,
    warned: &mut Vec<String>,
) {
    if let Err(e) = settle_attempt(ctx, task, attempt, warned).await {
        let error = match outcome.error.take() {
            Some(before) => format!("{e}; the attempt had failed too: {before}"),
            None => e.to_string(),
        };
        outcome.error = Some(error);
        outcome.class = Some(FailureClass::Task);
    }
}

/// Runs the task's `verify` command in its worktree with the shell runner, under the task's
/// time limit. Output goes to `verify.log` in the attempt directory.
async fn run_verify(ctx: &Arc<Ctx>, task: &TaskHandle, attempt: u32, cmd: &str) -> Result<(), ShellError> {
    let spec = &ctx.req.plan.tasks[task.index].spec;
    ShellCommand {
        what: "verify".into(),
        line: cmd.to_string(),
        dir: task.worktree.clone(),
        env: vec![],
        log: ctx.req.layout.attempt(&ctx.req.run_id, &task.id, attempt).verify_log,
        timeout: spec.timeout.unwrap_or(ctx.req.config.timeout),
        grace: ctx.req.config.kill_grace,
    }
    .run(None)
    .await
}
