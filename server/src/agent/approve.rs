//! The approval broker: `gadugi __approve`, a stdio MCP server that Claude Code starts for
//! each attempt (`--mcp-config`, `--permission-prompt-tool mcp__gadugi__approve`), and the
//! files it shares with the rest of Gadugi.
//!
//! For each tool use that is not pre-approved (and each `AskUserQuestion`), Claude Code calls
//! the tool `approve` with `{tool_name, input, tool_use_id}` and waits for the reply. The
//! broker answers from the policy's rules when one matches; otherwise it writes the request
//! as `<id>.question.json` into the task's questions folder (in the main repository's
//! `.gadugi/`, never a worktree) and waits for `<id>.answer.json` — written by `gadugi answer`
//! or the editor — or for the deadline, when the policy's `default` answers.
//!
//! Threat model: the agent runs as the same user as Gadugi, so it could write an answer file
//! itself. Every answer therefore carries an HMAC-SHA256 over the question's fingerprint
//! (id, tool, input) and the decision, keyed by `approval.key` in the user's state folder
//! (`layout::approval_key_file`: outside the repository and every worktree). The broker
//! verifies it and moves a bad answer aside (`<id>.rejected-N.json`), so a forged file never
//! answers. The agent cannot read the key without asking: with approvals on, Gadugi's
//! pre-approved tools no longer include bare `Read`, `Bash` or writes outside the worktree
//! (Claude Code asks for reads outside the working folder), and the key's path reaches the
//! broker only on its own command line. The broker only writes question files; the run loop
//! turns them into events.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::fsutil::{read_json, write_json_atomic};
use crate::layout::{answer_file, question_file, question_ids, rejected_answer_file, reused_answer_file};
use crate::spec::approvals::{ApprovalsConfig, Decision};

/// The MCP server's name in `--mcp-config` and its tool: `mcp__gadugi__approve`.
pub const SERVER_NAME: &str = "gadugi";
/// The tool Claude Code calls for each permission request.
pub const TOOL_NAME: &str = "approve";
/// How often a waiting broker looks for an answer.
const POLL: Duration = Duration::from_millis(200);

/// A permission request or a question to the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// May the agent use this tool with this input?
    Permission,
    /// The agent asks the person (`AskUserQuestion`): choose among options or answer freely.
    Question,
}

/// One request of an agent, as stored in `<id>.question.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: String,
    pub attempt: u32,
    pub kind: QuestionKind,
    /// The tool the agent wants (`Bash`, `Write`, `AskUserQuestion`, ...).
    pub tool: String,
    /// The tool's input as the agent gave it.
    pub input: Value,
    /// Claude Code's id of the tool use, to match it to the agent's output.
    pub tool_use_id: Option<String>,
    /// One line: `Bash(rm -rf dist)`, or the question asked.
    pub summary: String,
    pub asked_at: DateTime<Utc>,
    /// When `default` answers if nobody did.
    pub deadline: DateTime<Utc>,
    pub default: Decision,
}

impl Question {
    /// What an answer's HMAC binds it to: this question's id, tool and input.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_string(&(&self.id, &self.tool, &self.input)).unwrap_or_default();
        hex(&Sha256::digest(canonical.as_bytes()))
    }

    /// What a repeated call is recognised by: the tool and its input, not the id (see
    /// [`stored_answer`]).
    pub fn call_fingerprint(&self) -> String {
        call_fingerprint(&self.tool, &self.input)
    }
}

/// SHA-256 (hex) of a tool call: its tool name and input.
pub fn call_fingerprint(tool: &str, input: &Value) -> String {
    let canonical = serde_json::to_string(&(tool, input)).unwrap_or_default();
    hex(&Sha256::digest(canonical.as_bytes()))
}

/// The person's answer to the same call (tool and input) asked by an attempt before
/// `attempt` and not yet used: an agent that died while its question waited is resumed,
/// repeats the call, and gets the answer given meanwhile instead of a second question. Only
/// a person's answer (`gadugi answer`, the editor) counts, each for one repeated call; a
/// question still unanswered is asked again.
pub fn stored_answer(dir: &Path, tool: &str, input: &Value, attempt: u32, key: &[u8]) -> Option<(Question, Answer)> {
    let wanted = call_fingerprint(tool, input);
    load_questions(dir, Some(key))
        .into_iter()
        .rev()
        .filter(|(q, _)| q.attempt < attempt && q.call_fingerprint() == wanted)
        .filter(|(q, _)| !reused_answer_file(dir, &q.id).exists())
        .find_map(|(q, a)| {
            let a = a.filter(|a| matches!(a.by, AnsweredBy::Cli | AnsweredBy::Editor))?;
            Some((q, a))
        })
}

