//! Trust at the edges: regression tests for the defects a hostile tester found (issue 14).
//! Each test is named after the defect's number in that issue (`d01_...`), runs the real
//! binary on real repositories and processes, and failed before its fix.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::git;

/// Scripted agent: sleeps SLEEP seconds (from the prompt), commits a file.
const AGENT: &str = r#"#!/bin/sh
s=$(sed -n 's/^SLEEP: //p' "$GADUGI_PROMPT_FILE" | head -n 1)
echo "working on $GADUGI_TASK_ID"
[ -n "$s" ] && sleep "$s"
echo "$GADUGI_TASK_ID" > "out-$GADUGI_TASK_ID.txt"
git add -A && git -c user.name=agent -c user.email=agent@test commit -qm "$GADUGI_TASK_ID"
"#;

struct Repo {
    tmp: tempfile::TempDir,
    root: PathBuf,
    agent: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("prompts")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Test"]);
        git(&root, &["config", "user.email", "test@example.com"]);
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        std::fs::write(root.join("gadugi.toml"), "kill_grace = \"1s\"\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        let agent = tmp.path().join("agent.sh");
        std::fs::write(&agent, AGENT).unwrap();
        Repo { tmp, root, agent }
    }

    fn prompt(&self, name: &str, sleep: f64) {
        std::fs::write(
            self.root.join("prompts").join(format!("{name}.md")),
            format!("# Task {name}\n\nSLEEP: {sleep}\n"),
        )
        .unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gadugi"));
        c.args(args).current_dir(&self.root).stdin(Stdio::null());
        c
    }

    fn run_args(&self) -> Vec<String> {
        ["run", "--json", "--agent-command"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("sh {}", self.agent.display()), "prompts".into()])
            .collect()
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run_dir(&self) -> Option<PathBuf> {
        let mut ids: Vec<_> = std::fs::read_dir(self.root.join(".gadugi/runs"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .collect();
        ids.sort();
        ids.pop()
    }

    fn events(&self) -> Vec<Value> {
        let log = std::fs::read_to_string(self.run_dir().unwrap().join("events.jsonl")).unwrap();
        log.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// A run of two tasks (agents sleeping `sleep` s) whose orchestrator was killed (SIGKILL)
    /// once both agents had started: it waits for `gadugi resume`.
    fn killed_mid_run(sleep: f64) -> Repo {
        let repo = Repo::new();
        repo.prompt("a", sleep);
        repo.prompt("b", sleep);
        let args = repo.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut run = repo.spawn(&args);
        wait_until("both agents to start", Duration::from_secs(20), || {
            repo.run_dir()
                .and_then(|d| std::fs::read_to_string(d.join("events.jsonl")).ok())
                .is_some_and(|log| log.matches("\"agent_started\"").count() >= 2)
        });
        run.kill().unwrap();
        run.wait().unwrap();
        repo
    }

    fn branches(&self) -> String {
        git(&self.root, &["branch", "--list"])
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Defect 1: several `gadugi resume` started together after a `kill -9` of the orchestrator.
/// Exactly one drives; the others exit 2 with "another gadugi process"; the event log has
/// one `task_finished` per task and one `run_finished`.
#[test]
fn d01_concurrent_resumes_exactly_one_drives() {
    for round in 0..10 {
        let resumers = 2 + round % 2;
        let repo = Repo::killed_mid_run(1.0);
        let children: Vec<Child> = (0..resumers).map(|_| repo.spawn(&["resume", "--json"])).collect();
        let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let drove: Vec<&Output> = outputs.iter().filter(|o| o.status.code() == Some(0)).collect();
        let refused: Vec<&Output> = outputs
            .iter()
            .filter(|o| {
                o.status.code() == Some(2) && String::from_utf8_lossy(&o.stderr).contains("another gadugi process")
            })
            .collect();
        let all: Vec<String> = outputs.iter().map(show).collect();
        assert_eq!(
            drove.len(),
            1,
            "round {round}: exactly one resumer drives:\n{}",
            all.join("\n")
        );
        assert_eq!(
            refused.len(),
            resumers - 1,
            "round {round}: the others are refused:\n{}",
            all.join("\n")
        );
        let events = repo.events();
        for task in ["a", "b"] {
            let finished: Vec<&Value> = events
                .iter()
                .filter(|e| e["type"] == "task_finished" && e["task"] == task)
                .collect();
            assert_eq!(
                finished.len(),
                1,
                "round {round}: one task_finished for {task}: {finished:?}"
            );
            assert_eq!(finished[0]["status"], "succeeded", "round {round}: {finished:?}");
        }
        let run_finished = events.iter().filter(|e| e["type"] == "run_finished").count();
        assert_eq!(run_finished, 1, "round {round}: one run_finished");
    }
}

/// Defect 2: a committed `.gadugi` symlink is never followed: the run is refused (exit 2)
/// before anything is created, and nothing is written where the link points.
#[test]
fn d02_committed_gadugi_symlink_is_refused_and_nothing_written_through_it() {
    let repo = Repo::new();
    repo.prompt("a", 0.0);
    let elsewhere = repo.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("lock"), "someone else's file\n").unwrap();
    std::os::unix::fs::symlink(&elsewhere, repo.root.join(".gadugi")).unwrap();
    git(&repo.root, &["add", ".gadugi"]);
    git(&repo.root, &["commit", "-qm", "a link"]);
    let before = repo.branches();
    let args = repo.run_args();
    let out = repo.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".gadugi") && err.contains("symbolic link"), "{err}");
    let listing: Vec<String> = std::fs::read_dir(&elsewhere)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listing, ["lock"], "nothing written through the link");
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("lock")).unwrap(),
        "someone else's file\n"
    );
    assert_eq!(repo.branches(), before, "no branch created");
    for cmd in [&["status"][..], &["cleanup"], &["resume"]] {
        let out = repo.output(cmd);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", show(&out));
    }
}

