//! The Kubernetes engine: one `batch/v1` Job per attempt, through kube-rs (the cluster is
//! reached the way `kubectl` reaches it: kubeconfig, `KUBECONFIG`, or the in-cluster service
//! account).
//!
//! What it relies on, and why:
//! - **Gadugi owns retries**: `backoffLimit: 0` and the pod's `restartPolicy: Never`, so one
//!   Job is exactly one attempt; a failed attempt is retried by the orchestrator as a new Job
//!   (a new attempt number, a new name), never by Kubernetes behind its back.
//! - **Node disruptions are retryable**: a `podFailurePolicy` rule `FailJob` on the pod
//!   condition `DisruptionTarget` (preemption, eviction by the node's drain, a node taken away
//!   by the autoscaler) ends the Job at once with the reason `PodFailurePolicy`, which
//!   [`JobState::Failed`] reports as a node disruption; the orchestrator treats `Failed` as a
//!   transient failure and starts a new attempt. `Ignore` (let Kubernetes restart the pod
//!   without counting it) would be the other choice, but it would make a second pod of the
//!   same attempt whose output restarts from nothing and whose push races the first one's;
//!   a new attempt has its own fenced reference and its own log.
//! - **One watch per run**: the Jobs and Pods labelled `gadugi.dev/run=<run>` are watched
//!   (kube-runtime's watcher feeding a reflector store) from the first call that needs them;
//!   `state` and `read_output` answer from those stores, so a run of a hundred tasks is two
//!   watches, not a hundred polls. The run of a Job this process did not submit (a resumed
//!   orchestrator following an attempt from `remote.json`) is read once from the Job's own
//!   `gadugi.dev/run` label. The stores are also filtered here by label, so an API server (or
//!   emulator) that ignores the selector still gives the right answers.
//! - **Output is the pod's log**: the job writes its records to standard output; the whole
//!   log is fetched and the bytes from the caller's offset returned. `sinceTime` is not used:
//!   it has one-second precision, so lines of the same second would be read twice or missed,
//!   and the caller's offset is in bytes. A log rotated by the kubelet (10 MiB by default)
//!   starts again at 0; the records are small and numbered, so the reader sees nothing new
//!   rather than garbage. The log holds the container's standard error too, line by line
//!   between the records; the reader skips every line that is not a record.
//! - **No secret in the Job**: the spec in `GADUGI_REMOTE_SPEC` holds none; the agent's keys
//!   and the git credential come from the configured Secret, mounted read-only as files
//!   (`agent.env`, `git-credentials` under [`SECRETS_DIR`]).
//!
//! The engine's methods are blocking (the run layer calls them on tokio's blocking pool). The
//! engine owns a small runtime of its own (one worker thread) on which every Kubernetes call
//! and both watches run; a method hands its future to that runtime and waits on a channel.
//! The caller's thread is never needed by that future, so this cannot deadlock whether the
//! caller is a blocking-pool thread, a runtime worker or a plain thread (`check` from the
//! CLI), and no `block_on` is ever nested inside another runtime.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{AsyncReadExt, StreamExt};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, Namespace, ObjectFieldSelector, Pod, PodSpec, PodTemplateSpec,
    ResourceRequirements, Secret, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Config};
use sha2::{Digest, Sha256};

use crate::exec::engine::Engine;
use crate::exec::engine::JobHandle;
use crate::exec::engine::JobRequest;
use crate::exec::engine::JobState;
use crate::exec::engine::MountedSecrets;
use crate::exec::engine::{NODE_ENV, SPEC_ENV};

/// Where the configured Secret is mounted in the job's container.
pub const SECRETS_DIR: &str = "/var/run/gadugi/secrets";
/// The Secret's key holding the agent's `NAME=value` file (the model API keys).
pub const SECRET_AGENT_ENV: &str = "agent.env";
/// The Secret's key holding the git-credential-store file of the job's fetch and push.
pub const SECRET_GIT_CREDENTIALS: &str = "git-credentials";

