//! Attempts that run away from this machine, on a cluster's scheduler (an [`Engine`]): the
//! orchestrator's half of the remote-task protocol, and the records both halves share.
//!
//! Per attempt the orchestrator
//! 1. pushes the commit the attempt starts from to `refs/gadugi/base/<run>/<task>/<n>` on
//!    the shared git remote (unpushed local work included: it is pushed by commit id);
//! 2. writes `remote-spec.json` ([`RemoteSpec`]) and submits a job named
//!    `gadugi-<run>-<task>-<n>` that runs `gadugi remote-task --spec FILE` on a node
//!    (submitting the same name again adopts the job: idempotent);
//! 3. follows the job's standard output, which the engine keeps: one [`Record`] per line,
//!    numbered, so that a reader that starts again (an orchestrator restarted, `gadugi
//!    resume`) skips what it already relayed (`remote.json`: offset and sequence number);
//!    events become this run's events, the agent's output lands in the attempt's own
//!    `stdout.log` and `stderr.log`, so every view shows a remote task like a local one;
//! 4. on the job's last record ([`RemoteEnd`]) fetches the attempt's result from
//!    `refs/gadugi/attempts/<run>/<task>/<n>` and promotes it: the task branch moves to it by
//!    compare-and-swap, locally and on the remote (`--force-with-lease`).
//!
//! Fencing: a job pushes only to its own attempt's reference, and only the orchestrator
//! moves `gadugi/<task>`, and only to the result of the attempt it is following; a job that
//! outlives its attempt (a lost node that comes back) can never change the task's branch.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::agent::profile::AgentProfile;
use crate::agent::report::FailureClass;
use crate::core::events::{Event, TaskStatus};
use crate::exec::engine::{JobHandle, JobRequest, JobState, SPEC_ENV};
use crate::fsutil::{read_json, write_json_atomic};
use crate::run::classify::AttemptOutcome;
use crate::run::context::{Ctx, TaskHandle};
use crate::run::executor::Remote;
use crate::run::request::RunRequest;
use crate::spec::config::Config;
use crate::spec::executor::ExecutorKind;
use crate::spec::task::TaskSpec;

/// What every record line of a remote task's output starts with; other lines (a cluster's
/// prolog, a shell's noise) are not records.
pub const RECORD_PREFIX: &str = "@gadugi ";

/// Everything a job needs to run one attempt on its node: `remote-spec.json`, written by
/// the orchestrator, read by `gadugi remote-task`. Holds no secret: credentials travel as
/// paths of files only their owner can read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteSpec {
    pub run_id: String,
    pub task_id: String,
    /// The orchestrator's attempt number, which the node's one-task run uses too.
    pub attempt: u32,
    /// The git remote both sides use.
    pub url: String,
    /// Where the attempt starts: a commit, pushed as `base_ref`.
    pub base_commit: String,
    pub base_ref: String,
    /// Where the job pushes its result (its own reference, never the task branch).
    pub attempt_ref: String,
    /// The task branch's name (the node's clone uses the same name).
    pub branch: String,
    /// The task, with its dependencies already merged into `base_commit`.
    pub task: TaskSpec,
    pub profile: AgentProfile,
    /// The run's configuration, as the node's one-task run uses it.
    pub config: Config,
    /// What the prompt says of the work of the tasks this one builds on.
    pub dep_context: String,
    /// The credential files are where the engine mounts them, and each may be left out (a
    /// Kubernetes Secret without one of its keys); otherwise a configured file must exist.
    #[serde(default)]
    pub secrets_optional: bool,
}

/// One line of a remote task's output (after [`RECORD_PREFIX`]): exactly one of the
/// optional fields is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// 1, 2, 3 ... within the job: a reader skips what it has seen.
    pub seq: u64,
    /// An event of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    /// Text the agent wrote to its standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Text the agent wrote to its standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The node the job runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The last record: how the attempt ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<RemoteEnd>,
}

/// How a remote attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteEnd {
    pub status: TaskStatus,
    pub class: Option<FailureClass>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The commit pushed to the attempt's reference (None: nothing could be pushed).
    pub head: Option<String>,
}

