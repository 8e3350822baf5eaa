//! Agent profiles: how a task becomes a process (program + argv, never through a shell).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
        let (mut argv, protocol) = match name {
            "claude" => (
                [
                    "claude",
                    "-p",
                    "{prompt}",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "--permission-mode",
                    "acceptEdits",
                    "--allowedTools",
                    "Read,Edit,MultiEdit,Write,Glob,Grep,Bash",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                OutputProtocol::ClaudeStreamJson,
            ),
            "simulated" => (vec![self_exe(), "__sim-agent".into()], OutputProtocol::Plain),
            "command" => {
                let line = command_override.or(config.agent.command.as_deref()).ok_or_else(|| {
                    InputError::new(
                        "agent profile `command` needs a command line",
                        "pass --agent-command 'prog arg {prompt_file}' or set [agent] command = \"...\" in gadugi.toml",
                    )
                })?;
                (split_command(line)?, OutputProtocol::Plain)
            }
            other => match config.profiles.get(other) {
                Some(p) => (split_command(&p.command)?, OutputProtocol::Plain),
                None => {
                    let mut known: Vec<&str> = vec!["claude", "command", "simulated"];
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
        argv.extend(config.agent.args.iter().cloned());
        for arg in &argv {
            check_placeholders(arg)?;
        }
        Ok(AgentProfile {
            name: name.to_string(),
            argv,
            protocol,
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

    /// The argv with placeholders replaced.
    pub fn expand(&self, p: &Placeholders) -> Vec<String> {
        self.argv
            .iter()
            .map(|arg| {
                arg.replace("{prompt_file}", &p.prompt_file.to_string_lossy())
                    .replace("{worktree}", &p.worktree.to_string_lossy())
                    .replace("{branch}", p.branch)
                    .replace("{task_id}", p.task_id)
                    .replace("{run_id}", p.run_id)
                    .replace("{prompt}", p.prompt)
            })
            .collect()
    }

    /// What the agent reported about its attempt on stdout (for agents with a machine
    /// protocol); empty for plain agents.
    pub fn report(&self, stdout_log: &Path) -> AgentReport {
        match self.protocol {
            OutputProtocol::Plain => AgentReport::default(),
            OutputProtocol::ClaudeStreamJson => claude_report(stdout_log),
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
    /// Tool uses the agent was not allowed to make.
    pub permission_denials: Vec<String>,
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

/// Claude Code ends its stream with `{"type":"result","is_error":...}`; `subtype` may say
/// "success" even for an authentication failure, so `is_error` is what counts.
fn claude_report(stdout_log: &Path) -> AgentReport {
    let text = std::fs::read_to_string(stdout_log).unwrap_or_default();
    let events: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let session_id = events.iter().find_map(|v| v["session_id"].as_str()).map(str::to_string);
    let Some(r) = events.iter().rev().find(|v| v["type"] == "result") else {
        return AgentReport {
            error: Some("the agent ended without a final result event".into()),
            class: Some(FailureClass::Task),
            session_id,
            ..AgentReport::default()
        };
    };
    let mut report = AgentReport {
        session_id: r["session_id"].as_str().map(str::to_string).or(session_id),
        cost_usd: r["total_cost_usd"].as_f64(),
        turns: r["num_turns"].as_u64().and_then(|n| u32::try_from(n).ok()),
        permission_denials: r["permission_denials"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d["tool_name"].as_str().unwrap_or("tool").to_string())
                    .collect()
            })
            .unwrap_or_default(),
        ..AgentReport::default()
    };
    if r["subtype"] == "error_max_turns" {
        report.error = Some(format!(
            "the agent reached its maximum number of turns ({})",
            r["num_turns"]
        ));
        report.class = Some(FailureClass::Task);
    } else if r["is_error"] == true {
        let detail = r["result"].as_str().or(r["subtype"].as_str()).unwrap_or("error");
        report.error = Some(format!("the agent reported an error: {detail}"));
        report.class = Some(classify_reported_error(detail));
    }
    report
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
        let argv = p.expand(&Placeholders {
            prompt_file: Path::new("/x/p.md"),
            prompt: "",
            worktree: Path::new("/w"),
            branch: "gadugi/a",
            task_id: "a",
            run_id: "r",
        });
        assert_eq!(argv[3], "/x/p.md");
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
    fn claude_is_error_counts_even_with_subtype_success() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out");
        std::fs::write(&log, "{\"type\":\"system\"}\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"Not logged in\"}\n").unwrap();
        let r = claude_report(&log);
        assert!(r.error.unwrap().contains("Not logged in"));
        assert_eq!(r.class, Some(FailureClass::Systemic));
        std::fs::write(
            &log,
            "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false}\n",
        )
        .unwrap();
        assert_eq!(claude_report(&log).error, None);
        std::fs::write(
            &log,
            "{\"type\":\"result\",\"subtype\":\"error_max_turns\",\"is_error\":true,\"num_turns\":3}\n",
        )
        .unwrap();
        assert!(claude_report(&log).error.unwrap().contains("maximum number of turns"));
    }
}
