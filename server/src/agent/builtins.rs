//! The built-in agent profiles other than Claude Code (`codex`, `gemini`, `aider`,
//! `opencode`): their non-interactive command lines and the readers of their machine output.

use crate::agent::claude::tool_target;
use crate::agent::report::{classify_reported_error, AgentReport, FailureClass, OutputProtocol};

/// A built-in profile: its command line and how its output is read.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Profile name.
    pub name: &'static str,
    /// Argv template; `{prompt}` / `{prompt_file}` are filled per task.
    pub argv: &'static [&'static str],
    /// Index in `argv` where extra and per-attempt options go: before the prompt.
    pub options_at: usize,
    /// How its stdout is read.
    pub protocol: OutputProtocol,
    /// Environment the program needs to run unattended.
    pub env: &'static [(&'static str, &'static str)],
    /// Where to get it.
    pub install: &'static str,
    /// What its permission setting allows.
    pub permissions: &'static str,
}

/// `codex`, `gemini`, `aider` and `opencode`. Options go before the prompt; the prompt (or
/// its file) is last so extra arguments from gadugi.toml are inserted in front of it.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "codex",
        argv: &[
            "codex",
            "exec",
            "--json",
            "--sandbox",
            "workspace-write",
            "--skip-git-repo-check",
            "--",
            "{prompt}",
        ],
        options_at: 6,
        protocol: OutputProtocol::CodexJson,
        env: &[],
        install: "npm install -g @openai/codex",
        permissions: "--sandbox workspace-write: edits and commands inside the worktree, no network; `codex exec` never asks",
    },
    Builtin {
        name: "gemini",
        argv: &[
            "gemini",
            "--output-format",
            "stream-json",
            "--approval-mode=yolo",
            "--prompt={prompt}",
        ],
        options_at: 4,
        protocol: OutputProtocol::GeminiStreamJson,
        env: &[("GEMINI_CLI_TRUST_WORKSPACE", "true")],
        install: "npm install -g @google/gemini-cli",
        permissions: "--approval-mode=yolo: every tool call is approved (the worktree is trusted through GEMINI_CLI_TRUST_WORKSPACE=true)",
    },
    Builtin {
        name: "aider",
        argv: &[
            "aider",
            "--yes-always",
            "--no-auto-commits",
            "--no-check-update",
            "--no-pretty",
            "--no-stream",
            "--message-file",
            "{prompt_file}",
        ],
        options_at: 6,
        protocol: OutputProtocol::Plain,
        env: &[],
        install: "pip install aider-chat",
        permissions: "--yes-always: every confirmation is answered yes; Gadugi commits what aider leaves",
    },
    Builtin {
        name: "opencode",
        argv: &["opencode", "run", "--format", "json", "--", "{prompt}"],
        options_at: 4,
        protocol: OutputProtocol::OpenCodeJson,
        env: &[],
        install: "npm install -g opencode-ai",
        permissions: "`opencode run` approves tool calls by itself (no prompt in non-interactive mode)",
    },
];