/// How far the orchestrator followed an attempt's job (`remote.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    job: Option<JobHandle>,
    /// Bytes of the job's output read so far (up to the last whole line).
    offset: u64,
    /// Last record relayed.
    seq: u64,
    node: Option<String>,
    end: Option<RemoteEnd>,
}

/// `gadugi-<run>-<task>-<n>`: the job's name, its idempotency key.
pub fn job_name(run_id: &str, task: &str, attempt: u32) -> String {
    format!("gadugi-{run_id}-{task}-{attempt}")
}

/// Where attempt `n`'s start is pushed.
pub fn base_ref(run_id: &str, task: &str, attempt: u32) -> String {
    format!("refs/gadugi/base/{run_id}/{task}/{attempt}")
}

/// Where attempt `n` pushes its result (fenced: nothing but that attempt writes it).
pub fn attempt_ref(run_id: &str, task: &str, attempt: u32) -> String {
    format!("refs/gadugi/attempts/{run_id}/{task}/{attempt}")
}

/// Whether attempt `n` of a task was handed to the cluster (its spec exists), and whether
/// its end was already collected.
pub(crate) fn attempt_on_record(ctx: &Ctx, task: &str, attempt: u32) -> (bool, bool) {
    let files = ctx.req.layout.attempt(&ctx.req.run_id, task, attempt);
    let progress: Option<Progress> = read_json(&files.remote_progress).ok().flatten();
    (files.remote_spec.exists(), progress.is_some_and(|p| p.end.is_some()))
}

/// The commit a remote task starts from: the base commit, the branch of its one
/// dependency, or the merge of its dependencies' branches made in memory (no worktree on
/// this machine). Creates the task's branch there.
pub(crate) fn prepare_branch(req: &RunRequest, branch: &str, merge_from: &[String]) -> anyhow::Result<String> {
    let repo = &req.repo;
    let start = match merge_from {
        [] => req.base_commit.clone(),
        [one] => repo
            .branch_head(one)?
            .ok_or_else(|| anyhow::anyhow!("branch {one} of a dependency no longer exists"))?,
        [first, rest @ ..] => repo
            .merge_commit_in_memory(first, rest, "Merge branch")
            .map_err(|e| anyhow::anyhow!("merging the branches of its dependencies failed: {e}"))?,
    };
    if repo.branch_exists(branch)? {
        // A crash between creating the branch and recording its start: it is ours.
        return Ok(repo.branch_head(branch)?.unwrap_or(start));
    }
    repo.create_branch_at(branch, &start)?;
    Ok(start)
}

