//! Agent profiles: how a task becomes a process (program + argv, never through a shell).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::claude::WorkflowAgent;
use crate::config::Config;
use crate::error::InputError;

/// The profile used when neither the task, the flags nor `gadugi.toml` name one.
pub const DEFAULT_PROFILE: &str = "claude";

/// Placeholders an argv template may use.
pub const PLACEHOLDERS: &[&str] = &["prompt_file", "prompt", "worktree", "branch", "task_id", "run_id"];

/// How an agent reports on its own stdout, which decides how its output is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputProtocol {
    /// Free text; only the exit code counts.
    Plain,
    /// Claude Code `--output-format stream-json`: JSON lines ending with a `result` event.
    ClaudeStreamJson,
    /// `codex exec --json`: JSON lines (`thread.started`, `item.*`, `turn.completed`).
    CodexJson,
    /// Gemini CLI `--output-format stream-json`: JSON lines ending with a `result` event.
    GeminiStreamJson,
    /// `opencode run --format json`: JSON lines (`step_start`, `tool_use`, `text`, `step_finish`).
    OpenCodeJson,
}

/// A resolved agent profile.
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
        let (mut argv, protocol, options_at) = match name {
            "claude" => {
                let (argv, at) = config.claude.argv();
                env = config.claude.env();
                workflow_agent = config.claude.workflow_agent();
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
            other => match (config.profiles.get(other), crate::profiles::builtin(other)) {
                (Some(p), _) => (split_command(&p.command)?, OutputProtocol::Plain, None),
                (None, Some(b)) => {
                    env = b.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    let argv: Vec<String> = b.argv.iter().map(|s| s.to_string()).collect();
                    (argv, b.protocol, Some(b.options_at))
                }
                (None, None) => {
                    let mut known: Vec<&str> = vec!["claude", "command", "simulated"];
                    known.extend(crate::profiles::BUILTINS.iter().map(|b| b.name));
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
        })
    }

    /// The program to run: absolute path found on `PATH` (or as given when it has a `/`).
    pub fn find_program(&self) -> Result<PathBuf, InputError> {
        let program = self.argv.first().map(String::as_str).unwrap_or_default();
        find_on_path(program).ok_or_else(|| {
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
        let at = self.options_at.min(argv.len());
        argv.splice(at..at, options);
        argv
    }

    /// Whether a retried attempt can continue the previous attempt's session.
    pub fn can_resume(&self) -> bool {
        self.protocol == OutputProtocol::ClaudeStreamJson
    }

    /// What the agent reported about its attempt on stdout (for agents with a machine
    /// protocol); empty for plain agents.
    pub fn report(&self, stdout_log: &Path) -> AgentReport {
        match self.protocol {
            OutputProtocol::Plain => AgentReport::default(),
            protocol => {
                let text = std::fs::read_to_string(stdout_log).unwrap_or_default();
                if protocol == OutputProtocol::ClaudeStreamJson {
                    crate::claude::report_from_text(&text)
                } else {
                    crate::profiles::report_from_text(protocol, &text)
                }
            }
        }
    }
}

/// How a failed attempt is treated by retries and the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Worth another attempt: an API overload or rate limit, a signal Gadugi did not send.
    Transient,
    /// The same for every task (authentication, a missing program): repeated, it trips the
    /// circuit breaker.
    Systemic,
    /// This task's own failure (non-zero exit, max turns, verify failed).
    Task,
}

/// What an agent reported about one attempt, read from its machine output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    /// The error the agent reported, if any.
    pub error: Option<String>,
    /// How that error is treated.
    pub class: Option<FailureClass>,
    /// The agent's session id (Claude Code: to `--resume` it).
    pub session_id: Option<String>,
    /// Cost of the attempt in US dollars, when the agent reports it.
    pub cost_usd: Option<f64>,
    /// Model turns taken.
    pub turns: Option<u32>,
    /// Tool uses the agent was not allowed to make (tool and target).
    pub permission_denials: Vec<String>,
    /// The model that ran.
    #[serde(default)]
    pub model: Option<String>,
    /// How long the agent said it worked, in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Tokens used.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// Tool uses.
    #[serde(default)]
    pub tool_uses: u32,
    /// Subagent tasks started.
    #[serde(default)]
    pub subagent_tasks: u32,
    /// API requests the agent retried (overload, rate limit, network).
    #[serde(default)]
    pub api_retries: u32,
    /// Things the user should know even when the attempt succeeded (denied tool uses).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Tokens an attempt used, as the agent reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
}

/// Classifies an error text an agent reported.
pub fn classify_reported_error(text: &str) -> FailureClass {
    let t = text.to_ascii_lowercase();
    let systemic = [
        "not logged in",
        "authentication",
        "invalid api key",
        "api key",
        "unauthorized",
        "401",
        "forbidden",
        "credit balance",
    ];
    let transient = [
        "overloaded",
        "rate limit",
        "rate_limit",
        "429",
        "529",
        "timed out",
        "timeout",
        "connection",
        "econnreset",
        "503",
        "502",
    ];
    if systemic.iter().any(|k| t.contains(k)) {
        FailureClass::Systemic
    } else if transient.iter().any(|k| t.contains(k)) {
        FailureClass::Transient
    } else {
        FailureClass::Task
    }
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

/// Finds `program` the way `execvp` would: as given when it contains a `/`, else on `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then(|| p.canonicalize().unwrap_or(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
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
}
