//! Agent profiles: how a task becomes a process (program + argv, never through a shell).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agent::approve::BrokerArgs;
use crate::agent::claude::WorkflowAgent;
use crate::agent::report::{AgentReport, OutputProtocol};
use crate::error::InputError;
use crate::fsutil::find_on_path;
use crate::spec::config::Config;

/// The profile used when neither the task, the flags nor `gadugi.toml` name one.
pub const DEFAULT_PROFILE: &str = "claude";

/// Placeholders an argv template may use.
pub const PLACEHOLDERS: &[&str] = &["prompt_file", "prompt", "worktree", "branch", "task_id", "run_id"];

/// The longest one argument may be on Linux: `MAX_ARG_STRLEN` (32 pages, 128 KiB) counts the
/// terminating NUL. A longer one makes `execve` fail with E2BIG ("Argument list too long").
pub const MAX_ARG_BYTES: usize = 128 * 1024 - 1;
/// A profile that can read its prompt on stdin (Claude Code) gets a prompt longer than this
/// there instead of as an argument; shorter prompts stay on the command line.
pub const STDIN_PROMPT_ABOVE: usize = 96 * 1024;
/// The longest task body a profile that takes the prompt only as an argument accepts: the
/// generated prompt adds Gadugi's section and the dependencies' context to it, and the whole
/// must stay under [`MAX_ARG_BYTES`].
pub const ARGUMENT_BODY_LIMIT: usize = 100 * 1024;

/// How a profile's program gets a prompt too long for one command-line argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongPrompt {
    /// Its argv names the prompt's file (`{prompt_file}`), never the text: any size works.
    File,
    /// The prompt arguments (`-- {prompt}`) are left out and the prompt file is its stdin
    /// (Claude Code's `-p` reads the prompt from stdin when none is given).
    Stdin,
    /// Only as an argument (`{prompt}`): the prompt must stay under [`MAX_ARG_BYTES`].
    Argument,
}

/// How one attempt's agent starts: its argv and the file it reads as stdin, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub stdin: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProfile {
    /// Profile name as the user wrote it.
    pub name: String,
    /// Program and arguments with `{placeholders}`.
    pub argv: Vec<String>,
    /// How to read the agent's stdout.
    pub protocol: OutputProtocol,
    /// Index in `argv` where per-attempt options (`--agent`, `--resume`) are inserted: after
    /// the profile's options, before the prompt.
    pub options_at: usize,
    /// Environment variables the agent needs to run unattended.
    pub env: Vec<(String, String)>,
    /// Claude Code: the custom agent tasks run as (`--agent NAME`).
    pub workflow_agent: Option<WorkflowAgent>,
    /// The program reads its prompt from stdin when the `{prompt}` argument (and the `--`
    /// before it) is left out: a prompt longer than [`STDIN_PROMPT_ABOVE`] goes there.
    #[serde(default)]
    pub stdin_prompt: bool,
    /// Claude Code with `[approvals] enabled`: each attempt starts the approval broker and
    /// routes its permission requests and questions to it (`agent/approve.rs`).
    #[serde(default)]
    pub approvals: bool,
}

/// Values substituted into an argv template.
#[derive(Debug, Clone)]
pub struct Placeholders<'a> {
    pub prompt_file: &'a Path,
    pub prompt: &'a str,
    pub worktree: &'a Path,
    pub branch: &'a str,
    pub task_id: &'a str,
    pub run_id: &'a str,
    /// The git dirs of the worktree (its own and the repository's common one): an agent whose
    /// sandbox keeps them read-only gets them named writable, so it can commit.
    pub git_dirs: &'a [PathBuf],
    /// The approval broker of this attempt, for a profile with approvals on.
    pub approvals: Option<&'a BrokerArgs>,
}