/// The questions `attempt` left behind when it ended at `ended_at`: unanswered, or
/// answered after its agent was gone. A retry continues such an attempt's session.
pub fn left_questions(
    dir: &Path,
    attempt: u32,
    ended_at: DateTime<Utc>,
    key: &[u8],
) -> Vec<(Question, Option<Answer>)> {
    load_questions(dir, Some(key))
        .into_iter()
        .filter(|(q, a)| q.attempt == attempt && a.as_ref().is_none_or(|a| a.answered_at >= ended_at))
        .collect()
}

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    Cli,
    Editor,
    Policy,
    Timeout,
}

impl AnsweredBy {
    /// Lower-case name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Cli => "cli",
            AnsweredBy::Editor => "editor",
            AnsweredBy::Policy => "policy",
            AnsweredBy::Timeout => "timeout",
        }
    }
}

/// The answer to a question, as stored in `<id>.answer.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    pub decision: Decision,
    /// For a denial: what the model is told.
    pub message: Option<String>,
    /// For an allow: the input the tool runs with when the person edited it (or the
    /// answers to an `AskUserQuestion`).
    pub updated_input: Option<Value>,
    pub by: AnsweredBy,
    pub answered_at: DateTime<Utc>,
    /// HMAC-SHA256 (hex) of the question's fingerprint and the fields above but the time.
    #[serde(default)]
    pub mac: String,
}

impl Answer {
    /// A new answer signed with `key` for `question`.
    pub fn signed(
        question: &Question,
        decision: Decision,
        message: Option<String>,
        updated_input: Option<Value>,
        by: AnsweredBy,
        key: &[u8],
    ) -> Answer {
        let mut a = Answer {
            id: question.id.clone(),
            decision,
            message,
            updated_input,
            by,
            answered_at: Utc::now(),
            mac: String::new(),
        };
        a.mac = a.expected_mac(question, key);
        a
    }

    fn expected_mac(&self, question: &Question, key: &[u8]) -> String {
        hex(&self.mac_of(question, key).finalize().into_bytes())
    }

    /// The HMAC state over everything the answer says about `question` (not its time).
    fn mac_of(&self, question: &Question, key: &[u8]) -> Hmac<Sha256> {
        let body = serde_json::to_string(&(
            question.fingerprint(),
            &self.id,
            self.decision,
            &self.message,
            &self.updated_input,
            self.by,
        ))
        .unwrap_or_default();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(body.as_bytes());
        mac
    }

    /// Whether this answer was signed with `key` for exactly `question` (compared in
    /// constant time).
    pub fn verify(&self, question: &Question, key: &[u8]) -> bool {
        let Ok(given) = unhex(&self.mac) else { return false };
        self.id == question.id && self.mac_of(question, key).verify_slice(&given).is_ok()
    }

    /// Whether the person changed the tool's input (an edited command, chosen answers).
    pub fn edited(&self, question: &Question) -> bool {
        self.updated_input.as_ref().is_some_and(|u| *u != question.input)
    }

