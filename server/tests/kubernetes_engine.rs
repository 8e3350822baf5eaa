//! The Kubernetes engine (`exec/kubernetes.rs`) against kmock's Kubernetes API emulator on
//! 127.0.0.1 (`common::kmock`), with the test playing the Job controller and the kubelet:
//! the Job's manifest, submit → pending → running → exited with the pod's log read back
//! from an offset, idempotent submit and adoption by a second engine, one watch per run,
//! the ways an attempt fails (deadline, OOMKilled, eviction, node disruption, a deleted pod,
//! a deleted Job), cancel and reap with their propagation policies, check()'s errors, and
//! the Job's container command run for real by the test's kubelet: `gadugi remote-task
//! --spec-env` from the spec in its environment, its records read back from the pod's log.
//!
//! What only a real cluster shows is not here: a pod really scheduled, an image pulled, the
//! Secret really mounted, SIGTERM and the grace period on cancel, the kubelet's own log
//! handling.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::kmock::{write_kubeconfig, Kmock};
use gadugi::exec::engine::{Engine, JobHandle, JobRequest, JobState, MountedSecrets};
use gadugi::exec::kubernetes::{job_name, Kubernetes, KubernetesSettings};
use serde_json::{json, Value};

const NS: &str = "agents";

fn settings() -> KubernetesSettings {
    KubernetesSettings {
        namespace: NS.into(),
        image: "registry.example.com/agents:2026-11".into(),
        cpu: Some("2".into()),
        memory: Some("4Gi".into()),
        ephemeral_storage: Some("20Gi".into()),
        secret: Some("gadugi-agent-keys".into()),
        service_account: Some("gadugi-agent".into()),
        ttl_seconds_after_finished: 3600,
    }
}

fn engine(kmock: &Kmock, settings: KubernetesSettings) -> Kubernetes {
    Kubernetes::new(settings).with_kubeconfig(kmock.kubeconfig.clone())
}

