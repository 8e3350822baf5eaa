//! From parallel branches to one result, end to end on real repositories with a scripted
//! agent: conflicts predicted during the run, `gadugi merge` (dependency order, stop at the
//! first conflict, `--verify` and its time limit, `--onto`), `gadugi report`, and `gadugi pr` against a local
//! bare repository as the remote with `gh` replaced by a script that checks its arguments.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{git, process_gone};

/// Waits for the file a `WAIT: <path>` line names, then writes every `WRITE: <file> <text>`
/// line of the prompt to <file> and commits each; then touches the file of a `TOUCH: <path>` line.
const AGENT: &str = r#"#!/bin/sh
w=$(sed -n 's/^WAIT: //p' "$GADUGI_PROMPT_FILE")
if [ -n "$w" ]; then while [ ! -e "$w" ]; do sleep 0.05; done; fi
sed -n 's/^WRITE: //p' "$GADUGI_PROMPT_FILE" | while read -r file text; do
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$text" > "$file"
  git add -- "$file"
  git -c user.name=agent -c user.email=agent@test commit -qm "$GADUGI_TASK_ID writes $file"
done
t=$(sed -n 's/^TOUCH: //p' "$GADUGI_PROMPT_FILE")
if [ -n "$t" ]; then touch "$t"; fi
echo "done: $GADUGI_TASK_ID"
"#;

/// A fake `gh`: `auth status` passes unless $FAKE_GH_DIR/auth-fails exists; `pr create` checks
/// its arguments (exit 64 on anything unexpected), records them and the body, prints a URL.
const FAKE_GH: &str = include_str!("common/fake-gh.sh");

struct Fixture {
    _tmp: tempfile::TempDir,
    tmp: PathBuf,
    root: PathBuf,
    agent: PathBuf,
}