    /// The reply Claude Code expects from the permission prompt tool.
    pub fn reply(&self, question: &Question) -> Value {
        match self.decision {
            Decision::Allow => json!({
                "behavior": "allow",
                "updatedInput": self.updated_input.clone().unwrap_or_else(|| question.input.clone()),
            }),
            Decision::Deny => json!({
                "behavior": "deny",
                "message": self.message.clone().unwrap_or_else(|| "The person denied this tool use.".into()),
            }),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, ()> {
    if s.len() % 2 != 0 {
        return Err(());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or(())?, 16).map_err(|_| ()))
        .collect()
}

/// A question's answer when it is there and authentic; a forged or unreadable one is moved
/// aside (`<id>.rejected-N.json`) so a real answer can still be written. The second value
/// says whether one was rejected now.
pub fn read_answer(dir: &Path, question: &Question, key: &[u8]) -> (Option<Answer>, bool) {
    let path = answer_file(dir, &question.id);
    if !path.exists() {
        return (None, false);
    }
    match read_json::<Answer>(&path) {
        Ok(Some(a)) if a.verify(question, key) => (Some(a), false),
        Ok(None) => (None, false),
        _ => {
            let n = (1..)
                .find(|n| !rejected_answer_file(dir, &question.id, *n).exists())
                .unwrap_or(1);
            let _ = std::fs::rename(&path, rejected_answer_file(dir, &question.id, n));
            (None, true)
        }
    }
}

/// The questions of a folder, with their authentic answers.
pub fn load_questions(dir: &Path, key: Option<&[u8]>) -> Vec<(Question, Option<Answer>)> {
    question_ids(dir)
        .into_iter()
        .filter_map(|(id, answered)| {
            let q: Question = read_json(&question_file(dir, &id)).ok().flatten()?;
            let a = match (answered, key) {
                (true, Some(key)) => read_json::<Answer>(&answer_file(dir, &id))
                    .ok()
                    .flatten()
                    .filter(|a| a.verify(&q, key)),
                _ => None,
            };
            Some((q, a))
        })
        .collect()
}

/// One line: `Bash(rm -rf dist)`, or the first question of an `AskUserQuestion`.
pub fn summarize(tool: &str, input: &Value) -> String {
    if tool == "AskUserQuestion" {
        let q = input["questions"][0]["question"].as_str().unwrap_or("a question");
        return format!("question: {q}");
    }
    let target = crate::agent::claude::tool_target(input);
    if target.is_empty() {
        tool.to_string()
    } else {
        format!("{tool}({target})")
    }
}

/// What the broker needs, from its command line.
#[derive(Debug, Clone)]
pub struct BrokerArgs {
    /// The task's questions folder.
    pub questions: PathBuf,
    /// The policy (`ApprovalsConfig` as JSON).
    pub policy: PathBuf,
    /// The answers' key.
    pub key: PathBuf,
    /// The attempt this broker serves.
    pub attempt: u32,
    /// The agent's working folder (the worktree), for path rules.
    pub cwd: PathBuf,
}

impl BrokerArgs {
    /// The arguments after `__approve` (main.rs reads them).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--questions".into(),
            self.questions.to_string_lossy().into_owned(),
            "--policy".into(),
            self.policy.to_string_lossy().into_owned(),
            "--key".into(),
            self.key.to_string_lossy().into_owned(),
            "--attempt".into(),
            self.attempt.to_string(),
            "--cwd".into(),
            self.cwd.to_string_lossy().into_owned(),
        ]
    }

    /// The `--mcp-config` JSON that makes Claude Code start this broker with `program`.
    pub fn mcp_config(&self, program: &str) -> String {
        let mut args = vec!["__approve".to_string()];
        args.extend(self.to_args());
        json!({"mcpServers": {SERVER_NAME: {"type": "stdio", "command": program, "args": args}}}).to_string()
    }
}

/// Options that route a Claude Code attempt's permission requests to the broker
/// (`gadugi __approve`, `agent/approve.rs`) started by `program`: only user settings and
/// only Gadugi's MCP configuration count, so a repository's `.claude/settings*.json` allow
/// rules or hooks and its `.mcp.json` cannot answer in the person's place.
pub fn approval_options(program: &str, broker: &BrokerArgs) -> Vec<String> {
    vec![
        format!("--mcp-config={}", broker.mcp_config(program)),
        format!("--permission-prompt-tool=mcp__{}__{}", SERVER_NAME, TOOL_NAME),
        "--strict-mcp-config".into(),
        "--setting-sources=user".into(),
    ]
}

/// The broker's shared state while it serves one attempt.
struct Broker {
    args: BrokerArgs,
    policy: ApprovalsConfig,
    key: Option<Vec<u8>>,
    next: Mutex<u32>,
    out: Mutex<std::io::Stdout>,
}