/// Attempt `attempt` of `task` in `run`, as `run/remote.rs` makes it.
fn request(run: &str, task: &str, attempt: u32) -> JobRequest {
    JobRequest {
        name: format!("gadugi-{run}-{task}-{attempt}"),
        run_id: run.into(),
        task: task.into(),
        attempt,
        argv: vec![
            "gadugi".into(),
            "remote-task".into(),
            "--spec".into(),
            "/x/remote-spec.json".into(),
        ],
        inline_argv: vec![
            "gadugi".into(),
            "remote-task".into(),
            "--spec-env".into(),
            "GADUGI_REMOTE_SPEC".into(),
        ],
        spec_json: format!(r#"{{"run_id":"{run}","task_id":"{task}","attempt":{attempt}}}"#),
        time_limit: Some(Duration::from_secs(5400)),
        // Names of the submitter's variables: a pod elsewhere cannot inherit them.
        export: vec!["PATH".into(), "HOME".into()],
        ..Default::default()
    }
}

/// Asks `state` until `accept` takes it (the watch brings changes a moment after they
/// happen); fails the test with the last state after 30 s.
fn wait_state(engine: &Kubernetes, job: &JobHandle, what: &str, accept: impl Fn(&JobState) -> bool) -> JobState {
    let start = Instant::now();
    loop {
        let state = engine.state(job).expect("state");
        if accept(&state) {
            return state;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "job {} never became {what}; last state {state:?}",
            job.id
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn requests_matching(kmock: &Kmock, method: &str, path: &str, watch: bool) -> Vec<Value> {
    kmock
        .requests()
        .into_iter()
        .filter(|r| r["method"] == method && r["path"] == path && (r["query"]["watch"] == "true") == watch)
        .collect()
}

/// The manifest `gadugi run --executor kubernetes --dry-run` prints, reviewed field by field
/// against the issue: every line of it is asserted.
const EXPECTED_MANIFEST: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  annotations:
    gadugi.dev/job: gadugi-r1-build-2
  labels:
    app.kubernetes.io/managed-by: gadugi
    gadugi.dev/attempt: '2'
    gadugi.dev/run: r1
    gadugi.dev/task: build
  name: gadugi-r1-build-2
  namespace: agents
spec:
  activeDeadlineSeconds: 5400
  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: FailJob
      onPodConditions:
      - status: 'True'
        type: DisruptionTarget
  template:
    metadata:
      labels:
        app.kubernetes.io/managed-by: gadugi
        gadugi.dev/attempt: '2'
        gadugi.dev/run: r1
        gadugi.dev/task: build
    spec:
      automountServiceAccountToken: false
      containers:
      - command:
        - gadugi
        - remote-task
        - --spec-env
        - GADUGI_REMOTE_SPEC
        env:
        - name: GADUGI_REMOTE_SPEC
          value: '{"run_id":"r1","task_id":"build","attempt":2}'
        - name: GADUGI_NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        image: registry.example.com/agents:2026-11
        name: gadugi
        resources:
          limits:
            cpu: '2'
            ephemeral-storage: 20Gi
            memory: 4Gi
          requests:
            cpu: '2'
            ephemeral-storage: 20Gi
            memory: 4Gi
        volumeMounts:
        - mountPath: /var/run/gadugi/secrets
          name: gadugi-secrets
          readOnly: true
      restartPolicy: Never
      serviceAccountName: gadugi-agent
      volumes:
      - name: gadugi-secrets
        secret:
          defaultMode: 256
          secretName: gadugi-agent-keys
  ttlSecondsAfterFinished: 3600
"#;

#[test]
fn the_manifest_has_every_field_the_issue_asks_for() {
    let engine = Kubernetes::new(settings());
    let yaml = engine.describe(&request("r1", "build", 2)).expect("manifest");
    assert_eq!(
        yaml, EXPECTED_MANIFEST,
        "the manifest changed: review it, then update the snapshot"
    );
    // The same, read as data, for the fields that matter most.
    let job: Value = serde_yaml_ng::from_str(&yaml).expect("YAML");
    let spec = &job["spec"];
    assert_eq!(spec["backoffLimit"], 0, "Gadugi owns retries");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(spec["activeDeadlineSeconds"], 5400);
    let container = &spec["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().expect("env");
    let names: Vec<&str> = env.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(
        names,
        ["GADUGI_REMOTE_SPEC", "GADUGI_NODE_NAME"],
        "the spec and the node's name, nothing of the submitter's environment: {env:?}"
    );
    assert_eq!(env[1]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName", "{env:?}");
    assert!(!yaml.contains("PATH") && !yaml.contains("HOME"), "{yaml}");
    assert_eq!(spec["template"]["spec"]["volumes"][0]["secret"]["defaultMode"], 0o400);
    assert_eq!(
        engine.mounted_secrets(),
        Some(MountedSecrets {
            agent_env_file: Some("/var/run/gadugi/secrets/agent.env".into()),
            git_credentials: Some("/var/run/gadugi/secrets/git-credentials".into()),
        })
    );

    // Without the optional settings: no resources, no Secret, no service account, and no
    // deadline without a time limit.
    let bare = Kubernetes::new(KubernetesSettings {
        namespace: NS.into(),
        image: "img".into(),
        ..Default::default()
    });
    let job = JobRequest {
        time_limit: None,
        ..request("r1", "build", 2)
    };
    let job: Value = serde_yaml_ng::from_str(&bare.describe(&job).expect("manifest")).expect("YAML");
    let pod = &job["spec"]["template"]["spec"];
    assert!(pod["volumes"].is_null() && pod["serviceAccountName"].is_null(), "{pod}");
    assert!(pod["containers"][0]["resources"].is_null(), "{pod}");
    assert!(job["spec"]["activeDeadlineSeconds"].is_null(), "{job}");
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 3600, "the default");
    assert_eq!(bare.mounted_secrets(), None);

    // A name Kubernetes would refuse becomes a valid one, kept apart from its neighbours by
    // a hash; the labels too.
    let odd = request("Run_2026.12", &"Very_Long_Task ".repeat(6), 1);
    let job: Value = serde_yaml_ng::from_str(&engine.describe(&odd).expect("manifest")).expect("YAML");
    let name = job["metadata"]["name"].as_str().expect("name");
    assert!(name.len() <= 63, "{name}");
    assert!(
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{name}"
    );
    assert_eq!(name, job_name(&odd.name));
    assert_ne!(job_name(&odd.name), job_name(&odd.name.to_lowercase()));
    let task_label = job["metadata"]["labels"]["gadugi.dev/task"].as_str().expect("label");
    assert!(task_label.len() <= 63 && !task_label.contains(' '), "{task_label}");
}

#[test]
fn an_attempt_goes_from_pending_to_running_to_exited_with_its_log() {
    let kmock = Kmock::start(&[NS]);
    let engine = engine(&kmock, settings());
    let job = request("r1", "build", 1);
    let handle = engine.submit(&job).expect("submit");
    assert_eq!(handle.id, "gadugi-r1-build-1");
    assert_eq!(handle.name, job.name);
    // Submitting again (an orchestrator that crashed before it recorded the job) adopts.
    assert_eq!(engine.submit(&job).expect("submit again"), handle);
    assert_eq!(kmock.jobs(NS).len(), 1, "one Job for two submits");
    let creates = requests_matching(&kmock, "POST", "/apis/batch/v1/namespaces/agents/jobs", false);
    assert_eq!(
        creates.len(),
        2,
        "the second create was refused with 409 and the Job adopted"
    );

    let pending = wait_state(&engine, &handle, "pending", |s| matches!(s, JobState::Pending { .. }));
    assert!(format!("{pending:?}").contains("Job controller"), "{pending:?}");
    assert_eq!(
        engine
            .read_output(&handle, Path::new("unused"), 0)
            .expect("no pod, no output"),
        b""
    );

    let pod = kmock.create_pod_for(NS, &handle.id, "x7k2p");
    kmock.patch_pod_status(
        NS,
        &pod,
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
    );
    let unscheduled = wait_state(
        &engine,
        &handle,
        "unschedulable",
        |s| matches!(s, JobState::Pending { reason } if reason.contains("Insufficient cpu")),
    );
    assert_eq!(
        unscheduled,
        JobState::Pending {
            reason: "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.".into()
        }
    );
    assert_eq!(
        engine.read_output(&handle, Path::new("unused"), 0).expect("no log yet"),
        b""
    );

    kmock.patch_pod(NS, &pod, json!({"spec": {"nodeName": "node-a"}}));
    kmock.patch_pod_status(
        NS,
        &pod,
        json!({"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "gadugi", "state": {"running": {}}}]}),
    );
    let running = wait_state(&engine, &handle, "running", |s| matches!(s, JobState::Running { .. }));
    assert_eq!(running, JobState::Running { node: "node-a".into() });

    let first = b"@gadugi {\"seq\":1,\"node\":\"node-a\"}\n";
    kmock.append_log(NS, &pod, first);
    assert_eq!(engine.read_output(&handle, Path::new("unused"), 0).expect("log"), first);
    let second = b"@gadugi {\"seq\":2,\"stdout\":\"h\xc3\xa9llo\"}\n";
    kmock.append_log(NS, &pod, second);
    let from = first.len() as u64;
    assert_eq!(
        engine.read_output(&handle, Path::new("unused"), from).expect("log"),
        second
    );
    let end = from + second.len() as u64;
    assert_eq!(engine.read_output(&handle, Path::new("unused"), end).expect("log"), b"");

    terminated(&kmock, &pod, "Succeeded", 0, "Completed");
    kmock.patch_job_status(
        NS,
        &handle.id,
        json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
    );
    let exited = wait_state(&engine, &handle, "exited", JobState::is_final);
    assert_eq!(
        exited,
        JobState::Exited {
            code: 0,
            node: Some("node-a".into())
        }
    );

    // A second task of the run: still one watch of Jobs and one of Pods for the whole run,
    // whatever the number of state() and read_output() calls (no poll per task).
    let other = engine.submit(&request("r1", "test", 1)).expect("submit");
    wait_state(&engine, &other, "pending", |s| matches!(s, JobState::Pending { .. }));
    let requests_before = kmock.requests().len();
    for _ in 0..10 {
        engine.state(&handle).expect("state");
        engine.state(&other).expect("state");
    }
    let polls: Vec<Value> = kmock.requests().into_iter().skip(requests_before).collect();
    assert!(
        polls.is_empty(),
        "state() answers from the watch, not by asking: {polls:?}"
    );
    engine.read_output(&other, Path::new("unused"), 0).expect("output");
    let job_watches = requests_matching(&kmock, "GET", "/apis/batch/v1/namespaces/agents/jobs", true);
    let pod_watches = requests_matching(&kmock, "GET", "/api/v1/namespaces/agents/pods", true);
    assert_eq!(job_watches.len(), 1, "{job_watches:?}");
    assert_eq!(pod_watches.len(), 1, "{pod_watches:?}");
    assert_eq!(job_watches[0]["query"]["labelSelector"], "gadugi.dev/run=r1");
    assert_eq!(pod_watches[0]["query"]["labelSelector"], "gadugi.dev/run=r1");
}

/// Submits attempt 1 of `task`, makes its pod (running on node-b) and returns both.
fn running_attempt(kmock: &Kmock, engine: &Kubernetes, task: &str) -> (JobHandle, String) {
    let handle = engine.submit(&request("r2", task, 1)).expect("submit");
    let pod = kmock.create_pod_for(NS, &handle.id, "abcde");
    kmock.patch_pod(NS, &pod, json!({"spec": {"nodeName": "node-b"}}));
    kmock.patch_pod_status(NS, &pod, json!({"phase": "Running"}));
    wait_state(engine, &handle, "running", |s| matches!(s, JobState::Running { .. }));
    (handle, pod)
}

/// Plays the kubelet: the container of `pod` ended with `code` (`reason` as the kubelet
/// says it), the pod in `phase`.
fn terminated(kmock: &Kmock, pod: &str, phase: &str, code: i32, reason: &str) {
    kmock.terminate(NS, pod, phase, code, reason);
}

fn failed_with(state: &JobState, words: &str) -> bool {
    matches!(state, JobState::Failed { reason } if reason.contains(words))
}

#[test]
fn the_ways_an_attempt_fails_become_states() {
    let kmock = Kmock::start(&[NS]);
    let engine = engine(&kmock, settings());
    let backoff = json!({"conditions": [{"type": "Failed", "status": "True",
        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]});

    // The deadline (activeDeadlineSeconds) ran out.
    let (job, _) = running_attempt(&kmock, &engine, "slow");
    kmock.patch_job_status(
        NS,
        &job.id,
        json!({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
            "message": "Job was active longer than specified deadline"}]}),
    );
    let state = wait_state(&engine, &job, "failed", JobState::is_final);
    assert!(failed_with(&state, "deadline exceeded"), "{state:?}");

    // The container used more memory than its limit.
    let (job, pod) = running_attempt(&kmock, &engine, "hungry");
    terminated(&kmock, &pod, "Failed", 137, "OOMKilled");
    kmock.patch_job_status(NS, &job.id, backoff.clone());
    let state = wait_state(&engine, &job, "failed", JobState::is_final);
    assert_eq!(
        state,
        JobState::Failed {
            reason: "out of memory (OOMKilled)".into()
        }
    );

    // The kubelet evicted the pod (node pressure).
    let (job, pod) = running_attempt(&kmock, &engine, "evicted");
    kmock.patch_pod_status(
        NS,
        &pod,
        json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: ephemeral-storage."}),
    );
    let state = wait_state(&engine, &job, "failed", JobState::is_final);
    assert!(failed_with(&state, "evicted: The node was low"), "{state:?}");

    // The node is drained or taken away: the pod failure policy ends the Job.
    let (job, pod) = running_attempt(&kmock, &engine, "disrupted");
    kmock.patch_pod_status(
        NS,
        &pod,
        json!({"phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True",
            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}]}),
    );
    kmock.patch_job_status(
        NS,
        &job.id,
        json!({"conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
            "message": "Container gadugi for pod agents/x failed with DisruptionTarget matching FailJob rule at index 0"}]}),
    );
    let state = wait_state(&engine, &job, "failed", JobState::is_final);
    assert!(failed_with(&state, "node disruption"), "{state:?}");

    // The pod is deleted under a running attempt (its node lost): the Job fails, no pod left.
    let (job, pod) = running_attempt(&kmock, &engine, "orphan");
    kmock.delete_pod(NS, &pod);
    kmock.patch_job_status(NS, &job.id, backoff.clone());
    let state = wait_state(&engine, &job, "failed", JobState::is_final);
    assert!(failed_with(&state, "its pod is gone"), "{state:?}");
    assert_eq!(engine.read_output(&job, Path::new("unused"), 0).expect("no pod"), b"");

    // gadugi remote-task itself exited non-zero: its code, not a cluster failure.
    let (job, pod) = running_attempt(&kmock, &engine, "crashed");
    terminated(&kmock, &pod, "Failed", 3, "Error");
    kmock.patch_job_status(NS, &job.id, backoff);
    let state = wait_state(&engine, &job, "exited", JobState::is_final);
    assert_eq!(
        state,
        JobState::Exited {
            code: 3,
            node: Some("node-b".into())
        }
    );

    // Someone else deleted the Job: lost, not cancelled.
    let (job, _) = running_attempt(&kmock, &engine, "vanished");
    kmock.delete_job(NS, &job.id);
    let state = wait_state(&engine, &job, "lost", JobState::is_final);
    assert!(matches!(state, JobState::Lost { .. }), "{state:?}");
}

#[test]
fn cancel_deletes_in_the_foreground_and_reap_in_the_background() {
    let kmock = Kmock::start(&[NS]);
    let engine = engine(&kmock, settings());
    let (job, _) = running_attempt(&kmock, &engine, "stopped");
    engine.cancel(&job).expect("cancel");
    let path = format!("/apis/batch/v1/namespaces/agents/jobs/{}", job.id);
    let deletes = requests_matching(&kmock, "DELETE", &path, false);
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0]["body"]["propagationPolicy"], "Foreground");
    let state = wait_state(&engine, &job, "cancelled", JobState::is_final);
    assert_eq!(state, JobState::Cancelled);
    engine.cancel(&job).expect("cancelling a deleted Job is fine");

    let (job, pod) = running_attempt(&kmock, &engine, "finished");
    terminated(&kmock, &pod, "Succeeded", 0, "Completed");
    kmock.patch_job_status(
        NS,
        &job.id,
        json!({"conditions": [{"type": "Complete", "status": "True"}]}),
    );
    wait_state(&engine, &job, "exited", JobState::is_final);
    engine.reap(&job).expect("reap");
    let path = format!("/apis/batch/v1/namespaces/agents/jobs/{}", job.id);
    let deletes = requests_matching(&kmock, "DELETE", &path, false);
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0]["body"]["propagationPolicy"], "Background");
    assert!(kmock.job(NS, &job.id).is_none(), "the Job is gone");
    engine.reap(&job).expect("reaping twice is fine (404)");
}