impl AgentProfile {
    /// Resolves a profile by name. `command_override` is `--agent-command`, which selects
    /// the `command` profile with that command line.
    pub fn resolve(
        name: Option<&str>,
        config: &Config,
        command_override: Option<&str>,
    ) -> Result<AgentProfile, InputError> {
        let name = name
            .or(if command_override.is_some() {
                Some("command")
            } else {
                None
            })
            .or(config.agent.profile.as_deref())
            .unwrap_or(DEFAULT_PROFILE);
        let mut env = vec![];
        let mut workflow_agent = None;
        let mut stdin_prompt = false;
        let mut approvals = false;
        let (mut argv, protocol, options_at) = match name {
            "claude" => {
                approvals = config.approvals.enabled;
                if approvals && config.claude.skip_permissions {
                    return Err(InputError::new(
                        "[approvals] enabled = true asks the person before tools run, but [claude] skip_permissions = true runs every tool without asking",
                        "set skip_permissions = false in [claude] of gadugi.toml, or turn approvals off",
                    ));
                }
                let (argv, at) = config.claude.argv_for(approvals);
                env = config.claude.env();
                workflow_agent = config.claude.workflow_agent();
                stdin_prompt = true;
                (argv, OutputProtocol::ClaudeStreamJson, Some(at))
            }
            "simulated" => (vec![self_exe(), "__sim-agent".into()], OutputProtocol::Plain, None),
            "command" => {
                let line = command_override.or(config.agent.command.as_deref()).ok_or_else(|| {
                    InputError::new(
                        "agent profile `command` needs a command line",
                        "pass --agent-command 'prog arg {prompt_file}' or set [agent] command = \"...\" in gadugi.toml",
                    )
                })?;
                (split_command(line)?, OutputProtocol::Plain, None)
            }
            other => match (config.profiles.get(other), crate::agent::builtins::builtin(other)) {
                (Some(p), _) => (split_command(&p.command)?, OutputProtocol::Plain, None),
                (None, Some(b)) => {
                    env = b.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    let argv: Vec<String> = b.argv.iter().map(|s| s.to_string()).collect();
                    (argv, b.protocol, Some(b.options_at))
                }
                (None, None) => {
                    let mut known: Vec<&str> = vec!["claude", "command", "simulated"];
                    known.extend(crate::agent::builtins::BUILTINS.iter().map(|b| b.name));
                    known.extend(config.profiles.keys().map(String::as_str));
                    return Err(InputError::new(
                        format!("unknown agent profile `{other}`"),
                        format!(
                            "use one of: {}, or define [profiles.{other}] in gadugi.toml",
                            known.join(", ")
                        ),
                    ));
                }
            },
        };
        // `[agent] args` go where the profile's own options end (before a built-in profile's
        // prompt), else at the end.
        let at = options_at.unwrap_or(argv.len());
        argv.splice(at..at, config.agent.args.iter().cloned());
        let options_at = at + config.agent.args.len();
        for arg in &argv {
            check_placeholders(arg)?;
        }
        Ok(AgentProfile {
            name: name.to_string(),
            argv,
            protocol,
            options_at,
            env,
            workflow_agent,
            stdin_prompt,
            approvals,
        })
    }

    /// How this profile's program gets a prompt too long for one argument.
    pub fn long_prompt(&self) -> LongPrompt {
        if self.stdin_prompt {
            LongPrompt::Stdin
        } else if self.argv.iter().any(|a| a.contains("{prompt}")) {
            LongPrompt::Argument
        } else {
            LongPrompt::File
        }
    }

    /// Refuses, before anything is created, a task body that cannot reach a profile taking
    /// the prompt only as an argument: with Gadugi's section and the dependencies' context
    /// added it could pass Linux's limit on one argument. The caller names the file.
    pub fn check_prompt_size(&self, body: &str) -> Result<(), InputError> {
        if self.long_prompt() != LongPrompt::Argument || body.len() <= ARGUMENT_BODY_LIMIT {
            return Ok(());
        }
        Err(InputError::new(
            format!(
                "the prompt is {} KiB; agent profile `{}` takes it as one command-line argument ({{prompt}}), which Linux limits to 128 KiB, and Gadugi adds its own section to it (at most {} KiB of prompt fit)",
                body.len().div_ceil(1024),
                self.name,
                ARGUMENT_BODY_LIMIT / 1024
            ),
            "shorten the prompt (put long material in a file of the repository and name it), or use a profile that reads the prompt from a file or stdin: claude, aider, or --agent-command '... {prompt_file}'",
        ))
    }

