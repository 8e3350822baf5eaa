//! Worktrees ready to work in, end to end on real repositories: `.worktreeinclude` copies,
//! setup commands (ordered, failing, timing out), symlinked and copied `node_modules` of a
//! real npm project, port blocks bound by two agents at the same time, teardown on cleanup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

mod common;
use common::{git, process_gone};

struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    /// A repository with `files` committed (path, content) and `gadugi.toml` = `config`.
    fn new(config: &str, files: &[(&str, &str)]) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("prompts")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Test"]);
        git(&root, &["config", "user.email", "test@example.com"]);
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        std::fs::write(root.join("gadugi.toml"), format!("kill_grace = \"1s\"\n# These tests look inside worktrees after the run.\nkeep_worktrees = true\n{config}")).unwrap();
        for (path, content) in files {
            write(&root.join(path), content);
        }
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        Repo { _tmp: tmp, root }
    }

    fn prompt(&self, name: &str, front: &str) -> String {
        let fm = if front.is_empty() {
            String::new()
        } else {
            format!("---\n{front}\n---\n")
        };
        write(
            &self.root.join("prompts").join(format!("{name}.md")),
            &format!("{fm}# Task {name}\n\nDo the {name} thing.\n"),
        );
        format!("prompts/{name}.md")
    }

    fn gadugi(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_gadugi"))
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .expect("gadugi runs")
    }

    /// `gadugi run --json` with `agent` as the agent's command line.
    fn run(&self, agent: &str, extra: &[&str], files: &[&str]) -> (i32, Value, String) {
        let mut args = vec!["run", "--json", "--agent-command", agent];
        args.extend_from_slice(extra);
        args.extend_from_slice(files);
        let out = self.gadugi(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("panicked"), "{stderr}");
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {stderr}"));
        (out.status.code().unwrap_or(-1), json, stderr)
    }

    fn worktree(&self, id: &str) -> PathBuf {
        self.root.parent().unwrap().join("repo.gadugi-worktrees").join(id)
    }

    fn run_dir(&self, summary: &Value) -> PathBuf {
        self.root.join(".gadugi/runs").join(summary["run_id"].as_str().unwrap())
    }

    fn events(&self, summary: &Value) -> Vec<Value> {
        std::fs::read_to_string(self.run_dir(summary).join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn task<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {summary}"))
}

/// Files below `dir` (relative, sorted), without entering `.git`.
fn files_below(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                if e.file_name() != ".git" {
                    walk(base, &p, out);
                }
            } else if e.file_name() != ".git" {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn worktreeinclude_copies_matched_ignored_files_with_nested_patterns_and_negations() {
    let gitignore = ".env*\n!.env.example\nconfig/local/\nsecrets/\n*.log\nlink-*\n";
    let include = "# local files for every worktree\n.env*\n!.env.local\n!packages/web/.env\nconfig/local/\n!config/local/**/*.tmp\nlink-*\nnotes.txt\n";
    let repo = Repo::new(
        "[worktree]\ninclude = [\"secrets/key\"]\n",
        &[
            (".gitignore", gitignore),
            (".worktreeinclude", include),
            (".env.example", "committed\n"),
        ],
    );
    for (path, content) in [
        (".env", "SECRET=1\n"),
        (".env.local", "LOCAL=1\n"),
        ("packages/api/.env", "API=1\n"),
        ("packages/web/.env", "WEB=1\n"),
        ("config/local/a.json", "{}\n"),
        ("config/local/deep/b.json", "{\"b\":1}\n"),
        ("config/local/deep/skip.tmp", "tmp\n"),
        ("secrets/key", "k\n"),
        ("secrets/other", "o\n"),
        ("debug.log", "log\n"),
        ("notes.txt", "not ignored\n"),
        (".env.example", "edited in the checkout, tracked\n"),
    ] {
        write(&repo.root.join(path), content);
    }
    std::os::unix::fs::symlink("README.md", repo.root.join("link-in")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", repo.root.join("link-out")).unwrap();
    let p = repo.prompt("t", "");
    let (code, summary, stderr) = repo.run("true", &[], &[&p]);
    assert_eq!(code, 0, "{summary}\n{stderr}");

    let wt = repo.worktree("t");
    let mut expected: Vec<String> = [
        ".env",
        ".env.example",
        ".gitignore",
        ".worktreeinclude",
        "README.md",
        "config/local/a.json",
        "config/local/deep/b.json",
        "gadugi.toml",
        "link-in",
        "packages/api/.env",
        "secrets/key",
    ]
    .map(String::from)
    .to_vec();
    expected.sort();
    assert_eq!(files_below(&wt), expected);
    assert_eq!(std::fs::read_to_string(wt.join(".env")).unwrap(), "SECRET=1\n");
    assert_eq!(
        std::fs::read_to_string(wt.join("config/local/deep/b.json")).unwrap(),
        "{\"b\":1}\n"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join(".env.example")).unwrap(),
        "committed\n",
        "a tracked file is never copied"
    );
    assert_eq!(std::fs::read_link(wt.join("link-in")).unwrap(), Path::new("README.md"));

    let log = std::fs::read_to_string(repo.run_dir(&summary).join("tasks/t/setup.log")).unwrap();
    assert!(log.contains("gadugi: copied packages/api/.env"), "{log}");
    assert!(
        log.contains("link-out: symlink to /etc/hostname leaves the repository"),
        "{log}"
    );
    assert!(log.contains("notes.txt: not ignored by git"), "{log}");
    let ready = repo
        .events(&summary)
        .into_iter()
        .find(|e| e["type"] == "workspace_ready")
        .expect("a workspace_ready event");
    assert_eq!(ready["copied"].as_array().unwrap().len(), 6, "{ready}");
    let on_branch = git(&repo.root, &["ls-tree", "-r", "--name-only", "gadugi/t"]);
    assert!(
        !on_branch.contains("secrets") && !on_branch.lines().any(|l| l == ".env"),
        "{on_branch}"
    );
}

#[test]
fn setup_commands_run_in_order_with_the_tasks_variables_before_the_agent() {
    let repo = Repo::new(
        "[worktree]\nports = 3\nsetup = [\"echo config $GADUGI_TASK_ID $GADUGI_PORT_COUNT > setup-order.txt\"]\n",
        &[],
    );
    let p = repo.prompt(
        "t",
        "setup:\n  - echo task >> setup-order.txt\n  - test -n \"$GADUGI_PORT\"",
    );
    let agent = "sh -c 'cat setup-order.txt > agent-saw.txt; echo \"$GADUGI_PORT_COUNT\" >> agent-saw.txt'";
    let (code, summary, stderr) = repo.run(agent, &[], &[&p]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    let saw = std::fs::read_to_string(repo.worktree("t").join("agent-saw.txt")).unwrap();
    assert_eq!(saw, "config t 3\ntask\n3\n");
    let events = repo.events(&summary);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e["type"].as_str().unwrap() {
            "task_phase" => format!("phase:{}", e["phase"].as_str().unwrap()),
            other => other.to_string(),
        })
        .collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("{k} in {kinds:?}"))
    };
    assert!(pos("task_prepared") < pos("phase:setup"));
    assert!(pos("phase:setup") < pos("workspace_ready"));
    assert!(pos("workspace_ready") < pos("agent_started"));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.run_dir(&summary).join("state.json")).unwrap()).unwrap();
    assert!(state["tasks"][0]["port"].as_u64().is_some(), "{state}");
}