#[test]
fn a_new_engine_finds_and_follows_the_jobs_of_a_run() {
    let kmock = Kmock::start(&[NS]);
    let first = engine(&kmock, settings());
    let job = request("r3", "build", 1);
    let handle = first.submit(&job).expect("submit");

    // An orchestrator started again: a new engine, nothing remembered.
    let second = engine(&kmock, settings());
    assert_eq!(second.find(&job.name).expect("find"), Some(handle.clone()));
    assert_eq!(second.find("gadugi-r3-build-2").expect("find"), None);
    assert_eq!(second.submit(&job).expect("adopt"), handle);
    assert_eq!(kmock.jobs(NS).len(), 1, "never created twice");

    // A third one follows the handle it read from remote.json, without find().
    let third = engine(&kmock, settings());
    let pod = kmock.create_pod_for(NS, &handle.id, "q1w2e");
    kmock.patch_pod(NS, &pod, json!({"spec": {"nodeName": "node-c"}}));
    kmock.patch_pod_status(NS, &pod, json!({"phase": "Running"}));
    let state = wait_state(&third, &handle, "running", |s| matches!(s, JobState::Running { .. }));
    assert_eq!(state, JobState::Running { node: "node-c".into() });
    kmock.append_log(NS, &pod, b"@gadugi {\"seq\":1}\n");
    assert_eq!(
        third.read_output(&handle, Path::new("unused"), 0).expect("log"),
        b"@gadugi {\"seq\":1}\n"
    );

    // A Job of that name that Gadugi did not make is not adopted.
    let foreign = request("r3", "foreign", 1);
    let name = job_name(&foreign.name);
    let manifest = first.manifest(&foreign).expect("manifest");
    let mut value = serde_json::to_value(&manifest).expect("json");
    value["metadata"]["labels"] = json!({"app": "someone-else"});
    kmock.create_job(NS, value);
    let err = first.submit(&foreign).expect_err("not ours");
    assert!(
        format!("{err:#}").contains(&format!("a Job named {name} exists")),
        "{err:#}"
    );
}