/// Defect 2 (tracked): a `.gadugi` that git tracks is refused too.
#[test]
fn d02_tracked_gadugi_is_refused() {
    let repo = Repo::new();
    repo.prompt("a", 0.0);
    std::fs::create_dir_all(repo.root.join(".gadugi/runs/x")).unwrap();
    std::fs::write(repo.root.join(".gadugi/runs/x/events.jsonl"), "").unwrap();
    git(&repo.root, &["add", "-f", ".gadugi"]);
    git(&repo.root, &["commit", "-qm", "state"]);
    let args = repo.run_args();
    let out = repo.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tracked by git"),
        "{}",
        show(&out)
    );
}

/// Defect 12: `.gadugi` being a regular file is bad input (exit 2 with a fix), not an
/// internal error (exit 3).
#[test]
fn d12_gadugi_regular_file_is_bad_input() {
    let repo = Repo::new();
    repo.prompt("a", 0.0);
    std::fs::write(repo.root.join(".gadugi"), "not a folder\n").unwrap();
    let args = repo.run_args();
    let out = repo.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a folder") && err.contains("fix"), "{err}");
    assert_eq!(
        std::fs::read_to_string(repo.root.join(".gadugi")).unwrap(),
        "not a folder\n"
    );
}

/// Defect 14: temp files a killed writer left behind are removed on the next start; a live
/// writer's are not.
#[test]
fn d14_temp_files_of_killed_writers_are_cleaned_on_the_next_start() {
    let repo = Repo::new();
    repo.prompt("a", 0.0);
    let state = repo.root.join(".gadugi");
    std::fs::create_dir_all(&state).unwrap();
    // pid_max is at most 2^22: this pid never lives.
    let dead = state.join(".lock.99999999.tmp");
    let doubled = state.join("..lock.99999999.tmp.99999999.tmp");
    let live = state.join(format!(".registry.json.{}.tmp", std::process::id()));
    for f in [&dead, &doubled, &live] {
        std::fs::write(f, "{}").unwrap();
    }
    let args = repo.run_args();
    let out = repo.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!dead.exists() && !doubled.exists(), "stale temp files removed");
    assert!(live.exists(), "a live process's temp file is kept");
    let leftovers: Vec<String> = walk(&state)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp") && *p != live)
        .map(|p| p.display().to_string())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Defect 1, the window that produced duplicate lifecycle events: a resumer that read the run