    /// The argv and stdin of one attempt. A profile that reads a long prompt on stdin gets
    /// one over [`STDIN_PROMPT_ABOVE`] there (its `-- {prompt}` arguments left out). An
    /// argument longer than Linux allows is an error here, before anything is spawned.
    pub fn invocation(&self, p: &Placeholders, resume: Option<&str>) -> Result<Invocation, String> {
        if self.stdin_prompt && p.prompt.len() > STDIN_PROMPT_ABOVE {
            let on_stdin = AgentProfile {
                argv: without_prompt_argument(&self.argv),
                ..self.clone()
            };
            return Ok(Invocation {
                argv: self.with_writable_git_dirs(on_stdin.expand(p, resume), p.git_dirs),
                stdin: Some(p.prompt_file.to_path_buf()),
            });
        }
        let argv = self.with_writable_git_dirs(self.expand(p, resume), p.git_dirs);
        if let Some(long) = argv.iter().find(|a| a.len() > MAX_ARG_BYTES) {
            return Err(format!(
                "an argument of the agent's command line is {} KiB (the prompt {} is {} KiB), more than the 128 KiB Linux allows one argument; agent profile `{}` takes the prompt only as an argument: shorten the prompt or use a profile that reads it from a file or stdin (claude, aider, or a command with {{prompt_file}})",
                long.len().div_ceil(1024),
                p.prompt_file.display(),
                p.prompt.len().div_ceil(1024),
                self.name
            ));
        }
        Ok(Invocation { argv, stdin: None })
    }

    /// `argv` with the options that make `git_dirs` writable for a profile whose sandbox keeps
    /// them read-only (codex), where the profile's options end.
    fn with_writable_git_dirs(&self, mut argv: Vec<String>, git_dirs: &[PathBuf]) -> Vec<String> {
        let options = crate::agent::builtins::writable_dir_options(&self.name, self.protocol, git_dirs);
        let at = self.options_at.min(argv.len());
        argv.splice(at..at, options);
        argv
    }

    /// The program to run: absolute path found on `PATH` (or as given when it has a `/`).
    pub fn find_program(&self) -> Result<PathBuf, InputError> {
        let program = self.argv.first().map(String::as_str).unwrap_or_default();
        find_on_path(program).ok_or_else(|| {
            if let Some(why) = not_runnable(program) {
                return InputError::new(
                    format!("agent program `{program}` (profile `{}`) {why}", self.name),
                    format!("make it executable (chmod +x {program}) or fix the command of agent profile `{}`", self.name),
                );
            }
            let fix = if self.name == "claude" {
                "install Claude Code (npm install -g @anthropic-ai/claude-code) or choose another profile with --agent / --agent-command".to_string()
            } else {
                format!("install `{program}`, put it on PATH, or fix the command of agent profile `{}`", self.name)
            };
            InputError::new(format!("agent program `{program}` (profile `{}`) was not found", self.name), fix)
        })
    }

    /// The argv with placeholders replaced. `resume` is the session id of an earlier attempt
    /// to continue (Claude Code: `--resume ID`); profiles without a resume option ignore it.
    /// A Claude Code task runs as its workflow agent (`--agent NAME`) when it has one.
    pub fn expand(&self, p: &Placeholders, resume: Option<&str>) -> Vec<String> {
        let mut argv: Vec<String> = self
            .argv
            .iter()
            .map(|arg| {
                arg.replace("{prompt_file}", &p.prompt_file.to_string_lossy())
                    .replace("{worktree}", &p.worktree.to_string_lossy())
                    .replace("{branch}", p.branch)
                    .replace("{task_id}", p.task_id)
                    .replace("{run_id}", p.run_id)
                    .replace("{prompt}", p.prompt)
            })
            .collect();
        let mut options = vec![];
        if let Some(agent) = self.workflow_agent.as_ref().and_then(|w| w.for_worktree(p.worktree)) {
            options.push(format!("--agent={agent}"));
        }
        if let (Some(id), OutputProtocol::ClaudeStreamJson) = (resume, self.protocol) {
            options.push(format!("--resume={id}"));
        }
        if let (true, Some(broker)) = (self.approvals, p.approvals) {
            options.extend(crate::agent::approve::approval_options(&self_exe(), broker));
        }
        let at = self.options_at.min(argv.len());
        argv.splice(at..at, options);
        argv
    }

