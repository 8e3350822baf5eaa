//! Trust at the edges, the agent's work (issue 14, defects 3, 4 and 9): whatever state an
//! agent leaves its worktree in — HEAD detached or on another branch, a nested repository,
//! an unfinished merge, a stale `index.lock` — its work is never lost and never reported as
//! a plain success. Each test runs the real binary with a scripted agent and failed before
//! its fix.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;
use common::{gadugi_in, git, init_repo, show_output as show};

/// `git commit` as the agent.
const COMMIT: &str = "git -c user.name=agent -c user.email=agent@test commit -q";

/// A repository with one prompt, `a`, and an agent script written by each test (in the
/// temporary folder the repository lives in, dropped with it).
struct Repo {
    root: PathBuf,
    agent_command: String,
    _tmp: tempfile::TempDir,
}

impl Repo {
    fn new(agent_script: &str) -> Repo {
        let _tmp = tempfile::tempdir().unwrap();
        let root = _tmp.path().join("repo");
        init_repo(
            &root,
            &[
                ("README.md", "hello\n"),
                ("gadugi.toml", "kill_grace = \"1s\"\n"),
                ("prompts/a.md", "# Task a\n\nDo it.\n"),
            ],
        );
        let agent = _tmp.path().join("agent.sh");
        std::fs::write(&agent, format!("#!/bin/sh\nset -e\n{agent_script}\n")).unwrap();
        let agent_command = format!("sh {}", agent.display());
        Repo {
            root,
            agent_command,
            _tmp,
        }
    }

    fn gadugi(&self, args: &[&str]) -> Output {
        gadugi_in(&self.root, args)
    }

    /// `gadugi run --json` with the scripted agent; returns the output and task `a`'s entry.
    fn run(&self) -> (Output, Value) {
        let out = self.gadugi(&["run", "--json", "--agent-command", &self.agent_command, "prompts"]);
        let summary: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--json output ({e}):\n{}", show(&out)));
        let task = summary["tasks"][0].clone();
        assert_eq!(task["id"], "a", "{summary}");
        (out, task)
    }

