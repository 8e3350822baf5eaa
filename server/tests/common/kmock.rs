//! A Kubernetes API on 127.0.0.1 for a test: kmock's in-memory emulator
//! (`common/kmock_cluster.py`, run by the venv of `scripts/install-kmock.sh`) on a free port,
//! in its own process group, stopped when the [`Kmock`] is dropped; a kubeconfig pointing at
//! it; and helpers for the test to play the Job controller and the kubelet (create a Job's
//! pod, patch pod and Job status, append to a pod's log), since the emulator schedules and
//! runs nothing.
//!
//! kmock must be installed (`bash scripts/install-kmock.sh`, which `scripts/test.sh` runs):
//! without it [`Kmock::start`] fails the test, it does not skip it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

/// One running emulator.
pub struct Kmock {
    child: Child,
    dir: tempfile::TempDir,
    /// A kubeconfig whose current context is this emulator (namespace `agents`).
    pub kubeconfig: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
}

fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kmock/bin/python")
}

/// Writes a kubeconfig for the API server at `url` (no credentials: the emulator asks none).
pub fn write_kubeconfig(path: &Path, url: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster:\n    server: {url}\n\
         users:\n- name: test\n  user: {{}}\ncontexts:\n- name: kmock\n  context:\n    cluster: kmock\n    \
         user: test\n    namespace: agents\ncurrent-context: kmock\n"
    );
    std::fs::write(path, text).expect("kubeconfig written");
}

impl Kmock {
    /// An emulator in which the namespaces `namespaces` exist and every access review is
    /// allowed.
    pub fn start(namespaces: &[&str]) -> Kmock {
        Kmock::start_denying(namespaces, &[])
    }

    /// Same, answering "not allowed" to access reviews of `deny` (`VERB/RESOURCE`, e.g.
    /// `create/jobs`).
    pub fn start_denying(namespaces: &[&str], deny: &[&str]) -> Kmock {
        let python = venv_python();
        assert!(
            python.is_file(),
            "kmock is not installed at {}: run `bash scripts/install-kmock.sh`",
            python.display()
        );
        let dir = tempfile::tempdir().expect("temporary folder");
        let stderr = std::fs::File::create(dir.path().join("kmock.err")).expect("stderr file");
        let mut command = Command::new(&python);
        command.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/kmock_cluster.py"));
        for ns in namespaces {
            command.args(["--namespace", ns]);
        }
        for d in deny {
            command.args(["--deny", d]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own process group: stopped as a whole, whatever it started.
            .process_group(0)
            .spawn()
            .expect("kmock starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout piped"))
            .read_line(&mut line)
            .expect("kmock's port line");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "kmock printed {line:?}, not its port; stderr:\n{}",
                std::fs::read_to_string(dir.path().join("kmock.err")).unwrap_or_default()
            )
        });
        let url = format!("http://127.0.0.1:{port}");
        let kubeconfig = dir.path().join("kubeconfig");
        write_kubeconfig(&kubeconfig, &url);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime.block_on(async {
            let config = kube::Config::new(url.parse().expect("url"));
            kube::Client::try_from(config).expect("client")
        });
        Kmock {
            child,
            dir,
            kubeconfig,
            url,
            runtime,
            client,
        }
    }

    /// The environment that points a child process (kubectl, gadugi) at this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("KUBECONFIG".into(), self.kubeconfig.display().to_string())]
    }

    /// Sends one request: the answer's JSON (its text when it is not JSON), or the error.
    fn send(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Result<Value, String> {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(body)
            .expect("request");
        self.runtime
            .block_on(self.client.request_text(request))
            .map_err(|e| e.to_string())
            .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn json(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let content_type = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.send(method, path, content_type, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// The Job `name` in namespace `ns`, if it exists.
    pub fn job(&self, ns: &str, name: &str) -> Option<Value> {
        self.send(
            "GET",
            &format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}"),
            "application/json",
            vec![],
        )
        .ok()
    }

    /// The pod `name` in namespace `ns`, if it exists.
    #[allow(dead_code)] // not every test file looks at pods
    pub fn pod(&self, ns: &str, name: &str) -> Option<Value> {
        self.send(
            "GET",
            &format!("/api/v1/namespaces/{ns}/pods/{name}"),
            "application/json",
            vec![],
        )
        .ok()
    }

    /// Every Job in namespace `ns`.
    pub fn jobs(&self, ns: &str) -> Vec<Value> {
        let list = self.json("GET", &format!("/apis/batch/v1/namespaces/{ns}/jobs"), None);
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Creates the Job `job` (as someone else than Gadugi would).
    pub fn create_job(&self, ns: &str, job: Value) {
        self.json("POST", &format!("/apis/batch/v1/namespaces/{ns}/jobs"), Some(job));
    }

    /// Plays the Job controller: creates the pod of Job `job` from its template (its labels,
    /// plus the `job-name` labels and the owner reference the controller adds), named
    /// `<job>-<suffix>`. Returns the pod's name.
    pub fn create_pod_for(&self, ns: &str, job: &str, suffix: &str) -> String {
        let job_object = self.job(ns, job).unwrap_or_else(|| panic!("no Job {job} in {ns}"));
        let template = &job_object["spec"]["template"];
        let mut labels = template["metadata"]["labels"].clone();
        labels["batch.kubernetes.io/job-name"] = json!(job);
        labels["job-name"] = json!(job);
        let name = format!("{job}-{suffix}");
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": "batch/v1", "kind": "Job", "name": job,
                    "uid": job_object["metadata"]["uid"], "controller": true,
                }],
            },
            "spec": template["spec"],
            "status": {"phase": "Pending"},
        });
        self.json("POST", &format!("/api/v1/namespaces/{ns}/pods"), Some(pod));
        name
    }

    /// Merge-patches pod `name` (its spec or metadata, e.g. `spec.nodeName`).
    pub fn patch_pod(&self, ns: &str, name: &str, patch: Value) {
        self.json("PATCH", &format!("/api/v1/namespaces/{ns}/pods/{name}"), Some(patch));
    }

    /// Plays the kubelet: merge-patches pod `name`'s status.
    pub fn patch_pod_status(&self, ns: &str, name: &str, status: Value) {
        self.json(
            "PATCH",
            &format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
            Some(json!({ "status": status })),
        );
    }

    /// Plays the Job controller: merge-patches Job `name`'s status.
    pub fn patch_job_status(&self, ns: &str, name: &str, status: Value) {
        self.json(
            "PATCH",
            &format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}/status"),
            Some(json!({ "status": status })),
        );
    }

    /// Deletes pod `name` (a node lost, an administrator).
    pub fn delete_pod(&self, ns: &str, name: &str) {
        self.json("DELETE", &format!("/api/v1/namespaces/{ns}/pods/{name}"), None);
    }

    /// Deletes Job `name` (someone else than Gadugi).
    pub fn delete_job(&self, ns: &str, name: &str) {
        self.json("DELETE", &format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}"), None);
    }

    /// Plays the kubelet: appends `bytes` to pod `name`'s log.
    pub fn append_log(&self, ns: &str, name: &str, bytes: &[u8]) {
        self.send(
            "POST",
            &format!("/_kmock/logs/{ns}/{name}"),
            "application/octet-stream",
            bytes.to_vec(),
        )
        .unwrap_or_else(|e| panic!("appending to the log of {name}: {e}"));
    }

    /// Creates Secret `name` in `ns` with `keys` (their values are not secret in a test).
    pub fn create_secret(&self, ns: &str, name: &str, keys: &[&str]) {
        let data: serde_json::Map<String, Value> = keys.iter().map(|k| (k.to_string(), json!("c2VjcmV0"))).collect();
        self.json(
            "POST",
            &format!("/api/v1/namespaces/{ns}/secrets"),
            Some(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": ns},
                "data": data,
            })),
        );
    }

    /// Every Kubernetes request the emulator got so far: `{method, path, query, body}`.
    pub fn requests(&self) -> Vec<Value> {
        self.json("GET", "/_kmock/requests", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The emulator's standard error so far (for a failing test's message).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kmock.err")).unwrap_or_default()
    }
}