/// as running, then took the lock only after another resumer had driven the run to its end,
/// must see the run ended (re-read under the lock) and drive nothing. The window is widened
/// with a debug-build test hook that pauses before taking the lock.
#[test]
fn d01_a_late_resumer_sees_the_run_another_resumer_finished() {
    let repo = Repo::killed_mid_run(0.2);
    let late = repo
        .command(&["resume", "--json"])
        .env("GADUGI_TEST_PAUSE_BEFORE_LOCK_MS", "2500")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let first = repo.output(&["resume", "--json"]);
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let late = late.wait_with_output().unwrap();
    assert_eq!(late.status.code(), Some(0), "{}", show(&late));
    assert!(
        String::from_utf8_lossy(&late.stderr).contains("already ended"),
        "{}",
        show(&late)
    );
    let events = repo.events();
    for task in ["a", "b"] {
        let finished = events
            .iter()
            .filter(|e| e["type"] == "task_finished" && e["task"] == task)
            .count();
        assert_eq!(finished, 1, "one task_finished for {task}");
    }
    assert_eq!(events.iter().filter(|e| e["type"] == "run_finished").count(), 1);
    assert_eq!(events.iter().filter(|e| e["type"] == "run_resumed").count(), 1);
}

/// Defect 7: processes an agent detached with `setsid` end with the attempt — after a normal
/// exit and after a timeout — instead of being re-parented to init and living on.
#[test]
fn d07_setsid_descendants_end_with_the_attempt() {
    let repo = Repo::new();
    let marker = repo.tmp.path().join("daemons");
    std::fs::create_dir_all(&marker).unwrap();
    let agent = repo.tmp.path().join("detaching-agent.sh");
    std::fs::write(
        &agent,
        format!(
            r#"#!/bin/sh
setsid sh -c 'echo $$ > "{m}/$GADUGI_TASK_ID.pid"; exec sleep 300' &
while [ ! -s "{m}/$GADUGI_TASK_ID.pid" ]; do sleep 0.05; done
echo "$GADUGI_TASK_ID" > "out-$GADUGI_TASK_ID.txt"
git add -A && git -c user.name=agent -c user.email=agent@test commit -qm "$GADUGI_TASK_ID"
[ "$GADUGI_TASK_ID" = "hangs" ] && sleep 300
exit 0
"#,
            m = marker.display()
        ),
    )
    .unwrap();
    std::fs::write(repo.root.join("prompts/exits.md"), "# Exits\n\nexit normally\n").unwrap();
    std::fs::write(
        repo.root.join("prompts/hangs.md"),
        "---\ntimeout: 2s\n---\n# Hangs\n\nhang until the timeout\n",
    )
    .unwrap();
    let cmd = format!("sh {}", agent.display());
    let out = repo.output(&["run", "--json", "--agent-command", &cmd, "prompts"]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", show(&out)));
    let status = |id: &str| {
        summary["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["status"].clone())
    };
    assert_eq!(status("exits").unwrap(), "succeeded", "{}", show(&out));
    assert_eq!(status("hangs").unwrap(), "failed", "{}", show(&out));
    for task in ["exits", "hangs"] {
        let pid: u32 = std::fs::read_to_string(marker.join(format!("{task}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = !stat.is_empty() && !stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z');
        if alive {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        assert!(
            !alive,
            "the detached process of task {task} (pid {pid}) outlived its attempt"
        );
    }
}

/// Issue 15: the agent sees `PWD` equal to its working directory — the task's worktree —
/// never the directory gadugi was started in (the user's checkout). opencode takes its
/// working directory from `$PWD` and edited the user's checkout before this. The agent here
/// is `printenv PWD` itself, started without a shell (a shell would correct `PWD` itself).
#[test]
fn the_agent_sees_pwd_as_its_worktree() {
    let repo = Repo::new();
    std::fs::write(repo.root.join("prompts/a.md"), "# A\n\ndo it\n").unwrap();
    let out = repo
        .command(&["run", "--json", "--agent-command", "printenv PWD", "prompts"])
        .env("PWD", &repo.root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = repo.run_dir().unwrap().join("tasks/a/attempt-1/stdout.log");
    let seen = std::fs::read_to_string(&stdout).unwrap();
    let wt = repo.root.parent().unwrap().join("repo.gadugi-worktrees/a");
    assert_eq!(PathBuf::from(seen.trim()), wt, "the agent saw PWD={seen}");
}