#[test]
fn check_says_what_is_missing_and_how_to_fix_it() {
    let kmock = Kmock::start(&[NS]);

    // No secret configured, everything there.
    let bare = KubernetesSettings {
        secret: None,
        ..settings()
    };
    engine(&kmock, bare.clone()).check().expect("a usable cluster");

    // The configured Secret is missing, then there.
    let err = engine(&kmock, settings()).check().expect_err("no Secret");
    assert!(
        err.contains("Secret `gadugi-agent-keys` does not exist in namespace `agents`")
            && err.contains("kubectl create secret generic gadugi-agent-keys -n agents"),
        "{err}"
    );
    kmock.create_secret(NS, "gadugi-agent-keys", &["unrelated"]);
    let err = engine(&kmock, settings()).check().expect_err("no key of ours");
    assert!(
        err.contains("has neither the key agent.env nor git-credentials"),
        "{err}"
    );
    kmock.create_secret(NS, "other-keys", &["agent.env"]);
    let with_keys = KubernetesSettings {
        secret: Some("other-keys".into()),
        ..settings()
    };
    engine(&kmock, with_keys).check().expect("the Secret is there");

    // A namespace that does not exist.
    let elsewhere = KubernetesSettings {
        namespace: "nowhere".into(),
        ..bare.clone()
    };
    let err = engine(&kmock, elsewhere).check().expect_err("no namespace");
    assert!(err.contains("kubectl create namespace nowhere"), "{err}");

    // Not allowed to create Jobs.
    let strict = Kmock::start_denying(&[NS], &["create/jobs"]);
    let err = engine(&strict, bare.clone()).check().expect_err("no right");
    assert!(err.contains("may not create jobs in namespace `agents`"), "{err}");

    // No image to run.
    let no_image = KubernetesSettings {
        image: String::new(),
        ..bare.clone()
    };
    let err = engine(&kmock, no_image).check().expect_err("no image");
    assert!(err.contains("image is not set"), "{err}");

    // No API server at the configured address.
    let dir = tempfile::tempdir().expect("dir");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig, &format!("http://127.0.0.1:{port}"));
    let err = Kubernetes::new(bare.clone())
        .with_kubeconfig(kubeconfig)
        .check()
        .expect_err("no cluster");
    assert!(err.contains("does not answer"), "{err}");

    // No kubeconfig at all.
    let err = Kubernetes::new(bare)
        .with_kubeconfig(dir.path().join("missing"))
        .check()
        .expect_err("no kubeconfig");
    assert!(err.contains("reading the kubeconfig"), "{err}");
}

