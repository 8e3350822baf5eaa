//! Claude Code: the command line the `[claude]` settings of gadugi.toml produce (the table
//! itself is `spec/claude_settings.rs`), and the reader of its `--output-format stream-json`
//! protocol.
//!
//! The stream is one JSON object per line: `system` events (`init` with the session id and
//! model, `api_retry` while the API is overloaded, subagent `task_*` events), `assistant` and
//! `user` messages (text, `tool_use`, `tool_result`; `parent_tool_use_id` set inside a
//! subagent) and a final `result`. [`ClaudeStream`] folds those lines into an
//! [`AgentReport`]; [`summarize`] turns one line into "what the agent is doing now".

use std::path::Path;

use crate::agent::report::{classify_error, classify_reported_error, AgentReport, FailureClass, TokenUsage};
use crate::spec::claude_settings::{ClaudeSettings, DEFAULT_WORKFLOW_AGENT};

/// Which custom agent a Claude Code task runs as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WorkflowAgent {
    /// Always `--agent NAME` (configured explicitly; the agent may live in `~/.claude/agents`).
    Always(String),
    /// `--agent NAME` only when `.claude/agents/NAME.md` exists in the task's worktree.
    IfPresent(String),
}

impl WorkflowAgent {
    /// The agent name to pass for a task whose worktree is `worktree`, if any.
    pub fn for_worktree(&self, worktree: &Path) -> Option<&str> {
        match self {
            WorkflowAgent::Always(name) => Some(name),
            WorkflowAgent::IfPresent(name) => worktree
                .join(".claude")
                .join("agents")
                .join(format!("{name}.md"))
                .is_file()
                .then_some(name.as_str()),
        }
    }
}

impl ClaudeSettings {
    /// The argv template of the `claude` profile (with `{prompt}` last, after `--`) and the
    /// index where per-attempt options (`--agent`, `--resume`) are inserted.
    pub fn argv(&self) -> (Vec<String>, usize) {
        self.argv_for(false)
    }

    /// [`Self::argv`], with the pre-approved tools narrowed when approvals are on
    /// ([`narrowed_tools`]): what is no longer pre-approved reaches the person.
    pub fn argv_for(&self, approvals: bool) -> (Vec<String>, usize) {
        let mut argv: Vec<String> = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.push(format!("--max-turns={}", self.max_turns));
        if let Some(model) = &self.model {
            argv.push(format!("--model={model}"));
        }
        if self.skip_permissions {
            argv.push("--dangerously-skip-permissions".into());
        } else {
            argv.push(format!("--permission-mode={}", self.permission_mode));
            let tools = if approvals {
                narrowed_tools(&self.allowed_tools)
            } else {
                self.allowed_tools.clone()
            };
            if !tools.is_empty() {
                // `=` keeps the variadic option from swallowing the arguments after it.
                argv.push(format!("--allowedTools={}", tools.join(",")));
            }
        }
        argv.extend(self.extra_args.iter().cloned());
        let options_at = argv.len();
        // `--` ends the options: a prompt starting with `-` stays the prompt.
        argv.push("--".into());
        argv.push("{prompt}".into());
        (argv, options_at)
    }

    /// Environment the agent needs: `IS_SANDBOX=1` with `skip_permissions`.
    pub fn env(&self) -> Vec<(String, String)> {
        if self.skip_permissions {
            vec![("IS_SANDBOX".into(), "1".into())]
        } else {
            vec![]
        }
    }

    /// Which custom agent tasks run as.
    pub fn workflow_agent(&self) -> Option<WorkflowAgent> {
        match self.agent.as_deref() {
            None => Some(WorkflowAgent::IfPresent(DEFAULT_WORKFLOW_AGENT.into())),
            Some("") => None,
            Some(name) => Some(WorkflowAgent::Always(name.into())),
        }
    }
}

/// Tools that, allowed bare, would pre-approve every command, every read or every write
/// anywhere on the machine (the approvals key included).
const BROAD_TOOLS: &[&str] = &[
    "Bash",
    "Read",
    "Write",
    "Edit",
    "MultiEdit",
    "NotebookEdit",
    "Glob",
    "Grep",
    "WebFetch",
    "WebSearch",
];

