//! The built-in agent profiles other than Claude Code (`codex`, `gemini`, `aider`,
//! `opencode`): their non-interactive command lines and the readers of their machine output.

use std::path::PathBuf;

use crate::agent::claude::tool_target;
use crate::agent::report::{class_of_status, classify_error, AgentReport, FailureClass, OutputProtocol, TokenUsage};

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
    /// The option that makes a folder writable (followed by `=DIR`), given the repository's
    /// common git dir at launch: Codex's sandbox keeps it read-only otherwise, so the agent
    /// could not commit.
    pub writable_dir_option: Option<&'static str>,
    /// Files the program leaves in the worktree, kept out of commits through the
    /// repository's `info/exclude` (never the tracked `.gitignore`).
    pub excluded: &'static [&'static str],
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
        permissions: "--sandbox workspace-write: edits and commands inside the worktree and the repository's git dir (--add-dir, so it can commit), no network; `codex exec` never asks",
        writable_dir_option: Some("--add-dir"),
        excluded: &[],
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
        writable_dir_option: None,
        excluded: &[],
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
            "--no-gitignore",
            "--message-file",
            "{prompt_file}",
        ],
        options_at: 7,
        protocol: OutputProtocol::AiderText,
        env: &[],
        install: "pip install aider-chat",
        permissions: "--yes-always: every confirmation is answered yes; Gadugi commits what aider leaves",
        writable_dir_option: None,
        // Its chat history and cache; `--no-gitignore` keeps it from adding this line to
        // the tracked .gitignore.
        excluded: &[".aider*"],
    },
    Builtin {
        name: "opencode",
        argv: &["opencode", "run", "--format", "json", "--", "{prompt}"],
        options_at: 4,
        protocol: OutputProtocol::OpenCodeJson,
        env: &[],
        install: "npm install -g opencode-ai",
        permissions: "`opencode run` approves tool calls by itself (no prompt in non-interactive mode)",
        writable_dir_option: None,
        excluded: &[],
    },
];

/// The built-in profile called `name`.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The built-in profile called `name` when a profile of that name reads its output as the
/// built-in does (not a `[profiles]` entry of the same name, which is plain).
fn builtin_of(name: &str, protocol: OutputProtocol) -> Option<&'static Builtin> {
    builtin(name).filter(|b| b.protocol == protocol)
}

/// The options that make the git dirs of the task's worktree writable for a profile whose
/// sandbox keeps them read-only (Codex `--sandbox workspace-write`: `--add-dir=DIR`, to go
/// before the prompt), so the agent can commit. `dirs`: the repository's common git dir
/// (objects, refs) and the worktree's own (`<common>/worktrees/<name>`: index, HEAD), which
/// Codex protects unless it is named itself.
pub fn writable_dir_options(name: &str, protocol: OutputProtocol, dirs: &[PathBuf]) -> Vec<String> {
    let Some(option) = builtin_of(name, protocol).and_then(|b| b.writable_dir_option) else {
        return vec![];
    };
    let mut options: Vec<String> = vec![];
    for d in dirs {
        let o = format!("{option}={}", d.display());
        if !options.contains(&o) {
            options.push(o);
        }
    }
    options
}

/// The patterns to add to the repository's `info/exclude` before the agent of profile `name`
/// starts.
pub fn excluded_files(name: &str, protocol: OutputProtocol) -> &'static [&'static str] {
    builtin_of(name, protocol).map(|b| b.excluded).unwrap_or(&[])
}

/// Reads what an attempt of an agent speaking `protocol` left (not Claude Code, see
/// claude.rs): its whole stdout, its stderr and its exit code. Gemini CLI says some failures
/// only through its exit code (the HTTP status mod 256, 41 without a key) and stderr;
/// opencode's auto-rejected permissions may land on either stream.
pub fn report_of_attempt(protocol: OutputProtocol, stdout: &str, stderr: &str, exit_code: Option<i32>) -> AgentReport {
    let mut r = report_from_text(protocol, stdout);
    match protocol {
        OutputProtocol::GeminiStreamJson => gemini_exit(&mut r, stderr, exit_code),
        OutputProtocol::OpenCodeJson => {
            for line in stderr.lines().filter(|l| l.contains("auto-rejecting")) {
                let w = line.trim().to_string();
                if !r.warnings.contains(&w) {
                    r.warnings.push(w);
                }
            }
        }
        _ => {}
    }
    r
}

