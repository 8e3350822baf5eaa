//! Runs that survive: the orchestrator killed mid-run and resumed, crashes at random
//! instants, cancel, the circuit breaker, resource limits, stalls and the repository lock —
//! all on real processes and real repositories.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{files_under, git, wait_for};

/// Scripted agent: records its pid, sleeps SLEEP seconds (from the prompt), commits a file.
const AGENT: &str = r#"#!/bin/sh
p="$GADUGI_PROMPT_FILE"
s=$(sed -n 's/^SLEEP: //p' "$p" | head -n 1)
echo $$ >> "$GADUGI_WORKTREE/../$GADUGI_TASK_ID.pids"
echo "working on $GADUGI_TASK_ID"
[ -n "$s" ] && sleep "$s"
echo "$GADUGI_TASK_ID $GADUGI_ATTEMPT" > "out-$GADUGI_TASK_ID.txt"
git add -A && git -c user.name=agent -c user.email=agent@test commit -qm "$GADUGI_TASK_ID"
"#;

struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    agent: PathBuf,
}

impl Repo {
    fn new(config: &str) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("prompts")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Test"]);
        git(&root, &["config", "user.email", "test@example.com"]);
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        std::fs::write(root.join("gadugi.toml"), format!("kill_grace = \"1s\"\n{config}")).unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        let agent = tmp.path().join("agent.sh");
        std::fs::write(&agent, AGENT).unwrap();
        Repo { _tmp: tmp, root, agent }
    }

    fn prompt(&self, name: &str, front: &str, sleep: f64) {
        common::write_prompt(&self.root, name, front, &format!("SLEEP: {sleep}"));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gadugi"));
        c.args(args).current_dir(&self.root).stdin(Stdio::null());
        c
    }

    fn agent_command(&self) -> String {
        format!("sh {}", self.agent.display())
    }

    fn spawn_run(&self, extra: &[&str]) -> Child {
        let cmd = self.agent_command();
        let mut args = vec!["run", "--json", "--agent-command", cmd.as_str()];
        args.extend_from_slice(extra);
        args.push("prompts");
        self.command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn worktrees(&self) -> PathBuf {
        self.root.parent().unwrap().join("repo.gadugi-worktrees")
    }

    fn run_dir(&self) -> PathBuf {
        let runs = self.root.join(".gadugi/runs");
        let mut ids: Vec<_> = std::fs::read_dir(&runs).unwrap().flatten().map(|e| e.path()).collect();
        ids.sort();
        ids.pop().unwrap()
    }

    fn pids(&self, task: &str) -> Vec<u32> {
        std::fs::read_to_string(self.worktrees().join(format!("{task}.pids")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn task<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// Every state file of the run parses; the event log parses but for a torn last line.
fn assert_state_files_parse(r: &Repo) {
    let dir = r.run_dir();
    for f in ["state.json", "run.json"] {
        let text = std::fs::read(dir.join(f)).unwrap();
        serde_json::from_slice::<Value>(&text).unwrap_or_else(|e| panic!("{f} does not parse: {e}"));
    }
    let registry = std::fs::read(r.root.join(".gadugi/monitoring/process_registry.json")).unwrap();
    serde_json::from_slice::<Value>(&registry).expect("process_registry.json parses");
    let log = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let ok = serde_json::from_str::<Value>(l).is_ok();
        assert!(
            ok || i + 1 == lines.len(),
            "events.jsonl line {} does not parse: {l}",
            i + 1
        );
    }
    for entry in files_under(&dir.join("tasks")) {
        if entry.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read(&entry).unwrap();
            serde_json::from_slice::<Value>(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", entry.display()));
        }
    }
}

#[test]
fn a_killed_orchestrator_is_resumed_without_restarting_its_agents() {
    let r = Repo::new("");
    r.prompt("a", "", 5.0);
    r.prompt("b", "", 5.0);
    r.prompt("c", "depends_on: [a]", 0.2);
    let mut run = r.spawn_run(&["-j", "2"]);
    // Kill the orchestrator once both agents run.
    wait_for("two agents", Duration::from_secs(20), || {
        !r.pids("a").is_empty() && !r.pids("b").is_empty()
    });
    let heads_before: Vec<(String, String)> = ["a", "b"]
        .iter()
        .map(|t| (t.to_string(), git(&r.root, &["rev-parse", &format!("gadugi/{t}")])))
        .collect();
    nix_kill(run.id(), 9);
    let _ = run.wait();
    // The agents keep running without their orchestrator.
    assert!(alive(r.pids("a")[0]), "the agent died with its orchestrator");
    let status = r.output(&["status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("gadugi resume"));
    let started = Instant::now();
    let out = r.output(&["resume", "--json"]);
    let resume_took = started.elapsed();
    let summary = json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for t in ["a", "b", "c"] {
        assert_eq!(task(&summary, t)["status"], "succeeded", "{summary}");
    }
    // Not restarted: one agent process and one attempt each.
    assert_eq!(r.pids("a").len(), 1);
    assert_eq!(r.pids("b").len(), 1);
    assert!(!r.run_dir().join("tasks/a/attempt-2").exists());
    for (t, before) in heads_before {
        let ok = Command::new("git")
            .arg("-C")
            .arg(&r.root)
            .args(["merge-base", "--is-ancestor", &before, &format!("gadugi/{t}")])
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "{t}: the head before the crash is not an ancestor of the final one"
        );
    }
    assert_eq!(git(&r.root, &["show", "gadugi/c:out-a.txt"]), "a 1");
    assert_state_files_parse(&r);
    eprintln!("resume took {resume_took:?}");
}

fn nix_kill(pid: u32, sig: i32) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A tiny deterministic PRNG (xorshift) so that the instants are random but reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn crashes_at_random_instants_lose_nothing() {
    let iterations: u64 = std::env::var("GADUGI_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..iterations {
        let r = Repo::new("");
        r.prompt("x", "", 0.3);
        r.prompt("y", "depends_on: [x]", 0.2);
        r.prompt("z", "", 0.4);
        let mut run = r.spawn_run(&["-j", "2"]);
        std::thread::sleep(Duration::from_millis(rng.next() % 900));
        let _ = Command::new("kill").arg("-9").arg(run.id().to_string()).status();
        let _ = run.wait();
        let started = std::fs::read_dir(r.root.join(".gadugi/runs"))
            .map(|mut d| d.any(|e| e.is_ok_and(|e| e.path().join("events.jsonl").is_file())))
            .unwrap_or(false);
        if !started {
            // Killed before the run's first event: no task started, nothing to resume.
            let branches = git(&r.root, &["branch", "--list", "gadugi/*"]);
            assert_eq!(branches, "", "round {round}: branches without a run");
            continue;
        }
        let out = r.output(&["resume", "--json"]);
        assert!(
            matches!(out.status.code(), Some(0)),
            "round {round}: resume failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = json(&out);
        for t in ["x", "y", "z"] {
            assert_eq!(task(&summary, t)["status"], "succeeded", "round {round}: {summary}");
            assert_eq!(
                git(&r.root, &["show", &format!("gadugi/{t}:out-{t}.txt")])
                    .split(' ')
                    .next(),
                Some(t)
            );
        }
        assert_state_files_parse(&r);
        for t in ["x", "y", "z"] {
            for pid in r.pids(t) {
                assert!(
                    !alive(pid),
                    "round {round}: agent {pid} of {t} still runs after the run ended"
                );
            }
        }
    }
}

#[test]
fn cancelling_one_task_keeps_its_work_and_skips_its_dependents() {
    let r = Repo::new("");
    r.prompt("slow", "", 30.0);
    r.prompt("after-slow", "depends_on: [slow]", 0.1);
    r.prompt("quick", "", 0.1);
    let run = r.spawn_run(&[]);
    wait_for("the slow agent", Duration::from_secs(20), || !r.pids("slow").is_empty());
    std::fs::write(r.worktrees().join("slow/wip.txt"), "work in progress").unwrap();
    let cancel = r.output(&["cancel", "slow"]);
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let summary = json(&out);
    assert_eq!(task(&summary, "slow")["status"], "cancelled");
    assert_eq!(task(&summary, "after-slow")["status"], "skipped");
    assert_eq!(task(&summary, "after-slow")["error"], "dependency `slow` was cancelled");
    assert_eq!(task(&summary, "quick")["status"], "succeeded");
    // Branch and worktree kept; the work in progress is committed on the branch.
    assert!(r.worktrees().join("slow").is_dir());
    assert_eq!(git(&r.root, &["show", "gadugi/slow:wip.txt"]), "work in progress");
    assert!(!alive(r.pids("slow")[0]));
}

#[test]
fn cancelling_the_run_stops_everything_and_keeps_the_branches() {
    let r = Repo::new("");
    r.prompt("one", "", 30.0);
    r.prompt("two", "depends_on: [one]", 0.1);
    let run = r.spawn_run(&[]);
    wait_for("the agent", Duration::from_secs(20), || !r.pids("one").is_empty());
    let cancel = r.output(&["cancel"]);
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    let out = run.wait_with_output().unwrap();
    let summary = json(&out);
    assert_eq!(summary["status"], "cancelled");
    assert_eq!(task(&summary, "one")["status"], "cancelled");
    assert!(matches!(
        task(&summary, "two")["status"].as_str(),
        Some("cancelled" | "skipped")
    ));
    assert_eq!(git(&r.root, &["rev-parse", "--verify", "gadugi/one"]).len(), 40);
}

#[test]
fn a_second_orchestrator_in_the_same_repository_is_refused() {
    let r = Repo::new("");
    r.prompt("long", "", 5.0);
    let mut run = r.spawn_run(&[]);
    wait_for("the agent", Duration::from_secs(20), || !r.pids("long").is_empty());
    std::fs::create_dir_all(r.root.join("other")).unwrap();
    std::fs::write(r.root.join("other/t.md"), "# Other\n\nSLEEP: 0\n").unwrap();
    let cmd = r.agent_command();
    let second = r.output(&["run", "--agent-command", &cmd, "other/t.md"]);
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another gadugi process"));
    let _ = r.output(&["cancel"]);
    let _ = run.wait();
}

#[test]
fn an_authentication_failure_trips_the_circuit_breaker() {
    let r = Repo::new("");
    for i in 0..10 {
        r.prompt(&format!("t{i}"), "", 0.0);
    }
    // A `claude` that answers like the real CLI without credentials.
    let bin = r.root.parent().unwrap().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("claude");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho x >> \"$GADUGI_WORKTREE/../attempts\"\n\
         echo '{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s1\",\"model\":\"m\"}'\n\
         echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"Not logged in · Please run /login\",\"session_id\":\"s1\"}'\n\
         exit 1\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = r
        .command(&["run", "--json", "-j", "2", "prompts"])
        .env("PATH", path)
        .output()
        .unwrap();
    let summary = json(&out);
    assert_eq!(out.status.code(), Some(1));
    let attempts = std::fs::read_to_string(r.worktrees().join("attempts"))
        .unwrap()
        .lines()
        .count();
    assert!(attempts <= 3, "{attempts} attempts were made; the breaker allows 3");
    let skipped: Vec<&Value> = summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 10 - attempts);
    assert!(
        skipped[0]["error"].as_str().unwrap().contains("Not logged in"),
        "{}",
        skipped[0]
    );
}

#[test]
fn under_memory_pressure_the_run_goes_one_task_at_a_time_and_says_why() {
    let r = Repo::new("min_available_memory_mb = 100000000\n");
    for t in ["p", "q", "r"] {
        r.prompt(t, "", 0.3);
    }
    let cmd = r.agent_command();
    let out = r.output(&["run", "--json", "-j", "3", "--agent-command", &cmd, "prompts"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("at most 1 agent(s) at once: available memory"),
        "{stderr}"
    );
    let summary = json(&out);
    let mut spans: Vec<(String, String)> = summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["started_at"].as_str().unwrap().to_string(),
                t["finished_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "tasks overlapped: {spans:?}");
    }
}

#[test]
fn a_silent_agent_is_reported_stalled_not_killed() {
    let r = Repo::new("stall_after = 1\n");
    r.prompt("quiet", "", 2.5);
    let cmd = r.agent_command();
    let out = r.output(&["run", "--json", "--agent-command", &cmd, "prompts"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("quiet: stalled"), "{stderr}");
    let log = std::fs::read_to_string(r.run_dir().join("events.jsonl")).unwrap();
    assert!(log.contains("\"task_stalled\""));
}