/// Labels every Job (and its pod) carries.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const RUN_LABEL: &str = "gadugi.dev/run";
const TASK_LABEL: &str = "gadugi.dev/task";
const ATTEMPT_LABEL: &str = "gadugi.dev/attempt";
/// The label the Job controller puts on its pods (the older spelling too: clusters before
/// 1.27 set only `job-name`).
const POD_JOB_LABELS: [&str; 2] = ["batch.kubernetes.io/job-name", "job-name"];
/// The job's one container.
const CONTAINER: &str = "gadugi";
/// How long one Kubernetes request may take before the run loop is told it failed (a
/// request still running after this is hung; the loop asks again on its next turn).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The `[executor.kubernetes]` table, as the engine takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSettings {
    /// The namespace Jobs are created in.
    pub namespace: String,
    /// The image jobs run: git, the agent CLIs and `gadugi` inside.
    pub image: String,
    /// CPU of each job's container (requests = limits), e.g. `2`.
    pub cpu: Option<String>,
    /// Memory of each job's container (requests = limits), e.g. `4Gi`.
    pub memory: Option<String>,
    /// Ephemeral storage (the clone, the build) of each job's container, e.g. `20Gi`.
    pub ephemeral_storage: Option<String>,
    /// A Secret in the namespace with the keys `agent.env` and `git-credentials`, mounted
    /// read-only at [`SECRETS_DIR`].
    pub secret: Option<String>,
    /// The pods' service account (`None`: the namespace's default).
    pub service_account: Option<String>,
    /// How long Kubernetes keeps a finished Job the orchestrator did not reap.
    pub ttl_seconds_after_finished: i32,
}

impl Default for KubernetesSettings {
    fn default() -> Self {
        KubernetesSettings {
            namespace: "default".into(),
            image: String::new(),
            cpu: None,
            memory: None,
            ephemeral_storage: None,
            secret: None,
            service_account: None,
            ttl_seconds_after_finished: 3600,
        }
    }
}

/// Runs attempts as Kubernetes Jobs.
pub struct Kubernetes {
    inner: Arc<Inner>,
    /// The engine's own runtime (see the module's documentation), made on first use.
    runtime: OnceLock<std::result::Result<tokio::runtime::Runtime, String>>,
}

/// What the engine's futures share (owned by them, so they can run on the engine's runtime).
struct Inner {
    settings: KubernetesSettings,
    /// A kubeconfig file to use instead of kubectl's inference (how tests point the engine
    /// at their API server without changing this process's environment).
    kubeconfig: Option<PathBuf>,
    client: tokio::sync::OnceCell<Client>,
    /// The watches, by the run's label value.
    watches: tokio::sync::Mutex<HashMap<String, Arc<RunWatch>>>,
    /// The run label of every Job name this process has seen.
    runs: Mutex<HashMap<String, String>>,
    /// Jobs this process cancelled: their absence is not a loss.
    cancelled: Mutex<HashSet<String>>,
}

/// One run's watch: its Jobs and their Pods, kept current by two watchers.
struct RunWatch {
    jobs: Store<Job>,
    pods: Store<Pod>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RunWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Kubernetes {
    fn drop(&mut self) {
        // The last owner may be async code: a runtime must not be dropped (which blocks)
        // there. Its threads end in the background; the watches end with them.
        if let Some(Ok(runtime)) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Kubernetes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubernetes")
            .field("settings", &self.inner.settings)
            .field("kubeconfig", &self.inner.kubeconfig)
            .finish()
    }
}

impl Kubernetes {
    /// An engine creating Jobs as `settings` say, in the cluster kubectl would use.
    pub fn new(settings: KubernetesSettings) -> Kubernetes {
        Kubernetes::build(settings, None)
    }

    /// The same engine, reaching the cluster of the kubeconfig file `path` (its current
    /// context) instead of the one kubectl would infer.
    pub fn with_kubeconfig(self, path: PathBuf) -> Kubernetes {
        Kubernetes::build(self.inner.settings.clone(), Some(path))
    }

    fn build(settings: KubernetesSettings, kubeconfig: Option<PathBuf>) -> Kubernetes {
        Kubernetes {
            inner: Arc::new(Inner {
                settings,
                kubeconfig,
                client: tokio::sync::OnceCell::new(),
                watches: tokio::sync::Mutex::new(HashMap::new()),
                runs: Mutex::new(HashMap::new()),
                cancelled: Mutex::new(HashSet::new()),
            }),
            runtime: OnceLock::new(),
        }
    }

    /// The manifest of the Job that runs `job`.
    pub fn manifest(&self, job: &JobRequest) -> Result<Job> {
        manifest(&self.inner.settings, job)
    }

    /// Runs `future` on the engine's runtime and waits for its result.
    fn block<T: Send + 'static>(&self, future: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
        let runtime = self
            .runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("gadugi-kubernetes")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the Kubernetes client's runtime: {e}"))
            })
            .as_ref()
            .map_err(|e| anyhow!("{e}"))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let result = match tokio::time::timeout(CALL_TIMEOUT, future).await {
                Ok(result) => result,
                Err(_) => Err(anyhow!(
                    "the Kubernetes API server did not answer in {} s",
                    CALL_TIMEOUT.as_secs()
                )),
            };
            // The caller may have gone (a panic); nothing to tell then.
            let _ = tx.send(result);
        });
        rx.recv()
            .map_err(|_| anyhow!("the Kubernetes client's runtime stopped"))?
    }
}