#[test]
fn a_failing_setup_fails_the_task_with_its_output_before_the_agent_starts() {
    let repo = Repo::new(
        "[worktree]\nsetup = [\"echo preparing\", \"echo bad thing >&2; exit 7\", \"touch never-runs\"]\n",
        &[],
    );
    let bad = repo.prompt("bad", "");
    let (code, summary, stderr) = repo.run("touch agent-ran", &[], &[&bad]);
    assert_eq!(code, 1, "{summary}\n{stderr}");
    let t = task(&summary, "bad");
    assert_eq!(t["status"], "failed");
    let error = t["error"].as_str().unwrap();
    assert!(error.contains("setup `echo bad thing >&2; exit 7` failed"), "{error}");
    assert!(
        error.contains("exit status: 7") && error.contains("bad thing"),
        "{error}"
    );
    assert!(error.contains("setup.log"), "{error}");
    let wt = repo.worktree("bad");
    assert!(!wt.join("agent-ran").exists() && !wt.join("never-runs").exists());
    assert!(!repo.run_dir(&summary).join("tasks/bad/attempt-1").exists());
    let events = repo.events(&summary);
    assert!(events
        .iter()
        .any(|e| e["type"] == "task_phase" && e["phase"] == "setup"));
    assert!(!events.iter().any(|e| e["type"] == "agent_started"));
    assert!(stderr.contains("bad: setting up worktree"), "{stderr}");
    let log = std::fs::read_to_string(repo.run_dir(&summary).join("tasks/bad/setup.log")).unwrap();
    assert!(log.contains("preparing\n") && log.contains("bad thing\n"), "{log}");
}