/// Commands every task may run without asking while approvals are on: reading and
/// committing its own work.
pub const APPROVALS_GIT_TOOLS: &[&str] = &[
    "Bash(git status:*)",
    "Bash(git diff:*)",
    "Bash(git log:*)",
    "Bash(git add:*)",
    "Bash(git commit:*)",
];

/// The pre-approved tools with approvals on: the configured list without its bare broad
/// tools, plus [`APPROVALS_GIT_TOOLS`]. Edits inside the worktree stay accepted by the
/// `acceptEdits` permission mode and reads inside it by Claude Code's own default; writes
/// and reads elsewhere, other commands and fetches are asked.
pub fn narrowed_tools(allowed: &[String]) -> Vec<String> {
    let mut tools: Vec<String> = allowed
        .iter()
        .filter(|t| !BROAD_TOOLS.contains(&t.trim()))
        .cloned()
        .collect();
    for git in APPROVALS_GIT_TOOLS {
        if !tools.iter().any(|t| t == git) {
            tools.push(git.to_string());
        }
    }
    tools
}

/// Longest tool target kept in a summary, in characters.
const TARGET_CHARS: usize = 80;

/// The short target of a tool use: the file, command, pattern or description it names.
pub fn tool_target(input: &serde_json::Value) -> String {
    let target = [
        "file_path",
        "filePath",
        "notebook_path",
        "command",
        "pattern",
        "path",
        "url",
        "query",
        "description",
        "subagent_type",
    ]
    .iter()
    .find_map(|k| input[*k].as_str())
    .unwrap_or("");
    let first = target.lines().next().unwrap_or("");
    let mut s: String = first.chars().take(TARGET_CHARS).collect();
    if first.chars().count() > TARGET_CHARS || target.lines().nth(1).is_some() {
        s.push('…');
    }
    s
}

/// Folds a Claude Code stream-json output into an [`AgentReport`], line by line.
#[derive(Debug, Default)]
pub struct ClaudeStream {
    report: AgentReport,
    result_seen: bool,
    max_turns: bool,
    api_error: Option<String>,
    result_text: Option<String>,
    is_error: bool,
    /// The result's `api_error_status`: the HTTP status of the API error that ended the turn.
    api_status: Option<u16>,
    /// The result's `terminal_reason`: why the query loop ended (`max_turns`, `api_error`, ...).
    terminal_reason: Option<String>,
}