/// The built-in profile called `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Reads the whole stdout of an agent speaking `protocol` (not Claude Code, see claude.rs).
pub fn report_from_text(protocol: OutputProtocol, text: &str) -> AgentReport {
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.is_object())
        .collect();
    let mut r = AgentReport::default();
    let mut error: Option<String> = None;
    let mut finished = false;
    match protocol {
        OutputProtocol::CodexJson => {
            let mut usage = crate::agent::report::TokenUsage::default();
            for v in &events {
                match v["type"].as_str().unwrap_or_default() {
                    "thread.started" => r.session_id = v["thread_id"].as_str().map(str::to_string),
                    "turn.completed" => {
                        finished = true;
                        r.turns = Some(r.turns.unwrap_or(0) + 1);
                        usage.input_tokens += v["usage"]["input_tokens"].as_u64().unwrap_or(0);
                        usage.cache_read_input_tokens += v["usage"]["cached_input_tokens"].as_u64().unwrap_or(0);
                        usage.output_tokens += v["usage"]["output_tokens"].as_u64().unwrap_or(0);
                    }
                    "turn.failed" => {
                        finished = true;
                        error = Some(v["error"]["message"].as_str().unwrap_or("the turn failed").to_string());
                    }
                    "error" => error = Some(v["message"].as_str().unwrap_or("error").to_string()),
                    "item.completed" if v["item"]["type"] != "agent_message" && v["item"]["type"] != "reasoning" => {
                        r.tool_uses += 1;
                    }
                    _ => {}
                }
            }
            r.usage = Some(usage).filter(|u| *u != crate::agent::report::TokenUsage::default());
        }
        OutputProtocol::GeminiStreamJson => {
            for v in &events {
                match v["type"].as_str().unwrap_or_default() {
                    "init" => {
                        r.session_id = v["session_id"].as_str().map(str::to_string);
                        r.model = v["model"].as_str().map(str::to_string);
                    }
                    "tool_use" => r.tool_uses += 1,
                    "error" if v["severity"] == "error" => {
                        error = v["message"].as_str().map(str::to_string);
                    }
                    "result" => {
                        finished = true;
                        if v["status"] != "success" {
                            error = Some(
                                v["error"]["message"]
                                    .as_str()
                                    .map(str::to_string)
                                    .or(error.take())
                                    .unwrap_or_else(|| format!("status {}", v["status"])),
                            );
                        }
                        let s = &v["stats"];
                        r.duration_ms = s["duration_ms"].as_u64();
                        r.usage = Some(crate::agent::report::TokenUsage {
                            input_tokens: s["input_tokens"].as_u64().unwrap_or(0),
                            output_tokens: s["output_tokens"].as_u64().unwrap_or(0),
                            ..Default::default()
                        })
                        .filter(|u| *u != crate::agent::report::TokenUsage::default());
                    }
                    _ => {}
                }
            }
        }
        OutputProtocol::OpenCodeJson => {
            let mut cost = 0.0;
            let mut costed = false;
            for v in &events {
                if r.session_id.is_none() {
                    r.session_id = v["sessionID"].as_str().map(str::to_string);
                }
                match v["type"].as_str().unwrap_or_default() {
                    "tool_use" => r.tool_uses += 1,
                    "step_finish" => {
                        finished = true;
                        r.turns = Some(r.turns.unwrap_or(0) + 1);
                        if let Some(c) = v["part"]["cost"].as_f64() {
                            cost += c;
                            costed = true;
                        }
                    }
                    "error" => {
                        let e = &v["error"];
                        error = Some(
                            e["data"]["message"]
                                .as_str()
                                .or(e["message"].as_str())
                                .or(e["name"].as_str())
                                .unwrap_or("error")
                                .to_string(),
                        );
                    }
                    _ => {}
                }
            }
            r.cost_usd = costed.then_some(cost);
        }
        OutputProtocol::Plain | OutputProtocol::ClaudeStreamJson => return r,
    }
    if let Some(e) = error {
        r.class = Some(classify_reported_error(&e));
        r.error = Some(format!("the agent reported an error: {e}"));
    } else if !finished {
        r.error = Some("the agent ended without reporting a finished turn".into());
        r.class = Some(FailureClass::Task);
    }
    r
}