#[test]
fn a_setup_that_outlives_its_timeout_is_stopped_and_fails_the_task() {
    let repo = Repo::new(
        "[worktree]\nsetup_timeout = \"1s\"\nsetup = \"sleep 120 & echo $! > ../sleeper.pid; wait\"\n",
        &[],
    );
    let slow = repo.prompt("slow", "");
    let (code, summary, stderr) = repo.run("touch agent-ran", &[], &[&slow]);
    assert_eq!(code, 1, "{summary}\n{stderr}");
    let error = task(&summary, "slow")["error"].as_str().unwrap().to_string();
    assert!(error.contains("timed out after 1s"), "{error}");
    assert!(error.contains("setup_timeout"), "{error}");
    assert!(!repo.worktree("slow").join("agent-ran").exists());
    let pid: u32 = std::fs::read_to_string(repo.worktree("slow").parent().unwrap().join("sleeper.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_gone(pid), "the setup's background process {pid} still runs");
}

/// A small real npm project (three packages from the registry, one with a `.bin` link),
/// installed once per test run.
fn npm_project() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-project");
        let done = dir.join("node_modules/.gadugi-test-complete");
        if done.exists() {
            return dir;
        }
        let _ = std::fs::remove_dir_all(&dir);
        write(
            &dir.join("package.json"),
            r#"{"name":"cache-test","version":"1.0.0","private":true,"dependencies":{"ms":"2.1.3","is-odd":"3.0.1","semver":"7.6.3"}}"#,
        );
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("npm runs (install Node.js and npm)");
        assert!(out.status.success(), "npm install: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&done, "").unwrap();
        dir
    })
}

/// A repository holding the npm project with its `node_modules` (untracked, and not even
/// in .gitignore) and the given cache mode.
fn npm_repo(mode: &str) -> Repo {
    let project = npm_project();
    let package = std::fs::read_to_string(project.join("package.json")).unwrap();
    let lock = std::fs::read_to_string(project.join("package-lock.json")).unwrap();
    let index = "const ms = require('ms'); const isOdd = require('is-odd'); const semver = require('semver');\nconsole.log(ms('2h'), isOdd(3), semver.valid('1.2.3'));\n";
    let repo = Repo::new(
        &format!("[worktree]\ncache = [{{ path = \"node_modules\", mode = \"{mode}\" }}]\n"),
        &[
            ("package.json", &package),
            ("package-lock.json", &lock),
            ("index.js", index),
        ],
    );
    let status = Command::new("cp")
        .arg("-a")
        .arg(project.join("node_modules"))
        .arg(repo.root.join("node_modules"))
        .status()
        .unwrap();
    assert!(status.success());
    repo
}

const NODE_AGENT: &str =
    "sh -c 'node index.js > out.txt && node_modules/.bin/semver 1.2.3 >> out.txt && echo x > node_modules/agent-wrote.txt'";