impl Kmock {
    /// Plays the kubelet for pod `pod` of namespace `ns`: runs its container's command for
    /// real with only the pod's environment (the downward API's `spec.nodeName` filled in)
    /// plus `image_env` (what the image would hold: PATH, HOME...), appends its stdout to the
    /// pod's log line by line (stderr at the end), and marks the container terminated with
    /// its exit code. When `stop()` turns true while it runs (its Job was deleted), the
    /// command gets SIGTERM, as a kubelet gives a pod that is being deleted.
    pub fn run_pod(&self, ns: &str, pod: &str, image_env: &[(&str, &Path)], stop: impl Fn() -> bool) -> i32 {
        let spec = self.pod(ns, pod).unwrap_or_else(|| panic!("no pod {pod}"));
        let container = &spec["spec"]["containers"][0];
        let argv: Vec<String> = serde_json::from_value(container["command"].clone()).expect("command");
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).env_clear();
        command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (name, value) in image_env {
            command.env(name, value);
        }
        for var in container["env"].as_array().expect("env") {
            let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                // The downward API: where the pod runs.
                Some("spec.nodeName") => spec["spec"]["nodeName"].as_str().unwrap_or_default().to_string(),
                Some(other) => panic!("a field the test's kubelet does not know: {other}"),
                None => var["value"]
                    .as_str()
                    .expect("a plain value, never a reference to a secret")
                    .to_string(),
            };
            command.env(var["name"].as_str().expect("name"), value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("the container's command runs");
        let stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut signalled = false;
        let code = loop {
            while let Ok(mut line) = rx.try_recv() {
                line.push(b'\n');
                self.append_log(ns, pod, &line);
            }
            if let Some(status) = child.try_wait().expect("wait") {
                // What the command printed before it ended.
                for mut line in rx.iter() {
                    line.push(b'\n');
                    self.append_log(ns, pod, &line);
                }
                break status.code().unwrap_or(128 + 15);
            }
            if !signalled && stop() {
                signalled = true;
                // SAFETY: kill(2) on the process group of a child we started.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        self.append_log(ns, pod, stderr.join().expect("stderr").as_bytes());
        self.terminate(
            ns,
            pod,
            if code == 0 { "Succeeded" } else { "Failed" },
            code,
            "Completed",
        );
        code
    }

    /// Marks pod `pod`'s container terminated with `code` and `reason` (`Completed`,
    /// `OOMKilled`), the pod in `phase`.
    pub fn terminate(&self, ns: &str, pod: &str, phase: &str, code: i32, reason: &str) {
        self.patch_pod_status(
            ns,
            pod,
            json!({"phase": phase, "containerStatuses": [{"name": "gadugi",
                "state": {"terminated": {"exitCode": code, "reason": reason}}}]}),
        );
    }
}

impl Drop for Kmock {
    fn drop(&mut self) {
        // The whole group, by its id (the child's pid): nothing else is touched.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}
