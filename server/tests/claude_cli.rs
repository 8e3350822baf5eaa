//! Gadugi with the REAL Claude Code CLI (npm `@anthropic-ai/claude-code`, installed into
//! `target/claude-cli` by `scripts/install-claude-cli.sh`, which these tests run when it is
//! missing), fully offline: a fake Anthropic Messages API on 127.0.0.1 (`common/claude_api.rs`)
//! answers `/v1/messages` with server-sent events, scripted per test, and records every
//! request the CLI sends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

mod common;
use common::{git, show_output as show};
#[path = "common/claude_api.rs"]
mod claude_api;
use claude_api::{claude_dir, offline_claude_env, FakeApi, Reply};

struct Repo {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    fn new(config: &str) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("prompts")).unwrap();
        std::fs::create_dir_all(tmp.path().join("home")).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "Test"]);
        git(&root, &["config", "user.email", "test@example.com"]);
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        std::fs::write(
            root.join("gadugi.toml"),
            format!("kill_grace = \"1s\"\ntimeout = \"120s\"\n{config}"),
        )
        .unwrap();
        std::fs::write(
            root.join("prompts/a.md"),
            "# Write the greeting\n\nCreate hello.txt saying hi.\n",
        )
        .unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        Repo { tmp, root }
    }

    fn worktree(&self, task: &str) -> PathBuf {
        self.tmp.path().join("repo.gadugi-worktrees").join(task)
    }

    /// A command with the offline Claude Code environment: the fake API (when given), a
    /// temporary HOME, `claude` and `gadugi` on PATH.
    fn command(&self, program: &Path, api: Option<&FakeApi>, max_retries: u32) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.root);
        offline_claude_env(&mut c, &self.tmp.path().join("home"), api, max_retries);
        c
    }

    fn gadugi(&self, api: Option<&FakeApi>, max_retries: u32, args: &[&str]) -> Output {
        self.command(Path::new(env!("CARGO_BIN_EXE_gadugi")), api, max_retries)
            .args(args)
            .output()
            .unwrap()
    }

    fn state(&self) -> Value {
        let runs = self.root.join(".gadugi/runs");
        let run = std::fs::read_dir(&runs).unwrap().flatten().next().unwrap().path();
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap()
    }

    fn events(&self) -> Vec<Value> {
        let runs = self.root.join(".gadugi/runs");
        let run = std::fs::read_dir(&runs).unwrap().flatten().next().unwrap().path();
        std::fs::read_to_string(run.join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn launch_argv(&self, task: &str, attempt: u32) -> Vec<String> {
        let runs = self.root.join(".gadugi/runs");
        let run = std::fs::read_dir(&runs).unwrap().flatten().next().unwrap().path();
        let launch: Value = serde_json::from_str(
            &std::fs::read_to_string(run.join(format!("tasks/{task}/attempt-{attempt}/launch.json"))).unwrap(),
        )
        .unwrap();
        serde_json::from_value(launch["argv"].clone()).unwrap()
    }
}

fn task<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
}

fn reports(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "agent_reported").collect()
}

fn write_hello(repo: &Repo) -> Reply {
    Reply::Tool(
        "Write",
        json!({"file_path": repo.worktree("a").join("hello.txt"), "content": "hi from claude\n"}),
    )
}

#[test]
fn the_real_cli_writes_a_file_that_gadugi_commits_with_turns_and_cost() {
    let repo = Repo::new("");
    let api = FakeApi::start(vec![write_hello(&repo), Reply::Text("Wrote hello.txt.")]);
    let out = repo.gadugi(Some(&api), 0, &["run", "--json", "prompts/a.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(git(&repo.root, &["show", "gadugi/a:hello.txt"]), "hi from claude");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = task(&summary, "a");
    assert_eq!(a["status"], "succeeded");
    assert_eq!(a["turns"], 2, "{a}");
    assert!(a["cost_usd"].as_f64().unwrap() > 0.0, "{a}");
    assert!(summary["cost_usd"].as_f64().unwrap() > 0.0);
    let session = a["session_id"].as_str().unwrap().to_string();
    // The generated prompt reached the model, and the tool result came back to it.
    let requests = api.messages();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0]["messages"]
        .to_string()
        .contains("Create hello.txt saying hi."));
    assert!(requests[1]["messages"].to_string().contains("tool_result"));
    let state = repo.state();
    assert_eq!(task(&state, "a")["session_id"], session.as_str());
    // The model the session reported is the one the CLI asked the API for.
    assert_eq!(task(&state, "a")["model"], requests[0]["model"]);
    // No WorkflowManager agent in this repository: no --agent.
    assert!(!repo.launch_argv("a", 1).iter().any(|a| a.starts_with("--agent")));
}

