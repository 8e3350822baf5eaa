//! `gadugi run --executor kubernetes` end to end against kmock's Kubernetes API emulator on
//! 127.0.0.1 (`common::kmock`), the test playing the Job controller and the kubelet: for each
//! Job the orchestrator creates, a thread makes its pod, places it on a node, runs the pod's
//! container command for real (`gadugi remote-task --spec-env`, from the Job's own
//! environment) with its output as the pod's log, and ends the pod and the Job — or loses the
//! pod, or lets the deadline pass, as a test asks.
//!
//! Checked: the result promoted to `gadugi/<task>` here and on the remote, where each task
//! ran, the Jobs reaped; a pod lost under a running attempt retried as a new attempt and the
//! lost attempt's late push fenced out; a deadline exceeded; cancel deleting the Job in the
//! foreground while the work is kept; the orchestrator killed and resumed with every Job
//! adopted and none created twice; bad configuration refused before anything is created.
//! What only a real cluster shows (scheduling, images, the Secret on disk, the kubelet's own
//! SIGTERM and grace period) is listed in the README.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::kmock::Kmock;
use common::{git, show_output, summary_task as task, wait_for};
use serde_json::{json, Value};

const NS: &str = "agents";

/// Commits a file, sleeps as its prompt says, commits again.
const AGENT: &str = r#"
set -e
s=$(sed -n 's/^SLEEP: //p' "$GADUGI_PROMPT_FILE")
echo "agent $GADUGI_TASK_ID attempt $GADUGI_ATTEMPT on $GADUGI_NODE_NAME"
echo "$GADUGI_TASK_ID ${VARIANT:-first} $GADUGI_ATTEMPT" >> "out-$GADUGI_TASK_ID.txt"
git add -A && git commit -qm "$GADUGI_TASK_ID started"
[ -n "$s" ] && sleep "$s"
echo done >> "out-$GADUGI_TASK_ID.txt"
git add -A && git commit -qm "$GADUGI_TASK_ID done"
"#;

/// What the test's cluster does with a Job.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Play {
    /// Runs the pod's command; the Job completes or fails with it.
    Run,
    /// The pod is lost (its node gone) while it runs: deleted, the Job failed.
    LosePod,
    /// The Job's `activeDeadlineSeconds` passes.
    Deadline,
}