/// Runs attempt `attempt` of `task` on the cluster, or follows it when it was submitted
/// before (an orchestrator restart): never submits an attempt twice.
pub(crate) async fn run_attempt(
    ctx: &Arc<Ctx>,
    remote: &Arc<Remote>,
    task: &TaskHandle,
    attempt: u32,
    dep_context: &str,
) -> AttemptOutcome {
    let files = ctx.req.layout.attempt(&ctx.req.run_id, &task.id, attempt);
    if let Err(e) = std::fs::create_dir_all(&files.dir) {
        return AttemptOutcome::failed(
            format!("cannot create {}: {e}", files.dir.display()),
            FailureClass::Systemic,
        );
    }
    let mut progress: Progress = read_json(&files.remote_progress).ok().flatten().unwrap_or_default();
    if progress.end.is_none() {
        let job = match progress.job.clone() {
            Some(job) => job,
            None => match submit(ctx, remote, task, attempt, dep_context).await {
                Ok(job) => {
                    progress.job = Some(job.clone());
                    save(&files.remote_progress, &progress);
                    job
                }
                Err(e) => return AttemptOutcome::failed(format!("{e:#}"), FailureClass::Systemic),
            },
        };
        task.send(Event::AttemptPlaced {
            task: task.id.clone(),
            attempt,
            executor: remote.engine.kind().into(),
            job: job.id.clone(),
            node: progress.node.clone(),
        });
        if let Some(failed) = follow(ctx, remote, task, attempt, &job, &mut progress).await {
            reap(remote, task, job).await;
            return failed;
        }
    }
    let Some(end) = progress.end.clone() else {
        return AttemptOutcome::failed("the job ended without a result".into(), FailureClass::Transient);
    };
    let mut outcome = AttemptOutcome {
        error: end.error.clone(),
        resume_session: None,
        class: end.class,
        exit_code: end.exit_code,
        signal: end.signal,
        cancelled: end.status == TaskStatus::Cancelled,
    };
    let asked = ctx.cancel_requested(&task.id);
    if outcome.cancelled && !asked {
        // Nobody here asked: the cluster (or its administrator) stopped the job.
        outcome.cancelled = false;
        outcome.error = Some("the cluster cancelled the job".into());
        outcome.class = Some(FailureClass::Transient);
    } else if asked && end.status != TaskStatus::Succeeded {
        // The cluster's SIGTERM reaches every process of the job at once, the agent too:
        // an agent killed by it was cancelled, not failed.
        outcome.cancelled = true;
    }
    if let Some(job) = progress.job.clone() {
        reap(remote, task, job).await;
    }
    if let Some(head) = &end.head {
        let (req_remote, head, branch, id) = (remote.clone(), head.clone(), task.branch.clone(), task.id.clone());
        let ctx2 = ctx.clone();
        let promoted = tokio::task::spawn_blocking(move || promote(&ctx2, &req_remote, &id, attempt, &branch, &head))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|r| r);
        if let Err(e) = promoted {
            let before = outcome.error.take();
            outcome.error = Some(match before {
                Some(b) => format!("the attempt's result could not be taken onto the task branch: {e:#}; the attempt had failed too: {b}"),
                None => format!("the attempt's result could not be taken onto the task branch: {e:#}"),
            });
            outcome.class = Some(FailureClass::Task);
        }
    }
    outcome
}

/// Lets the engine remove an ended job (its result, if any, is collected or on the remote).
async fn reap(remote: &Arc<Remote>, task: &TaskHandle, job: JobHandle) {
    let engine = remote.engine.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || engine.reap(&job)).await {
        tracing::warn!("task {}: removing the ended job: {e:#}", task.id);
    }
}

/// Pushes the attempt's start, writes its spec and submits its job.
async fn submit(
    ctx: &Arc<Ctx>,
    remote: &Arc<Remote>,
    task: &TaskHandle,
    attempt: u32,
    dep_context: &str,
) -> anyhow::Result<JobHandle> {
    let req = &ctx.req;
    let files = req.layout.attempt(&req.run_id, &task.id, attempt);
    let spec = match read_json::<RemoteSpec>(&files.remote_spec)? {
        Some(spec) => spec,
        None => {
            let head = req
                .repo
                .branch_head(&task.branch)?
                .ok_or_else(|| anyhow::anyhow!("branch {} is gone", task.branch))?;
            let spec = spec_for(req, remote, task.index, attempt, head, dep_context);
            write_json_atomic(&files.remote_spec, &spec)?;
            spec
        }
    };
    let (repo, url, credentials) = (
        req.repo.clone(),
        remote.url.clone(),
        req.config.executor.git_credentials.clone(),
    );
    let (base_commit, base) = (spec.base_commit.clone(), spec.base_ref.clone());
    tokio::task::spawn_blocking(move || repo.push_ref(&url, &base_commit, &base, credentials.as_deref())).await??;
    let job = job_request(req, remote, &spec)?;
    let engine = remote.engine.clone();
    tokio::task::spawn_blocking(move || engine.submit(&job)).await?
}