    /// Whether a retried attempt can continue the previous attempt's session.
    pub fn can_resume(&self) -> bool {
        self.protocol == OutputProtocol::ClaudeStreamJson
    }

    /// What the agent reported about its attempt (for agents with a machine protocol): its
    /// stdout, with its stderr and exit code where the protocol needs them; empty for plain
    /// agents.
    pub fn report(&self, stdout_log: &Path, stderr_log: &Path, exit_code: Option<i32>) -> AgentReport {
        let stdout = || std::fs::read_to_string(stdout_log).unwrap_or_default();
        match self.protocol {
            OutputProtocol::Plain => AgentReport::default(),
            OutputProtocol::ClaudeStreamJson => crate::agent::claude::report_from_text(&stdout()),
            protocol => {
                let stderr = crate::agent::follower::read_tail(stderr_log, 64 * 1024);
                crate::agent::builtins::report_of_attempt(protocol, &stdout(), &stderr, exit_code)
            }
        }
    }
}

/// Why a program that exists is not runnable: a folder, or a file without execute
/// permission (at the path given, or the first of that name on PATH).
fn not_runnable(program: &str) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt;
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(program))
            .collect()
    };
    candidates.iter().find_map(|p| {
        let m = p.metadata().ok()?;
        if m.is_dir() {
            Some("is a folder, not a program")
        } else if m.permissions().mode() & 0o111 == 0 {
            Some("exists but is not executable")
        } else {
            None
        }
    })
}

/// An argv template without its `{prompt}` argument and the `--` right before it.
fn without_prompt_argument(argv: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for arg in argv {
        if arg == "{prompt}" {
            if out.last().is_some_and(|a| a == "--") {
                out.pop();
            }
            continue;
        }
        out.push(arg.clone());
    }
    out
}

fn self_exe() -> String {
    std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "gadugi".into())
}

fn split_command(line: &str) -> Result<Vec<String>, InputError> {
    let argv = shell_words::split(line).map_err(|e| {
        InputError::new(
            format!("cannot split agent command `{line}`: {e}"),
            "balance the quotes in the command line",
        )
    })?;
    if argv.is_empty() {
        return Err(InputError::new(
            "the agent command is empty",
            "give a program and its arguments, for example 'my-agent --task {prompt_file}'",
        ));
    }
    Ok(argv)
}