/// Plays the kubelet for real: runs the command of the pod's container, as the Job gives it,
/// as a process here with the container's environment (only what the Job sets, plus what an
/// image provides: PATH, HOME, TMPDIR), its standard output and error appended to the pod's
/// log line by line as they come; then marks the pod ended with its exit code. Returns the
/// exit code.
fn kubelet_runs(kmock: &Kmock, pod: &str, image_env: &[(&str, &Path)]) -> i32 {
    kmock.run_pod(NS, pod, image_env, || false)
}

#[test]
fn the_jobs_container_runs_the_remote_task_from_its_spec_and_its_records_come_back() {
    use gadugi::run::remote::{attempt_ref, base_ref, job_name as gadugi_job_name, RemoteSpec};
    let kmock = Kmock::start(&[NS]);
    let tmp = tempfile::tempdir().expect("dir");
    let (origin, root, home, scratch) = (
        tmp.path().join("origin.git"),
        tmp.path().join("repo"),
        tmp.path().join("home"),
        tmp.path().join("scratch"),
    );
    std::fs::create_dir_all(&home).expect("home");
    std::fs::create_dir_all(&scratch).expect("scratch");
    // What the image would hold: a git identity for the job's commits.
    std::fs::write(home.join(".gitconfig"), "[user]\n\tname = Pod\n\temail = pod@test\n").expect("gitconfig");
    common::git(tmp.path(), &["init", "-q", "--bare", "origin.git"]);
    common::init_repo(&root, &[("README.md", "hello\n")]);
    let base = common::git(&root, &["rev-parse", "HEAD"]);
    let (run, task, attempt) = ("r5", "t1", 1);
    let url = origin.display().to_string();
    common::git(
        &root,
        &["push", "-q", &url, &format!("{base}:{}", base_ref(run, task, attempt))],
    );

    let agent = tmp.path().join("agent.sh");
    std::fs::write(
        &agent,
        "echo from the agent\necho work > work.txt\ngit add -A\ngit commit -qm work\n",
    )
    .expect("agent");
    let config = gadugi::spec::config::Config::defaults(&root);
    let profile =
        gadugi::agent::profile::AgentProfile::resolve(None, &config, Some(&format!("sh {}", agent.display())))
            .expect("profile");
    let mut spec_task =
        gadugi::spec::task::load_task_from_text(&root.join("prompts/t1.md"), "# Task t1\n\nWrite work.txt.\n")
            .expect("task");
    spec_task.retries = Some(0);
    let spec = RemoteSpec {
        run_id: run.into(),
        task_id: task.into(),
        attempt,
        url: url.clone(),
        base_commit: base.clone(),
        base_ref: base_ref(run, task, attempt),
        attempt_ref: attempt_ref(run, task, attempt),
        branch: "gadugi/t1".into(),
        task: spec_task,
        profile,
        config,
        dep_context: String::new(),
        secrets_optional: false,
    };
    let job = JobRequest {
        name: gadugi_job_name(run, task, attempt),
        run_id: run.into(),
        task: task.into(),
        attempt,
        inline_argv: vec![
            env!("CARGO_BIN_EXE_gadugi").into(),
            "remote-task".into(),
            "--spec-env".into(),
            "GADUGI_REMOTE_SPEC".into(),
        ],
        spec_json: serde_json::to_string(&spec).expect("spec"),
        time_limit: Some(Duration::from_secs(600)),
        ..Default::default()
    };
    let engine = engine(
        &kmock,
        KubernetesSettings {
            secret: None,
            ..settings()
        },
    );
    let handle = engine.submit(&job).expect("submit");
    let pod = kmock.create_pod_for(NS, &handle.id, "r5t1a");
    kmock.patch_pod(NS, &pod, json!({"spec": {"nodeName": "node-e"}}));
    kmock.patch_pod_status(NS, &pod, json!({"phase": "Running"}));
    wait_state(&engine, &handle, "running", |s| matches!(s, JobState::Running { .. }));
    let code = kubelet_runs(&kmock, &pod, &[("HOME", &home), ("TMPDIR", &scratch)]);
    kmock.patch_job_status(
        NS,
        &handle.id,
        json!({"conditions": [{"type": "Complete", "status": "True"}]}),
    );

    // The orchestrator's side: records from the log, read in two pieces.
    let all = engine.read_output(&handle, Path::new("unused"), 0).expect("log");
    let half = all.iter().position(|b| *b == b'\n').expect("a first line") as u64 + 1;
    let rest = engine.read_output(&handle, Path::new("unused"), half).expect("log");
    assert_eq!(&all[half as usize..], rest.as_slice());
    let text = String::from_utf8_lossy(&all).into_owned();
    let records: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("@gadugi "))
        .map(|json| serde_json::from_str(json).expect("a record"))
        .collect();
    assert_eq!(code, 0, "the remote task failed:\n{text}");
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().expect("seq")).collect();
    assert_eq!(seqs, (1..=records.len() as u64).collect::<Vec<_>>(), "{text}");
    assert!(
        records
            .iter()
            .any(|r| r["stdout"].as_str().is_some_and(|s| s.contains("from the agent"))),
        "{text}"
    );
    let end = &records.last().expect("records")["end"];
    assert_eq!(end["status"], "succeeded", "{text}");
    let head = end["head"].as_str().expect("a pushed head");
    assert_eq!(
        common::git(&origin, &["rev-parse", &attempt_ref(run, task, attempt)]),
        head,
        "the job pushed its result to its own attempt's reference"
    );
    assert_eq!(
        engine.state(&handle).expect("state"),
        JobState::Exited {
            code: 0,
            node: Some("node-e".into())
        }
    );
}

#[test]
fn the_blocking_methods_work_from_any_thread_and_the_engine_drops_anywhere() {
    let kmock = Kmock::start(&[NS]);
    let engine = std::sync::Arc::new(engine(&kmock, settings()));
    let handle = engine
        .submit(&request("r6", "build", 1))
        .expect("submit from a plain thread");
    // As the run layer calls it: on tokio's blocking pool of a multi-thread runtime.
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (e, h) = (engine.clone(), handle.clone());
    let state = multi
        .block_on(async move { tokio::task::spawn_blocking(move || e.state(&h)).await })
        .expect("joined")
        .expect("state");
    assert!(matches!(state, JobState::Pending { .. }), "{state:?}");
    // Even on the only worker of a current-thread runtime (blocking it): the engine's own
    // runtime does the work, so this returns instead of deadlocking.
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (e, h) = (engine.clone(), handle.clone());
    let state = single.block_on(async move { e.state(&h) }).expect("state");
    assert!(matches!(state, JobState::Pending { .. }), "{state:?}");
    // The last owner dropped inside async code: no panic about dropping a runtime there.
    single.block_on(async move { drop(engine) });
}