/// Gemini CLI's exit code says what its output may not: 41 is a missing or refused key,
/// 144..=255 is the HTTP status of the API's answer mod 256 (401 → 145, 429 → 173, 503 → 247).
fn gemini_exit(r: &mut AgentReport, stderr: &str, exit_code: Option<i32>) {
    let Some(code) = exit_code.filter(|c| *c != 0) else {
        return;
    };
    let said = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string);
    let (class, what) = match code {
        41 => (FailureClass::Systemic, "could not authenticate (exit 41)".to_string()),
        144..=255 => {
            let status = code as u16 + 256;
            match class_of_status(status) {
                Some(class) => (class, format!("exited with code {code}: HTTP status {status}")),
                None => return,
            }
        }
        _ => return,
    };
    r.class = Some(class);
    // Keep the error gemini printed; replace "ended without reporting a finished turn".
    if !r.error.as_deref().is_some_and(|e| e.contains("reported an error")) {
        r.error = Some(format!(
            "gemini {what}{}",
            said.map(|s| format!(": {s}")).unwrap_or_default()
        ));
    }
}

/// Reads the whole stdout of an agent speaking `protocol` (not Claude Code, see claude.rs).
pub fn report_from_text(protocol: OutputProtocol, text: &str) -> AgentReport {
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.is_object())
        .collect();
    let mut r = AgentReport::default();
    // The error reported and how it is classified.
    let mut error: Option<(String, FailureClass)> = None;
    let text_error = |m: &str| Some((m.to_string(), classify_error(None, None, m)));
    let mut finished = false;
    match protocol {
        OutputProtocol::CodexJson => {
            let mut usage = TokenUsage::default();
            // An `error` event is final only when no turn completes after it: codex prints
            // one for each retry it makes (`Reconnecting... 1/5 (…)`).
            let mut pending: Option<String> = None;
            for v in &events {
                match v["type"].as_str().unwrap_or_default() {
                    "thread.started" => r.session_id = v["thread_id"].as_str().map(str::to_string),
                    "turn.completed" => {
                        finished = true;
                        pending = None;
                        r.turns = Some(r.turns.unwrap_or(0) + 1);
                        usage.input_tokens += v["usage"]["input_tokens"].as_u64().unwrap_or(0);
                        usage.cache_read_input_tokens += v["usage"]["cached_input_tokens"].as_u64().unwrap_or(0);
                        usage.output_tokens += v["usage"]["output_tokens"].as_u64().unwrap_or(0);
                    }
                    "turn.failed" => {
                        finished = true;
                        pending = None;
                        error = text_error(v["error"]["message"].as_str().unwrap_or("the turn failed"));
                    }
                    "error" => {
                        let m = v["message"].as_str().unwrap_or("error");
                        if m.starts_with("Reconnecting") {
                            r.api_retries += 1;
                        }
                        pending = Some(m.to_string());
                    }
                    "item.completed" => match v["item"]["type"].as_str().unwrap_or_default() {
                        "agent_message" | "reasoning" | "todo_list" => {}
                        "error" => r
                            .warnings
                            .push(v["item"]["message"].as_str().unwrap_or("error").to_string()),
                        _ => r.tool_uses += 1,
                    },
                    _ => {}
                }
            }
            if let Some(m) = pending {
                error = text_error(&m);
            }
            r.usage = Some(usage).filter(|u| *u != TokenUsage::default());
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
                        error = v["message"].as_str().and_then(text_error);
                    }
                    "result" => {
                        finished = true;
                        if v["status"] != "success" {
                            let m = v["error"]["message"]
                                .as_str()
                                .map(str::to_string)
                                .or(error.take().map(|(m, _)| m))
                                .unwrap_or_else(|| format!("status {}", v["status"]));
                            error = text_error(&m);
                        }
                        let s = &v["stats"];
                        r.duration_ms = s["duration_ms"].as_u64();
                        r.usage = Some(TokenUsage {
                            input_tokens: s["input_tokens"].as_u64().unwrap_or(0),
                            output_tokens: s["output_tokens"].as_u64().unwrap_or(0),
                            cache_read_input_tokens: s["cached"].as_u64().unwrap_or(0),
                            ..Default::default()
                        })
                        .filter(|u| *u != TokenUsage::default());
                        // With the default model `auto`, init names the alias; the models that
                        // ran are the keys of stats.models.
                        let ran: Vec<&str> = s["models"]
                            .as_object()
                            .map(|m| m.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        if !ran.is_empty() && r.model.as_deref().is_none_or(|m| m == "auto" || m.starts_with("auto-")) {
                            r.model = Some(ran.join(", "));
                        }
                    }
                    _ => {}
                }
            }
        }
        OutputProtocol::OpenCodeJson => {
            let mut cost = 0.0;
            let mut costed = false;
            let mut usage = TokenUsage::default();
            for v in &events {
                if r.session_id.is_none() {
                    r.session_id = v["sessionID"].as_str().map(str::to_string);
                }
                match v["type"].as_str().unwrap_or_default() {
                    "tool_use" => r.tool_uses += 1,
                    "step_finish" => {
                        finished = true;
                        r.turns = Some(r.turns.unwrap_or(0) + 1);
                        let part = &v["part"];
                        if let Some(c) = part["cost"].as_f64() {
                            cost += c;
                            costed = true;
                        }
                        let t = &part["tokens"];
                        usage.input_tokens += t["input"].as_u64().unwrap_or(0);
                        usage.output_tokens += t["output"].as_u64().unwrap_or(0);
                        usage.cache_read_input_tokens += t["cache"]["read"].as_u64().unwrap_or(0);
                        usage.cache_creation_input_tokens += t["cache"]["write"].as_u64().unwrap_or(0);
                    }
                    "error" => {
                        let e = &v["error"];
                        let m = e["data"]["message"]
                            .as_str()
                            .or(e["message"].as_str())
                            .or(e["name"].as_str())
                            .unwrap_or("error");
                        let status = e["data"]["statusCode"].as_u64().and_then(|s| u16::try_from(s).ok());
                        error = Some((
                            m.to_string(),
                            classify_error(status, e["data"]["isRetryable"].as_bool(), m),
                        ));
                    }
                    _ => {}
                }
            }
            for line in text.lines().filter(|l| l.contains("auto-rejecting")) {
                r.warnings.push(line.trim().to_string());
            }
            r.cost_usd = costed.then_some(cost);
            r.usage = Some(usage).filter(|u| *u != TokenUsage::default());
        }
        OutputProtocol::AiderText => {
            finished = true;
            error = aider_text(&mut r, text);
        }
        OutputProtocol::Plain | OutputProtocol::ClaudeStreamJson => return r,
    }
    if let Some((e, class)) = error {
        r.class = Some(class);
        r.error = Some(format!("the agent reported an error: {e}"));
    } else if !finished {
        r.error = Some("the agent ended without reporting a finished turn".into());
        r.class = Some(FailureClass::Task);
    }
    r
}