/// `name` as a Kubernetes object name (DNS-1123 label: lowercase letters, digits and `-`,
/// at most 63, starting and ending with a letter or digit). A name that had to change keeps
/// a short hash of the original, so two different names never map to one Job.
pub fn job_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed == name && !name.is_empty() && name.len() <= 63 {
        return name.to_string();
    }
    let hash = short_hash(name);
    let keep: String = trimmed.chars().take(63 - 1 - hash.len()).collect();
    let keep = keep.trim_end_matches('-');
    if keep.is_empty() {
        format!("gadugi-{hash}")
    } else {
        format!("{keep}-{hash}")
    }
}

/// `value` as a label value (at most 63 of `[A-Za-z0-9._-]`, starting and ending with a
/// letter or digit), with a short hash of the original when it had to change.
pub fn label_value(value: &str) -> String {
    let mapped: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed == value && value.len() <= 63 {
        return value.to_string();
    }
    let hash = short_hash(value);
    let keep: String = trimmed.chars().take(63 - 1 - hash.len()).collect();
    let keep = keep.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if keep.is_empty() {
        hash
    } else {
        format!("{keep}-{hash}")
    }
}

/// The first 8 hexadecimal digits of the SHA-256 of `text`.
fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Job that runs `job`.
fn manifest(settings: &KubernetesSettings, job: &JobRequest) -> Result<Job> {
    if settings.image.trim().is_empty() {
        bail!(
            "[executor.kubernetes] image is empty: name the image the jobs run (git, the agent CLIs and gadugi inside)"
        );
    }
    if job.inline_argv.is_empty() {
        bail!("job {}: nothing to run (empty inline argv)", job.name);
    }
    let labels: BTreeMap<String, String> = [
        (MANAGED_BY, "gadugi".to_string()),
        (RUN_LABEL, label_value(&job.run_id)),
        (TASK_LABEL, label_value(&job.task)),
        (ATTEMPT_LABEL, job.attempt.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let quantities: BTreeMap<String, Quantity> = [
        ("cpu", &settings.cpu),
        ("memory", &settings.memory),
        ("ephemeral-storage", &settings.ephemeral_storage),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), Quantity(v.clone()))))
    .collect();
    let resources = (!quantities.is_empty()).then(|| ResourceRequirements {
        // Requests equal to limits: the scheduler places the job where what it may use is
        // free, and the pod is never the first one evicted under pressure (Guaranteed, when
        // cpu and memory are both set).
        requests: Some(quantities.clone()),
        limits: Some(quantities),
        ..Default::default()
    });
    let (volumes, mounts) = match &settings.secret {
        Some(secret) => (
            Some(vec![Volume {
                name: "gadugi-secrets".into(),
                // The whole Secret: a per-key item cannot be optional, and either key may be
                // missing (a public repository needs no git credential).
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    default_mode: Some(0o400),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            Some(vec![VolumeMount {
                name: "gadugi-secrets".into(),
                mount_path: SECRETS_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            }]),
        ),
        None => (None, None),
    };
    let container = Container {
        name: CONTAINER.into(),
        image: Some(settings.image.clone()),
        // `command`, not `args`: the image's entrypoint is not Gadugi's business.
        command: Some(job.inline_argv.clone()),
        // Only the spec (no secret in it). `job.export` is ignored: those names refer to the
        // submitter's environment, which a pod on another machine cannot inherit, and copying
        // their values into the Job would save them in the cluster's state for anyone who can
        // read Jobs. What the job needs from outside comes from the image and the Secret.
        env: Some(vec![
            EnvVar {
                name: SPEC_ENV.into(),
                value: Some(job.spec_json.clone()),
                ..Default::default()
            },
            // Where the pod runs, from the downward API: the remote task reports it as its
            // node (its host name is the pod's name).
            EnvVar {
                name: NODE_ENV.into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "spec.nodeName".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        resources,
        volume_mounts: mounts,
        ..Default::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&job.name)),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([("gadugi.dev/job".to_string(), job.name.clone())])),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: job
                .time_limit
                .map(|limit| i64::try_from(limit.as_secs()).unwrap_or(i64::MAX).max(1)),
            ttl_seconds_after_finished: Some(settings.ttl_seconds_after_finished),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "FailJob".into(),
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".into(),
                        status: "True".into(),
                    }]),
                    ..Default::default()
                }],
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    service_account_name: settings.service_account.clone(),
                    // The job never talks to the Kubernetes API, and the agent must not get a
                    // token that could.
                    automount_service_account_token: Some(false),
                    containers: vec![container],
                    volumes,
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Whether an API error is a 404.
fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

