//! `gadugi remote-task --spec FILE`: one attempt of a task, run by a cluster's job on its
//! node — the node's half of the remote-task protocol (the orchestrator's is `run/remote.rs`).
//!
//! The job fetches the attempt's start from the shared git remote into a fresh clone of its
//! own (under `[executor] workdir`, the job's `$TMPDIR` or `/tmp`), runs the task there as a
//! one-task run of the local executor — the same supervisor, agent profile, set-up, settling
//! of leftovers and `verify` as on the user's machine, no retries (the orchestrator owns
//! them) — and pushes the result to the attempt's own reference. Everything it has to say
//! goes to its standard output as numbered records (`run::remote::Record`): the run's
//! events, the agent's output, the node, and a last record with how the attempt ended.
//! SIGTERM (the cluster cancelling the job) stops the agent's process group within the
//! grace period, and whatever it did is still committed and pushed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::agent::report::FailureClass;
use crate::core::events::{Event, EventRecord, TaskStatus};
use crate::core::state::RunState;
use crate::git::Repo;
use crate::layout::Layout;
use crate::run::emitter::EventSink;
use crate::run::remote::{Record, RemoteEnd, RemoteSpec, RECORD_PREFIX};
use crate::run::request::RunRequest;

/// The one writer of a job's records: numbers them and writes whole lines.
struct Records {
    seq: u64,
    out: Box<dyn Write + Send>,
}

type SharedRecords = Arc<Mutex<Records>>;

impl Records {
    fn write(&mut self, mut record: Record) {
        self.seq += 1;
        record.seq = self.seq;
        // A record that cannot be written has nowhere else to go; the orchestrator then sees
        // the job end without its last record and says so.
        if let Ok(json) = serde_json::to_string(&record) {
            let _ = writeln!(self.out, "{RECORD_PREFIX}{json}");
            let _ = self.out.flush();
        }
    }
}

fn write(records: &SharedRecords, record: Record) {
    records.lock().unwrap_or_else(|p| p.into_inner()).write(record);
}

/// Where a job finds its spec.
#[derive(Debug, Clone)]
pub enum SpecSource {
    /// `remote-spec.json` on a filesystem the node shares with the orchestrator.
    File(PathBuf),
    /// The JSON in an environment variable of the job.
    Env(String),
}

impl SpecSource {
    fn read(&self) -> Result<RemoteSpec> {
        match self {
            SpecSource::File(file) => {
                crate::fsutil::read_json(file)?.with_context(|| format!("{} does not exist", file.display()))
            }
            SpecSource::Env(name) => {
                let text =
                    std::env::var(name).with_context(|| format!("the job has no environment variable {name}"))?;
                serde_json::from_str(&text).with_context(|| format!("{name} does not hold a remote task's spec"))
            }
        }
    }
}

/// Runs the attempt that the spec describes, writing its records to standard output.
/// Returns the process's exit code: 0 once the last record is written, whatever the
/// attempt's outcome (the record says it); 2 when the spec cannot be read.
pub async fn run(source: &SpecSource) -> i32 {
    let records: SharedRecords = Arc::new(Mutex::new(Records {
        seq: 0,
        out: Box::new(std::io::stdout()),
    }));
    let spec: RemoteSpec = match source.read() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return crate::error::EXIT_BAD_INPUT;
        }
    };
    write(
        &records,
        Record {
            node: Some(node_name()),
            ..Default::default()
        },
    );
    let end = match attempt(&spec, &records).await {
        Ok(end) => end,
        Err(e) => RemoteEnd {
            status: TaskStatus::Failed,
            // The node could not even start the task (the remote unreachable, no disk):
            // the cluster's problem, not the task's, and it feeds the circuit breaker.
            class: Some(FailureClass::Systemic),
            error: Some(format!("on node {}: {e:#}", node_name())),
            exit_code: None,
            signal: None,
            head: None,
        },
    };
    write(
        &records,
        Record {
            end: Some(end),
            ..Default::default()
        },
    );
    crate::error::EXIT_OK
}

