//! End-to-end behaviour of `gadugi run` on real git repositories with scripted agents that
//! commit, fail, die by signal, hang, flood their output, leave uncommitted changes and
//! depend on each other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::git;

const AGENT: &str = r#"#!/bin/sh
# Scripted agent: behaviour comes from "BEHAVIOR:" and "SLEEP:" lines of the prompt.
p="$GADUGI_PROMPT_FILE"
b=$(sed -n 's/^BEHAVIOR: //p' "$p" | head -n 1)
s=$(sed -n 's/^SLEEP: //p' "$p" | head -n 1)
echo "agent $GADUGI_TASK_ID attempt $GADUGI_ATTEMPT on $GADUGI_BRANCH in $(pwd)"
[ "$(pwd)" = "$GADUGI_WORKTREE" ] || { echo "wrong cwd" >&2; exit 90; }
[ -n "$s" ] && sleep "$s"
commit() { echo "$GADUGI_TASK_ID" > "$1"; git add -- "$1" && git -c user.name=agent -c user.email=agent@test commit -qm "$GADUGI_TASK_ID: $1"; }
case "$b" in
  commit) commit "out-$GADUGI_TASK_ID.txt" ;;
  fail) echo "boom from $GADUGI_TASK_ID" >&2; exit 3 ;;
  sigkill) kill -9 $$ ;;
  hang) trap '' TERM; sh -c 'trap "" TERM; echo $$ > "$GADUGI_WORKTREE/../'"$GADUGI_TASK_ID"'.child"; sleep 300' & sleep 300 ;;
  flood) head -c 30000000 /dev/zero | tr '\0' 'x' | fold -w 99; commit flood.txt ;;
  uncommitted) echo left > left.txt; echo changed >> README.md; rm -f gone.txt ;;
  newfile) echo left > left.txt ;;
  flaky) [ "$GADUGI_ATTEMPT" = 1 ] && { echo "first attempt dies" >&2; kill -9 $$; }; commit flaky.txt ;;
  exit75) [ "$GADUGI_ATTEMPT" = 1 ] && exit 75; commit flaky.txt ;;
  exit1) [ "$GADUGI_ATTEMPT" = 1 ] && exit 1; commit flaky.txt ;;
  history) git log --format=%s > "history-$GADUGI_TASK_ID.txt"; ls >> "history-$GADUGI_TASK_ID.txt"; commit "out-$GADUGI_TASK_ID.txt"; git add -A; git -c user.name=a -c user.email=a@b commit -qm history ;;
  conflict) echo "$GADUGI_TASK_ID" > shared.txt; git add shared.txt; git -c user.name=a -c user.email=a@b commit -qm "$GADUGI_TASK_ID writes shared" ;;
  prompt) cp "$p" "seen-prompt.md"; commit "out-$GADUGI_TASK_ID.txt"; git add -A; git -c user.name=a -c user.email=a@b commit -qm prompt ;;
  *) echo "unknown behaviour '$b'" >&2; exit 99 ;;
esac
"#;

struct Repo {
    _tmp: tempfile::TempDir,
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
        std::fs::write(root.join("gone.txt"), "to be deleted\n").unwrap();
        std::fs::write(root.join("gadugi.toml"), "kill_grace = \"1s\"\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        let agent = tmp.path().join("agent.sh");
        std::fs::write(&agent, AGENT).unwrap();
        Repo { _tmp: tmp, root, agent }
    }

    /// Writes prompts/<name>.md with optional front matter and a behaviour.
    fn prompt(&self, name: &str, front: &str, behavior: &str) -> PathBuf {
        let fm = if front.is_empty() {
            String::new()
        } else {
            format!("---\n{front}\n---\n")
        };
        let path = self.root.join("prompts").join(format!("{name}.md"));
        std::fs::write(
            &path,
            format!("{fm}# Task {name}\n\nDo the {name} thing.\n\nBEHAVIOR: {behavior}\n"),
        )
        .unwrap();
        path
    }

    fn gadugi(&self, args: &[&str]) -> Output {
        self.gadugi_env(&[], args)
    }

