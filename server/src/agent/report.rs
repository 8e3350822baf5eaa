//! What an agent says about an attempt: the output protocol it speaks, the report read from
//! that output, and how a failure it reported is classified for retries and the breaker.

use serde::{Deserialize, Serialize};

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
    /// aider's plain text (`--no-pretty`): `Tokens: … Cost: …` lines and `litellm.*Error` lines.
    AiderText,
}

/// A resolved agent profile.
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

/// How a failure is treated given the HTTP status the model API answered: the one mapping of
/// status codes to classes, whichever agent reported it.
pub fn class_of_status(status: u16) -> Option<FailureClass> {
    match status {
        // Credentials, billing, permissions, a wrong model or base URL: the same for every task.
        401..=404 => Some(FailureClass::Systemic),
        // Rate limits, timeouts and the server's own trouble (529 = overloaded): try again.
        408 | 409 | 425 | 429 | 500..=599 => Some(FailureClass::Transient),
        _ => None,
    }
}

/// Classifies an error an agent reported: by the HTTP status when it gave one (or its text
/// names one, as Codex's `unexpected status 401` or `last status: 429`), then by whether it
/// called the error retryable, then by the words of the text.
pub fn classify_error(status: Option<u16>, retryable: Option<bool>, text: &str) -> FailureClass {
    if let Some(class) = status.or_else(|| status_in_text(text)).and_then(class_of_status) {
        return class;
    }
    if retryable == Some(true) {
        return FailureClass::Transient;
    }
    classify_reported_error(text)
}

/// The HTTP status a message names after the word `status` (`unexpected status 401
/// Unauthorized`, `last status: 429`, `statusCode=503`).
pub fn status_in_text(text: &str) -> Option<u16> {
    let lower = text.to_ascii_lowercase();
    lower.match_indices("status").find_map(|(i, word)| {
        let rest = lower[i + word.len()..].trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '_');
        let rest = rest.trim_start_matches([':', '=', ' ', '"']);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (digits.len() == 3)
            .then(|| digits.parse().ok())
            .flatten()
            .filter(|s| (100..600).contains(s))
    })
}

/// Classifies an error text an agent reported, by its words (the fallback of
/// [`classify_error`] when no status code is known).
pub fn classify_reported_error(text: &str) -> FailureClass {
    let t = text.to_ascii_lowercase();
    let systemic = [
        "not logged in",
        "authentication",
        "not able to authenticate",
        "invalid api key",
        "api key",
        "api_key",
        "missing environment variable",
        "unauthorized",
        "401",
        "forbidden",
        "credit balance",
    ];
    let transient = [
        "overloaded",
        "rate limit",
        "rate_limit",
        "ratelimit",
        "too many requests",
        "resource has been exhausted",
        "resource_exhausted",
        "429",
        "529",
        "timed out",
        "timeout",
        "connection",
        "error sending request",
        "stream disconnected",
        "stream ended",
        "serviceunavailable",
        "service unavailable",
        "econnreset",
        "503",
        "502",
    ];
    // A status code counts as a number of its own: "4013" or "req_8a4291c" holds no 401 or 429.
    let found = |k: &&str| {
        if k.bytes().all(|b| b.is_ascii_digit()) {
            has_code(&t, k)
        } else {
            t.contains(k)
        }
    };
    if systemic.iter().any(found) {
        FailureClass::Systemic
    } else if transient.iter().any(found) {
        FailureClass::Transient
    } else {
        FailureClass::Task
    }
}