/// The spec of attempt `attempt` of task `index`, starting at `base_commit`.
fn spec_for(
    req: &RunRequest,
    remote: &Remote,
    index: usize,
    attempt: u32,
    base_commit: String,
    dep_context: &str,
) -> RemoteSpec {
    let mut task_spec = req.plan.tasks[index].spec.clone();
    let id = task_spec.id.clone();
    // The node's one-task run: its dependencies are merged into the start already, and the
    // orchestrator owns retries.
    task_spec.depends_on.clear();
    task_spec.retries = Some(0);
    let mut config = req.config.clone();
    config.executor.kind = ExecutorKind::Local;
    config.retries = 0;
    config.pool = Default::default();
    let mounted = remote.engine.mounted_secrets();
    if let Some(mounted) = &mounted {
        // The job finds its credential files where the engine mounts them.
        config.executor.agent_env_file = mounted.agent_env_file.clone();
        config.executor.git_credentials = mounted.git_credentials.clone();
    }
    RemoteSpec {
        run_id: req.run_id.clone(),
        attempt,
        url: remote.url.clone(),
        base_commit,
        base_ref: base_ref(&req.run_id, &id, attempt),
        attempt_ref: attempt_ref(&req.run_id, &id, attempt),
        branch: req.config.branch_name(&id),
        task_id: id,
        task: task_spec,
        profile: req.profiles[index].clone(),
        config,
        dep_context: dep_context.to_string(),
        secrets_optional: mounted.is_some(),
    }
}

/// The job that runs `spec` on the cluster.
fn job_request(req: &RunRequest, remote: &Remote, spec: &RemoteSpec) -> anyhow::Result<JobRequest> {
    let files = req.layout.attempt(&req.run_id, &spec.task_id, spec.attempt);
    let timeout = spec.task.timeout.unwrap_or(req.config.timeout);
    let gadugi_remote_task =
        |source: &str, value: String| vec![remote.gadugi.clone(), "remote-task".into(), source.into(), value];
    Ok(JobRequest {
        name: job_name(&req.run_id, &spec.task_id, spec.attempt),
        run_id: req.run_id.clone(),
        task: spec.task_id.clone(),
        attempt: spec.attempt,
        argv: gadugi_remote_task("--spec", files.remote_spec.to_string_lossy().into_owned()),
        inline_argv: gadugi_remote_task("--spec-env", SPEC_ENV.into()),
        spec_json: serde_json::to_string(spec)?,
        output: files.remote_out.clone(),
        error: files.remote_err.clone(),
        workdir: files.dir.clone(),
        // The agent's own time limit, plus time to fetch, set up, verify and push.
        time_limit: Some(timeout + req.config.kill_grace + Duration::from_secs(15 * 60)),
        export: req.config.executor.export.clone(),
    })
}

/// What a run would hand the cluster, without pushing or submitting anything: each task's
/// first job as the engine describes it (`gadugi run --dry-run`). A task that starts from
/// its dependencies' work gets its start commit only once they ended: shown as
/// `(decided at run time)`.
pub fn dry_run(req: &RunRequest, exe: &Path) -> anyhow::Result<String> {
    let remote = Remote::for_request(req, exe)?
        .ok_or_else(|| anyhow::anyhow!("--dry-run shows the jobs of a cluster; this run's executor is local"))?;
    let mut out = String::new();
    for (index, task) in req.plan.tasks.iter().enumerate() {
        let start = if task.deps.is_empty() && task.after.is_empty() {
            req.base_commit.clone()
        } else {
            "(decided at run time)".to_string()
        };
        let spec = spec_for(req, &remote, index, 1, start, "");
        let job = job_request(req, &remote, &spec)?;
        out.push_str(&format!("# task {} (attempt 1): job {}\n", task.spec.id, job.name));
        out.push_str(remote.engine.describe(&job)?.trim_end());
        out.push_str("\n\n");
    }
    Ok(out)
}