    fn events(&self) -> Vec<Value> {
        let runs = self.root.join(".gadugi/runs");
        let mut ids: Vec<PathBuf> = std::fs::read_dir(runs).unwrap().flatten().map(|e| e.path()).collect();
        ids.sort();
        let log = std::fs::read_to_string(ids.pop().unwrap().join("events.jsonl")).unwrap();
        log.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn warnings(task: &Value) -> Vec<String> {
    task["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn str_of<'a>(task: &'a Value, key: &str) -> &'a str {
    task[key].as_str().unwrap_or_default()
}

/// The task's warnings reached the event log as `task_warning` events.
fn warned_in_events(repo: &Repo, needle: &str) -> bool {
    repo.events()
        .iter()
        .any(|e| e["type"] == "task_warning" && e["warning"].as_str().is_some_and(|w| w.contains(needle)))
}

/// Runs an agent that ends with `work.txt` committed off the task branch (`leave` says
/// how), and checks the commit was brought onto the branch with a warning naming `needle`.
/// Returns the task's branch.
fn assert_brought_onto_branch(leave: &str, needle: &str) -> (Repo, String) {
    let repo = Repo::new(&format!(
        "{leave}\necho work > work.txt\ngit add work.txt\n{COMMIT} -m 'work off the branch'"
    ));
    let (out, task) = repo.run();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["commits"], 1, "the commit off the branch counts: {task}");
    let branch = str_of(&task, "branch").to_string();
    assert_eq!(git(&repo.root, &["show", &format!("{branch}:work.txt")]), "work");
    assert!(warnings(&task).iter().any(|w| w.contains(needle)), "{task}");
    assert!(warned_in_events(&repo, needle));
    (repo, branch)
}

/// Defect 3: the agent detached HEAD and committed there. The commit is a fast-forward of the
/// task branch: the branch is moved to it, checked out again, and the run says so.
#[test]
fn d03_commit_on_a_detached_head_is_brought_onto_the_task_branch() {
    assert_brought_onto_branch("git checkout -q --detach", "detached");
}

/// Defect 3: the agent switched to a new branch and committed there: a fast-forward too.
/// Its branch is left as it is (Gadugi never deletes a branch).
#[test]
fn d03_commit_on_another_branch_is_brought_onto_the_task_branch() {
    let (repo, branch) = assert_brought_onto_branch("git checkout -q -b agent-side", "agent-side");
    assert_eq!(
        git(&repo.root, &["rev-parse", &branch]),
        git(&repo.root, &["rev-parse", "agent-side"])
    );
}

/// Defect 3: the agent committed on the task branch, then detached HEAD at an older commit
/// and committed there. That is no fast-forward: the task fails, saying where the work is;
/// the commit is kept under `refs/gadugi/orphans/a/1` and the worktree stays.
#[test]
fn d03_diverged_detached_work_fails_the_task_and_is_kept_under_an_orphan_ref() {
    let repo = Repo::new(&format!(
        "echo one > one.txt\ngit add one.txt\n{COMMIT} -m one\n\
         git checkout -q --detach HEAD~1\necho two > two.txt\ngit add two.txt\n{COMMIT} -m two"
    ));
    let (out, task) = repo.run();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(task["status"], "failed", "{task}");
    let error = str_of(&task, "error");
    assert!(error.contains("refs/gadugi/orphans/a/1"), "{error}");
    assert!(error.contains("detached"), "{error}");
    let orphan = git(&repo.root, &["rev-parse", "refs/gadugi/orphans/a/1"]);
    assert_eq!(git(&repo.root, &["show", &format!("{orphan}:two.txt")]), "two");
    let worktree = Path::new(str_of(&task, "worktree"));
    assert!(worktree.join("two.txt").is_file(), "the worktree is kept");
    let branch = str_of(&task, "branch");
    assert_eq!(git(&repo.root, &["show", &format!("{branch}:one.txt")]), "one");
}

/// Defect 4: a nested repository the agent created is not committed as a gitlink (to a
/// commit that exists nowhere else); it stays in the kept worktree and the task warns. The
/// agent's other work is committed and the task succeeds.
#[test]
fn d04_nested_repository_is_kept_in_the_worktree_not_committed_as_a_gitlink() {
    let repo = Repo::new(&format!(
        "git init -q sub\n(cd sub && echo inner > inner.txt && git add inner.txt && {COMMIT} -m inner)\n\
         echo top > top.txt"
    ));
    let (out, task) = repo.run();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(task["status"], "succeeded", "{task}");
    assert!(warnings(&task).iter().any(|w| w.contains("sub")), "{task}");
    assert!(warned_in_events(&repo, "nested git repository"));
    let branch = str_of(&task, "branch");
    let tree = git(&repo.root, &["ls-tree", "-r", branch]);
    assert!(!tree.contains("160000"), "no gitlink on the branch:\n{tree}");
    assert!(tree.contains("top.txt"), "the other work is committed:\n{tree}");
    let worktree = Path::new(str_of(&task, "worktree"));
    assert!(worktree.join("sub/.git").exists(), "the nested repository survives");
    assert_eq!(git(&worktree.join("sub"), &["log", "-1", "--format=%s"]), "inner");
}

/// Defect 4: a nested repository inside a folder git ignores leaves the worktree clean; it
/// is still never deleted — not when the task succeeds, not by `gadugi cleanup` (only with
/// `--force`).
#[test]
fn d04_ignored_nested_repository_keeps_the_worktree_from_removal() {
    let repo = Repo::new(&format!(
        "echo scratch/ > .gitignore\ngit init -q scratch/inner\n\
         (cd scratch/inner && echo inner > inner.txt && git add inner.txt && {COMMIT} -m inner)"
    ));
    let (out, task) = repo.run();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(task["status"], "succeeded", "{task}");
    let worktree = PathBuf::from(str_of(&task, "worktree"));
    assert!(worktree.join("scratch/inner/.git").exists(), "the worktree is kept");
    assert!(warnings(&task).iter().any(|w| w.contains("scratch/inner")), "{task}");
    let out = repo.gadugi(&["cleanup"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nested git repository"),
        "{}",
        show(&out)
    );
    assert!(worktree.join("scratch/inner/inner.txt").exists(), "cleanup keeps it");
}

/// Defect 9a: the agent left a merge in progress (conflict markers, MERGE_HEAD). It is not
/// committed as a merge: the task fails and the worktree keeps the merge as it was.
#[test]
fn d09_unfinished_merge_fails_the_task_and_is_not_committed() {
    let repo = Repo::new(&format!(
        "echo one > c.txt\ngit add c.txt\n{COMMIT} -m one\n\
         blob=$(echo two | git hash-object -w --stdin)\n\
         tree=$(printf '100644 blob %s\\tc.txt\\n' \"$blob\" | git mktree)\n\
         side=$(git -c user.name=agent -c user.email=agent@test commit-tree \"$tree\" -p HEAD~1 -m two)\n\
         git -c user.name=agent -c user.email=agent@test merge \"$side\" || true"
    ));
    let (out, task) = repo.run();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(task["status"], "failed", "{task}");
    let error = str_of(&task, "error");
    assert!(error.contains("the agent left an unfinished merge"), "{error}");
    let branch = str_of(&task, "branch");
    assert_eq!(
        git(&repo.root, &["log", "-1", "--format=%s", branch]),
        "one",
        "no merge committed"
    );
    let worktree = Path::new(str_of(&task, "worktree"));
    assert!(
        git(worktree, &["rev-parse", "-q", "--verify", "MERGE_HEAD"]).len() == 40,
        "the merge is still in progress"
    );
    assert!(std::fs::read_to_string(worktree.join("c.txt"))
        .unwrap()
        .contains("<<<<<<<"));
}

/// Defect 9b: a stale `index.lock` makes the leftover commit fail: the task fails and names
/// the lock file; the agent's uncommitted file stays in the worktree.
#[test]
fn d09_leftovers_blocked_by_a_stale_index_lock_fail_the_task() {
    let repo = Repo::new("echo work > work.txt\ntouch \"$(git rev-parse --git-dir)/index.lock\"");
    let (out, task) = repo.run();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(task["status"], "failed", "{task}");
    let error = str_of(&task, "error");
    assert!(error.contains("index.lock"), "{error}");
    let worktree = Path::new(str_of(&task, "worktree"));
    assert!(worktree.join("work.txt").is_file(), "the work stays");
}