impl ClaudeStream {
    /// Reads one line of output; lines that are not JSON are ignored.
    pub fn line(&mut self, line: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        let r = &mut self.report;
        if r.session_id.is_none() {
            r.session_id = v["session_id"].as_str().map(str::to_string);
        }
        match v["type"].as_str().unwrap_or_default() {
            "system" => match v["subtype"].as_str().unwrap_or_default() {
                "init" => {
                    r.session_id = v["session_id"].as_str().map(str::to_string).or(r.session_id.take());
                    r.model = v["model"].as_str().map(str::to_string);
                }
                "api_retry" => {
                    r.api_retries += 1;
                    self.api_error = api_retry_error(&v);
                }
                "task_started" => r.subagent_tasks += 1,
                _ => {}
            },
            "assistant" => {
                if let Some(e) = v["error"].as_str() {
                    let text = message_text(&v).unwrap_or_default();
                    self.api_error = Some(if text.is_empty() {
                        e.to_string()
                    } else {
                        format!("{e}: {text}")
                    });
                }
                for c in v["message"]["content"].as_array().into_iter().flatten() {
                    if c["type"] == "tool_use" {
                        r.tool_uses += 1;
                        if c["name"] == "Task" || c["name"] == "Agent" {
                            r.subagent_tasks += u32::from(v["parent_tool_use_id"].is_null());
                        }
                    }
                }
            }
            "result" => {
                self.result_seen = true;
                self.is_error = v["is_error"] == true;
                self.max_turns = v["subtype"] == "error_max_turns" || v["terminal_reason"] == "max_turns";
                self.api_status = v["api_error_status"].as_u64().and_then(|s| u16::try_from(s).ok());
                self.terminal_reason = v["terminal_reason"].as_str().map(str::to_string);
                self.result_text = v["result"].as_str().map(str::to_string);
                if let Some(s) = v["session_id"].as_str() {
                    r.session_id = Some(s.to_string());
                }
                r.cost_usd = v["total_cost_usd"].as_f64();
                r.turns = v["num_turns"].as_u64().and_then(|n| u32::try_from(n).ok());
                r.duration_ms = v["duration_ms"].as_u64();
                r.usage = Some(TokenUsage {
                    input_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0),
                    output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
                    cache_read_input_tokens: v["usage"]["cache_read_input_tokens"].as_u64().unwrap_or(0),
                    cache_creation_input_tokens: v["usage"]["cache_creation_input_tokens"].as_u64().unwrap_or(0),
                })
                .filter(|u| *u != TokenUsage::default());
                r.permission_denials = v["permission_denials"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        let name = d["tool_name"].as_str().unwrap_or("tool");
                        format!("{name} {}", tool_target(&d["tool_input"])).trim().to_string()
                    })
                    .collect();
            }
            _ => {}
        }
    }

    /// The report once the output ended.
    pub fn finish(mut self) -> AgentReport {
        let r = &mut self.report;
        if !r.permission_denials.is_empty() {
            r.warnings.push(format!(
                "{} tool use(s) were denied by the permission settings: {}",
                r.permission_denials.len(),
                r.permission_denials.join("; ")
            ));
        }
        if !self.result_seen {
            let (error, class) = match &self.api_error {
                Some(e) => (
                    format!("the agent ended without a final result; last API error: {e}"),
                    classify_reported_error(e),
                ),
                None => (
                    "the agent ended without a final result event".to_string(),
                    FailureClass::Task,
                ),
            };
            r.error = Some(error);
            r.class = Some(class);
        } else if self.max_turns {
            r.error = Some(format!(
                "the agent reached its maximum number of turns ({})",
                r.turns.map(|n| n.to_string()).unwrap_or_else(|| "unknown".into())
            ));
            r.class = Some(FailureClass::Task);
        } else if self.is_error {
            let detail = self
                .result_text
                .clone()
                .filter(|t| !t.trim().is_empty())
                .or(self.api_error.clone())
                .unwrap_or_else(|| "error".into());
            let basis = format!("{detail} {}", self.api_error.as_deref().unwrap_or(""));
            r.error = Some(format!("the agent reported an error: {detail}"));
            r.class = Some(
                self.terminal_reason
                    .as_deref()
                    .and_then(class_of_terminal_reason)
                    .unwrap_or_else(|| classify_error(self.api_status, None, &basis)),
            );
        }
        self.report
    }
}

/// How a turn that ended for `reason` (the result's `terminal_reason`) is treated when that
/// alone decides; `None` for the reasons whose API status or text says more (`api_error`,
/// `model_error`, `completed`).
fn class_of_terminal_reason(reason: &str) -> Option<FailureClass> {
    match reason {
        "max_turns"
        | "prompt_too_long"
        | "image_error"
        | "malformed_tool_use_exhausted"
        | "aborted_streaming"
        | "aborted_tools"
        | "stop_hook_prevented"
        | "hook_stopped"
        | "structured_output_retry_exhausted" => Some(FailureClass::Task),
        // Usage or budget limits and a refused setup hold for every task.
        "blocking_limit" | "budget_exhausted" | "turn_setup_failed" => Some(FailureClass::Systemic),
        "rapid_refill_breaker" => Some(FailureClass::Transient),
        _ => None,
    }
}