/// The object `name`, or `None` when the API says 404 (by code: not every server spells
/// the reason `NotFound`).
async fn get_opt<K>(api: &Api<K>, name: &str) -> kube::Result<Option<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(Some(object)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The reason and message of the condition `kind` among `conditions`, if it holds
/// (`status: "True"`); `fields` reads a condition's type, status, reason and message.
fn holding<'a, C>(
    conditions: Option<&'a Vec<C>>,
    kind: &str,
    fields: impl Fn(&'a C) -> (&'a str, &'a str, Option<&'a str>, Option<&'a str>),
) -> Option<(&'a str, &'a str)> {
    conditions?
        .iter()
        .map(fields)
        .find_map(|(type_, status, reason, message)| {
            (type_ == kind && status == "True").then(|| (reason.unwrap_or(""), message.unwrap_or("")))
        })
}

/// A condition of a Job that holds: its reason and message.
fn job_condition<'a>(job: &'a Job, kind: &str) -> Option<(&'a str, &'a str)> {
    holding(job.status.as_ref()?.conditions.as_ref(), kind, |c| {
        (&c.type_, &c.status, c.reason.as_deref(), c.message.as_deref())
    })
}

/// A condition of a pod that holds: its reason and message.
fn pod_condition<'a>(pod: &'a Pod, kind: &str) -> Option<(&'a str, &'a str)> {
    holding(pod.status.as_ref()?.conditions.as_ref(), kind, |c| {
        (&c.type_, &c.status, c.reason.as_deref(), c.message.as_deref())
    })
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref()?.node_name.clone().filter(|n| !n.is_empty())
}

/// How a pod that stopped ended: a state, when it says something.
fn pod_ended(pod: &Pod) -> Option<JobState> {
    let status = pod.status.as_ref()?;
    if let Some((_, message)) = pod_condition(pod, "DisruptionTarget") {
        return Some(JobState::Failed {
            reason: format!("node disruption: {}", or_unknown(message)),
        });
    }
    if status.reason.as_deref() == Some("Evicted") {
        return Some(JobState::Failed {
            reason: format!("evicted: {}", or_unknown(status.message.as_deref().unwrap_or(""))),
        });
    }
    let terminated = status
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == CONTAINER)?
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    if terminated.reason.as_deref() == Some("OOMKilled") {
        return Some(JobState::Failed {
            reason: "out of memory (OOMKilled)".into(),
        });
    }
    Some(JobState::Exited {
        code: terminated.exit_code,
        node: node_of(pod),
    })
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() {
        "no message"
    } else {
        text
    }
}

/// What the Job and its pods say of an attempt.
pub fn state_of(job: &Job, pods: &[&Pod]) -> JobState {
    // The first pod is the attempt's (backoffLimit 0: there is no second one but a
    // replacement Kubernetes made while the first was being deleted).
    let pod = pods
        .iter()
        .min_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .copied();
    if job_condition(job, "Complete").is_some() {
        return match pod.and_then(pod_ended) {
            Some(exited @ JobState::Exited { .. }) => exited,
            // The Job completed, so its container exited 0; the pod is gone already.
            _ => JobState::Exited {
                code: 0,
                node: pod.and_then(node_of),
            },
        };
    }
    let failed = job_condition(job, "Failed").or_else(|| job_condition(job, "FailureTarget"));
    if let Some((reason, message)) = failed {
        return match reason {
            "DeadlineExceeded" => JobState::Failed {
                reason: format!(
                    "deadline exceeded: the job ran past its activeDeadlineSeconds ({})",
                    or_unknown(message)
                ),
            },
            "PodFailurePolicy" => JobState::Failed {
                reason: format!("node disruption: {}", or_unknown(message)),
            },
            _ => match pod.and_then(pod_ended) {
                Some(state) => state,
                None => JobState::Failed {
                    reason: format!(
                        "{}: {} (its pod is gone: deleted, or lost with its node)",
                        or_unknown(reason),
                        or_unknown(message)
                    ),
                },
            },
        };
    }
    let Some(pod) = pod else {
        return JobState::Pending {
            reason: "waiting for the Job controller to create the pod".into(),
        };
    };
    let status = pod.status.clone().unwrap_or_default();
    match status.phase.as_deref() {
        Some("Succeeded") | Some("Failed") => pod_ended(pod).unwrap_or(JobState::Failed {
            reason: format!(
                "the pod failed: {}",
                or_unknown(status.message.as_deref().unwrap_or(""))
            ),
        }),
        Some("Running") => JobState::Running {
            node: node_of(pod).unwrap_or_default(),
        },
        // The node stopped reporting: the pod may still run there; the Job controller decides.
        Some("Unknown") => JobState::Running {
            node: node_of(pod).unwrap_or_default(),
        },
        _ => {
            let waiting = status
                .container_statuses
                .iter()
                .flatten()
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
                .find_map(|w| {
                    w.reason
                        .as_ref()
                        .map(|r| format!("{r}: {}", or_unknown(w.message.as_deref().unwrap_or(""))))
                });
            let unscheduled = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.reason.as_deref().unwrap_or("Unschedulable"),
                        or_unknown(c.message.as_deref().unwrap_or(""))
                    )
                });
            JobState::Pending {
                reason: unscheduled.or(waiting).unwrap_or_else(|| "Pending".into()),
            }
        }
    }
}