/// Whether `text` holds `code` with no letter or digit right before or after it.
fn has_code(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + code.len()..].chars().next();
        !(before.is_some_and(|c| c.is_ascii_alphanumeric()) || after.is_some_and(|c| c.is_ascii_alphanumeric()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_table;

    /// `(error text an agent reported, class)`.
    const CASES: &[(&str, FailureClass)] = &[
        // Systemic: the same for every task.
        ("Not logged in · Please run /login", FailureClass::Systemic),
        ("Invalid API key · Fix external API key", FailureClass::Systemic),
        ("authentication_error: invalid x-api-key", FailureClass::Systemic),
        ("API Error: 401 {\"type\":\"error\"}", FailureClass::Systemic),
        ("HTTP 401", FailureClass::Systemic),
        ("403 Forbidden", FailureClass::Systemic),
        ("Unauthorized", FailureClass::Systemic),
        (
            "Your credit balance is too low to access the Anthropic API",
            FailureClass::Systemic,
        ),
        // Transient: worth another attempt.
        (
            "API Error: 529 {\"type\":\"overloaded_error\"}",
            FailureClass::Transient,
        ),
        ("Overloaded", FailureClass::Transient),
        (
            "rate_limit_error: Number of request tokens has exceeded your rate limit",
            FailureClass::Transient,
        ),
        ("HTTP 429 Too Many Requests", FailureClass::Transient),
        ("Request timed out.", FailureClass::Transient),
        ("stream timeout after 600s", FailureClass::Transient),
        ("Connection error.", FailureClass::Transient),
        ("read ECONNRESET", FailureClass::Transient),
        ("502 Bad Gateway", FailureClass::Transient),
        ("503 Service Unavailable", FailureClass::Transient),
        // Systemic wins over transient.
        ("API Error: 401 after a connection retry", FailureClass::Systemic),
        // The task's own failure.
        ("Reached max turns (30)", FailureClass::Task),
        ("error_during_execution", FailureClass::Task),
        ("tests failed: 3 of 12", FailureClass::Task),
        ("", FailureClass::Task),
        // A status code is a number of its own, not digits inside a longer one.
        ("the build failed at src/parser.rs:4013", FailureClass::Task),
        ("wrote 15290 lines of output", FailureClass::Task),
        ("request id req_8a4291c failed", FailureClass::Task),
        ("status=429", FailureClass::Transient),
        ("(401)", FailureClass::Systemic),
    ];

    /// `(HTTP status, retryable, error text, class)`: structured fields first, then the text.
    const STRUCTURED: &[(Option<u16>, Option<bool>, &str, FailureClass)] = &[
        // opencode's error.data.statusCode (+ isRetryable).
        (Some(401), Some(false), "Incorrect API key provided: dummy.", FailureClass::Systemic),
        (Some(429), Some(true), "Rate limit reached", FailureClass::Transient),
        (Some(503), Some(true), "Service Unavailable", FailureClass::Transient),
        (Some(404), None, "model not found", FailureClass::Systemic),
        // The status beats misleading words; an unknown status falls back to isRetryable.
        (Some(429), None, "invalid api key?", FailureClass::Transient),
        (Some(400), Some(true), "bad request", FailureClass::Transient),
        (Some(400), Some(false), "context too long", FailureClass::Task),
        // Codex names the status in its message.
        (
            None,
            None,
            "unexpected status 401 Unauthorized: Incorrect API key provided: dummy., url: http://127.0.0.1:1/v1/responses, request id: req_fake",
            FailureClass::Systemic,
        ),
        (
            None,
            None,
            "exceeded retry limit, last status: 429 Too Many Requests, request id: req_fake",
            FailureClass::Transient,
        ),
        (
            None,
            None,
            "unexpected status 503 Service Unavailable: The server is overloaded or not ready yet.",
            FailureClass::Transient,
        ),
        // Missing keys are the same for every task.
        (None, None, "Missing environment variable: `OPENAI_API_KEY`.", FailureClass::Systemic),
        (
            None,
            None,
            "When using Gemini API, you must specify the GEMINI_API_KEY environment variable.",
            FailureClass::Systemic,
        ),
        // The network and quota words.
        (
            None,
            None,
            "stream disconnected before completion: error sending request for url (http://127.0.0.1:9/v1/responses)",
            FailureClass::Transient,
        ),
        (None, None, "Connection failed: error sending request", FailureClass::Transient),
        (
            None,
            None,
            "[API Error: Resource has been exhausted (e.g. check quota).]",
            FailureClass::Transient,
        ),
        (None, Some(true), "something odd", FailureClass::Transient),
        (None, None, "status 200 but no body", FailureClass::Task),
    ];

    #[test]
    fn structured_fields_come_before_the_text() {
        check_table(STRUCTURED, |&(status, retryable, text, class)| {
            (
                format!("{status:?} {retryable:?} {text:?}"),
                class,
                classify_error(status, retryable, text),
            )
        });
    }

    #[test]
    fn reported_errors_are_classified_by_their_text() {
        check_table(CASES, |&(text, class)| {
            (format!("{text:?}"), class, classify_reported_error(text))
        });
    }
}