/// The error text of a `system/api_retry` event.
fn api_retry_error(v: &serde_json::Value) -> Option<String> {
    let status = v["error_status"].as_u64().map(|s| format!("HTTP {s}"));
    let error = match &v["error"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    match (status, error) {
        (Some(s), Some(e)) => Some(format!("{s}: {e}")),
        (s, e) => s.or(e),
    }
}

/// The first text block of a message.
fn message_text(v: &serde_json::Value) -> Option<String> {
    v["message"]["content"]
        .as_array()?
        .iter()
        .find_map(|c| c["text"].as_str())
        .map(str::to_string)
}

/// Reads a whole stdout log of Claude Code.
pub fn report_from_text(text: &str) -> AgentReport {
    let mut stream = ClaudeStream::default();
    for line in text.lines() {
        stream.line(line);
    }
    stream.finish()
}

/// One stream-json line as "what the agent is doing now"; `None` when it says nothing new.
pub fn summarize(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let sub = if v["parent_tool_use_id"].is_string() {
        "subagent: "
    } else {
        ""
    };
    Some(match v["type"].as_str()? {
        "system" => match v["subtype"].as_str()? {
            "init" => format!(
                "session {} started ({})",
                v["session_id"].as_str().unwrap_or("?"),
                v["model"].as_str().unwrap_or("model")
            ),
            "api_retry" => format!(
                "API retry {}/{} in {:.1}s: {}",
                v["attempt"].as_u64().unwrap_or(0),
                v["max_retries"].as_u64().unwrap_or(0),
                v["retry_delay_ms"].as_f64().unwrap_or(0.0) / 1000.0,
                api_retry_error(&v).unwrap_or_else(|| "error".into())
            ),
            "task_started" => format!(
                "subagent started: {}",
                v["description"].as_str().or(v["prompt"].as_str()).unwrap_or("task")
            ),
            "task_notification" => format!(
                "subagent {}: {}",
                v["status"].as_str().unwrap_or("update"),
                v["summary"].as_str().or(v["description"].as_str()).unwrap_or("")
            ),
            _ => return None,
        },
        "assistant" => {
            let content = v["message"]["content"].as_array()?;
            let what = content.iter().rev().find_map(|c| match c["type"].as_str()? {
                "tool_use" => Some(
                    format!("{} {}", c["name"].as_str().unwrap_or("tool"), tool_target(&c["input"]))
                        .trim()
                        .to_string(),
                ),
                "text" => c["text"]
                    .as_str()
                    .and_then(|t| t.lines().find(|l| !l.trim().is_empty()))
                    .map(|l| l.trim().to_string()),
                _ => None,
            })?;
            format!("{sub}{what}")
        }
        "result" => {
            let cost = v["total_cost_usd"]
                .as_f64()
                .map(|c| format!(", ${c:.4}"))
                .unwrap_or_default();
            let outcome = if v["is_error"] == true {
                format!("error ({})", v["subtype"].as_str().unwrap_or("error"))
            } else {
                v["subtype"].as_str().unwrap_or("done").to_string()
            };
            format!(
                "finished: {outcome} after {} turn(s){cost}",
                v["num_turns"].as_u64().unwrap_or(0)
            )
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::claude_settings::DEFAULT_MAX_TURNS;

    // Lines as the real CLI (2.1.x) prints them, trimmed to the fields that matter.
    const AUTH: &str = r#"{"type":"system","subtype":"init","cwd":"/tmp","session_id":"s-1","model":"claude-sonnet-4-5","permissionMode":"acceptEdits"}
{"type":"assistant","message":{"content":[{"type":"text","text":"Not logged in · Please run /login"}]},"parent_tool_use_id":null,"session_id":"s-1","error":"authentication_failed","is_api_error_message":true}
{"type":"result","subtype":"success","is_error":true,"num_turns":1,"duration_ms":893,"total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0},"permission_denials":[],"result":"Not logged in · Please run /login","session_id":"s-1"}
"#;

    #[test]
    fn authentication_failure_is_systemic_even_with_subtype_success() {
        let r = report_from_text(AUTH);
        assert_eq!(r.class, Some(FailureClass::Systemic));
        assert!(r.error.as_deref().unwrap().contains("Not logged in"), "{:?}", r.error);
        assert_eq!(r.session_id.as_deref(), Some("s-1"));
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(r.turns, Some(1));
        assert_eq!(r.duration_ms, Some(893));
        assert_eq!(r.usage, None);
    }

    #[test]
    fn api_error_status_and_terminal_reason_come_before_the_text() {
        // `(result fields, class)`: the result says what its text may not.
        let cases: &[(&str, FailureClass)] = &[
            (
                r#""api_error_status":429,"result":"API Error: Repeated server errors""#,
                FailureClass::Transient,
            ),
            (
                r#""api_error_status":401,"result":"Something went wrong""#,
                FailureClass::Systemic,
            ),
            (
                r#""api_error_status":529,"terminal_reason":"api_error","result":"x""#,
                FailureClass::Transient,
            ),
            (
                r#""terminal_reason":"prompt_too_long","result":"Prompt is too long""#,
                FailureClass::Task,
            ),
            (
                r#""terminal_reason":"blocking_limit","result":"limit""#,
                FailureClass::Systemic,
            ),
            (
                r#""terminal_reason":"model_error","result":"Overloaded""#,
                FailureClass::Transient,
            ),
        ];
        crate::testing::check_table(cases, |&(fields, class)| {
            let line = format!(r#"{{"type":"result","subtype":"success","is_error":true,"num_turns":1,{fields}}}"#);
            (fields.to_string(), Some(class), report_from_text(&line).class)
        });
        let max = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"terminal_reason":"max_turns","num_turns":7}"#;
        assert!(report_from_text(max)
            .error
            .unwrap()
            .contains("maximum number of turns (7)"));
    }

    #[test]
    fn success_with_tools_cost_usage_and_denials() {
        let text = r#"{"type":"system","subtype":"init","session_id":"s-2","model":"m"}
{"type":"assistant","message":{"content":[{"type":"text","text":"I will write it."},{"type":"tool_use","name":"Write","input":{"file_path":"/w/a.txt","content":"x"}}]},"parent_tool_use_id":null}
{"type":"system","subtype":"task_started","description":"explore"}
{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"rm -rf /tmp/x"}}]},"parent_tool_use_id":"toolu_1"}
{"type":"result","subtype":"success","is_error":false,"num_turns":3,"duration_ms":1200,"total_cost_usd":0.0123,"usage":{"input_tokens":100,"output_tokens":20,"cache_read_input_tokens":5},"permission_denials":[{"tool_name":"Bash","tool_use_id":"t","tool_input":{"command":"rm -rf /tmp/x"}}],"session_id":"s-2"}
"#;
        let r = report_from_text(text);
        assert_eq!(r.error, None);
        assert_eq!(r.class, None);
        assert_eq!(r.turns, Some(3));
        assert_eq!(r.cost_usd, Some(0.0123));
        assert_eq!(r.tool_uses, 2);
        assert_eq!(r.subagent_tasks, 1);
        assert_eq!(r.usage.as_ref().unwrap().input_tokens, 100);
        assert_eq!(r.usage.as_ref().unwrap().cache_read_input_tokens, 5);
        assert_eq!(r.permission_denials, vec!["Bash rm -rf /tmp/x"]);
        assert!(r.warnings[0].contains("denied") && r.warnings[0].contains("Bash rm -rf /tmp/x"));
    }

    #[test]
    fn max_turns_is_a_task_failure_with_that_reason() {
        let r = report_from_text(
            r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3,"session_id":"s"}"#,
        );
        assert_eq!(r.class, Some(FailureClass::Task));
        assert_eq!(
            r.error.as_deref(),
            Some("the agent reached its maximum number of turns (3)")
        );
    }

    #[test]
    fn overload_without_result_is_transient() {
        let text = r#"{"type":"system","subtype":"api_retry","attempt":1,"max_retries":2,"retry_delay_ms":500,"error_status":529,"error":"overloaded_error"}
{"type":"system","subtype":"api_retry","attempt":2,"max_retries":2,"retry_delay_ms":1000,"error_status":529,"error":"overloaded_error"}
"#;
        let r = report_from_text(text);
        assert_eq!(r.api_retries, 2);
        assert_eq!(r.class, Some(FailureClass::Transient));
        assert!(r.error.unwrap().contains("529"));
        let line = text.lines().next().unwrap();
        assert_eq!(
            summarize(line).as_deref(),
            Some("API retry 1/2 in 0.5s: HTTP 529: overloaded_error")
        );
        // Ended with nothing at all: the task's own failure, not a reason to retry.
        assert_eq!(report_from_text("").class, Some(FailureClass::Task));
    }

    #[test]
    fn is_error_with_an_overload_text_is_transient() {
        let text = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"API Error: 529 Overloaded"}]},"error":"server_error"}
{"type":"result","subtype":"success","is_error":true,"num_turns":1,"result":"API Error: 529 Overloaded","session_id":"s"}"#;
        assert_eq!(report_from_text(text).class, Some(FailureClass::Transient));
    }

    #[test]
    fn summaries_name_the_tool_and_a_short_target() {
        let line = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Write","input":{"file_path":"src/a.rs"}}]},"parent_tool_use_id":null}"#;
        assert_eq!(summarize(line).as_deref(), Some("Write src/a.rs"));
        let sub = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"cargo test\necho done"}}]},"parent_tool_use_id":"toolu_9"}"#;
        assert_eq!(summarize(sub).as_deref(), Some("subagent: Bash cargo test…"));
        let result = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"total_cost_usd":0.5}"#;
        assert_eq!(
            summarize(result).as_deref(),
            Some("finished: success after 2 turn(s), $0.5000")
        );
        assert_eq!(summarize("not json"), None);
        assert_eq!(summarize(r#"{"type":"user","message":{}}"#), None);
    }

    #[test]
    fn argv_defaults_and_options() {
        let (argv, at) = ClaudeSettings::default().argv();
        assert_eq!(
            argv[..5],
            ["claude", "-p", "--output-format", "stream-json", "--verbose"]
        );
        assert!(argv.contains(&format!("--max-turns={DEFAULT_MAX_TURNS}")));
        assert!(argv.contains(&"--permission-mode=acceptEdits".to_string()));
        assert_eq!(argv[at..], ["--", "{prompt}"]);
        let s = ClaudeSettings {
            skip_permissions: true,
            model: Some("opus".into()),
            extra_args: vec!["--effort=high".into()],
            ..ClaudeSettings::default()
        };
        let (argv, at) = s.argv();
        assert!(argv.contains(&"--dangerously-skip-permissions".to_string()));
        assert!(!argv.iter().any(|a| a.starts_with("--permission-mode")));
        assert!(argv.contains(&"--model=opus".to_string()));
        assert_eq!(argv[at - 1], "--effort=high");
        assert_eq!(s.env(), vec![("IS_SANDBOX".to_string(), "1".to_string())]);
    }

    #[test]
    fn bad_settings_are_refused_with_their_key() {
        let bad = ClaudeSettings {
            permission_mode: "yolo".into(),
            ..ClaudeSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "permission_mode");
        let bad = ClaudeSettings {
            max_turns: 0,
            ..ClaudeSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "max_turns");
        let bad = ClaudeSettings {
            agent: Some("../x".into()),
            ..ClaudeSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "agent");
    }

    #[test]
    fn workflow_agent_only_when_its_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let wa = ClaudeSettings::default().workflow_agent().unwrap();
        assert_eq!(wa.for_worktree(dir.path()), None);
        std::fs::create_dir_all(dir.path().join(".claude/agents")).unwrap();
        std::fs::write(dir.path().join(".claude/agents/WorkflowManager.md"), "x").unwrap();
        assert_eq!(wa.for_worktree(dir.path()), Some("WorkflowManager"));
        let none = ClaudeSettings {
            agent: Some(String::new()),
            ..ClaudeSettings::default()
        };
        assert_eq!(none.workflow_agent(), None);
    }
}