/// `gadugi __approve ...`: serves MCP on stdin/stdout until stdin closes.
pub fn serve(args: BrokerArgs) -> anyhow::Result<i32> {
    let policy: ApprovalsConfig = read_json(&args.policy)?.unwrap_or_default();
    // Without its key the broker cannot tell a real answer from a forged one: it then denies
    // what the rules do not answer (and says why) rather than trusting any file.
    let key = std::fs::read(&args.key).ok().filter(|k| k.len() >= 16);
    if key.is_none() {
        eprintln!(
            "gadugi __approve: cannot read the key {}; questions are denied",
            args.key.display()
        );
    }
    std::fs::create_dir_all(&args.questions)?;
    let prefix = format!("a{}-", args.attempt);
    let taken = question_ids(&args.questions)
        .iter()
        .filter_map(|(id, _)| id.strip_prefix(&prefix)?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    let broker = Arc::new(Broker {
        args,
        policy,
        key,
        next: Mutex::new(taken),
        out: Mutex::new(std::io::stdout()),
    });
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                broker.send(&error_reply(Value::Null, -32700, &format!("parse error: {e}")));
                continue;
            }
        };
        if message["method"] == "tools/call" && message.get("id").is_some() {
            // A call waits for a person: it gets its own thread, so other requests (and
            // parallel tool uses) are answered meanwhile.
            let b = broker.clone();
            std::thread::spawn(move || {
                let reply = b.call(&message);
                b.send(&reply);
            });
        } else if let Some(reply) = handle(&message) {
            broker.send(&reply);
        }
    }
    Ok(0)
}

/// The reply to every message but `tools/call`; `None` for notifications.
pub fn handle(message: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let Some(method) = message["method"].as_str() else {
        return Some(error_reply(id, -32600, "invalid request: no method"));
    };
    let result = match method {
        "initialize" => json!({
            "protocolVersion": message["params"]["protocolVersion"].as_str().unwrap_or("2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION")},
        }),
        "ping" => json!({}),
        "tools/list" => json!({"tools": [{
            "name": TOOL_NAME,
            "description": "Asks the person running Gadugi whether a tool use may run.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "tool_name": {"type": "string"},
                    "input": {"type": "object"},
                    "tool_use_id": {"type": "string"},
                },
                "required": ["tool_name", "input"],
            },
        }]}),
        other => return Some(error_reply(id, -32601, &format!("method not found: {other}"))),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn error_reply(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A `tools/call` result carrying the permission reply as text.
fn call_result(id: Value, reply: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": reply.to_string()}]}})
}

impl Broker {
    fn send(&self, message: &Value) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{message}");
        let _ = out.flush();
    }

    fn call(&self, message: &Value) -> Value {
        let id = message["id"].clone();
        let params = &message["params"];
        if params["name"] != TOOL_NAME {
            return error_reply(id, -32602, &format!("unknown tool {}", params["name"]));
        }
        let args = &params["arguments"];
        let tool = args["tool_name"].as_str().unwrap_or("").to_string();
        let input = args["input"].clone();
        match self.ask(tool, input, args["tool_use_id"].as_str().map(str::to_string)) {
            Ok(reply) => call_result(id, &reply),
            Err(e) => call_result(
                id,
                &json!({"behavior": "deny", "message": format!("Gadugi could not ask the person: {e:#}")}),
            ),
        }
    }

    /// Stores the question, answers it by rule, by the person, or at the deadline.
    fn ask(&self, tool: String, input: Value, tool_use_id: Option<String>) -> anyhow::Result<Value> {
        let dir = &self.args.questions;
        let id = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            format!("a{}-{:03}", self.args.attempt, *next)
        };
        let now = Utc::now();
        let timeout = chrono::Duration::from_std(self.policy.timeout).unwrap_or(chrono::Duration::days(365));
        let question = Question {
            id: id.clone(),
            attempt: self.args.attempt,
            kind: if tool == "AskUserQuestion" {
                QuestionKind::Question
            } else {
                QuestionKind::Permission
            },
            summary: summarize(&tool, &input),
            tool,
            input,
            tool_use_id,
            asked_at: now,
            deadline: now + timeout,
            default: self.policy.default,
        };
        let Some(key) = &self.key else {
            anyhow::bail!("its key is missing, so no answer could be trusted");
        };
        let by_rule = self
            .policy
            .decide(&question.tool, &question.input, &self.args.cwd)
            .map(|(d, rule)| (d, rule.text.clone()));
        if by_rule.is_none() {
            if let Some((earlier, answer)) = stored_answer(dir, &question.tool, &question.input, question.attempt, key)
            {
                // Marked used first: a second identical call of this attempt is asked.
                write_json_atomic(
                    &reused_answer_file(dir, &earlier.id),
                    &json!({"attempt": question.attempt, "tool_use_id": question.tool_use_id, "at": Utc::now()}),
                )?;
                return Ok(answer.reply(&earlier));
            }
        }
        write_json_atomic(&question_file(dir, &id), &question)?;
        if let Some((decision, rule)) = by_rule {
            let message = (decision == Decision::Deny).then(|| format!("Denied by the rule {rule} of [approvals]."));
            let answer = Answer::signed(&question, decision, message, None, AnsweredBy::Policy, key);
            write_json_atomic(&answer_file(dir, &id), &answer)?;
            return Ok(answer.reply(&question));
        }
        loop {
            if let (Some(answer), _) = read_answer(dir, &question, key) {
                return Ok(answer.reply(&question));
            }
            if Utc::now() >= question.deadline {
                let message = (question.default == Decision::Deny).then(|| {
                    format!(
                        "Nobody answered within {}; Gadugi's default for unanswered requests is to deny.",
                        humantime(self.policy.timeout)
                    )
                });
                let answer = Answer::signed(&question, question.default, message, None, AnsweredBy::Timeout, key);
                write_json_atomic(&answer_file(dir, &id), &answer)?;
                return Ok(answer.reply(&question));
            }
            std::thread::sleep(POLL);
        }
    }
}