fn git_ok(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .status
        .success()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Fixture {
    fn new() -> Fixture {
        let tmp_dir = tempfile::tempdir().unwrap();
        let tmp = tmp_dir.path().to_path_buf();
        let root = tmp.join("repo");
        std::fs::create_dir_all(root.join("prompts")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Test"]);
        git(&root, &["config", "user.email", "test@example.com"]);
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        let agent = tmp.join("agent.sh");
        std::fs::write(&agent, AGENT).unwrap();
        Fixture {
            _tmp: tmp_dir,
            tmp,
            root,
            agent,
        }
    }

    /// prompts/<name>.md with front matter and `WRITE:` lines.
    fn prompt(&self, name: &str, front: &str, writes: &[(&str, &str)]) {
        let mut body = format!("---\n{front}\n---\n# Task {name}\n\n");
        for (file, text) in writes {
            body.push_str(&format!("WRITE: {file} {text}\n"));
        }
        std::fs::write(self.root.join("prompts").join(format!("{name}.md")), body).unwrap();
    }

    /// Appends a line to prompts/<name>.md.
    fn append(&self, name: &str, line: &str) {
        let path = self.root.join("prompts").join(format!("{name}.md"));
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(line);
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }

    fn gadugi_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_gadugi"))
            .args(args)
            .current_dir(&self.root)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("gadugi runs");
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
        out
    }

    fn gadugi(&self, args: &[&str]) -> Output {
        self.gadugi_env(args, &[])
    }

    /// Runs every prompt with the scripted agent; returns the final state.json.
    fn run(&self) -> Value {
        let cmd = format!("sh {}", self.agent.display());
        let out = self.gadugi(&["run", "--json", "--agent-command", &cmd, "prompts"]);
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let id = summary["run_id"].as_str().unwrap();
        let state = std::fs::read(self.root.join(".gadugi/runs").join(id).join("state.json")).unwrap();
        serde_json::from_slice(&state).unwrap()
    }

    /// The `merge.json` of the run whose final state is `state`.
    fn merge_json(&self, state: &Value) -> Value {
        let run_dir = self.root.join(".gadugi/runs").join(state["run_id"].as_str().unwrap());
        serde_json::from_slice(&std::fs::read(run_dir.join("merge.json")).unwrap()).unwrap()
    }

    fn head(&self, branch: &str) -> String {
        git(&self.root, &["rev-parse", &format!("refs/heads/{branch}")])
    }

    fn contains(&self, integration: &str, branch: &str) -> bool {
        git_ok(&self.root, &["merge-base", "--is-ancestor", branch, integration])
    }
}

fn integration(state: &Value) -> String {
    format!("gadugi/integrate/{}", state["run_id"].as_str().unwrap())
}

/// Subjects of the merges on the integration branch, oldest first.
fn merge_subjects(f: &Fixture, branch: &str) -> Vec<String> {
    git(&f.root, &["log", "--first-parent", "--reverse", "--format=%s", branch])
        .lines()
        .filter(|l| l.starts_with("gadugi: merge"))
        .map(str::to_string)
        .collect()
}

#[test]
fn conflicts_are_predicted_live_and_merge_stops_at_the_first_conflict() {
    let f = Fixture::new();
    // `alpha` and `beta` write the same file differently without declaring it, so the plan
    // cannot see it: only merging the finished branches can.
    f.prompt("alpha", "id: alpha", &[("shared.txt", "alpha"), ("alpha.txt", "a")]);
    f.prompt("beta", "id: beta", &[("shared.txt", "beta")]);
    f.prompt("gamma", "id: gamma", &[("gamma.txt", "g")]);
    // beta writes only once alpha is done, so beta ends the run and only the prediction made
    // after the last task finished can see the conflict.
    let go = f.tmp.join("alpha-done");
    f.append("alpha", &format!("TOUCH: {}", go.display()));
    f.append("beta", &format!("WAIT: {}", go.display()));
    let state = f.run();
    let conflicts = state["merge_conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let c = &conflicts[0];
    let mut pair = [c["task"].as_str().unwrap(), c["with_task"].as_str().unwrap()];
    pair.sort();
    assert_eq!(pair, ["alpha", "beta"]);
    assert_eq!(
        c["files"],
        serde_json::json!([{"path": "shared.txt", "kind": "add/add", "hunks": 1}])
    );

    let events = std::fs::read_to_string(
        f.root
            .join(".gadugi/runs")
            .join(state["run_id"].as_str().unwrap())
            .join("events.jsonl"),
    )
    .unwrap();
    assert_eq!(
        events.matches("\"type\":\"conflicts_predicted\"").count(),
        3,
        "one per succeeded task"
    );

    let status = f.gadugi(&["status"]);
    let status = text(&status);
    assert!(
        status.contains("⚠") && status.contains("shared.txt (add/add, 1 hunk)"),
        "{status}"
    );

    let report = f.gadugi(&["report"]);
    let report = text(&report);
    assert!(report.contains("## Predicted merge conflicts"), "{report}");
    // The timeline is a picture next to the report, one bar per task.
    assert!(report.contains("](timeline.svg)"), "{report}");
    let run_id = state["run_id"].as_str().unwrap();
    let svg = std::fs::read_to_string(f.root.join(".gadugi/runs").join(run_id).join("timeline.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.matches(r#"class="bar""#).count() == 3,
        "{svg}"
    );
    assert!(report.contains("beta writes shared.txt"), "commit subjects: {report}");

    let out = f.gadugi(&["merge"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("merging gadugi/beta (task beta) conflicts with the merged work of alpha in: shared.txt"),
        "{said}"
    );
    let integ = integration(&state);
    assert!(f.contains(&integ, "gadugi/alpha"));
    assert!(!f.contains(&integ, "gadugi/beta"));
    assert!(
        !f.contains(&integ, "gadugi/gamma"),
        "merging stops at the first conflict"
    );
    assert_eq!(merge_subjects(&f, &integ), ["gadugi: merge gadugi/alpha"]);
    // The user's checkout did not move and no temporary worktree is left.
    assert_eq!(git(&f.root, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(
        git(&f.root, &["status", "--porcelain"]),
        "?? prompts/",
        "only the user's own files"
    );
    let worktrees = git(&f.root, &["worktree", "list"]);
    assert!(!worktrees.contains("gadugi-merge-"), "{worktrees}");

    let merge_json = f.merge_json(&state);
    assert_eq!(merge_json["complete"], false);
    assert_eq!(merge_json["steps"][1]["outcome"], "conflict");
}

#[test]
fn merge_follows_dependencies_verifies_and_fast_forwards() {
    let f = Fixture::new();
    // File order is a-user, b-free, z-dep; a-user depends on z-dep, so z-dep merges first.
    f.prompt("a-user", "id: user\ndepends_on: [dep]", &[("user.txt", "uses dep")]);
    f.prompt("b-free", "id: free", &[("free.txt", "free")]);
    f.prompt("z-dep", "id: dep", &[("dep.txt", "dep")]);
    let state = f.run();
    assert_eq!(state["merge_conflicts"], serde_json::json!([]));
    let integ = integration(&state);

    // --onto a checked-out branch is refused before anything is created.
    let out = f.gadugi(&["merge", "--onto", "main"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is checked out"), "{}", text(&out));
    assert!(!git_ok(&f.root, &["rev-parse", "--verify", "-q", &integ]));

    git(&f.root, &["branch", "release", "main"]);
    let out = f.gadugi(&[
        "merge",
        "--verify",
        "test -f README.md && test ! -f broken.txt",
        "--onto",
        "release",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        merge_subjects(&f, &integ),
        [
            "gadugi: merge gadugi/dep",
            "gadugi: merge gadugi/user",
            "gadugi: merge gadugi/free"
        ]
    );
    for task in ["dep", "user", "free"] {
        assert!(f.contains(&integ, &format!("gadugi/{task}")), "{task}");
    }
    assert_eq!(f.head("release"), f.head(&integ), "fast-forwarded");
    assert_eq!(f.head("main"), state["base_commit"].as_str().unwrap(), "main untouched");

    // Running it again finds everything merged and changes nothing.
    let before = f.head(&integ);
    let out = f.gadugi(&["merge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("already in"), "{}", text(&out));
    assert_eq!(f.head(&integ), before);

    // A branch that moved on is not fast-forwarded.
    git(&f.root, &["branch", "other", "main"]);
    let wt = f.tmp.join("other-wt");
    git(&f.root, &["worktree", "add", "-q", wt.to_str().unwrap(), "other"]);
    std::fs::write(wt.join("own.txt"), "own\n").unwrap();
    git(&wt, &["add", "-A"]);
    git(&wt, &["commit", "-qm", "own"]);
    git(&f.root, &["worktree", "remove", wt.to_str().unwrap()]);
    let other = f.head("other");
    let out = f.gadugi(&["merge", "--onto", "other"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Not fast-forwarding other"), "{}", text(&out));
    assert_eq!(f.head("other"), other);

    let report = text(&f.gadugi(&["report"]));
    assert!(report.contains("## Integration"), "{report}");
}

#[test]
fn failing_verify_leaves_the_integration_branch_at_the_last_good_merge() {
    let f = Fixture::new();
    f.prompt("a", "id: a", &[("a.txt", "a")]);
    f.prompt("b", "id: b", &[("b.txt", "b")]);
    f.prompt("c", "id: c", &[("c.txt", "c")]);
    let state = f.run();
    let integ = integration(&state);
    // Fails as soon as b's work is in the tree; leaves a build artifact behind each time.
    let out = f.gadugi(&["merge", "--verify", "touch artifact.o; test ! -f b.txt"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("after merging gadugi/b (task b)"), "{said}");
    assert_eq!(merge_subjects(&f, &integ), ["gadugi: merge gadugi/a"]);
    assert!(f.contains(&integ, "gadugi/a") && !f.contains(&integ, "gadugi/b") && !f.contains(&integ, "gadugi/c"));
    let log_dir = f
        .root
        .join(".gadugi/runs")
        .join(state["run_id"].as_str().unwrap())
        .join("merge");
    assert!(log_dir.join("verify-2-b.log").is_file());
    assert_eq!(
        git(&f.root, &["status", "--porcelain"]),
        "?? prompts/",
        "only the user's own files"
    );
}

#[test]
fn a_verify_that_outlives_its_timeout_is_stopped_with_everything_it_started() {
    let f = Fixture::new();
    f.prompt("a", "id: a", &[("a.txt", "a")]);
    let state = f.run();
    let integ = integration(&state);

    let out = f.gadugi(&["merge", "--verify", "true", "--verify-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--verify-timeout: `soon` is not a duration") && text(&out).contains("fix:"),
        "{}",
        text(&out)
    );
    assert!(!git_ok(&f.root, &["rev-parse", "--verify", "-q", &integ]));

    // The verify, a shell in it and a background sleeper each write their pid.
    let pids = f.tmp.join("verify-pids");
    let cmd = format!(
        "echo $$ >> {p}; sh -c 'sleep 300 & echo $! >> {p}; echo $$ >> {p}; exec sleep 300'",
        p = pids.display()
    );
    let started = std::time::Instant::now();
    let out = f.gadugi(&["merge", "--verify", &cmd, "--verify-timeout", "1s"]);
    let said = text(&out);
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{said}");
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("after merging gadugi/a (task a)"), "{said}");
    assert!(
        said.contains("timed out after 1s") && said.contains("--verify-timeout"),
        "{said}"
    );
    assert_eq!(f.head(&integ), state["base_commit"].as_str().unwrap(), "not moved");
    let merge_json = f.merge_json(&state);
    assert_eq!(merge_json["steps"][0]["outcome"], "verify_failed");
    let pids: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    for pid in pids {
        assert!(process_gone(pid), "process {pid} of the verify still runs");
    }
}

fn pr_fixture() -> (Fixture, Value, PathBuf, PathBuf) {
    let f = Fixture::new();
    f.prompt("api", "id: api\ndepends_on: [schema]", &[("api.txt", "api")]);
    f.prompt("schema", "id: schema", &[("schema.txt", "schema")]);
    f.prompt("docs", "id: docs", &[]);
    let state = f.run();
    let remote = f.tmp.join("remote.git");
    git(&f.tmp, &["init", "-q", "--bare", remote.to_str().unwrap()]);
    let gh_dir = f.tmp.join("gh");
    let bin = gh_dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let gh = bin.join("gh");
    std::fs::write(&gh, FAKE_GH).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    (f, state, remote, gh_dir)
}

fn path_with(dir: &Path) -> String {
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default())
}

fn remote_branches(remote: &Path) -> String {
    git(remote, &["for-each-ref", "--format=%(refname)"])
}

#[test]
fn pr_checks_everything_before_pushing() {
    let (f, _state, remote, gh_dir) = pr_fixture();
    let path = path_with(&gh_dir.join("bin"));
    let env = [("PATH", path.as_str()), ("FAKE_GH_DIR", gh_dir.to_str().unwrap())];

    // No remote.
    let out = f.gadugi_env(&["pr"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no remote"), "{}", text(&out));

    git(&f.root, &["remote", "add", "origin", remote.to_str().unwrap()]);
    // Not logged in.
    std::fs::write(gh_dir.join("auth-fails"), "").unwrap();
    let out = f.gadugi_env(&["pr"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("gh auth login"), "{}", text(&out));
    assert_eq!(remote_branches(&remote), "", "nothing pushed");
    std::fs::remove_file(gh_dir.join("auth-fails")).unwrap();

    // No gh at all: a PATH with only git and sh.
    let bare_bin = f.tmp.join("bare-bin");
    std::fs::create_dir_all(&bare_bin).unwrap();
    for tool in ["git", "sh"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let found = String::from_utf8_lossy(&found.stdout).trim().to_string();
        std::os::unix::fs::symlink(found, bare_bin.join(tool)).unwrap();
    }
    let bare_path = bare_bin.display().to_string();
    let out = f.gadugi_env(&["pr"], &[("PATH", bare_path.as_str())]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`gh` is not installed"), "{}", text(&out));
    assert_eq!(remote_branches(&remote), "", "nothing pushed");

    // --dry-run pushes and opens nothing.
    let out = f.gadugi_env(&["pr", "--dry-run"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Would run: gh pr create --head gadugi/schema --base main"),
        "{}",
        text(&out)
    );
    assert_eq!(remote_branches(&remote), "");
    assert!(!gh_dir.join("prs").exists());
}

#[test]
fn pr_pushes_task_branches_and_opens_one_pull_request_each() {
    let (f, state, remote, gh_dir) = pr_fixture();
    git(&f.root, &["remote", "add", "origin", remote.to_str().unwrap()]);
    let path = path_with(&gh_dir.join("bin"));
    let env = [("PATH", path.as_str()), ("FAKE_GH_DIR", gh_dir.to_str().unwrap())];
    let out = f.gadugi_env(&["pr"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Real pushes of the task branches only (docs made no commit, main is not pushed).
    assert_eq!(
        remote_branches(&remote),
        "refs/heads/gadugi/api\nrefs/heads/gadugi/schema"
    );
    for b in ["gadugi/api", "gadugi/schema"] {
        assert_eq!(git(&remote, &["rev-parse", b]), f.head(b));
    }
    // Dependency order: schema's pull request first, api's body links it.
    let prs = std::fs::read_to_string(gh_dir.join("prs")).unwrap();
    assert_eq!(
        prs,
        "head=gadugi/schema base=main title=Task schema\nhead=gadugi/api base=main title=Task api\n"
    );
    let api_body = std::fs::read_to_string(gh_dir.join("body-2.md")).unwrap();
    assert!(
        api_body.contains("https://github.com/example/repo/pull/1 (task `schema`)"),
        "{api_body}"
    );
    assert!(api_body.contains("api writes api.txt"), "{api_body}");
    assert!(api_body.contains("`api.txt` +1 −0"), "{api_body}");
    assert!(api_body.contains(state["run_id"].as_str().unwrap()), "{api_body}");
    let calls = std::fs::read_to_string(gh_dir.join("calls")).unwrap();
    assert!(
        calls.starts_with("auth status\n"),
        "checked before anything else: {calls}"
    );
}

#[test]
fn bad_input_is_refused_with_a_fix_and_creates_nothing() {
    let f = Fixture::new();
    for args in [vec!["merge"], vec!["pr"], vec!["report"]] {
        let out = f.gadugi(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("no runs yet") && text(&out).contains("fix:"),
            "{}",
            text(&out)
        );
    }
    f.prompt("a", "id: a", &[("a.txt", "a")]);
    f.prompt("idle", "id: idle", &[]);
    let state = f.run();
    let id = state["run_id"].as_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["merge", "nope"], "no run `nope`"),
        (&["merge", "--onto", "nope"], "there is no local branch `nope`"),
        (&["pr", "--remote", "nope"], "has no remote `nope`"),
        (&["report", "nope"], "no run `nope`"),
        (
            &["merge", id, "--onto", &format!("gadugi/integrate/{id}")],
            "there is no local branch",
        ),
    ];
    for (args, says) in cases {
        let out = f.gadugi(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
    assert!(!git_ok(
        &f.root,
        &["rev-parse", "--verify", "-q", &format!("gadugi/integrate/{id}")]
    ));
    git(&f.root, &["branch", "gadugi/integrate", "main"]);
    let out = f.gadugi(&["merge"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot exist next to the branch `gadugi/integrate`"),
        "{}",
        text(&out)
    );
    git(&f.root, &["branch", "-D", "gadugi/integrate"]);
    let json = f.gadugi(&["report", id, "--json"]);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        report["tasks"][0]["commit_subjects"],
        serde_json::json!(["a writes a.txt"])
    );
    assert_eq!(report["tasks"][1]["commit_subjects"], serde_json::json!([]));
}

#[test]
fn merge_and_pr_refuse_a_run_that_is_still_going() {
    let f = Fixture::new();
    let go = f.tmp.join("go");
    f.prompt("slow", "id: slow", &[("slow.txt", "s")]);
    f.append("slow", &format!("WAIT: {}", go.display()));
    let cmd = format!("sh {}", f.agent.display());
    let mut run = Command::new(env!("CARGO_BIN_EXE_gadugi"))
        .args(["run", "--agent-command", &cmd, "prompts"])
        .current_dir(&f.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run has written its state; it cannot end before `go` exists.
    let runs = f.root.join(".gadugi/runs");
    loop {
        let running = std::fs::read_dir(&runs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("state.json").is_file());
        if running {
            break;
        }
        assert!(run.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for args in [["merge"], ["pr"]] {
        let out = f.gadugi(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("is still running"), "{}", text(&out));
    }
    std::fs::write(&go, "").unwrap();
    assert!(run.wait().unwrap().success());
    let out = f.gadugi(&["merge"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