/// Follows the job until its last record. Returns an outcome when the job ended without
/// one (lost, killed, failed before it could report).
async fn follow(
    ctx: &Arc<Ctx>,
    remote: &Arc<Remote>,
    task: &TaskHandle,
    attempt: u32,
    job: &JobHandle,
    progress: &mut Progress,
) -> Option<AttemptOutcome> {
    let files = ctx.req.layout.attempt(&ctx.req.run_id, &task.id, attempt);
    let mut cancel_sent = false;
    let mut ticks = 0u64;
    // When the engine first said the job ended while its last record had not come yet.
    let mut ended_at: Option<Instant> = None;
    loop {
        let before = (progress.offset, progress.seq);
        let engine = remote.engine.clone();
        let (job2, out, from) = (job.clone(), files.remote_out.clone(), progress.offset);
        let bytes = tokio::task::spawn_blocking(move || engine.read_output(&job2, &out, from))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|r| r)
            .unwrap_or_else(|e| {
                tracing::warn!("reading the output of job {}: {e:#}", job.id);
                vec![]
            });
        // Only whole lines: a record being written is read again next time.
        if let Some(last_newline) = bytes.iter().rposition(|b| *b == b'\n') {
            progress.offset += last_newline as u64 + 1;
            for line in bytes[..=last_newline].split(|b| *b == b'\n') {
                relay(
                    task,
                    attempt,
                    remote.engine.kind(),
                    &files.stdout,
                    &files.stderr,
                    line,
                    progress,
                );
            }
        }
        if (progress.offset, progress.seq) != before {
            save(&files.remote_progress, progress);
        }
        if progress.end.is_some() {
            return None;
        }
        if !cancel_sent && ctx.cancel_requested(&task.id) {
            cancel_sent = true;
            let (engine, job2) = (remote.engine.clone(), job.clone());
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || engine.cancel(&job2)).await {
                tracing::warn!("cancelling job {}: {e:#}", job.id);
            }
        }
        // Ask the engine every two seconds; the records say the rest.
        if ticks % 4 == 0 {
            let (engine, job2) = (remote.engine.clone(), job.clone());
            let state = tokio::task::spawn_blocking(move || engine.state(&job2)).await;
            match state {
                // The job's own record names its node once it runs; until then, the engine's.
                Ok(Ok(JobState::Running { node })) if progress.node.is_none() => {
                    progress.node = Some(node.clone());
                    save(&files.remote_progress, progress);
                    task.send(Event::AttemptPlaced {
                        task: task.id.clone(),
                        attempt,
                        executor: remote.engine.kind().into(),
                        job: job.id.clone(),
                        node: Some(node),
                    });
                }
                Ok(Ok(s)) if s.is_final() => {
                    // The job's output may still be arriving (a cancelled job pushes its work
                    // within the grace period; logs reach the engine a little late): give its
                    // last record that long before deciding that none will come.
                    let patience = if cancel_sent {
                        ctx.req.config.kill_grace + Duration::from_secs(15)
                    } else {
                        Duration::from_secs(5)
                    };
                    let since = *ended_at.get_or_insert_with(Instant::now);
                    if since.elapsed() >= patience {
                        return Some(ended_early(&s, job, &files.remote_err, cancel_sent));
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("asking about job {}: {e:#}", job.id),
                Err(e) => tracing::warn!("asking about job {}: {e}", job.id),
            }
        }
        ticks += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Applies one line of the job's output.
fn relay(
    task: &TaskHandle,
    attempt: u32,
    kind: &str,
    stdout: &Path,
    stderr: &Path,
    line: &[u8],
    progress: &mut Progress,
) {
    let Some(json) = std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.strip_prefix(RECORD_PREFIX))
    else {
        return;
    };
    let record: Record = match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("task {}: a record of the job cannot be read: {e}", task.id);
            return;
        }
    };
    if record.seq <= progress.seq {
        return;
    }
    progress.seq = record.seq;
    if let Some(event) = record.event.filter(relayed) {
        task.send(event);
    }
    for (text, file) in [(record.stdout, stdout), (record.stderr, stderr)] {
        if let Some(text) = text {
            let appended = crate::fsutil::open_append(file).and_then(|mut f| Ok(f.write_all(text.as_bytes())?));
            if let Err(e) = appended {
                tracing::warn!("task {}: cannot keep the agent's output: {e:#}", task.id);
            }
        }
    }
    if let Some(node) = record.node {
        if progress.node.as_deref() != Some(node.as_str()) {
            progress.node = Some(node.clone());
            if let Some(job) = &progress.job {
                task.send(Event::AttemptPlaced {
                    task: task.id.clone(),
                    attempt,
                    executor: kind.into(),
                    job: job.id.clone(),
                    node: Some(node),
                });
            }
        }
    }
    if let Some(end) = record.end {
        progress.end = Some(end);
    }
}