/// How each of litellm's exceptions (`litellm.RateLimitError: …`, aider's way of saying the
/// API failed) is treated; others fall back to their text.
const LITELLM_ERRORS: &[(&str, FailureClass)] = &[
    ("AuthenticationError", FailureClass::Systemic),
    ("PermissionDeniedError", FailureClass::Systemic),
    ("NotFoundError", FailureClass::Systemic),
    ("RateLimitError", FailureClass::Transient),
    ("ServiceUnavailableError", FailureClass::Transient),
    ("InternalServerError", FailureClass::Transient),
    ("APIConnectionError", FailureClass::Transient),
    ("Timeout", FailureClass::Transient),
    ("BadRequestError", FailureClass::Task),
    ("ContextWindowExceededError", FailureClass::Task),
];

/// Reads aider's plain output: the `Tokens: … Cost: …` line of each exchange with the model
/// (usage, turns, the session's cost) and the API errors aider prints before it gives up
/// (and exits 0). An error counts only when no exchange succeeded after it: aider retries by
/// itself. Returns that error and its class.
fn aider_text(r: &mut AgentReport, text: &str) -> Option<(String, FailureClass)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut usage = TokenUsage::default();
    let mut error: Option<(String, FailureClass)> = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("Tokens:") {
            // `--no-pretty` still wraps at 80 columns: the line may go on below.
            let mut full = rest.to_string();
            if !full.trim_end().ends_with("session.") && full.contains("Cost:") {
                full.push(' ');
                full.push_str(lines.get(i + 1).copied().unwrap_or(""));
            }
            aider_tokens(&full, &mut usage, r);
            r.turns = Some(r.turns.unwrap_or(0) + 1);
            error = None;
        } else if let Some(rest) = line.strip_prefix("litellm.") {
            let name = rest.split(':').next().unwrap_or_default();
            // The message goes on over the wrapped lines up to an empty one.
            let message: Vec<&str> = lines[i..]
                .iter()
                .take_while(|l| !l.is_empty())
                .take(4)
                .copied()
                .collect();
            let message = message.join(" ");
            let class = LITELLM_ERRORS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| *c)
                .unwrap_or_else(|| classify_error(None, None, &message));
            error = Some((message, class));
        } else if line.starts_with("The API provider is not able to authenticate you") {
            error = Some((line.to_string(), FailureClass::Systemic));
        }
    }
    r.usage = Some(usage).filter(|u| *u != TokenUsage::default());
    error
}

