//! Defect 6 of issue 14: a prompt over 128 KiB failed only when the agent was spawned
//! (`Argument list too long`: Linux limits one argument to 128 KiB), after its branch and
//! worktree existed, and the default `claude` profile passed the prompt as an argument.
//! Now a profile that reads the prompt's file gets any size, Claude Code gets a long prompt on
//! stdin, and a profile that takes it only as an argument is refused before anything is
//! created. Each test runs the real binary on a real repository and failed before the fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::{git, init_empty_repo, show_output as show};
#[path = "common/claude_api.rs"]
mod claude_api;
use claude_api::{offline_claude_env, FakeApi};

/// The last line of the huge prompt: whoever has it got the whole prompt.
const END: &str = "END OF THE HUGE PROMPT d06";

/// Agent reading its prompt's file (`$1`): records its size and last body line, commits.
const FILE_AGENT: &str = r#"#!/bin/sh
wc -c < "$1" | tr -d ' ' > size.txt
grep -c 'END OF THE HUGE PROMPT d06' "$1" > end.txt
git add -A && git -c user.name=agent -c user.email=agent@test commit -qm "read the prompt"
"#;

struct Repo {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    /// A repository with `prompts/big.md`, a task body of about 300 KB.
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        init_empty_repo(&root);
        std::fs::create_dir_all(tmp.path().join("home")).unwrap();
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        std::fs::write(root.join("gadugi.toml"), "kill_grace = \"1s\"\ntimeout = \"120s\"\n").unwrap();
        let mut body = String::from("# A huge task\n\n");
        let mut n = 0;
        while body.len() < 300 * 1024 {
            n += 1;
            body.push_str(&format!(
                "Requirement {n:05}: keep every line of this specification in mind.\n"
            ));
        }
        body.push_str(END);
        body.push('\n');
        std::fs::write(root.join("prompts/big.md"), body).unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        std::fs::write(tmp.path().join("agent.sh"), FILE_AGENT).unwrap();
        Repo { tmp, root }
    }

    /// `gadugi run` with the scripted agent as `--agent-command`, given the prompt as `arg`.
    fn run_agent_command(&self, arg: &str) -> Output {
        let command = format!("sh {} {arg}", self.tmp.path().join("agent.sh").display());
        self.gadugi(&["run", "--json", "--agent-command", &command, "prompts/big.md"], None)
    }

    fn gadugi(&self, args: &[&str], api: Option<&FakeApi>) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gadugi"));
        c.args(args).current_dir(&self.root);
        if api.is_some() {
            offline_claude_env(&mut c, &self.tmp.path().join("home"), api, 0);
        }
        c.stdin(Stdio::null()).output().unwrap()
    }

    fn attempt_dir(&self) -> PathBuf {
        let runs = self.root.join(".gadugi/runs");
        let run = std::fs::read_dir(runs).unwrap().flatten().next().unwrap().path();
        run.join("tasks/big/attempt-1")
    }
}

fn file_size(p: &Path) -> usize {
    std::fs::metadata(p).unwrap().len() as usize
}

/// A 300 KB prompt reaches an agent command that reads the prompt's file (`{prompt_file}`).
#[test]
fn d06_a_huge_prompt_reaches_an_agent_that_reads_its_file() {
    let repo = Repo::new();
    let out = repo.run_agent_command("{prompt_file}");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let size: usize = git(&repo.root, &["show", "gadugi/big:size.txt"]).parse().unwrap();
    assert!(size > file_size(&repo.root.join("prompts/big.md")), "{size}");
    assert_eq!(git(&repo.root, &["show", "gadugi/big:end.txt"]), "1");
}

/// A 300 KB prompt for an agent command that takes it as an argument (`{prompt}`) is refused
/// with exit 2, naming the prompt file, its size and the fix, before anything is created.
#[test]
fn d06_a_huge_prompt_for_an_argument_only_agent_is_refused_before_anything_is_created() {
    let repo = Repo::new();
    let out = repo.run_agent_command("{prompt}");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "prompts/big.md",
        "KiB",
        "128 KiB",
        "{prompt_file}",
        "shorten the prompt",
    ] {
        assert!(stderr.contains(needle), "no `{needle}` in: {stderr}");
    }
    assert_eq!(git(&repo.root, &["branch", "--list", "gadugi/*"]), "");
    assert!(!repo.root.join(".gadugi").exists());
    assert!(!repo.tmp.path().join("repo.gadugi-worktrees").exists());
    assert_eq!(git(&repo.root, &["worktree", "list"]).lines().count(), 1);
}

/// The default `claude` profile with a 300 KB prompt: the real Claude Code CLI gets it on
/// stdin (no prompt argument) and sends all of it to the (fake) Messages API.
#[test]
fn d06_a_huge_prompt_reaches_the_real_claude_cli_on_stdin() {
    let repo = Repo::new();
    let api = FakeApi::start(vec![]);
    let out = repo.gadugi(&["run", "--json", "prompts/big.md"], Some(&api));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let requests = api.messages();
    let sent = requests[0]["messages"][0]["content"].to_string();
    assert!(sent.contains("Requirement 00001:"), "{}", &sent[..sent.len().min(500)]);
    assert!(sent.contains(END));
    assert!(sent.contains("How to work on this task (from Gadugi)"));
    let launch: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.attempt_dir().join("launch.json")).unwrap()).unwrap();
    let stdin = PathBuf::from(launch["stdin"].as_str().expect("the prompt goes on stdin"));
    assert!(file_size(&stdin) > 300 * 1024);
    let argv: Vec<String> = serde_json::from_value(launch["argv"].clone()).unwrap();
    assert!(argv.iter().all(|a| a.len() < 1024 && !a.contains(END)), "{argv:?}");
    assert!(!argv.contains(&"--".to_string()), "{argv:?}");
}
