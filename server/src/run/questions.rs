//! The question store of a run, seen from the orchestrator's side: the key that signs
//! answers, the watch a running attempt keeps over its task's questions folder (new
//! questions and answers become events, sent to the run loop like every other event of a
//! task), and answering a question (`gadugi answer`, the editor).
//!
//! The approval broker (`agent/approve.rs`) writes the questions; nothing here writes one.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::agent::approve::{load_questions, Answer, AnsweredBy, Question, QuestionKind};
use crate::core::events::Event;
use crate::error::InputError;
use crate::fsutil::write_json_atomic;
use crate::layout::{answer_file, approval_key_file};
use crate::spec::approvals::Decision;

/// The answers' key: read from the user's state folder, made (32 random bytes, mode 0600,
/// in a folder of mode 0700) the first time.
pub fn ensure_key() -> anyhow::Result<(PathBuf, Vec<u8>)> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = approval_key_file().context("no HOME or XDG_STATE_HOME: nowhere to keep the approvals key")?;
    if let Ok(key) = read_key(&path) {
        return Ok((path, key));
    }
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut key = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
        .context("reading /dev/urandom")?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(&key)?;
            f.sync_all()?;
            Ok((path, key))
        }
        // Another Gadugi made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let key = read_key(&path)?;
            Ok((path, key))
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn read_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let key = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(key.len() >= 16, "{} is too short to be a key", path.display());
    Ok(key)
}

/// What a running attempt has announced of its task's questions.
pub struct QuestionWatch {
    dir: PathBuf,
    task: String,
    attempt: u32,
    key: Vec<u8>,
    announced: BTreeSet<String>,
    answered: BTreeSet<String>,
    rejected: BTreeSet<String>,
}

impl QuestionWatch {
    /// Watches `dir` for the questions of `attempt` of `task`.
    pub fn new(dir: PathBuf, task: &str, attempt: u32, key: Vec<u8>) -> QuestionWatch {
        QuestionWatch {
            dir,
            task: task.to_string(),
            attempt,
            key,
            announced: BTreeSet::new(),
            answered: BTreeSet::new(),
            rejected: BTreeSet::new(),
        }
    }

    /// Whether a question announced by this watch still waits for its answer.
    pub fn waiting(&self) -> bool {
        self.announced.len() > self.answered.len()
    }

    /// Events for what changed since the last look: new questions, then new answers.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut events = vec![];
        // The broker moves an answer whose signature does not verify aside: say so.
        for name in rejected_answers(&self.dir) {
            if self.rejected.insert(name.clone()) {
                events.push(Event::TaskWarning {
                    task: self.task.clone(),
                    warning: format!(
                        "an answer without a valid signature was rejected ({}); only gadugi answer and the editor can answer",
                        self.dir.join(&name).display()
                    ),
                });
            }
        }
        for (q, a) in load_questions(&self.dir, Some(&self.key)) {
            if q.attempt != self.attempt || self.answered.contains(&q.id) {
                continue;
            }
            if self.announced.insert(q.id.clone()) {
                events.push(requested(&self.task, &q));
            }
            if let Some(a) = a {
                self.answered.insert(q.id.clone());
                events.push(Event::ApprovalAnswered {
                    task: self.task.clone(),
                    id: q.id.clone(),
                    decision: a.decision,
                    by: a.by,
                    edited: a.edited(&q),
                });
            }
        }
        events
    }

    /// The last look once the attempt ended: what is still unanswered is withdrawn.
    pub fn finish(mut self) -> Vec<Event> {
        let mut events = self.poll();
        for id in self.announced.difference(&self.answered) {
            events.push(Event::ApprovalWithdrawn {
                task: self.task.clone(),
                id: id.clone(),
            });
        }
        events
    }
}

fn rejected_answers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rejected-"))
        .collect()
}

fn requested(task: &str, q: &Question) -> Event {
    Event::ApprovalRequested {
        task: task.to_string(),
        attempt: q.attempt,
        id: q.id.clone(),
        kind: q.kind,
        tool: q.tool.clone(),
        summary: q.summary.clone(),
        input: event_input(&q.input, &q.id),
        deadline: q.deadline,
        default: q.default,
    }
}

/// Strings of a tool's input longer than this are cut in its `approval_requested` event.
const EVENT_STRING_LIMIT: usize = 2048;
/// What is kept of such a string.
const EVENT_STRING_KEPT: usize = 1024;

/// A tool's input as its event carries it: a long string (a large `Write`'s content) is cut
/// to its first KiB with a note of its size, so `events.jsonl`, `state.json` and every
/// editor's notification stay small; the full input stays in `<id>.question.json`, which
/// is what an answer is signed for. The shape (`command`, `questions`, ...) is unchanged, and
/// a Bash `command` is never cut: the person judges it, and edits it, whole.
pub fn event_input(input: &serde_json::Value, id: &str) -> serde_json::Value {
    match input {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if k == "command" { v.clone() } else { cut_strings(v, id) };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => cut_strings(other, id),
    }
}

fn cut_strings(input: &serde_json::Value, id: &str) -> serde_json::Value {
    use serde_json::Value;
    match input {
        Value::String(s) if s.len() > EVENT_STRING_LIMIT => {
            let cut = (0..=EVENT_STRING_KEPT)
                .rev()
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(0);
            Value::String(format!(
                "{}… [{} bytes in all; the full input is in {id}.question.json]",
                &s[..cut],
                s.len()
            ))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| cut_strings(v, id)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), cut_strings(v, id))).collect()),
        other => other.clone(),
    }
}