/// Whether an event of the node's one-task run is one of this run's events too. The run's
/// own bookkeeping (start, end, the task's start and end, which this side decides) is not.
fn relayed(event: &Event) -> bool {
    !matches!(
        event,
        Event::RunStarted { .. }
            | Event::RunResumed { .. }
            | Event::RunFinished { .. }
            | Event::TaskPrepared { .. }
            | Event::TaskFinished { .. }
            | Event::TaskSkipped { .. }
            | Event::TaskRetried { .. }
            | Event::ParallelismLimited { .. }
            | Event::CircuitOpened { .. }
            | Event::WorktreeRemoved { .. }
            | Event::ConflictsPredicted { .. }
            | Event::AttemptFailed { .. }
            | Event::AttemptPlaced { .. }
    )
}

/// The outcome of a job that ended without its last record.
fn ended_early(state: &JobState, job: &JobHandle, stderr: &Path, cancel_sent: bool) -> AttemptOutcome {
    // An engine that keeps the job's stderr in a file of ours (Slurm) points there; else the
    // job's own log is where to look.
    let see = if stderr.exists() {
        format!("see {}", stderr.display())
    } else {
        format!("see the log of job {}", job.id)
    };
    match state {
        JobState::Cancelled if cancel_sent => AttemptOutcome {
            cancelled: true,
            ..AttemptOutcome::failed("cancelled".into(), FailureClass::Task)
        },
        JobState::Cancelled => AttemptOutcome::failed(
            format!("the cluster cancelled the job ({see})"),
            FailureClass::Transient,
        ),
        JobState::Exited { code, .. } => AttemptOutcome {
            exit_code: Some(*code),
            ..AttemptOutcome::failed(
                format!("gadugi remote-task exited with code {code} before it reported the attempt's end ({see})"),
                FailureClass::Systemic,
            )
        },
        JobState::Failed { reason } => AttemptOutcome::failed(
            format!("the cluster ended the job: {reason} ({see})"),
            FailureClass::Transient,
        ),
        JobState::Lost { reason } => {
            AttemptOutcome::failed(format!("the job was lost: {reason} ({see})"), FailureClass::Transient)
        }
        JobState::Pending { .. } | JobState::Running { .. } => {
            AttemptOutcome::failed(format!("the job stopped reporting ({see})"), FailureClass::Transient)
        }
    }
}

/// Takes the attempt's pushed result onto the task branch: fetched from the attempt's own
/// reference, the local branch moved to it by compare-and-swap, and the remote's branch
/// moved with `--force-with-lease` (only forward).
fn promote(ctx: &Ctx, remote: &Remote, task: &str, attempt: u32, branch: &str, head: &str) -> anyhow::Result<()> {
    let repo = &ctx.req.repo;
    let credentials = ctx.req.config.executor.git_credentials.as_deref();
    let reference = attempt_ref(&ctx.req.run_id, task, attempt);
    repo.fetch_ref(&remote.url, &reference, &reference, credentials)?;
    if !repo.is_ancestor(head, &reference)? || !repo.is_ancestor(&reference, head)? {
        anyhow::bail!("{reference} on the remote is not the commit the job reported ({head})");
    }
    let current = repo
        .branch_head(branch)?
        .ok_or_else(|| anyhow::anyhow!("branch {branch} is gone"))?;
    if current != head {
        repo.fast_forward_branch(branch, head, &current)?;
    }
    let on_remote = repo.remote_ref(&remote.url, &format!("refs/heads/{branch}"), credentials)?;
    if on_remote.as_deref() != Some(head) {
        if let Some(there) = &on_remote {
            if !repo.is_ancestor(there, head).unwrap_or(false) {
                anyhow::bail!(
                    "{branch} on the remote is at {there}, which the attempt's work does not build on; it was not overwritten"
                );
            }
        }
        repo.push_branch_with_lease(&remote.url, branch, head, on_remote.as_deref(), credentials)?;
    }
    Ok(())
}

fn save(path: &Path, progress: &Progress) {
    if let Err(e) = write_json_atomic(path, progress) {
        tracing::warn!("cannot save {}: {e:#}", path.display());
    }
}