/// `8m`, `1h30m`, `45s`.
pub fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(tool: &str, input: Value) -> Question {
        Question {
            id: "a1-001".into(),
            attempt: 1,
            kind: QuestionKind::Permission,
            summary: summarize(tool, &input),
            tool: tool.into(),
            input,
            tool_use_id: None,
            asked_at: Utc::now(),
            deadline: Utc::now(),
            default: Decision::Deny,
        }
    }

    #[test]
    fn answers_verify_only_with_the_key_and_for_their_question() {
        let q = question("Bash", json!({"command": "rm -rf dist"}));
        assert_eq!(q.summary, "Bash(rm -rf dist)");
        let a = Answer::signed(&q, Decision::Allow, None, None, AnsweredBy::Cli, b"0123456789abcdef");
        assert!(a.verify(&q, b"0123456789abcdef"));
        assert!(!a.verify(&q, b"another key 12345"));
        let other = question("Bash", json!({"command": "rm -rf /"}));
        assert!(!a.verify(&other, b"0123456789abcdef"));
        let mut tampered = a.clone();
        tampered.updated_input = Some(json!({"command": "rm -rf /"}));
        assert!(!tampered.verify(&q, b"0123456789abcdef"));
        let mut unsigned = a.clone();
        unsigned.mac = String::new();
        assert!(!unsigned.verify(&q, b"0123456789abcdef"));
        assert_eq!(a.reply(&q)["behavior"], "allow");
        assert_eq!(a.reply(&q)["updatedInput"]["command"], "rm -rf dist");
    }

    #[test]
    fn the_mcp_framing_answers_initialize_list_and_errors() {
        let init = handle(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}))
        .unwrap();
        assert_eq!(init["id"], 1);
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(init["result"]["serverInfo"]["name"], "gadugi");
        assert!(handle(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).is_none());
        let list = handle(&json!({"jsonrpc": "2.0", "id": "x", "method": "tools/list"})).unwrap();
        assert_eq!(list["id"], "x");
        assert_eq!(list["result"]["tools"][0]["name"], "approve");
        let unknown = handle(&json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"})).unwrap();
        assert_eq!(unknown["error"]["code"], -32601);
        let no_method = handle(&json!({"jsonrpc": "2.0", "id": 3})).unwrap();
        assert_eq!(no_method["error"]["code"], -32600);
        let reply = call_result(json!(4), &json!({"behavior": "deny", "message": "no"}));
        let text: Value = serde_json::from_str(reply["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text["behavior"], "deny");
    }

    #[test]
    fn a_forged_answer_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let q = question("Bash", json!({"command": "make"}));
        let key = b"0123456789abcdef";
        let mut forged = Answer::signed(&q, Decision::Allow, None, None, AnsweredBy::Cli, b"guessed key 12345");
        write_json_atomic(&answer_file(dir.path(), &q.id), &forged).unwrap();
        let (a, rejected) = read_answer(dir.path(), &q, key);
        assert!(a.is_none() && rejected);
        assert!(rejected_answer_file(dir.path(), &q.id, 1).exists());
        assert!(!answer_file(dir.path(), &q.id).exists());
        forged.mac = Answer::signed(&q, Decision::Allow, None, None, AnsweredBy::Cli, key).mac;
        write_json_atomic(&answer_file(dir.path(), &q.id), &forged).unwrap();
        assert_eq!(
            read_answer(dir.path(), &q, key).0.map(|a| a.decision),
            Some(Decision::Allow)
        );
    }
}