/// What the person answers.
#[derive(Debug, Clone, Default)]
pub struct AnswerRequest {
    /// The question; may be left out when exactly one is pending.
    pub id: Option<String>,
    pub decision: Decision,
    /// Told to the model with a denial (or as the free answer of a question).
    pub message: Option<String>,
    /// The command to run instead of the one asked for (`Bash`).
    pub command: Option<String>,
    /// The option chosen for a question (`AskUserQuestion`).
    pub choice: Option<String>,
}

/// Writes a signed answer to a pending question of `task` in `dir`. Bad input (nothing
/// pending, an unknown id, a choice for a permission request) is an `InputError`.
/// Questions of attempts before `attempt` are not pending (their agent is gone).
pub fn answer(dir: &Path, task: &str, attempt: u32, req: &AnswerRequest, by: AnsweredBy) -> anyhow::Result<Answer> {
    let (_, key) = ensure_key()?;
    let pending: Vec<Question> = load_questions(dir, Some(&key))
        .into_iter()
        .filter(|(q, a)| q.attempt >= attempt && a.is_none() && !answer_file(dir, &q.id).exists())
        .map(|(q, _)| q)
        .collect();
    let question = match &req.id {
        Some(id) => pending.iter().find(|q| q.id == *id).cloned().ok_or_else(|| {
            InputError::new(
                format!("task `{task}` has no pending question `{id}`"),
                pending_list(task, &pending),
            )
        })?,
        None => match pending.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(InputError::new(
                    format!("task `{task}` has no question waiting for an answer"),
                    "see `gadugi status` for the tasks that wait for approval",
                )
                .into())
            }
            _ => {
                return Err(InputError::new(
                    format!("task `{task}` has {} questions waiting", pending.len()),
                    pending_list(task, &pending),
                )
                .into())
            }
        },
    };
    let mut updated = None;
    if let Some(command) = &req.command {
        if question.tool != "Bash" || req.decision != Decision::Allow {
            return Err(InputError::new(
                format!(
                    "--command edits a Bash command to allow, but `{}` is {}",
                    question.id, question.summary
                ),
                "leave out --command, or answer `allow` to a Bash request",
            )
            .into());
        }
        let mut input = question.input.clone();
        input["command"] = serde_json::Value::String(command.clone());
        updated = Some(input);
    }
    if question.kind == QuestionKind::Question && req.decision == Decision::Allow {
        let answer_text = req.choice.clone().or_else(|| req.message.clone()).ok_or_else(|| {
            InputError::new(
                format!("`{}` is a question: {}", question.id, question.summary),
                format!(
                    "answer it with --choice LABEL (one of: {}) or --message TEXT",
                    options(&question)
                ),
            )
        })?;
        let mut input = question.input.clone();
        let mut answers = serde_json::Map::new();
        for q in question.input["questions"].as_array().into_iter().flatten() {
            if let Some(text) = q["question"].as_str() {
                answers.insert(text.to_string(), serde_json::Value::String(answer_text.clone()));
            }
        }
        input["answers"] = serde_json::Value::Object(answers);
        updated = Some(input);
    } else if req.choice.is_some() {
        return Err(InputError::new(
            format!(
                "--choice answers a question, but `{}` asks for permission: {}",
                question.id, question.summary
            ),
            "answer with allow or deny (and --message or --command)",
        )
        .into());
    }
    let message = match req.decision {
        Decision::Deny => Some(
            req.message
                .clone()
                .unwrap_or_else(|| "The person denied this tool use.".to_string()),
        ),
        Decision::Allow => None,
    };
    let answer = Answer::signed(&question, req.decision, message, updated, by, &key);
    write_json_atomic(&answer_file(dir, &question.id), &answer)?;
    Ok(answer)
}

fn options(q: &Question) -> String {
    let labels: Vec<&str> = q.input["questions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|q| q["options"].as_array().into_iter().flatten())
        .filter_map(|o| o["label"].as_str())
        .collect();
    labels.join(", ")
}

fn pending_list(task: &str, pending: &[Question]) -> String {
    if pending.is_empty() {
        return "see `gadugi status` for the tasks that wait for approval".into();
    }
    let ids: Vec<String> = pending.iter().map(|q| format!("{} ({})", q.id, q.summary)).collect();
    format!(
        "pass --id with one of: {} (gadugi answer {task} allow --id ID)",
        ids.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_strings_of_an_input_are_cut_in_its_event_and_the_rest_kept() {
        let content = "é".repeat(3000);
        let input = json!({"file_path": "/tmp/x", "content": content, "n": 3, "list": ["short"]});
        let cut = event_input(&input, "a1-001");
        assert_eq!(cut["file_path"], "/tmp/x");
        assert_eq!(cut["n"], 3);
        assert_eq!(cut["list"], json!(["short"]));
        let text = cut["content"].as_str().unwrap();
        assert!(text.starts_with(&"é".repeat(512)), "{text}");
        assert!(
            text.ends_with("… [6000 bytes in all; the full input is in a1-001.question.json]"),
            "{text}"
        );
        assert!(text.len() < 1200);
        let small = json!({"command": "make"});
        assert_eq!(event_input(&small, "a1-001"), small);
        let long_command = json!({"command": "x".repeat(5000)});
        assert_eq!(event_input(&long_command, "a1-001"), long_command);
    }
}
