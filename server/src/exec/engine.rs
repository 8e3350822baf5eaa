//! The seam between Gadugi and a cluster's own scheduler: what an engine (Slurm, Kubernetes)
//! must do for one attempt of a task that runs away from this machine.
//!
//! Gadugi keeps the dependency graph, retries, the circuit breaker, resume, conflict
//! prediction and merge; an engine only runs a job. Every job runs `gadugi remote-task
//! --spec FILE` on some node; that process speaks to the orchestrator only through the job's
//! standard output, which the engine keeps and hands back (`read_output`), so no connection
//! from the cluster to the user's machine is needed.
//!
//! Every call is blocking (engines are driven through their command-line tools or HTTP
//! clients); the run layer calls them on the blocking pool.

use std::path::PathBuf;
use std::time::Duration;

/// One job to submit: one attempt of one task.
#[derive(Debug, Clone, Default)]
pub struct JobRequest {
    /// The idempotency key, unique per run, task and attempt (`gadugi-<run>-<task>-<n>`):
    /// submitting a name that already has a job adopts that job instead of starting another.
    pub name: String,
    /// The run, task and attempt the job is (an engine may label the job with them).
    pub run_id: String,
    pub task: String,
    pub attempt: u32,
    /// What the job runs on its node when it can read the spec's file there (a shared
    /// filesystem: Slurm): argv, never through a shell the user configured.
    pub argv: Vec<String>,
    /// What the job runs when the spec travels inside the job, in the environment variable
    /// [`SPEC_ENV`] (an engine whose jobs cannot see this machine's files: Kubernetes).
    pub inline_argv: Vec<String>,
    /// The spec itself (JSON, no secrets), for `inline_argv`.
    pub spec_json: String,
    /// Where the job's standard output goes (Slurm writes it on the node's view of a shared
    /// filesystem); also what `read_output` reads.
    pub output: PathBuf,
    /// Where the job's standard error goes.
    pub error: PathBuf,
    /// The job's working directory on the node.
    pub workdir: PathBuf,
    /// The engine ends the job after this long (the task's timeout plus set-up time).
    pub time_limit: Option<Duration>,
    /// Names of environment variables the job inherits from the submitter. Only names: a
    /// value passed this way would be saved in the engine's state, so no secret goes here.
    pub export: Vec<String>,
}

/// The environment variable that carries the spec to a job run with `inline_argv`.
pub const SPEC_ENV: &str = "GADUGI_REMOTE_SPEC";

/// The environment variable an engine may set to the name of the node a job runs on, when
/// the job's host name is not it (a Kubernetes pod's host name is the pod's).
pub const NODE_ENV: &str = "GADUGI_NODE_NAME";

/// Where a job finds its credential files when the engine puts them there itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountedSecrets {
    /// The agent's `NAME=value` file (the model API keys).
    pub agent_env_file: Option<PathBuf>,
    /// The git-credential-store file of the job's fetch and push.
    pub git_credentials: Option<PathBuf>,
}

/// A submitted job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobHandle {
    /// The engine's id of the job (a Slurm job id, a Kubernetes Job name).
    pub id: String,
    /// The name it was submitted under (`JobRequest::name`).
    pub name: String,
}

/// What the engine says of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for a node (`reason` as the engine puts it: "Resources", "Priority", ...).
    Pending { reason: String },
    /// Running on `node`.
    Running { node: String },
    /// The job's command exited with `code` (on `node`, when the engine still knows it).
    Exited { code: i32, node: Option<String> },
    /// The engine ended the job (time limit, out of memory, node failure, ...).
    Failed { reason: String },
    /// Cancelled (by `cancel`, or by an administrator).
    Cancelled,
    /// The engine no longer knows the job.
    Lost { reason: String },
}

impl JobState {
    /// Whether the job has ended, one way or another.
    pub fn is_final(&self) -> bool {
        !matches!(self, JobState::Pending { .. } | JobState::Running { .. })
    }
}

/// An engine that runs jobs: Slurm (`exec/slurm.rs`), Kubernetes.
pub trait Engine: Send + Sync {
    /// The engine's name as the configuration spells it (`slurm`).
    fn kind(&self) -> &'static str;
    /// Whether the engine can be used at all (its tools found, its controller answering);
    /// the error says what is missing and how to fix it.
    fn check(&self) -> Result<(), String>;
    /// Submits `job`, or adopts the job already submitted under `job.name`.
    fn submit(&self, job: &JobRequest) -> anyhow::Result<JobHandle>;
    /// The job submitted under `name`, if the engine knows one.
    fn find(&self, name: &str) -> anyhow::Result<Option<JobHandle>>;
    /// What the engine says of the job now.
    fn state(&self, job: &JobHandle) -> anyhow::Result<JobState>;
    /// Asks the engine to stop the job: its command gets SIGTERM and the engine's grace
    /// period before it is killed.
    fn cancel(&self, job: &JobHandle) -> anyhow::Result<()>;
    /// The job's standard output from byte `from` on (empty when there is nothing new).
    fn read_output(&self, job: &JobHandle, output: &std::path::Path, from: u64) -> anyhow::Result<Vec<u8>>;
    /// Removes what is left of an ended job once its result was collected (nothing, for an
    /// engine that forgets finished jobs by itself).
    fn reap(&self, _job: &JobHandle) -> anyhow::Result<()> {
        Ok(())
    }
    /// Where jobs find the credential files when the engine mounts them (a Kubernetes
    /// Secret); `None`: at the configured paths, on a filesystem the nodes share.
    fn mounted_secrets(&self) -> Option<MountedSecrets> {
        None
    }
    /// What `submit` would hand the cluster for `job`, as text for a person (`--dry-run`):
    /// a command line, or manifests.
    fn describe(&self, job: &JobRequest) -> anyhow::Result<String>;
}