/// One output line of a JSON-speaking agent as "what it is doing now".
pub fn summarize(protocol: OutputProtocol, line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let first_line = |s: &str| s.lines().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string());
    match protocol {
        OutputProtocol::CodexJson => match v["type"].as_str()? {
            "thread.started" => Some(format!("session {} started", v["thread_id"].as_str().unwrap_or("?"))),
            "item.started" | "item.completed" => {
                let item = &v["item"];
                match item["type"].as_str()? {
                    "agent_message" => first_line(item["text"].as_str()?),
                    "command_execution" => Some(format!("command {}", first_line(item["command"].as_str()?)?)),
                    "file_change" => Some(format!(
                        "edit {}",
                        item["changes"]
                            .as_array()?
                            .iter()
                            .filter_map(|c| c["path"].as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    "mcp_tool_call" => Some(format!("tool {}", item["tool"].as_str().unwrap_or("?"))),
                    _ => None,
                }
            }
            "turn.failed" => Some(format!("failed: {}", v["error"]["message"].as_str().unwrap_or("error"))),
            "error" => Some(format!("error: {}", v["message"].as_str().unwrap_or("?"))),
            _ => None,
        },
        OutputProtocol::GeminiStreamJson => match v["type"].as_str()? {
            "init" => Some(format!("session started ({})", v["model"].as_str().unwrap_or("model"))),
            "message" if v["role"] == "assistant" && v["delta"] != true => first_line(v["content"].as_str()?),
            "tool_use" => Some(
                format!(
                    "{} {}",
                    v["tool_name"].as_str().unwrap_or("tool"),
                    tool_target(&v["parameters"])
                )
                .trim()
                .to_string(),
            ),
            "error" => Some(format!("error: {}", v["message"].as_str().unwrap_or("?"))),
            "result" => Some(format!("finished: {}", v["status"].as_str().unwrap_or("done"))),
            _ => None,
        },
        OutputProtocol::OpenCodeJson => match v["type"].as_str()? {
            "text" => first_line(v["part"]["text"].as_str()?),
            "tool_use" => Some(
                format!(
                    "{} {}",
                    v["part"]["tool"].as_str().unwrap_or("tool"),
                    tool_target(&v["part"]["state"]["input"])
                )
                .trim()
                .to_string(),
            ),
            "error" => Some("error".into()),
            _ => None,
        },
        OutputProtocol::Plain | OutputProtocol::ClaudeStreamJson => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_stream_gives_session_usage_and_errors() {
        let ok = r#"{"type":"thread.started","thread_id":"th_1"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"i0","type":"command_execution","command":"cargo test","status":"completed"}}
{"type":"item.completed","item":{"id":"i1","type":"agent_message","text":"Done."}}
{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":4,"output_tokens":3}}"#;
        let r = report_from_text(OutputProtocol::CodexJson, ok);
        assert_eq!(r.error, None);
        assert_eq!(r.session_id.as_deref(), Some("th_1"));
        assert_eq!(r.tool_uses, 1);
        assert_eq!(r.usage.unwrap().cache_read_input_tokens, 4);
        let failed = r#"{"type":"thread.started","thread_id":"th_1"}
{"type":"turn.failed","error":{"message":"stream error: 429 Too Many Requests (rate limit)"}}"#;
        let r = report_from_text(OutputProtocol::CodexJson, failed);
        assert_eq!(r.class, Some(FailureClass::Transient));
        assert_eq!(
            summarize(OutputProtocol::CodexJson, ok.lines().nth(2).unwrap()).as_deref(),
            Some("command cargo test")
        );
    }

    #[test]
    fn gemini_stream_gives_result_and_auth_errors() {
        let text = r#"{"type":"init","session_id":"g1","model":"gemini-2.5-pro"}
{"type":"tool_use","tool_name":"write_file","tool_id":"t1","parameters":{"file_path":"a.txt"}}
{"type":"result","status":"error","error":{"type":"FatalAuthenticationError","message":"Authentication failed: invalid API key"},"stats":{"input_tokens":5,"output_tokens":1,"duration_ms":40}}"#;
        let r = report_from_text(OutputProtocol::GeminiStreamJson, text);
        assert_eq!(r.class, Some(FailureClass::Systemic));
        assert_eq!(r.model.as_deref(), Some("gemini-2.5-pro"));
        assert_eq!(r.duration_ms, Some(40));
        assert_eq!(
            summarize(OutputProtocol::GeminiStreamJson, text.lines().nth(1).unwrap()).as_deref(),
            Some("write_file a.txt")
        );
    }

    #[test]
    fn opencode_stream_sums_cost_and_silence_is_a_failure() {
        let text = r#"{"type":"step_start","sessionID":"ses_1","part":{}}
{"type":"tool_use","sessionID":"ses_1","part":{"tool":"write","state":{"status":"completed","input":{"filePath":"a","file_path":"a.txt"}}}}
{"type":"step_finish","sessionID":"ses_1","part":{"cost":0.01}}
{"type":"step_finish","sessionID":"ses_1","part":{"cost":0.02}}"#;
        let r = report_from_text(OutputProtocol::OpenCodeJson, text);
        assert_eq!(r.error, None);
        assert!((r.cost_usd.unwrap() - 0.03).abs() < 1e-9);
        assert_eq!(r.turns, Some(2));
        let r = report_from_text(OutputProtocol::OpenCodeJson, "plain text\n");
        assert_eq!(r.class, Some(FailureClass::Task));
    }
}