/// Adds one `Tokens: 1.0k sent, 2.0k cache write, 500 cache hit, 50 received. Cost: $0.0025
/// message, $0.0025 session.` (after `Tokens:`) to `usage`; the session cost replaces the
/// report's (it is the running total).
fn aider_tokens(line: &str, usage: &mut TokenUsage, r: &mut AgentReport) {
    let (tokens, cost) = line.split_once("Cost:").unwrap_or((line, ""));
    for part in tokens.split(',') {
        let part = part.trim().trim_end_matches('.');
        let Some((n, what)) = part.split_once(' ') else {
            continue;
        };
        let Some(n) = approximate_count(n) else { continue };
        match what.trim() {
            "sent" => usage.input_tokens += n,
            "received" => usage.output_tokens += n,
            "cache hit" => usage.cache_read_input_tokens += n,
            "cache write" => usage.cache_creation_input_tokens += n,
            _ => {}
        }
    }
    for part in cost.split(',') {
        if let Some(v) = part.trim().trim_end_matches('.').strip_suffix(" session") {
            r.cost_usd = v.trim().trim_start_matches('$').parse().ok().or(r.cost_usd);
        }
    }
}

/// A count as aider rounds it: `50`, `1.0k`, `2.3M`.
fn approximate_count(s: &str) -> Option<u64> {
    let (number, factor) = match s.char_indices().last()? {
        (i, 'k') => (&s[..i], 1e3),
        (i, 'M') => (&s[..i], 1e6),
        _ => (s, 1.0),
    };
    let n: f64 = number.replace(',', "").parse().ok()?;
    Some((n * factor).round() as u64)
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
            // Assistant text always comes as deltas: each shows what it is saying now.
            "message" if v["role"] == "assistant" => first_line(v["content"].as_str()?),
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
            "error" => Some(format!(
                "error: {}",
                v["error"]["data"]["message"]
                    .as_str()
                    .or(v["error"]["name"].as_str())
                    .unwrap_or("?")
            )),
            _ => None,
        },
        OutputProtocol::Plain | OutputProtocol::ClaudeStreamJson | OutputProtocol::AiderText => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_table;

    /// `(protocol, stdout, stderr, exit code, outcome)`; outcome: `ok`, or the class and a
    /// piece of the error. Lines as the real programs print them (agents_report.md).
    const ATTEMPTS: &[(OutputProtocol, &str, &str, Option<i32>, &str)] = &[
        // Codex: a retry it recovered from is no error; one not followed by a turn is.
        (
            OutputProtocol::CodexJson,
            "{\"type\":\"error\",\"message\":\"Reconnecting... 1/1 (stream disconnected before completion: stream closed before response.completed)\"}\n{\"type\":\"turn.completed\",\"usage\":{}}",
            "",
            Some(0),
            "ok",
        ),
        (
            OutputProtocol::CodexJson,
            "{\"type\":\"error\",\"message\":\"Reconnecting... 5/5 (stream disconnected before completion: error sending request)\"}",
            "",
            Some(1),
            "transient: error sending request",
        ),
        (
            OutputProtocol::CodexJson,
            "{\"type\":\"turn.failed\",\"error\":{\"message\":\"Missing environment variable: `OPENAI_API_KEY`.\"}}",
            "",
            Some(1),
            "systemic: OPENAI_API_KEY",
        ),
        (
            OutputProtocol::CodexJson,
            "{\"type\":\"turn.failed\",\"error\":{\"message\":\"exceeded retry limit, last status: 429 Too Many Requests, request id: req_fake\"}}",
            "",
            Some(1),
            "transient: last status: 429",
        ),
        // Gemini: the exit code is the HTTP status mod 256; 41 is a missing key.
        (OutputProtocol::GeminiStreamJson, "", "When using Gemini API, you must specify the GEMINI_API_KEY environment variable.\n", Some(41), "systemic: GEMINI_API_KEY"),
        (
            OutputProtocol::GeminiStreamJson,
            "{\"type\":\"result\",\"status\":\"error\",\"error\":{\"type\":\"unknown\",\"message\":\"[API Error: Resource has been exhausted (e.g. check quota).]\"}}",
            "",
            Some(173),
            "transient: Resource has been exhausted",
        ),
        (
            OutputProtocol::GeminiStreamJson,
            "{\"type\":\"result\",\"status\":\"error\",\"error\":{\"type\":\"unknown\",\"message\":\"[API Error: {}]\"}}",
            "",
            Some(145),
            "systemic: [API Error",
        ),
        (OutputProtocol::GeminiStreamJson, "", "", Some(247), "transient: HTTP status 503"),
        // A result with status error fails the task even when gemini exits 0.
        (
            OutputProtocol::GeminiStreamJson,
            "{\"type\":\"error\",\"severity\":\"error\",\"message\":\"Model stream ended without a finish reason.\"}\n{\"type\":\"result\",\"status\":\"error\",\"stats\":{}}",
            "",
            Some(0),
            "transient: Model stream ended",
        ),
        // opencode: statusCode and isRetryable.
        (
            OutputProtocol::OpenCodeJson,
            "{\"type\":\"error\",\"error\":{\"name\":\"APIError\",\"data\":{\"message\":\"Too busy\",\"statusCode\":503,\"isRetryable\":true}}}",
            "",
            Some(1),
            "transient: Too busy",
        ),
        (
            OutputProtocol::OpenCodeJson,
            "{\"type\":\"error\",\"error\":{\"name\":\"APIError\",\"data\":{\"message\":\"Incorrect API key provided: dummy.\",\"statusCode\":401,\"isRetryable\":false}}}",
            "",
            Some(1),
            "systemic: Incorrect API key",
        ),
        // aider exits 0 whatever the API said.
        (
            OutputProtocol::AiderText,
            "litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect \nAPI key provided: dummy.\nThe API provider is not able to authenticate you. Check your API key.\n",
            "",
            Some(0),
            "systemic: not able to authenticate",
        ),
        (
            OutputProtocol::AiderText,
            "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for\nrequests\nRetrying in 0.2 seconds...\nlitellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for\nrequests\n",
            "",
            Some(0),
            "transient: RateLimitError",
        ),
        (
            OutputProtocol::AiderText,
            "litellm.ServiceUnavailableError: ServiceUnavailableError: OpenAIException - busy\n",
            "",
            Some(0),
            "transient: ServiceUnavailableError",
        ),
        (
            OutputProtocol::AiderText,
            "litellm.APIConnectionError: APIConnectionError: OpenAIException - Connection error.\nRetrying in 0.2 seconds...\n",
            "",
            Some(0),
            "transient: APIConnectionError",
        ),
        // An error aider recovered from (an exchange succeeded after it) is no error.
        (
            OutputProtocol::AiderText,
            "litellm.APIConnectionError: APIConnectionError: cut\nRetrying in 0.2 seconds...\nhello.txt\nTokens: 1.0k sent, 50 received. Cost: $0.0025 message, $0.0025 session.\nApplied edit to hello.txt\n",
            "",
            Some(0),
            "ok",
        ),
        (OutputProtocol::AiderText, "Applied edit to hello.txt\n", "", Some(0), "ok"),
    ];

    #[test]
    fn attempts_are_read_from_output_stderr_and_exit() {
        check_table(ATTEMPTS, |&(protocol, stdout, stderr, exit, expected)| {
            let r = report_of_attempt(protocol, stdout, stderr, exit);
            let got = match (r.class, &r.error) {
                (None, None) => "ok".to_string(),
                (class, error) => {
                    let class = class.map(|c| serde_json::to_value(c).unwrap().as_str().unwrap().to_string());
                    let piece = expected.split_once(": ").map_or("", |(_, p)| p);
                    let error = error.clone().unwrap_or_default();
                    // Show the whole error only when it lacks the expected piece.
                    let shown = if error.contains(piece) {
                        piece.to_string()
                    } else {
                        error
                    };
                    format!("{}: {shown}", class.unwrap_or_default())
                }
            };
            (
                format!("{protocol:?} {stdout:?} {stderr:?} {exit:?}"),
                expected.to_string(),
                got,
            )
        });
    }

    #[test]
    fn aider_tokens_and_session_cost_are_read() {
        let text = "Tokens: 1.0k sent, 50 received. Cost: $0.0025 message, $0.0025 session.\nTokens: 2.3M sent, 1.5k cache write, 500 cache hit, 12 received. Cost: $0.10 message,\n$0.1025 session.\n";
        let r = report_from_text(OutputProtocol::AiderText, text);
        assert_eq!(r.error, None);
        assert_eq!(r.turns, Some(2));
        assert!((r.cost_usd.unwrap() - 0.1025).abs() < 1e-9, "{:?}", r.cost_usd);
        let u = r.usage.unwrap();
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cache_creation_input_tokens,
                u.cache_read_input_tokens
            ),
            (2_301_000, 62, 1_500, 500)
        );
    }

    #[test]
    fn codex_error_items_are_warnings_and_gemini_auto_names_the_models() {
        let codex = r#"{"type":"item.completed","item":{"id":"i0","type":"error","message":"Model metadata for `gpt-5.5` not found."}}
{"type":"item.completed","item":{"id":"i1","type":"command_execution","command":"ls","status":"completed"}}
{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":4,"output_tokens":3}}"#;
        let r = report_from_text(OutputProtocol::CodexJson, codex);
        assert_eq!((r.tool_uses, r.error.as_deref()), (1, None));
        assert_eq!(r.warnings, ["Model metadata for `gpt-5.5` not found."]);
        let gemini = r#"{"type":"init","session_id":"g1","model":"auto"}
{"type":"message","role":"assistant","content":"Writing hello.txt now.","delta":true}
{"type":"result","status":"success","stats":{"input_tokens":2000,"output_tokens":100,"cached":400,"models":{"gemini-2.5-flash":{}}}}"#;
        let r = report_from_text(OutputProtocol::GeminiStreamJson, gemini);
        assert_eq!(r.model.as_deref(), Some("gemini-2.5-flash"));
        assert_eq!(r.usage.unwrap().cache_read_input_tokens, 400);
        assert_eq!(
            summarize(OutputProtocol::GeminiStreamJson, gemini.lines().nth(1).unwrap()).as_deref(),
            Some("Writing hello.txt now.")
        );
    }

    #[test]
    fn opencode_tokens_targets_and_rejections() {
        let text = r#"{"type":"tool_use","sessionID":"s","part":{"tool":"write","state":{"input":{"filePath":"/w/hello.txt"}}}}
{"type":"step_finish","sessionID":"s","part":{"tokens":{"total":1050,"input":800,"output":50,"reasoning":0,"cache":{"write":10,"read":200}},"cost":0.0021}}
permission requested: external_directory (/w/other/*); auto-rejecting"#;
        let r = report_from_text(OutputProtocol::OpenCodeJson, text);
        let u = r.usage.clone().unwrap();
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cache_read_input_tokens,
                u.cache_creation_input_tokens
            ),
            (800, 50, 200, 10)
        );
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert_eq!(
            summarize(OutputProtocol::OpenCodeJson, text.lines().next().unwrap()).as_deref(),
            Some("write /w/hello.txt")
        );
        let r = report_of_attempt(
            OutputProtocol::OpenCodeJson,
            text,
            "permission requested: external_directory (/x/*); auto-rejecting\n",
            Some(0),
        );
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    }

    #[test]
    fn codex_gets_the_worktree_git_dirs_writable() {
        let dirs = [
            PathBuf::from("/r/repo/.git"),
            PathBuf::from("/r/repo/.git/worktrees/a"),
            PathBuf::from("/r/repo/.git"),
        ];
        assert_eq!(
            writable_dir_options("codex", OutputProtocol::CodexJson, &dirs),
            ["--add-dir=/r/repo/.git", "--add-dir=/r/repo/.git/worktrees/a"]
        );
        // A `[profiles.codex]` of the user's own is plain: not the built-in.
        assert!(writable_dir_options("codex", OutputProtocol::Plain, &dirs).is_empty());
        assert!(writable_dir_options("aider", OutputProtocol::AiderText, &dirs).is_empty());
        assert_eq!(excluded_files("aider", OutputProtocol::AiderText), [".aider*"]);
        assert!(excluded_files("aider", OutputProtocol::Plain).is_empty());
        assert!(excluded_files("codex", OutputProtocol::CodexJson).is_empty());
    }

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