/// Whether `pod` belongs to the Job `name`.
fn pod_of(pod: &Pod, name: &str) -> bool {
    let labels = pod.metadata.labels.as_ref();
    POD_JOB_LABELS
        .iter()
        .any(|l| labels.and_then(|m| m.get(*l)).map(String::as_str) == Some(name))
}

impl Inner {
    fn namespace(&self) -> &str {
        &self.settings.namespace
    }

    async fn client(&self) -> Result<Client> {
        let client = self
            .client
            .get_or_try_init(|| async {
                let config = match &self.kubeconfig {
                    Some(path) => {
                        let kubeconfig = Kubeconfig::read_from(path)
                            .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
                        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                            .await
                            .with_context(|| format!("using the kubeconfig {}", path.display()))?
                    }
                    None => Config::infer().await.context(
                        "no Kubernetes cluster is configured: Gadugi reaches it as kubectl does \
                         (KUBECONFIG, ~/.kube/config, or the in-cluster service account); make \
                         `kubectl get jobs` work first",
                    )?,
                };
                Client::try_from(config).context("cannot make a Kubernetes client")
            })
            .await?;
        Ok(client.clone())
    }

    async fn jobs(&self) -> Result<Api<Job>> {
        Ok(Api::namespaced(self.client().await?, self.namespace()))
    }

    async fn pods(&self) -> Result<Api<Pod>> {
        Ok(Api::namespaced(self.client().await?, self.namespace()))
    }