/// The test's Job controller and kubelet, on a thread of their own.
struct Cluster {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cluster {
    fn start(kmock: Arc<Kmock>, image_env: Vec<(&'static str, PathBuf)>, play: fn(&str, u32) -> Play) -> Cluster {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            let pods = Arc::new(Mutex::new(Vec::new()));
            while !stop2.load(Ordering::SeqCst) {
                for job in kmock.jobs(NS) {
                    let name = job["metadata"]["name"].as_str().unwrap_or_default().to_string();
                    if name.is_empty() || !seen.insert(name.clone()) {
                        continue;
                    }
                    let labels = &job["metadata"]["labels"];
                    let task = labels["gadugi.dev/task"].as_str().unwrap_or_default().to_string();
                    let attempt: u32 = labels["gadugi.dev/attempt"]
                        .as_str()
                        .and_then(|a| a.parse().ok())
                        .unwrap_or(1);
                    let node = if seen.len() % 2 == 0 { "node-b" } else { "node-a" };
                    let (kmock, env, pods) = (kmock.clone(), image_env.clone(), pods.clone());
                    let how = play(&task, attempt);
                    std::thread::spawn(move || {
                        let pod = kmock.create_pod_for(NS, &name, "p0");
                        kmock.patch_pod(NS, &pod, json!({"spec": {"nodeName": node}}));
                        kmock.patch_pod_status(NS, &pod, json!({"phase": "Running"}));
                        pods.lock().unwrap().push(pod.clone());
                        match how {
                            Play::Run => {
                                let env: Vec<(&str, &std::path::Path)> =
                                    env.iter().map(|(k, v)| (*k, v.as_path())).collect();
                                let code = kmock.run_pod(NS, &pod, &env, || kmock.job(NS, &name).is_none());
                                if kmock.job(NS, &name).is_some() {
                                    let condition = if code == 0 { "Complete" } else { "Failed" };
                                    kmock.patch_job_status(
                                        NS,
                                        &name,
                                        json!({"conditions": [{"type": condition, "status": "True"}]}),
                                    );
                                }
                            }
                            Play::LosePod => {
                                std::thread::sleep(Duration::from_millis(700));
                                kmock.delete_pod(NS, &pod);
                                kmock.patch_job_status(
                                    NS,
                                    &name,
                                    json!({"conditions": [{"type": "Failed", "status": "True",
                                        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
                                );
                            }
                            Play::Deadline => {
                                std::thread::sleep(Duration::from_millis(700));
                                kmock.patch_job_status(
                                    NS,
                                    &name,
                                    json!({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                        "message": "Job was active longer than specified deadline"}]}),
                                );
                            }
                        }
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Cluster {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Repo {
    tmp: tempfile::TempDir,
    root: PathBuf,
    origin: PathBuf,
    kmock: Arc<Kmock>,
    _cluster: Option<Cluster>,
}

impl Repo {
    /// A repository whose `origin` is a bare repository and whose gadugi.toml runs its
    /// tasks as Jobs in namespace `agents` of the emulator; `config` goes first.
    fn new(config: &str, play: Option<fn(&str, u32) -> Play>) -> Repo {
        let kmock = Arc::new(Kmock::start(&[NS]));
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        let origin = tmp.path().join("origin.git");
        git(tmp.path(), &["init", "-q", "--bare", origin.to_str().unwrap()]);
        std::fs::create_dir_all(root.join("prompts")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Test"]);
        git(&root, &["config", "user.email", "test@example.com"]);
        git(&root, &["remote", "add", "origin", origin.to_str().unwrap()]);
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        let agent = tmp.path().join("agent.sh");
        std::fs::write(&agent, AGENT).unwrap();
        std::fs::write(
            root.join("gadugi.toml"),
            format!(
                "kill_grace = \"2s\"\n{config}\n[agent]\nprofile = \"command\"\ncommand = \"sh {}\"\n\n[executor]\nkind = \"kubernetes\"\nremote = \"origin\"\n\n[executor.kubernetes]\nnamespace = \"{NS}\"\nimage = \"registry.example.com/agents:2026-11\"\ncpu = \"1\"\nmemory = \"1Gi\"\n",
                agent.display()
            ),
        )
        .unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        // What the image would hold: a git identity for the job's commits, a scratch folder.
        let (home, scratch) = (tmp.path().join("home"), tmp.path().join("scratch"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        std::fs::write(home.join(".gitconfig"), "[user]\n\tname = Pod\n\temail = pod@test\n").unwrap();
        let cluster = play.map(|p| Cluster::start(kmock.clone(), vec![("HOME", home), ("TMPDIR", scratch)], p));
        Repo {
            tmp,
            root,
            origin,
            kmock,
            _cluster: cluster,
        }
    }

    fn prompt(&self, name: &str, front: &str, sleep: u32) {
        common::write_prompt(&self.root, name, front, &format!("SLEEP: {sleep}"));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gadugi"));
        c.args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .envs(self.kmock.env());
        c
    }

    fn run(&self) -> Output {
        self.command(&["run", "--json", "-j", "2", "prompts"]).output().unwrap()
    }

    fn spawn_run(&self) -> Child {
        self.command(&["run", "--json", "-j", "2", "prompts"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn started_run(&self) -> Option<PathBuf> {
        common::newest_run(&self.root)
    }

    fn state(&self) -> Value {
        common::newest_state(&self.root)
    }

    fn branch(&self, name: &str) -> Option<String> {
        common::reference(&self.root, &format!("refs/heads/{name}"))
    }

    fn on_origin(&self, reference: &str) -> Option<String> {
        common::reference(&self.origin, reference)
    }

    /// The requests the emulator answered with `method` on Jobs.
    fn job_requests(&self, method: &str) -> Vec<Value> {
        self.kmock
            .requests()
            .into_iter()
            .filter(|r| r["method"] == method && r["path"].as_str().is_some_and(|p| p.contains("/jobs")))
            .collect()
    }

    /// The names of the Jobs created, one per create request.
    fn created_jobs(&self) -> Vec<String> {
        self.job_requests("POST")
            .iter()
            .filter_map(|r| r["body"]["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show_output(out)))
}

fn run_every_job(_: &str, _: u32) -> Play {
    Play::Run
}

#[test]
fn a_run_on_kubernetes_promotes_every_result_and_says_where_each_task_ran() {
    let r = Repo::new("", Some(run_every_job));
    r.prompt("a", "", 1);
    r.prompt("b", "", 1);
    r.prompt("c", "depends_on: [a]", 0);
    let head_before = git(&r.root, &["rev-parse", "HEAD"]);
    let out = r.run();
    assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));
    let summary = json_of(&out);
    for id in ["a", "b", "c"] {
        let t = task(&summary, id);
        assert_eq!(t["status"], "succeeded", "{id}: {}", show_output(&out));
        let placement = &t["placement"];
        assert_eq!(placement["executor"], "kubernetes", "{t}");
        assert!(
            placement["node"].as_str().is_some_and(|n| n.starts_with("node-")),
            "{t}"
        );
        let here = r.branch(&format!("gadugi/{id}")).expect("the branch exists here");
        assert_eq!(
            r.on_origin(&format!("refs/heads/gadugi/{id}")).as_deref(),
            Some(here.as_str())
        );
        let file = git(&r.root, &["show", &format!("gadugi/{id}:out-{id}.txt")]);
        assert_eq!(file, format!("{id} first 1\ndone"));
    }
    git(&r.root, &["merge-base", "--is-ancestor", "gadugi/a", "gadugi/c"]);
    let log = std::fs::read_to_string(r.started_run().unwrap().join("tasks/a/attempt-1/stdout.log")).unwrap();
    assert!(log.contains("agent a attempt 1 on node-"), "{log}");
    // One Job per attempt, each removed once its result was collected.
    let mut created = r.created_jobs();
    created.sort();
    assert_eq!(created.len(), 3, "{created:?}");
    created.dedup();
    assert_eq!(created.len(), 3, "a Job created twice: {created:?}");
    wait_for("every Job reaped", Duration::from_secs(10), || {
        r.kmock.jobs(NS).is_empty()
    });
    assert_eq!(
        git(&r.root, &["rev-parse", "HEAD"]),
        head_before,
        "the checkout is untouched"
    );
}

fn lose_the_first_attempt(task: &str, attempt: u32) -> Play {
    if task == "a" && attempt == 1 {
        Play::LosePod
    } else {
        Play::Run
    }
}

#[test]
fn a_pod_lost_under_its_attempt_is_retried_and_the_lost_attempt_cannot_change_the_branch() {
    let r = Repo::new("retries = 1", Some(lose_the_first_attempt));
    r.prompt("a", "", 0);
    let out = r.run();
    assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));
    let summary = json_of(&out);
    assert_eq!(task(&summary, "a")["attempts"], 2, "{}", show_output(&out));
    let accepted = r.branch("gadugi/a").unwrap();
    assert_eq!(git(&r.root, &["show", "gadugi/a:out-a.txt"]), "a first 2\ndone");
    let events = std::fs::read_to_string(r.started_run().unwrap().join("events.jsonl")).unwrap();
    assert!(
        events
            .lines()
            .any(|l| l.contains("\"attempt_failed\"") && l.contains("its pod is gone")),
        "the lost pod was a transient failure: {events}"
    );
    // The lost attempt's pod was not dead after all: it runs to its end and pushes, late.
    let first = r
        .job_requests("POST")
        .into_iter()
        .find(|req| req["body"]["metadata"]["labels"]["gadugi.dev/attempt"] == "1")
        .expect("attempt 1's Job");
    let spec = first["body"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let home = r.tmp.path().join("home");
    let zombie = Command::new(env!("CARGO_BIN_EXE_gadugi"))
        .args(["remote-task", "--spec-env", "GADUGI_REMOTE_SPEC"])
        .env("GADUGI_REMOTE_SPEC", spec)
        .env("HOME", &home)
        .env("VARIANT", "zombie")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(zombie.status.code(), Some(0), "{}", show_output(&zombie));
    let run_id = r
        .started_run()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let late = r
        .on_origin(&format!("refs/gadugi/attempts/{run_id}/a/1"))
        .expect("the late attempt pushed its own reference");
    assert!(git(&r.origin, &["show", &format!("{late}:out-a.txt")]).contains("zombie"));
    assert_eq!(
        r.branch("gadugi/a").as_deref(),
        Some(accepted.as_str()),
        "unchanged here"
    );
    assert_eq!(
        r.on_origin("refs/heads/gadugi/a").as_deref(),
        Some(accepted.as_str()),
        "unchanged on the remote"
    );
}

fn the_deadline_passes(_: &str, _: u32) -> Play {
    Play::Deadline
}

#[test]
fn a_job_past_its_deadline_fails_its_task() {
    let r = Repo::new("", Some(the_deadline_passes));
    r.prompt("slow", "", 0);
    let out = r.run();
    assert_eq!(out.status.code(), Some(1), "{}", show_output(&out));
    let t = task(&json_of(&out), "slow").clone();
    assert_eq!(t["status"], "failed", "{t}");
    assert!(
        t["error"].as_str().unwrap_or_default().contains("deadline exceeded"),
        "{t}"
    );
}

#[test]
fn cancel_deletes_the_job_in_the_foreground_and_keeps_the_work() {
    let r = Repo::new("", Some(run_every_job));
    r.prompt("slow", "", 120);
    let child = r.spawn_run();
    wait_for("the agent's first commit in its pod", Duration::from_secs(60), || {
        r.started_run()
            .and_then(|d| std::fs::read_to_string(d.join("tasks/slow/attempt-1/stdout.log")).ok())
            .is_some_and(|l| l.contains("agent slow"))
    });
    let cancelled = r.output(&["cancel"]);
    assert_eq!(cancelled.status.code(), Some(0), "{}", show_output(&cancelled));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        task(&json_of(&out), "slow")["status"],
        "cancelled",
        "{}",
        show_output(&out)
    );
    let deletes = r.job_requests("DELETE");
    assert!(
        deletes
            .iter()
            .any(|d| d["body"]["propagationPolicy"] == "Foreground" || d["query"].to_string().contains("Foreground")),
        "cancel deleted the Job in the foreground: {deletes:#?}"
    );
    assert_eq!(git(&r.root, &["show", "gadugi/slow:out-slow.txt"]), "slow first 1");
    assert_eq!(r.on_origin("refs/heads/gadugi/slow"), r.branch("gadugi/slow"));
}

#[test]
fn a_killed_orchestrator_resumes_by_adopting_its_jobs_and_creates_none_twice() {
    let r = Repo::new("", Some(run_every_job));
    r.prompt("a", "", 5);
    r.prompt("b", "", 5);
    let mut child = r.spawn_run();
    wait_for("both jobs running on a node", Duration::from_secs(60), || {
        r.state()["tasks"]
            .as_array()
            .is_some_and(|ts| ts.iter().all(|t| t["placement"]["node"].is_string()))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = r.output(&["resume", "--json"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", show_output(&resumed));
    let summary = json_of(&resumed);
    for id in ["a", "b"] {
        assert_eq!(task(&summary, id)["status"], "succeeded", "{}", show_output(&resumed));
        assert_eq!(task(&summary, id)["attempts"], 1);
        assert_eq!(
            git(&r.root, &["show", &format!("gadugi/{id}:out-{id}.txt")]),
            format!("{id} first 1\ndone")
        );
    }
    let created = r.created_jobs();
    assert_eq!(
        created.len(),
        2,
        "one Job per attempt, adopted after the restart: {created:?}"
    );
}

#[test]
fn bad_configuration_is_refused_before_anything_is_created() {
    let r = Repo::new("", None);
    r.prompt("a", "", 0);
    let config = std::fs::read_to_string(r.root.join("gadugi.toml")).unwrap();
    let cases = [
        (
            config.replace("namespace = \"agents\"", "namespace = \"missing\""),
            vec![],
            "missing",
        ),
        (
            config.replace("cpu = \"1\"", "cpu = \"1\"\nsecret = \"no-such-secret\""),
            vec![],
            "no-such-secret",
        ),
        (
            config.replace("image = \"registry.example.com/agents:2026-11\"\n", ""),
            vec![],
            "image",
        ),
        (
            config.clone(),
            vec![("KUBECONFIG", r.tmp.path().join("nowhere.kubeconfig"))],
            "kubeconfig",
        ),
    ];
    for (text, env, problem) in cases {
        std::fs::write(r.root.join("gadugi.toml"), &text).unwrap();
        let mut cmd = r.command(&["run", "prompts"]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let shown = show_output(&out);
        assert_eq!(out.status.code(), Some(2), "{problem}: {shown}");
        assert!(
            shown.to_lowercase().contains(problem),
            "expected {problem:?} in {shown}"
        );
    }
    assert!(r.created_jobs().is_empty(), "no Job was created");
    assert!(r.started_run().is_none(), "no run was started");
    assert_eq!(r.branch("gadugi/a"), None);
    assert_eq!(git(&r.origin, &["for-each-ref"]), "", "nothing was pushed");
}

#[test]
fn a_dry_run_prints_the_manifests_and_creates_nothing() {
    let r = Repo::new("", None);
    r.prompt("a", "", 0);
    r.prompt("b", "depends_on: [a]", 0);
    let out = r.output(&["run", "--dry-run", "prompts"]);
    assert_eq!(out.status.code(), Some(0), "{}", show_output(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("kind: Job").count(), 2, "{text}");
    for id in ["a", "b"] {
        assert!(text.contains(&format!("gadugi.dev/task: {id}")), "{text}");
    }
    assert!(
        text.contains("backoffLimit: 0") && text.contains("GADUGI_REMOTE_SPEC"),
        "{text}"
    );
    assert!(text.contains("(decided at run time)"), "b starts from a's work: {text}");
    assert!(r.created_jobs().is_empty(), "no Job was created");
    assert!(r.started_run().is_none(), "no run was started");
    assert_eq!(git(&r.origin, &["for-each-ref"]), "", "nothing was pushed");
}