#[test]
fn no_credentials_is_an_authentication_failure_classed_systemic() {
    let repo = Repo::new("");
    let out = repo.gadugi(None, 0, &["run", "--json", "prompts/a.md"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = task(&summary, "a");
    assert_eq!(a["status"], "failed");
    assert!(a["error"].as_str().unwrap().contains("Not logged in"), "{a}");
    let events = repo.events();
    let r = reports(&events);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["report"]["class"], "systemic", "{}", r[0]);
}

#[test]
fn overloaded_api_is_retried_by_the_cli_and_the_task_succeeds() {
    let repo = Repo::new("");
    let api = FakeApi::start(vec![
        Reply::Status(529, "overloaded_error"),
        Reply::Status(529, "overloaded_error"),
        write_hello(&repo),
        Reply::Text("Done."),
    ]);
    let out = repo.gadugi(Some(&api), 3, &["run", "--json", "prompts/a.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(git(&repo.root, &["show", "gadugi/a:hello.txt"]), "hi from claude");
    let events = repo.events();
    let r = reports(&events);
    assert_eq!(r[0]["report"]["api_retries"], 2, "{}", r[0]);
    assert_eq!(api.messages().len(), 4);
}

#[test]
fn a_transient_failure_is_retried_by_gadugi_resuming_the_session() {
    let repo = Repo::new("retries = 1\n");
    let api = FakeApi::start(vec![
        Reply::Status(529, "overloaded_error"),
        write_hello(&repo),
        Reply::Text("Done."),
    ]);
    let out = repo.gadugi(Some(&api), 0, &["run", "--json", "prompts/a.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let events = repo.events();
    let r = reports(&events);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["report"]["class"], "transient", "{}", r[0]);
    let session = r[0]["report"]["session_id"].as_str().unwrap();
    let argv = repo.launch_argv("a", 2);
    assert!(argv.contains(&format!("--resume={session}")), "{argv:?}");
    assert!(!repo.launch_argv("a", 1).iter().any(|a| a.starts_with("--resume")));
    assert_eq!(git(&repo.root, &["show", "gadugi/a:hello.txt"]), "hi from claude");
}

#[test]
fn reaching_max_turns_fails_the_task_with_that_reason() {
    let repo = Repo::new("[claude]\nmax_turns = 1\n");
    let api = FakeApi::start(vec![write_hello(&repo), write_hello(&repo), write_hello(&repo)]);
    let out = repo.gadugi(Some(&api), 0, &["run", "--json", "prompts/a.md"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = task(&summary, "a");
    assert_eq!(a["status"], "failed");
    assert!(a["error"].as_str().unwrap().contains("maximum number of turns"), "{a}");
    assert!(repo.launch_argv("a", 1).contains(&"--max-turns=1".to_string()));
    let events = repo.events();
    assert_eq!(reports(&events)[0]["report"]["class"], "task");
}

#[test]
fn init_writes_a_workflow_manager_that_tasks_run_as() {
    let repo = Repo::new("");
    let out = repo.gadugi(None, 0, &["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    git(&repo.root, &["add", "-A"]);
    git(&repo.root, &["commit", "-qm", "gadugi init"]);
    let api = FakeApi::start(vec![write_hello(&repo), Reply::Text("Done.")]);
    let out = repo.gadugi(Some(&api), 0, &["run", "--json", "prompts/a.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(repo
        .launch_argv("a", 1)
        .contains(&"--agent=WorkflowManager".to_string()));
    let system = api.messages()[0]["system"].to_string();
    assert!(system.contains("You are WorkflowManager."), "{system}");
}

#[test]
fn orchestrate_inside_claude_code_runs_gadugi() {
    let repo = Repo::new("");
    let out = repo.gadugi(None, 0, &["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    git(&repo.root, &["add", "-A"]);
    git(&repo.root, &["commit", "-qm", "gadugi init"]);
    let api = FakeApi::start(vec![
        Reply::Tool(
            "Bash",
            json!({"command": "gadugi run --json --agent simulated prompts/a.md", "description": "run the tasks"}),
        ),
        Reply::Text("Task a succeeded."),
    ]);
    let claude = claude_dir().join("claude");
    let out = repo
        .command(&claude, Some(&api), 0)
        .args([
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--",
            "/orchestrate --agent simulated prompts/a.md",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let first = api.messages()[0]["messages"].to_string();
    assert!(
        first.contains("gadugi run --json --agent simulated prompts/a.md"),
        "{first}"
    );
    let state = repo.state();
    assert_eq!(task(&state, "a")["status"], "succeeded", "{}", show(&out));
    assert_eq!(task(&state, "a")["agent"], "simulated");
}

#[test]
fn the_claude_command_line_is_accepted_by_the_real_argument_parser() {
    // Every option of the profile, with non-default values, through the real parser: an
    // unknown option or a bad value makes the CLI exit 1 before any request.
    let repo = Repo::new(
        "[claude]\nmodel = \"claude-sonnet-4-5\"\nmax_turns = 7\npermission_mode = \"acceptEdits\"\nallowed_tools = [\"Read\", \"Write\", \"Bash(git status:*)\"]\nextra_args = [\"--effort=low\"]\n",
    );
    std::fs::write(repo.root.join("prompts/a.md"), "- a prompt starting with a dash\n").unwrap();
    git(&repo.root, &["commit", "-qam", "dash"]);
    let api = FakeApi::start(vec![write_hello(&repo), Reply::Text("Done.")]);
    let out = repo.gadugi(Some(&api), 0, &["run", "--json", "prompts/a.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let requests = api.messages();
    assert_eq!(requests[0]["model"], "claude-sonnet-4-5");
    assert!(requests[0]["messages"]
        .to_string()
        .contains("- a prompt starting with a dash"));
    let argv = repo.launch_argv("a", 1);
    assert!(
        argv.contains(&"--allowedTools=Read,Write,Bash(git status:*)".to_string()),
        "{argv:?}"
    );
}
