//! `gadugi trust`: a repository's `[approvals]` allow rules count once the person trusted
//! exactly that configuration, and stop counting when it changes or trust is revoked. The
//! runs use the REAL Claude Code CLI (installed into `target/claude-cli` by
//! `scripts/install-claude-cli.sh`) against the fake Messages API, scripted to run a Bash
//! command only the repository's allow rule covers; its permission request goes through the
//! real `gadugi __approve` broker, whose answer (`by: policy` or `by: timeout`) shows whether
//! the rule counted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

mod common;
use common::{git, show_output as show};
#[path = "common/claude_api.rs"]
mod claude_api;
use claude_api::{offline_claude_env, FakeApi, Reply};

const APPROVALS: &str = "# who may do what\nkill_grace = \"1s\"\ntimeout = \"120s\"\n[approvals]\nenabled = true\ntimeout = \"3s\"\nallow = [\"Bash(sh -c:*)\"]\n";

/// A repository at `<tmp>/repo` with a HOME of its own at `<tmp>/home`.
struct Repo(tempfile::TempDir);

impl Repo {
    fn new(config: &str) -> Repo {
        let repo = Repo(tempfile::tempdir().unwrap());
        std::fs::create_dir_all(repo.home()).unwrap();
        let prompts: Vec<(String, String)> = ["a", "b", "c", "d"]
            .iter()
            .map(|t| {
                (
                    format!("prompts/{t}.md"),
                    "# Mark it\n\nRun the marker command.\n".to_string(),
                )
            })
            .collect();
        let mut files: Vec<(&str, &str)> = prompts.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
        if !config.is_empty() {
            files.push(("gadugi.toml", config));
        }
        common::init_repo(&repo.root(), &files);
        repo
    }

    fn root(&self) -> PathBuf {
        self.0.path().join("repo")
    }

    fn home(&self) -> PathBuf {
        self.0.path().join("home")
    }