    fn remember_run(&self, name: &str, job: &Job) {
        if let Some(run) = job.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)) {
            lock(&self.runs).insert(name.to_string(), run.clone());
        }
    }

    /// The watch of `run`, started when first asked for; waits until both stores hold what
    /// the first list said.
    async fn watch(&self, run: &str) -> Result<Arc<RunWatch>> {
        let mut watches = self.watches.lock().await;
        if let Some(watch) = watches.get(run) {
            return Ok(watch.clone());
        }
        let client = self.client().await?;
        let selector = format!("{RUN_LABEL}={run}");
        let config = watcher::Config::default().labels(&selector);
        let (jobs, jobs_writer) = reflector::store::<Job>();
        let (pods, pods_writer) = reflector::store::<Pod>();
        let job_api: Api<Job> = Api::namespaced(client.clone(), self.namespace());
        let pod_api: Api<Pod> = Api::namespaced(client, self.namespace());
        // Errors (a watch cut, the server away) are retried by the watcher with backoff; the
        // stores keep their last state meanwhile.
        let jobs_task = tokio::spawn(
            reflector::reflector(jobs_writer, watcher(job_api, config.clone()))
                .default_backoff()
                .for_each(|event| async move {
                    if let Err(e) = event {
                        tracing::debug!("watching Jobs: {e}");
                    }
                }),
        );
        let pods_task = tokio::spawn(
            reflector::reflector(pods_writer, watcher(pod_api, config))
                .default_backoff()
                .for_each(|event| async move {
                    if let Err(e) = event {
                        tracing::debug!("watching Pods: {e}");
                    }
                }),
        );
        let watch = Arc::new(RunWatch {
            jobs,
            pods,
            tasks: vec![jobs_task, pods_task],
        });
        let ready = async {
            watch.jobs.wait_until_ready().await?;
            watch.pods.wait_until_ready().await
        };
        tokio::time::timeout(CALL_TIMEOUT / 2, ready)
            .await
            .map_err(|_| anyhow!("the first list of the run's Jobs and Pods did not come (selector {selector})"))?
            .map_err(|e| anyhow!("watching the run's Jobs and Pods: {e}"))?;
        watches.insert(run.to_string(), watch.clone());
        Ok(watch)
    }

    /// The run label of Job `name`: remembered, or read from the Job. `None`: no such Job.
    async fn run_of(&self, name: &str) -> Result<Option<(String, Option<Job>)>> {
        if let Some(run) = lock(&self.runs).get(name).cloned() {
            return Ok(Some((run, None)));
        }
        let Some(job) = get_opt(&self.jobs().await?, name).await? else {
            return Ok(None);
        };
        let run = job
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(RUN_LABEL))
            .cloned()
            .ok_or_else(|| anyhow!("Job {name} has no {RUN_LABEL} label: Gadugi did not create it"))?;
        lock(&self.runs).insert(name.to_string(), run.clone());
        Ok(Some((run, Some(job))))
    }

    async fn submit(&self, job: JobRequest) -> Result<JobHandle> {
        let manifest = manifest(&self.settings, &job)?;
        let name = manifest.metadata.name.clone().unwrap_or_default();
        let api = self.jobs().await?;
        let created = match api.create(&PostParams::default(), &manifest).await {
            Ok(created) => created,
            Err(e) if api_code(&e) == Some(409) => {
                let existing = api
                    .get(&name)
                    .await
                    .with_context(|| format!("Job {name} exists but cannot be read"))?;
                let ours = existing
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(MANAGED_BY))
                    .map(String::as_str)
                    == Some("gadugi");
                if !ours {
                    bail!(
                        "a Job named {name} exists in namespace {} and Gadugi did not create it: delete or rename it",
                        self.namespace()
                    );
                }
                existing
            }
            Err(e) => return Err(e).with_context(|| format!("creating Job {name} in namespace {}", self.namespace())),
        };
        self.remember_run(&name, &created);
        self.watch(&label_value(&job.run_id)).await?;
        Ok(JobHandle {
            id: name,
            name: job.name,
        })
    }

    async fn find(&self, name: String) -> Result<Option<JobHandle>> {
        let id = job_name(&name);
        match self.run_of(&id).await? {
            Some((run, fetched)) => {
                self.watch(&run).await?;
                // A remembered run does not mean the Job still exists: ask, unless just read.
                if fetched.is_none() && get_opt(&self.jobs().await?, &id).await?.is_none() {
                    return Ok(None);
                }
                Ok(Some(JobHandle { id, name }))
            }
            None => Ok(None),
        }
    }

    async fn state(&self, handle: JobHandle) -> Result<JobState> {
        let gone = || {
            if lock(&self.cancelled).contains(&handle.id) {
                JobState::Cancelled
            } else {
                JobState::Lost {
                    reason: format!(
                        "Job {} is gone from namespace {} (deleted by someone else, or removed by its ttlSecondsAfterFinished)",
                        handle.id,
                        self.namespace()
                    ),
                }
            }
        };
        let Some((run, fetched)) = self.run_of(&handle.id).await? else {
            return Ok(gone());
        };
        let watch = self.watch(&run).await?;
        let key = ObjectRef::new(&handle.id).within(self.namespace());
        let job = match watch.jobs.get(&key) {
            Some(job) => (*job).clone(),
            // Just created, and the watch has not brought it yet: ask once.
            None => match fetched {
                Some(job) => job,
                None => match get_opt(&self.jobs().await?, &handle.id).await? {
                    Some(job) => job,
                    None => return Ok(gone()),
                },
            },
        };
        let pods = watch.pods.state();
        let mine: Vec<&Pod> = pods
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| pod_of(p, &handle.id))
            .collect();
        Ok(state_of(&job, &mine))
    }

    async fn read_output(&self, handle: JobHandle, from: u64) -> Result<Vec<u8>> {
        let Some((run, _)) = self.run_of(&handle.id).await? else {
            return Ok(Vec::new());
        };
        let watch = self.watch(&run).await?;
        let pods = watch.pods.state();
        let Some(pod) = pods
            .iter()
            .filter(|p| pod_of(p, &handle.id))
            .min_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
        else {
            return Ok(Vec::new());
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let params = LogParams {
            container: Some(CONTAINER.into()),
            ..Default::default()
        };
        let api = self.pods().await?;
        let mut log = Vec::new();
        match api.log_stream(&pod_name, &params).await {
            Ok(mut stream) => {
                stream
                    .read_to_end(&mut log)
                    .await
                    .with_context(|| format!("reading the log of pod {pod_name}"))?;
            }
            // No pod any more, or its container has not started: no output yet.
            Err(e) if matches!(api_code(&e), Some(400 | 404)) => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading the log of pod {pod_name}")),
        }
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        Ok(log.get(from..).map(<[u8]>::to_vec).unwrap_or_default())
    }

    async fn delete(&self, handle: JobHandle, params: DeleteParams, cancel: bool) -> Result<()> {
        if cancel {
            lock(&self.cancelled).insert(handle.id.clone());
        }
        match self.jobs().await?.delete(&handle.id, &params).await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting Job {}", handle.id)),
        }
    }

    async fn check(&self) -> std::result::Result<(), String> {
        if self.settings.image.trim().is_empty() {
            return Err("[executor.kubernetes] image is not set: name the image the jobs run (git, the agent CLIs and gadugi inside)".into());
        }
        let ns = self.namespace().to_string();
        let client = self.client().await.map_err(|e| format!("{e:#}"))?;
        if let Err(e) = client.apiserver_version().await {
            return Err(format!(
                "the Kubernetes API server ({}) does not answer: {e} (check the cluster is up and `kubectl version` works)",
                self.kubeconfig
                    .as_ref()
                    .map(|p| format!("from {}", p.display()))
                    .unwrap_or_else(|| "as kubectl finds it".into())
            ));
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        match namespaces.get(&ns).await {
            Ok(_) => {}
            Err(e) if not_found(&e) => {
                return Err(format!(
                    "namespace `{ns}` does not exist: create it (kubectl create namespace {ns}) or set [executor.kubernetes] namespace"
                ))
            }
            // Reading namespaces is a cluster-wide right a namespaced user often lacks; the
            // checks below still tell whether this one can be used.
            Err(e) if api_code(&e) == Some(403) => {}
            Err(e) => return Err(format!("cannot look up namespace `{ns}`: {e}")),
        }
        if let Some(secret) = &self.settings.secret {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
            match secrets.get(secret).await {
                Ok(found) => {
                    let keys: Vec<&String> = found.data.iter().flat_map(|d| d.keys()).collect();
                    if !keys.iter().any(|k| *k == SECRET_AGENT_ENV || *k == SECRET_GIT_CREDENTIALS) {
                        return Err(format!(
                            "Secret `{secret}` in namespace `{ns}` has neither the key {SECRET_AGENT_ENV} nor {SECRET_GIT_CREDENTIALS}: \
                             recreate it with kubectl create secret generic {secret} -n {ns} \
                             --from-file={SECRET_AGENT_ENV}=PATH --from-file={SECRET_GIT_CREDENTIALS}=PATH"
                        ));
                    }
                }
                Err(e) if not_found(&e) => {
                    return Err(format!(
                        "Secret `{secret}` does not exist in namespace `{ns}`: create it with kubectl create secret generic {secret} -n {ns} \
                         --from-file={SECRET_AGENT_ENV}=PATH --from-file={SECRET_GIT_CREDENTIALS}=PATH \
                         (either key may be left out), or remove [executor.kubernetes] secret"
                    ))
                }
                // The pods mount it; the orchestrator's user need not read it.
                Err(e) if api_code(&e) == Some(403) => {}
                Err(e) => return Err(format!("cannot look up Secret `{secret}` in namespace `{ns}`: {e}")),
            }
        }
        let needed = [
            ("create", "batch", "jobs", None),
            ("delete", "batch", "jobs", None),
            ("watch", "batch", "jobs", None),
            ("watch", "", "pods", None),
            ("get", "", "pods", Some("log")),
        ];
        let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
        for (verb, group, resource, subresource) in needed {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(ns.clone()),
                        verb: Some(verb.into()),
                        group: Some(group.into()),
                        resource: Some(resource.into()),
                        subresource: subresource.map(String::from),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let what = match subresource {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource.to_string(),
            };
            match reviews.create(&PostParams::default(), &review).await {
                Ok(answer) if answer.status.as_ref().is_some_and(|s| s.allowed) => {}
                Ok(answer) => {
                    let why = answer.status.and_then(|s| s.reason).unwrap_or_default();
                    return Err(format!(
                        "this user may not {verb} {what} in namespace `{ns}`{}: grant it with a Role \
                         (kubectl create role gadugi -n {ns} --verb=create,get,list,watch,delete --resource=jobs.batch,pods,pods/log) \
                         and a RoleBinding to this user",
                        if why.is_empty() { String::new() } else { format!(" ({why})") }
                    ));
                }
                // A cluster without the authorization API: at least listing Jobs must work.
                Err(e) if matches!(api_code(&e), Some(404)) => {
                    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
                    jobs.list(&ListParams::default().limit(1))
                        .await
                        .map_err(|e| format!("cannot list Jobs in namespace `{ns}`: {e}"))?;
                    break;
                }
                Err(e) => {
                    return Err(format!(
                        "cannot ask whether this user may {verb} {what} in namespace `{ns}`: {e}"
                    ))
                }
            }
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine for Kubernetes {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn check(&self) -> std::result::Result<(), String> {
        let inner = self.inner.clone();
        self.block(async move { Ok(inner.check().await) })
            .map_err(|e| format!("{e:#}"))?
    }

    fn submit(&self, job: &JobRequest) -> Result<JobHandle> {
        let (inner, job) = (self.inner.clone(), job.clone());
        self.block(async move { inner.submit(job).await })
    }

    fn find(&self, name: &str) -> Result<Option<JobHandle>> {
        let (inner, name) = (self.inner.clone(), name.to_string());
        self.block(async move { inner.find(name).await })
    }

    fn state(&self, job: &JobHandle) -> Result<JobState> {
        let (inner, job) = (self.inner.clone(), job.clone());
        self.block(async move { inner.state(job).await })
    }

    fn cancel(&self, job: &JobHandle) -> Result<()> {
        // Foreground: the Job stays (with a deletion timestamp) until its pod is gone, so
        // the pod gets SIGTERM and its grace period to push what the agent did, and the
        // attempt ends as Cancelled only when nothing of it runs any more.
        let (inner, job) = (self.inner.clone(), job.clone());
        self.block(async move { inner.delete(job, DeleteParams::foreground(), true).await })
    }

    fn read_output(&self, job: &JobHandle, _output: &Path, from: u64) -> Result<Vec<u8>> {
        let (inner, job) = (self.inner.clone(), job.clone());
        self.block(async move { inner.read_output(job, from).await })
    }

    fn reap(&self, job: &JobHandle) -> Result<()> {
        // Background: the Job goes at once, the garbage collector removes its pod after.
        let (inner, job) = (self.inner.clone(), job.clone());
        self.block(async move { inner.delete(job, DeleteParams::background(), false).await })
    }

    fn mounted_secrets(&self) -> Option<MountedSecrets> {
        self.inner.settings.secret.as_ref().map(|_| MountedSecrets {
            agent_env_file: Some(Path::new(SECRETS_DIR).join(SECRET_AGENT_ENV)),
            git_credentials: Some(Path::new(SECRETS_DIR).join(SECRET_GIT_CREDENTIALS)),
        })
    }

    fn describe(&self, job: &JobRequest) -> Result<String> {
        let manifest = self.manifest(job)?;
        serde_yaml_ng::to_string(&manifest).context("writing the Job's manifest as YAML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(status: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j"}, "status": status})).expect("a Job")
    }

    fn pod(name: &str, node: Option<&str>, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"batch.kubernetes.io/job-name": "j"}},
            "spec": {"containers": [], "nodeName": node},
            "status": status,
        }))
        .expect("a Pod")
    }

    #[test]
    fn names_become_dns_labels_and_label_values() {
        assert_eq!(job_name("gadugi-r1-build-1"), "gadugi-r1-build-1");
        let changed = job_name("gadugi-R1-my_task-1");
        assert!(changed.starts_with("gadugi-r1-my-task-1-"), "{changed}");
        assert_eq!(changed.len(), "gadugi-r1-my-task-1-".len() + 8);
        // Two names that differ only where the mapping loses information stay apart.
        assert_ne!(job_name("a_b"), job_name("a.b"));
        let long = job_name(&"x".repeat(100));
        assert!(long.len() <= 63 && !long.ends_with('-'), "{long}");
        assert!(job_name("___").starts_with("gadugi-"), "{}", job_name("___"));
        assert_eq!(label_value("2026-12-01_00.30"), "2026-12-01_00.30");
        let label = label_value("my task/é");
        assert!(label.starts_with("my-task-") && label.len() <= 63, "{label}");
        assert_eq!(label_value(&"t".repeat(63)), "t".repeat(63));
        assert!(label_value(&"t".repeat(64)).len() <= 63);
    }

    #[test]
    fn jobs_and_pods_become_states() {
        let running = pod("p", Some("n1"), json!({"phase": "Running"}));
        assert_eq!(
            state_of(&job(json!({})), &[&running]),
            JobState::Running { node: "n1".into() }
        );
        let waiting = pod(
            "p",
            None,
            json!({"phase": "Pending", "containerStatuses": [{"name": "gadugi", "image": "i", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}),
        );
        assert_eq!(
            state_of(&job(json!({})), &[&waiting]),
            JobState::Pending {
                reason: "ImagePullBackOff: Back-off pulling image".into()
            }
        );
        // The Job completed and its pod is gone already.
        let complete = job(json!({"conditions": [{"type": "Complete", "status": "True"}]}));
        assert_eq!(state_of(&complete, &[]), JobState::Exited { code: 0, node: None });
        // A condition that does not hold says nothing.
        let not_yet = job(json!({"conditions": [{"type": "Failed", "status": "False"}]}));
        assert!(matches!(state_of(&not_yet, &[]), JobState::Pending { .. }));
        // The pod ended before the Job controller marked the Job.
        let oom = pod(
            "p",
            Some("n1"),
            json!({"phase": "Failed", "containerStatuses": [{"name": "gadugi", "image": "i", "imageID": "",
                "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
        );
        assert_eq!(
            state_of(&job(json!({})), &[&oom]),
            JobState::Failed {
                reason: "out of memory (OOMKilled)".into()
            }
        );
        let failure_target = job(json!({"conditions": [{"type": "FailureTarget", "status": "True",
            "reason": "DeadlineExceeded", "message": "late"}]}));
        assert!(
            matches!(state_of(&failure_target, &[&running]), JobState::Failed { reason } if reason.starts_with("deadline exceeded"))
        );
    }
}