/// The node's name: what the engine says (`GADUGI_NODE_NAME`), Slurm's `SLURMD_NODENAME`,
/// else the host name.
fn node_name() -> String {
    [crate::exec::engine::NODE_ENV, "SLURMD_NODENAME"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|n| !n.is_empty()))
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The folder the job works in, its own even when two jobs of one attempt meet (a job the
/// cluster requeued while its first incarnation still ran).
fn scratch_dir(spec: &RemoteSpec) -> PathBuf {
    let base = spec
        .config
        .executor
        .workdir
        .clone()
        .or_else(|| std::env::var_os("TMPDIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!(
        "gadugi-{}-{}-{}-{}",
        spec.run_id,
        spec.task_id,
        spec.attempt,
        std::process::id()
    ))
}

async fn attempt(spec: &RemoteSpec, records: &SharedRecords) -> Result<RemoteEnd> {
    let credentials = (spec.config.executor.git_credentials.clone()).filter(|f| !spec.secrets_optional || f.exists());
    let scratch = scratch_dir(spec);
    let repo = Repo::init(&scratch.join("repo"))?;
    let start_ref = "refs/gadugi/start";
    repo.fetch_ref(&spec.url, &spec.base_ref, start_ref, credentials.as_deref())
        .with_context(|| format!("cannot fetch the attempt's start from {}", spec.url))?;
    if !repo.is_ancestor(&spec.base_commit, start_ref)? || !repo.is_ancestor(start_ref, &spec.base_commit)? {
        anyhow::bail!("{} on the remote is not {}", spec.base_ref, spec.base_commit);
    }
    repo.ensure_excluded("/.gadugi/")?;
    let root = repo.root().to_path_buf();
    let mut config = spec.config.clone();
    config.worktree_dir = scratch.join("worktrees");
    if spec.secrets_optional {
        // A mounted Secret may leave either file out: then the agent or git goes without.
        let executor = &mut config.executor;
        executor.agent_env_file = executor.agent_env_file.take().filter(|f| f.exists());
        executor.git_credentials = executor.git_credentials.take().filter(|f| f.exists());
    }
    let plan = crate::spec::plan::build_plan(&root, vec![spec.task.clone()], &[], config.conflicts)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let layout = Layout::new(&root);
    let worktree = config.worktree_path(&spec.task_id);
    let prompt = crate::run::task::prompt_text(
        &spec.task,
        config.verify.as_deref(),
        &worktree,
        &spec.branch,
        &spec.base_commit,
        &spec.dep_context,
    );
    let prompt_file = layout.prompt_file(&spec.run_id, &spec.task_id);
    if let Some(dir) = prompt_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&prompt_file, prompt)?;
    let repo = Arc::new(repo);
    let req = RunRequest {
        repo: repo.clone(),
        layout: layout.clone(),
        config,
        plan,
        profiles: vec![spec.profile.clone()],
        run_id: spec.run_id.clone(),
        base_commit: spec.base_commit.clone(),
        base_branch: None,
        max_parallel: 1,
    };

    let (cancel_tx, cancel_rx) = watch::channel(false);
    let terminated = cancel_rx.clone();
    // The cluster cancels a job with SIGTERM (and kills it after its grace period): stop the
    // agent now, so that its work is settled and pushed in time.
    let stop = tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = cancel_tx.send(true);
    });
    let class = Arc::new(Mutex::new(None));
    let sink = RecordSink {
        records: records.clone(),
        class: class.clone(),
    };
    let (tail_stop, tail_rx) = watch::channel(false);
    // The node's run numbers its attempt as the orchestrator does (the agent sees
    // GADUGI_ATTEMPT, the events carry it): a task starts after the last attempt folder.
    let files = layout.attempt(&spec.run_id, &spec.task_id, spec.attempt);
    std::fs::create_dir_all(&files.dir)?;
    let tail = tokio::spawn(tail_output(files.stdout, files.stderr, records.clone(), tail_rx));
    let ran = crate::run::run_loop::execute(req, vec![Box::new(sink)], cancel_rx).await;
    let _ = tail_stop.send(true);
    let _ = tail.await;
    stop.abort();
    let state = ran?;
    let task = state.tasks.first().context("the node's run has no task")?.clone();
    let head = repo
        .branch_head(&spec.branch)?
        .with_context(|| format!("branch {} is gone from the node's clone", spec.branch))?;
    let pushed = repo.push_ref(&spec.url, &head, &spec.attempt_ref, credentials.as_deref());
    let class = *class.lock().unwrap_or_else(|p| p.into_inner());
    match pushed {
        Ok(()) => {
            // Everything the attempt made is in its pushed commits (leftovers were committed).
            if let Err(e) = std::fs::remove_dir_all(&scratch) {
                tracing::warn!("cannot remove {}: {e}", scratch.display());
            }
            // The cluster's SIGTERM reaches the agent as well as this process: an agent
            // that died of it was cancelled with the job.
            let cancelled = *terminated.borrow() && task.status == TaskStatus::Failed;
            Ok(RemoteEnd {
                status: if cancelled { TaskStatus::Cancelled } else { task.status },
                class,
                error: task.error,
                exit_code: task.exit_code,
                signal: task.signal,
                head: Some(head),
            })
        }
        // Never lose work: the clone stays on the node, and the error says where.
        Err(e) => Ok(RemoteEnd {
            status: TaskStatus::Failed,
            class: Some(FailureClass::Transient),
            error: Some(format!(
                "the attempt's work could not be pushed ({e:#}); it is kept on node {} in {}",
                node_name(),
                scratch.display()
            )),
            exit_code: task.exit_code,
            signal: task.signal,
            head: None,
        }),
    }
}

/// The node run's view: every event becomes a record; the task's end also says how its
/// failure was classified.
struct RecordSink {
    records: SharedRecords,
    class: Arc<Mutex<Option<FailureClass>>>,
}

impl EventSink for RecordSink {
    fn on_event(&mut self, rec: &EventRecord, _state: &RunState) {
        let event = rec.event.clone();
        if let Event::TaskFinished { class, .. } = &event {
            *self.class.lock().unwrap_or_else(|p| p.into_inner()) = *class;
        }
        write(
            &self.records,
            Record {
                event: Some(event),
                ..Default::default()
            },
        );
    }
}

/// Sends what the agent writes to its output files as records, every quarter second, and
/// the rest once `stop` turns true.
async fn tail_output(stdout: PathBuf, stderr: PathBuf, records: SharedRecords, mut stop: watch::Receiver<bool>) {
    let mut offsets = [0u64, 0u64];
    loop {
        let last = *stop.borrow();
        for (i, path) in [&stdout, &stderr].into_iter().enumerate() {
            let text = read_from(path, &mut offsets[i], last);
            if text.is_empty() {
                continue;
            }
            let record = if i == 0 {
                Record {
                    stdout: Some(text),
                    ..Default::default()
                }
            } else {
                Record {
                    stderr: Some(text),
                    ..Default::default()
                }
            };
            write(&records, record);
        }
        if last {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(250), stop.changed()).await;
    }
}

/// New text of `path` after `offset`: whole lines only, unless `all`.
fn read_from(path: &Path, offset: &mut u64, all: bool) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let mut bytes = vec![];
    if f.seek(SeekFrom::Start(*offset)).is_err() || f.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let take = if all {
        bytes.len()
    } else {
        bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
    };
    *offset += take as u64;
    String::from_utf8_lossy(&bytes[..take]).into_owned()
}