    fn command(&self, api: Option<&FakeApi>) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gadugi"));
        c.current_dir(self.root());
        offline_claude_env(&mut c, &self.home(), api, 0);
        // The key, the trust store and the user's approvals file live under this test's HOME.
        c.env_remove("XDG_STATE_HOME").env_remove("XDG_CONFIG_HOME");
        c
    }

    /// `gadugi trust` on a real terminal (util-linux `script` gives it a pseudo-terminal),
    /// typing `typed` at its question.
    fn trust_on_a_terminal(&self, typed: &str) -> Output {
        let mut c = Command::new("script");
        c.args(["-qec", &format!("{} trust", env!("CARGO_BIN_EXE_gadugi")), "/dev/null"])
            .current_dir(self.root())
            .env("HOME", self.home())
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), typed.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn gadugi(&self, args: &[&str]) -> Output {
        self.command(None).args(args).output().unwrap()
    }

    /// Runs task `task` (its prompt asks for `sh -c 'touch marker.txt'`) to the end and
    /// returns how its one question was answered, and the task warnings.
    fn run(&self, task: &str) -> ((String, String), Vec<String>) {
        let api = FakeApi::start(vec![
            Reply::Tool(
                "Bash",
                json!({"command": "sh -c 'touch marker.txt'", "description": "mark"}),
            ),
            Reply::Text("Done."),
        ]);
        let prompt = format!("prompts/{task}.md");
        let out = self
            .command(Some(&api))
            .args(["run", "--json", &prompt])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let run = summary["run_id"].as_str().unwrap_or_else(|| panic!("{summary}"));
        let events: Vec<Value> =
            std::fs::read_to_string(self.root().join(".gadugi/runs").join(run).join("events.jsonl"))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        let answered: Vec<&Value> = events.iter().filter(|e| e["type"] == "approval_answered").collect();
        assert_eq!(answered.len(), 1, "{events:?}");
        let warnings = events
            .iter()
            .filter(|e| e["type"] == "task_warning")
            .map(|e| e["warning"].as_str().unwrap().to_string())
            .collect();
        let decision = (
            answered[0]["decision"].as_str().unwrap().to_string(),
            answered[0]["by"].as_str().unwrap().to_string(),
        );
        (decision, warnings)
    }

    /// Runs task `task` and checks the rule did not answer: the question waited for the
    /// person (nobody answered, the deadline denied), the command did not run, and one task
    /// warning says all of `said`.
    fn asked_and_warned(&self, task: &str, said: &[&str]) {
        let (decision, warnings) = self.run(task);
        assert_eq!(decision, answered("deny", "timeout"));
        assert!(!self.marked(task));
        assert!(
            warnings.iter().any(|w| said.iter().all(|s| w.contains(s))),
            "{warnings:?}"
        );
    }

    /// Whether task `task`'s branch holds the marker its command would have written.
    fn marked(&self, task: &str) -> bool {
        git(
            &self.root(),
            &["ls-tree", "--name-only", &format!("gadugi/{task}"), "marker.txt"],
        ) == "marker.txt"
    }

    fn trust_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.home().join(".local/state/gadugi/trust"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

fn answered(decision: &str, by: &str) -> (String, String) {
    (decision.to_string(), by.to_string())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn trusting_makes_the_repositorys_allow_rule_count_until_it_changes_or_is_revoked() {
    let repo = Repo::new(APPROVALS);

    // Untrusted: the repository's allow rule does not answer; the person is asked (nobody
    // answers, the deadline denies) and told why.
    repo.asked_and_warned(
        "a",
        &["allow Bash(sh -c:*) (not trusted: `gadugi trust` lets it count)"],
    );
    let out = repo.gadugi(&["trust", "--show"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("not trusted"), "{}", show(&out));
    assert!(stdout(&out).contains("allow = [\"Bash(sh -c:*)\"]"), "{}", show(&out));

    // Trusted: the rule answers by policy, without asking, and nothing warns.
    let out = repo.gadugi(&["trust", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("[approvals]"), "{}", show(&out));
    let (decision, warnings) = repo.run("b");
    assert_eq!(decision, answered("allow", "policy"));
    assert!(repo.marked("b"));
    assert!(!warnings.iter().any(|w| w.contains("[approvals]")), "{warnings:?}");
    assert!(stdout(&repo.gadugi(&["trust", "--show"])).contains("trusted on "));

    // A comment or a key that grants nothing changes nothing.
    let reformatted = APPROVALS.replace("# who may do what", "# reworded\nmax_parallel = 2");
    std::fs::write(repo.root().join("gadugi.toml"), &reformatted).unwrap();
    git(&repo.root(), &["commit", "-qam", "reword"]);
    assert_eq!(repo.run("c").0, answered("allow", "policy"));

    // Changed since trusted: the rules do not count, and the warning says so.
    let widened = reformatted.replace("allow = [", "allow = [\"Bash(curl:*)\", ");
    std::fs::write(repo.root().join("gadugi.toml"), widened).unwrap();
    git(&repo.root(), &["commit", "-qam", "widen"]);
    repo.asked_and_warned("d", &["changed since you trusted it on 20", "run `gadugi trust` again"]);
    let out = repo.gadugi(&["trust", "--show"]);
    let text = stdout(&out);
    assert!(text.contains("changed since you trusted it on"), "{}", show(&out));
    assert!(text.contains("- allow = [\"Bash(sh -c:*)\"]"), "{}", show(&out));
    assert!(
        text.contains("+ allow = [\"Bash(curl:*)\", \"Bash(sh -c:*)\"]"),
        "{}",
        show(&out)
    );

    // Trusted again, then revoked: the rule stops counting.
    assert_eq!(repo.gadugi(&["trust", "--yes"]).status.code(), Some(0));
    let out = repo.gadugi(&["trust", "--revoke"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).contains("trust revoked"), "{}", show(&out));
    assert!(repo.trust_files().is_empty());
    assert!(stdout(&repo.gadugi(&["trust", "--show"])).contains("not trusted"));
    git(&repo.root(), &["branch", "-D", "gadugi/a"]);
    assert_eq!(repo.run("a").0, answered("deny", "timeout"));
}

#[test]
fn the_trust_file_is_private_and_outside_the_repository() {
    let repo = Repo::new(APPROVALS);
    let out = repo.gadugi(&["trust", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let files = repo.trust_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(mode(files[0].parent().unwrap()), 0o700);
    assert!(!files[0].starts_with(repo.root()));
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(
        record["root"],
        repo.root().canonicalize().unwrap().to_string_lossy().as_ref()
    );
    assert_eq!(record["sha256"].as_str().unwrap().len(), 64);
    // Nothing about it lands in the repository.
    assert_eq!(git(&repo.root(), &["status", "--porcelain"]), "");
}

#[test]
fn bad_cases_exit_2_naming_gadugi_toml_and_the_fix() {
    // Not in a git repository.
    let tmp = tempfile::tempdir().unwrap();
    let out = common::gadugi_in(tmp.path(), &["trust", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gadugi.toml") && err.contains("not inside a git repository"),
        "{err}"
    );
    assert!(err.contains("--repo"), "{err}");

    // No gadugi.toml.
    let repo = Repo::new("");
    let out = repo.gadugi(&["trust", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gadugi.toml") && err.contains("does not exist"), "{err}");

    // A gadugi.toml without [approvals].
    let repo = Repo::new("max_parallel = 2\n[claude]\nallowed_tools = [\"Bash\"]\n");
    let out = repo.gadugi(&["trust", "--show"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gadugi.toml") && err.contains("no [approvals] table"),
        "{err}"
    );
    assert!(repo.trust_files().is_empty());

    // A gadugi.toml a run would refuse is not trusted either: the error names its line.
    let repo = Repo::new("[approvals]\nallow = [\"Bash(npm\"]\n");
    let out = repo.gadugi(&["trust", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gadugi.toml:2"),
        "{}",
        show(&out)
    );

    // Without a terminal, trusting needs --yes; nothing is stored.
    let repo = Repo::new(APPROVALS);
    let out = repo.command(None).arg("trust").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gadugi trust --yes"),
        "{}",
        show(&out)
    );
    assert!(repo.trust_files().is_empty());
}

#[test]
fn on_a_terminal_it_asks_and_only_yes_trusts() {
    let repo = Repo::new(APPROVALS);
    let out = repo.trust_on_a_terminal("n\n");
    let text = stdout(&out);
    assert!(
        text.contains("Let agents be granted this without asking? [y/N]"),
        "{}",
        show(&out)
    );
    assert!(text.contains("not trusted"), "{}", show(&out));
    assert!(repo.trust_files().is_empty());
    let out = repo.trust_on_a_terminal("y\n");
    assert!(stdout(&out).contains("trusted: its allow rules"), "{}", show(&out));
    assert_eq!(repo.trust_files().len(), 1);
    assert!(stdout(&repo.gadugi(&["trust", "--show"])).contains("trusted on 20"));
}