    /// `gadugi args...` with extra environment variables.
    fn gadugi_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_gadugi"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .expect("gadugi runs")
    }

    /// `gadugi run --json` with the scripted agent; returns (exit code, summary, stderr).
    fn run(&self, extra: &[&str], files: &[&str]) -> (i32, Value, String) {
        let (code, json, stderr) = self.run_env(&[], extra, files);
        assert!(!stderr.contains("panicked"), "{stderr}");
        (code, json, stderr)
    }

    /// `run` with extra environment variables; a panic on stderr is the caller's business.
    fn run_env(&self, env: &[(&str, &str)], extra: &[&str], files: &[&str]) -> (i32, Value, String) {
        let cmd = format!("sh {}", self.agent.display());
        let mut args = vec!["run", "--json", "--agent-command", cmd.as_str()];
        args.extend_from_slice(extra);
        args.extend_from_slice(files);
        let out = self.gadugi_env(env, &args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.code().unwrap_or(-1), json, stderr)
    }

    fn worktree(&self, id: &str) -> PathBuf {
        self.root.parent().unwrap().join("repo.gadugi-worktrees").join(id)
    }
}

fn task<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {summary}"))
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Everything about the user's checkout that a run must not change.
fn checkout_snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut snap = BTreeMap::new();
    snap.insert("HEAD".into(), git(root, &["rev-parse", "HEAD"]));
    snap.insert("symbolic".into(), git(root, &["symbolic-ref", "-q", "HEAD"]));
    snap.insert("index".into(), git(root, &["ls-files", "-s"]));
    snap.insert(
        "status".into(),
        git(root, &["status", "--porcelain", "--untracked-files=all"]),
    );
    snap.insert("stash".into(), git(root, &["stash", "list"]));
    fn walk(dir: &Path, base: &Path, snap: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().to_string();
            if rel == ".git" || rel == ".gadugi" {
                continue;
            }
            if p.is_dir() {
                walk(&p, base, snap);
            } else {
                snap.insert(
                    format!("file:{rel}"),
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).to_string(),
                );
            }
        }
    }
    walk(root, root, &mut snap);
    snap
}