#[test]
fn a_symlinked_node_modules_works_in_the_worktree_and_survives_cleanup() {
    let repo = npm_repo("symlink");
    let p = repo.prompt("web", "");
    let (code, summary, stderr) = repo.run(NODE_AGENT, &[], &[&p]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    let wt = repo.worktree("web");
    assert_eq!(
        std::fs::read_to_string(wt.join("out.txt")).unwrap(),
        "7200000 true 1.2.3\n1.2.3\n"
    );
    assert_eq!(
        std::fs::read_link(wt.join("node_modules")).unwrap(),
        repo.root.join("node_modules")
    );
    assert!(
        repo.root.join("node_modules/agent-wrote.txt").exists(),
        "a symlinked cache is shared"
    );
    let on_branch = git(&repo.root, &["ls-tree", "-r", "--name-only", "gadugi/web"]);
    assert!(
        on_branch.contains("out.txt") && !on_branch.contains("node_modules"),
        "{on_branch}"
    );

    let out = repo.gadugi(&["cleanup"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!wt.exists());
    assert!(
        repo.root.join("node_modules/ms/package.json").is_file(),
        "removing the worktree never touches the checkout's node_modules"
    );
}

#[test]
fn a_copied_node_modules_works_in_the_worktree_and_is_private_to_it() {
    let repo = npm_repo("copy");
    let p = repo.prompt("web", "");
    let (code, summary, stderr) = repo.run(NODE_AGENT, &[], &[&p]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    let wt = repo.worktree("web");
    assert_eq!(
        std::fs::read_to_string(wt.join("out.txt")).unwrap(),
        "7200000 true 1.2.3\n1.2.3\n"
    );
    let meta = std::fs::symlink_metadata(wt.join("node_modules")).unwrap();
    assert!(meta.is_dir(), "a real folder, not a link");
    assert!(std::fs::symlink_metadata(wt.join("node_modules/.bin/semver"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(wt.join("node_modules/agent-wrote.txt").exists());
    assert!(
        !repo.root.join("node_modules/agent-wrote.txt").exists(),
        "a copy is private"
    );
    let on_branch = git(&repo.root, &["ls-tree", "-r", "--name-only", "gadugi/web"]);
    assert!(!on_branch.contains("node_modules"), "{on_branch}");
    let ready = repo
        .events(&summary)
        .into_iter()
        .find(|e| e["type"] == "workspace_ready")
        .unwrap();
    assert!(
        ready["caches"][0]
            .as_str()
            .unwrap()
            .starts_with("node_modules: copied "),
        "{ready}"
    );
    let out = repo.gadugi(&["cleanup"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!wt.exists());
}

const BIND_JS: &str = r#"
const net = require('net'); const fs = require('fs');
const first = Number(process.env.GADUGI_PORT), n = Number(process.env.GADUGI_PORT_COUNT);
const me = process.env.GADUGI_TASK_ID, dir = process.argv[2];
let bound = 0; const servers = [];
for (let p = first; p < first + n; p++) {
  const s = net.createServer();
  s.on('error', (e) => { console.error(`cannot bind ${p}: ${e.code}`); process.exit(5); });
  s.listen(p, '0.0.0.0', () => { if (++bound === n) { fs.writeFileSync(`${dir}/${me}`, `${first} ${n}`); waitForOthers(); } });
  servers.push(s);
}
function waitForOthers() {
  const start = Date.now();
  const tick = setInterval(() => {
    if (fs.readdirSync(dir).filter((f) => f !== me).length > 0) {
      clearInterval(tick); servers.forEach((s) => s.close()); process.exit(0);
    }
    if (Date.now() - start > 120000) { console.error('the other task never bound its ports'); process.exit(6); }
  }, 50);
}
"#;

#[test]
fn two_tasks_bind_their_port_blocks_at_the_same_time_without_conflict() {
    let repo = Repo::new("[worktree]\nports = 3\n", &[("bind.js", BIND_JS)]);
    let barrier = repo.root.parent().unwrap().join("bound");
    std::fs::create_dir_all(&barrier).unwrap();
    let a = repo.prompt("a", "");
    let b = repo.prompt("b", "");
    let agent = format!("node bind.js {}", barrier.display());
    let (code, summary, stderr) = repo.run(&agent, &["-j", "2"], &[&a, &b]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    let block = |id: &str| -> (u32, u32) {
        let text = std::fs::read_to_string(barrier.join(id)).unwrap();
        let (first, n) = text.split_once(' ').unwrap();
        (first.parse().unwrap(), n.parse().unwrap())
    };
    let (fa, na) = block("a");
    let (fb, nb) = block("b");
    assert_eq!((na, nb), (3, 3));
    assert!(fa + na <= fb || fb + nb <= fa, "blocks {fa}+{na} and {fb}+{nb} overlap");
}

#[test]
fn cleanup_runs_teardown_first_and_keeps_the_worktree_when_it_fails() {
    let repo = Repo::new(
        "[worktree]\nteardown = \"echo $GADUGI_TASK_ID >> ../teardown-ran.txt; test ! -e keep-me\"\n",
        &[(".gitignore", "keep-me\n")],
    );
    let ok = repo.prompt("ok", "");
    let stuck = repo.prompt("stuck", "");
    let agent = "sh -c 'if [ \"$GADUGI_TASK_ID\" = stuck ]; then touch keep-me; fi'";
    let (code, summary, stderr) = repo.run(agent, &[], &[&ok, &stuck]);
    assert_eq!(code, 0, "{summary}\n{stderr}");
    let out = repo.gadugi(&["cleanup"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!repo.worktree("ok").exists());
    assert!(repo.worktree("stuck").exists(), "{stdout}");
    assert!(stdout.contains("teardown `") && stdout.contains("failed"), "{stdout}");
    let ran = std::fs::read_to_string(repo.worktree("ok").parent().unwrap().join("teardown-ran.txt")).unwrap();
    let mut ran: Vec<&str> = ran.lines().collect();
    ran.sort();
    assert_eq!(ran, ["ok", "stuck"]);
    assert!(repo.run_dir(&summary).join("tasks/ok/teardown.log").is_file());
    let out = repo.gadugi(&["cleanup", "--force"]);
    assert!(out.status.success());
    assert!(!repo.worktree("stuck").exists());
}