fn check_placeholders(arg: &str) -> Result<(), InputError> {
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !PLACEHOLDERS.contains(&name)
        {
            return Err(InputError::new(
                format!("unknown placeholder `{{{name}}}` in agent command"),
                format!(
                    "use one of: {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::defaults(Path::new("/r/repo"))
    }

    #[test]
    fn command_profile_splits_without_a_shell() {
        let p = AgentProfile::resolve(None, &config(), Some("my-agent --msg 'a b; rm -rf /' {prompt_file}")).unwrap();
        assert_eq!(p.argv, vec!["my-agent", "--msg", "a b; rm -rf /", "{prompt_file}"]);
        let argv = p.expand(
            &Placeholders {
                prompt_file: Path::new("/x/p.md"),
                prompt: "",
                worktree: Path::new("/w"),
                branch: "gadugi/a",
                task_id: "a",
                run_id: "r",
                git_dirs: &[],
                approvals: None,
            },
            Some("sess"),
        );
        assert_eq!(argv[3], "/x/p.md");
        assert_eq!(argv.len(), 4, "plain profiles take no resume option: {argv:?}");
    }

    #[test]
    fn unknown_placeholder_and_profile_are_refused() {
        assert!(AgentProfile::resolve(None, &config(), Some("x {promptfile}"))
            .unwrap_err()
            .problem
            .contains("{promptfile}"));
        assert!(AgentProfile::resolve(Some("nope"), &config(), None)
            .unwrap_err()
            .problem
            .contains("nope"));
        assert!(AgentProfile::resolve(Some("command"), &config(), None).is_err());
    }

    #[test]
    fn default_is_claude_stream_json() {
        let p = AgentProfile::resolve(None, &config(), None).unwrap();
        assert_eq!(p.protocol, OutputProtocol::ClaudeStreamJson);
        assert_eq!(p.argv[0], "claude");
    }

    #[test]
    fn claude_expands_agent_and_resume_before_the_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config();
        config.agent.args = vec!["--effort=low".into()];
        let p = AgentProfile::resolve(Some("claude"), &config, None).unwrap();
        let ph = Placeholders {
            prompt_file: Path::new("/x/p.md"),
            prompt: "- do it",
            worktree: dir.path(),
            branch: "gadugi/a",
            task_id: "a",
            run_id: "r",
            git_dirs: &[],
            approvals: None,
        };
        let argv = p.expand(&ph, None);
        assert_eq!(argv[argv.len() - 3..], ["--effort=low", "--", "- do it"]);
        assert!(!argv
            .iter()
            .any(|a| a.starts_with("--agent") || a.starts_with("--resume")));
        std::fs::create_dir_all(dir.path().join(".claude/agents")).unwrap();
        std::fs::write(
            dir.path().join(".claude/agents/WorkflowManager.md"),
            "---\nname: x\n---\n",
        )
        .unwrap();
        let argv = p.expand(&ph, Some("s-1"));
        assert_eq!(
            argv[argv.len() - 5..],
            [
                "--effort=low",
                "--agent=WorkflowManager",
                "--resume=s-1",
                "--",
                "- do it"
            ]
        );
        assert!(p.can_resume());
    }

    #[test]
    fn long_prompts_go_on_stdin_through_a_file_or_are_refused() {
        let ph = |prompt: &'static str| Placeholders {
            prompt_file: Path::new("/x/p.md"),
            prompt,
            worktree: Path::new("/w"),
            branch: "gadugi/a",
            task_id: "a",
            run_id: "r",
            git_dirs: &[],
            approvals: None,
        };
        let huge: &'static str = Box::leak("x".repeat(200 * 1024).into_boxed_str());
        let body = "x".repeat(ARGUMENT_BODY_LIMIT + 1);
        let claude = AgentProfile::resolve(Some("claude"), &config(), None).unwrap();
        assert_eq!(claude.long_prompt(), LongPrompt::Stdin);
        let short = claude.invocation(&ph("- do it"), None).unwrap();
        assert_eq!(
            (short.argv.last().map(String::as_str), short.stdin),
            (Some("- do it"), None)
        );
        let long = claude.invocation(&ph(huge), Some("s-1")).unwrap();
        assert_eq!(long.stdin.as_deref(), Some(Path::new("/x/p.md")));
        assert_eq!(long.argv.last().map(String::as_str), Some("--resume=s-1"));
        assert!(claude.check_prompt_size(&body).is_ok());
        for (line, kind) in [
            ("agent {prompt_file}", LongPrompt::File),
            ("agent --prompt={prompt}", LongPrompt::Argument),
        ] {
            let p = AgentProfile::resolve(None, &config(), Some(line)).unwrap();
            assert_eq!(p.long_prompt(), kind, "{line}");
            assert_eq!(
                p.invocation(&ph(huge), None).is_ok(),
                kind == LongPrompt::File,
                "{line}"
            );
            assert_eq!(p.check_prompt_size(&body).is_ok(), kind == LongPrompt::File, "{line}");
        }
        let codex = AgentProfile::resolve(Some("codex"), &config(), None).unwrap();
        let e = codex.check_prompt_size(&body).unwrap_err();
        assert!(
            e.problem.contains("`codex`") && e.fix.contains("{prompt_file}"),
            "{e:?}"
        );
        assert!(codex.invocation(&ph(huge), None).unwrap_err().contains("/x/p.md"));
        let aider = AgentProfile::resolve(Some("aider"), &config(), None).unwrap();
        assert_eq!(aider.long_prompt(), LongPrompt::File);
    }
}