#[test]
fn independent_tasks_each_get_a_branch_with_their_commit() {
    let r = Repo::new();
    for n in ["a", "b", "c"] {
        r.prompt(n, "", "commit");
    }
    let status_before = git(&r.root, &["status", "--porcelain"]);
    let (code, summary, stderr) = r.run(&["-j", "3"], &["prompts"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["status"], "succeeded");
    assert!(summary["run_id"].as_str().unwrap().len() > 10);
    assert!(summary["wall_seconds"].as_f64().unwrap() > 0.0);
    for n in ["a", "b", "c"] {
        let t = task(&summary, n);
        assert_eq!(t["status"], "succeeded");
        assert_eq!(t["branch"], format!("gadugi/{n}"));
        assert_eq!(t["commits"], 1);
        assert_eq!(t["exit_code"], 0);
        assert!(t["error"].is_null());
        assert!(t["prompt_file"].as_str().unwrap().ends_with(&format!("prompts/{n}.md")));
        assert!(time(&t["finished_at"]) >= time(&t["started_at"]));
        assert!(t["started_at"].as_str().unwrap().ends_with('Z'), "RFC 3339 UTC");
        assert_eq!(git(&r.root, &["show", &format!("gadugi/{n}:out-{n}.txt")]), n);
        assert_eq!(
            git(&r.root, &["log", "-1", "--format=%s", &format!("gadugi/{n}")]),
            format!("{n}: out-{n}.txt")
        );
        assert!(
            !r.worktree(n).exists(),
            "a succeeded task's worktree is removed; its branch stays"
        );
    }
    // State files exist and parse; .gadugi is ignored through .git/info/exclude.
    let run_dir = r.root.join(".gadugi/runs").join(summary["run_id"].as_str().unwrap());
    for f in ["state.json", "report.json"] {
        let _: Value = serde_json::from_slice(&std::fs::read(run_dir.join(f)).unwrap()).unwrap();
    }
    assert!(std::fs::read_to_string(run_dir.join("report.md"))
        .unwrap()
        .contains("gadugi/a"));
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(events.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
    assert!(events.lines().next().unwrap().contains("\"run_started\""));
    assert!(events.lines().last().unwrap().contains("\"run_finished\""));
    let registry: Value =
        serde_json::from_slice(&std::fs::read(r.root.join(".gadugi/monitoring/process_registry.json")).unwrap())
            .unwrap();
    let a = &registry["processes"]["a"];
    assert!(a["pid"].as_u64().is_some_and(|p| p > 1), "{a}");
    assert_eq!(a["status"], "succeeded");
    assert_eq!(a["exit_code"], 0);
    assert!(a["last_heartbeat"].is_string());
    assert!(std::fs::read_to_string(r.root.join(".git/info/exclude"))
        .unwrap()
        .lines()
        .any(|l| l == "/.gadugi/"));
    assert!(!git(&r.root, &["worktree", "list", "--porcelain"]).contains("prunable"));
    assert_eq!(
        git(&r.root, &["status", "--porcelain"]),
        status_before,
        ".gadugi/ shows in git status"
    );
}

#[test]
fn the_users_checkout_is_never_touched() {
    let r = Repo::new();
    r.prompt("a", "", "uncommitted");
    r.prompt("b", "depends_on: [a]", "commit");
    r.prompt("c", "", "fail");
    // The user has work in progress: a modified file, a staged file and an untracked one.
    std::fs::write(r.root.join("README.md"), "user's edit in progress\n").unwrap();
    std::fs::write(r.root.join("staged.txt"), "staged\n").unwrap();
    git(&r.root, &["add", "staged.txt"]);
    std::fs::write(r.root.join("untracked.txt"), "mine\n").unwrap();
    let before = checkout_snapshot(&r.root);
    let (code, _, _) = r.run(&[], &["prompts"]);
    assert_eq!(code, 1);
    assert_eq!(checkout_snapshot(&r.root), before);
}

#[test]
fn a_dependent_starts_after_and_from_its_dependency() {
    let r = Repo::new();
    r.prompt("base", "", "commit");
    r.prompt("next", "depends_on: [base.md]", "history");
    r.prompt("other", "", "commit");
    let (code, summary, stderr) = r.run(&["-j", "4"], &["prompts"]);
    assert_eq!(code, 0, "{stderr}");
    let (base, next) = (task(&summary, "base"), task(&summary, "next"));
    assert!(time(&next["started_at"]) >= time(&base["finished_at"]), "{summary}");
    let history = git(&r.root, &["show", "gadugi/next:history-next.txt"]);
    assert!(history.contains("base: out-base.txt"), "{history}");
    assert!(history.contains("out-base.txt"));
    // The dependency's commit is an ancestor of the dependent's branch.
    let ok = Command::new("git")
        .arg("-C")
        .arg(&r.root)
        .args(["merge-base", "--is-ancestor", "gadugi/base", "gadugi/next"])
        .status()
        .unwrap();
    assert!(ok.success());
    // commits counts only the dependent's own work.
    assert_eq!(next["commits"], 2);
}

#[test]
fn a_task_with_two_dependencies_starts_from_both() {
    let r = Repo::new();
    r.prompt("left", "", "commit");
    r.prompt("right", "", "commit");
    std::fs::write(
        r.root.join("prompts/join.md"),
        "# Join\n\nDepends on: left.md, `right`\n\nBEHAVIOR: history\n",
    )
    .unwrap();
    let (code, summary, stderr) = r.run(&[], &["prompts"]);
    assert_eq!(code, 0, "{stderr}\n{summary}");
    let files = git(&r.root, &["ls-tree", "-r", "--name-only", "gadugi/join"]);
    assert!(
        files.contains("out-left.txt") && files.contains("out-right.txt"),
        "{files}"
    );
}

#[test]
fn conflicting_dependencies_fail_the_dependent_naming_the_files() {
    let r = Repo::new();
    r.prompt("x", "", "conflict");
    r.prompt("y", "", "conflict");
    r.prompt("z", "depends_on: [x, y]", "commit");
    let (code, summary, _) = r.run(&["--repo", r.root.to_str().unwrap()], &["prompts"]);
    assert_eq!(code, 1);
    let z = task(&summary, "z");
    assert_eq!(z["status"], "failed");
    let err = z["error"].as_str().unwrap();
    assert!(err.contains("shared.txt") && err.contains("gadugi/y"), "{err}");
}

#[test]
fn a_failure_skips_its_dependents_and_nothing_else() {
    let r = Repo::new();
    r.prompt("bad", "", "fail");
    r.prompt("child", "depends_on: [bad]", "commit");
    r.prompt("grandchild", "depends_on: [child]", "commit");
    r.prompt("free", "", "commit");
    let (code, summary, _) = r.run(&[], &["prompts"]);
    assert_eq!(code, 1);
    assert_eq!(summary["status"], "failed");
    let bad = task(&summary, "bad");
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["exit_code"], 3);
    assert!(bad["error"].as_str().unwrap().contains("code 3"));
    assert_eq!(task(&summary, "child")["status"], "skipped");
    assert_eq!(task(&summary, "child")["error"], "dependency `bad` failed");
    assert_eq!(task(&summary, "grandchild")["status"], "skipped");
    assert_eq!(task(&summary, "free")["status"], "succeeded");
    assert!(!r.worktree("child").exists(), "a skipped task creates nothing");
    // The failed task's worktree and branch stay for inspection.
    assert!(r.worktree("bad").is_dir());
    let logs = r.gadugi(&["logs", "bad"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("boom from bad"));
}

#[test]
fn an_agent_killed_by_a_signal_fails_and_the_others_succeed() {
    let r = Repo::new();
    r.prompt("victim", "", "sigkill");
    r.prompt("ok", "", "commit");
    let (code, summary, _) = r.run(&[], &["prompts"]);
    assert_eq!(code, 1);
    let v = task(&summary, "victim");
    assert_eq!(v["status"], "failed");
    assert!(v["error"].as_str().unwrap().contains("signal 9"), "{v}");
    assert_eq!(task(&summary, "ok")["status"], "succeeded");
}

#[test]
fn a_hanging_agent_and_its_children_are_gone_after_the_timeout() {
    let r = Repo::new();
    r.prompt("stuck", "timeout: 2", "hang");
    let started = Instant::now();
    let (code, summary, _) = r.run(&[], &["prompts"]);
    let took = started.elapsed();
    assert_eq!(code, 1);
    let t = task(&summary, "stuck");
    assert!(t["error"].as_str().unwrap().contains("timed out"), "{t}");
    // Timeout 2 s + grace 1 s; generous bound for a loaded machine, far below the 300 s sleep.
    assert!(took < Duration::from_secs(30), "{took:?}");
    let child_pid = std::fs::read_to_string(r.worktree("stuck").parent().unwrap().join("stuck.child")).unwrap();
    let alive = Path::new(&format!("/proc/{}", child_pid.trim())).exists();
    assert!(!alive, "the agent's child (ignoring SIGTERM) survived");
}

#[test]
fn flooding_output_is_recorded_in_full() {
    let r = Repo::new();
    r.prompt("loud", "", "flood");
    let (code, summary, stderr) = r.run(&[], &["prompts"]);
    assert_eq!(code, 0, "{stderr}");
    let run_dir = r.root.join(".gadugi/runs").join(summary["run_id"].as_str().unwrap());
    let size = std::fs::metadata(run_dir.join("tasks/loud/attempt-1/stdout.log"))
        .unwrap()
        .len();
    assert!(size >= 30_000_000, "{size}");
}

#[test]
fn uncommitted_changes_are_committed_on_the_branch() {
    let r = Repo::new();
    r.prompt("messy", "", "uncommitted");
    let (code, summary, stderr) = r.run(&[], &["prompts"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(task(&summary, "messy")["commits"], 1);
    assert_eq!(git(&r.root, &["show", "gadugi/messy:left.txt"]), "left");
    assert!(git(&r.root, &["show", "gadugi/messy:README.md"]).contains("changed"));
    let deleted = Command::new("git")
        .arg("-C")
        .arg(&r.root)
        .args(["cat-file", "-e", "gadugi/messy:gone.txt"])
        .status()
        .unwrap();
    assert!(!deleted.success(), "the deletion was committed too");
    assert!(!r.worktree("messy").exists(), "clean after the commit, so removed");
}

/// A user whose git hides untracked files from `git status` (`status.showUntrackedFiles =
/// no`, common in large repositories) loses none of the agent's new files: they are
/// committed as leftovers, not deleted with the worktree.
#[test]
fn new_files_are_committed_even_when_git_status_is_told_to_hide_them() {
    let r = Repo::new();
    git(&r.root, &["config", "status.showUntrackedFiles", "no"]);
    r.prompt("messy", "", "newfile");
    let (code, summary, stderr) = r.run(&[], &["prompts"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(task(&summary, "messy")["commits"], 1);
    assert_eq!(git(&r.root, &["show", "gadugi/messy:left.txt"]), "left");
    assert!(!r.worktree("messy").exists(), "clean after the commit, so removed");
}

#[test]
fn a_task_failing_only_its_own_way_is_not_retried() {
    let r = Repo::new();
    r.prompt("plain", "retries: 2", "exit1");
    let (code, summary, _) = r.run(&[], &["prompts"]);
    assert_eq!(code, 1);
    let run_dir = r.root.join(".gadugi/runs").join(summary["run_id"].as_str().unwrap());
    assert!(
        !run_dir.join("tasks/plain/attempt-2").exists(),
        "exit 1 is not a transient failure"
    );
}

#[test]
fn configured_exit_codes_are_retried() {
    let r = Repo::new();
    std::fs::write(
        r.root.join("gadugi.toml"),
        "kill_grace = \"1s\"\nretry_exit_codes = [75]\n",
    )
    .unwrap();
    r.prompt("tempfail", "retries: 1", "exit75");
    let (code, summary, stderr) = r.run(&[], &["prompts"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(task(&summary, "tempfail")["commits"], 1);
}

#[test]
fn an_agent_killed_by_a_foreign_signal_is_retried_and_succeeds() {
    let r = Repo::new();
    r.prompt("flaky", "retries: 1", "flaky");
    let (code, summary, stderr) = r.run(&[], &["prompts"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("attempt 1 failed") && stderr.contains("signal 9"),
        "{stderr}"
    );
    let state: Value = serde_json::from_slice(
        &std::fs::read(
            r.root
                .join(".gadugi/runs")
                .join(summary["run_id"].as_str().unwrap())
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(state["tasks"][0]["attempts"], 2);
}

#[test]
fn a_failing_verify_fails_the_task() {
    let r = Repo::new();
    r.prompt("checked", "verify: test -f out-checked.txt && exit 7", "commit");
    r.prompt("passes", "verify: test -f out-passes.txt", "commit");
    let (code, summary, _) = r.run(&[], &["prompts"]);
    assert_eq!(code, 1);
    let err = task(&summary, "checked")["error"].as_str().unwrap().to_string();
    assert!(err.contains("verify") && err.contains("7"), "{err}");
    assert_eq!(task(&summary, "passes")["status"], "succeeded");
}

#[test]
fn the_agent_receives_the_task_text_and_its_context() {
    let r = Repo::new();
    r.prompt("dep", "", "commit");
    r.prompt("reader", "depends_on: [dep]", "prompt");
    let (code, _, stderr) = r.run(&[], &["prompts"]);
    assert_eq!(code, 0, "{stderr}");
    let seen = git(&r.root, &["show", "gadugi/reader:seen-prompt.md"]);
    assert!(seen.contains("# Task reader\n\nDo the reader thing."), "{seen}");
    assert!(!seen.contains("depends_on:"), "front matter is not part of the prompt");
    assert!(seen.contains("gadugi/reader") && seen.contains("`dep`"), "{seen}");
    assert!(seen.contains("Commit your changes"));
}

#[test]
fn a_second_run_of_the_same_prompts_is_refused_not_skipped() {
    let r = Repo::new();
    r.prompt("once", "", "commit");
    let (code, _, _) = r.run(&[], &["prompts"]);
    assert_eq!(code, 0);
    let head = git(&r.root, &["rev-parse", "gadugi/once"]);
    let cmd = format!("sh {}", r.agent.display());
    let out = r.gadugi(&["run", "--agent-command", &cmd, "prompts"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("branch `gadugi/once` already exists"));
    assert_eq!(git(&r.root, &["rev-parse", "gadugi/once"]), head);
}

#[test]
fn status_plan_and_cleanup_work_on_a_finished_run() {
    let r = Repo::new();
    r.prompt("done", "", "commit");
    r.prompt("broken", "", "fail");
    let (_, summary, _) = r.run(&[], &["prompts"]);
    let status = r.gadugi(&["status", "--json"]);
    let s: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["run_id"], summary["run_id"]);
    assert_eq!(s["tasks"].as_array().unwrap().len(), 2);
    // A dirty worktree is kept by cleanup; clean ones are removed, branches stay.
    std::fs::write(r.worktree("broken").join("wip.txt"), "unsaved work").unwrap();
    let out = r.gadugi(&["cleanup"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("uncommitted changes"), "{text}");
    assert!(!r.worktree("done").exists());
    assert!(r.worktree("broken").join("wip.txt").exists());
    assert!(!git(&r.root, &["worktree", "list", "--porcelain"]).contains("prunable"));
    assert_eq!(git(&r.root, &["rev-parse", "--verify", "gadugi/done"]).len(), 40);
    // --force commits the work onto the branch before removing the worktree.
    let out = r.gadugi(&["cleanup", "--force"]);
    assert!(out.status.success());
    assert!(!r.worktree("broken").exists());
    assert_eq!(git(&r.root, &["show", "gadugi/broken:wip.txt"]), "unsaved work");
}

#[test]
fn demo_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gadugi"))
        .args(["demo", "--json", "--dir"])
        .arg(tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["tasks"].as_array().unwrap().len(), 6);
    assert!(summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "succeeded" && t["commits"] == 1));
    let repo = tmp.path().join("demo-repo");
    let report: Value = serde_json::from_slice(
        &std::fs::read(
            repo.join(".gadugi/runs")
                .join(summary["run_id"].as_str().unwrap())
                .join("report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(report["speedup"].as_f64().unwrap() > 1.5, "{report}");
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
}

#[test]
fn retry_runs_a_failed_task_again_on_its_branch_with_its_skipped_dependents() {
    let r = Repo::new();
    r.prompt("shaky", "", "exit1");
    r.prompt("after", "depends_on: [shaky]", "commit");
    r.prompt("steady", "", "commit");
    let (code, summary, _) = r.run(&[], &["prompts"]);
    assert_eq!(code, 1);
    assert_eq!(task(&summary, "after")["status"], "skipped");
    let steady_head = git(&r.root, &["rev-parse", "gadugi/steady"]);
    // A succeeded task is not retried.
    let refused = r.gadugi(&["retry", "steady"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nothing to retry"));
    let out = r.gadugi(&["retry", "--json", "shaky"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(task(&summary, "shaky")["status"], "succeeded");
    assert_eq!(task(&summary, "after")["status"], "succeeded");
    let run_dir = r.root.join(".gadugi/runs").join(summary["run_id"].as_str().unwrap());
    assert!(
        run_dir.join("tasks/shaky/attempt-2/exit.json").is_file(),
        "a new attempt, not the old one collected"
    );
    assert_eq!(git(&r.root, &["show", "gadugi/after:flaky.txt"]), "shaky");
    assert_eq!(git(&r.root, &["rev-parse", "gadugi/steady"]), steady_head, "untouched");
}

#[test]
fn a_panicking_task_fails_only_that_task() {
    let r = Repo::new();
    for n in ["a", "b", "c"] {
        r.prompt(n, "", "commit");
    }
    // The debug binary's test hook: task b's future panics as it starts.
    let (code, summary, stderr) = r.run_env(&[("GADUGI_TEST_PANIC_TASK", "b")], &["-j", "3"], &["prompts"]);
    assert_eq!(code, 1, "tasks failed, not an internal error (3) nor a crash: {stderr}");
    assert!(stderr.contains("injected panic for task b"), "{stderr}");
    assert_eq!(summary["status"], "failed");
    let b = task(&summary, "b");
    assert_eq!(b["status"], "failed", "{summary}");
    let err = b["error"].as_str().unwrap();
    assert!(
        err.contains("panicked") && err.contains("injected panic for task b"),
        "{err}"
    );
    for n in ["a", "c"] {
        assert_eq!(task(&summary, n)["status"], "succeeded", "{summary}");
        assert_eq!(git(&r.root, &["show", &format!("gadugi/{n}:out-{n}.txt")]), n);
    }
    let run_dir = r.root.join(".gadugi/runs").join(summary["run_id"].as_str().unwrap());
    let events: Vec<Value> = std::fs::read_to_string(run_dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for n in ["a", "b", "c"] {
        let finished = events
            .iter()
            .filter(|e| e["type"] == "task_finished" && e["task"] == n)
            .count();
        assert_eq!(finished, 1, "task_finished for {n}");
    }
    assert_eq!(events.iter().filter(|e| e["type"] == "run_finished").count(), 1);
    assert_eq!(events.last().unwrap()["type"], "run_finished");
    // The state on disk and the report agree: the process ended the run itself.
    let state: Value = serde_json::from_slice(&std::fs::read(run_dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["status"], "failed");
    assert!(run_dir.join("report.json").is_file());
}
