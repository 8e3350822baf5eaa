//! `gadugi run` on a terminal asks inline: when stdin and stdout are a terminal and
//! `[approvals]` is on, a question an agent asks is put to the person right there (Allow /
//! Deny / Edit, or a choice for a question), the live bars set aside while they answer. The
//! answer goes through the same signed path as `gadugi answer` (`ops::approvals`), so the
//! editor, `gadugi answer` in another terminal or the deadline can still answer first: the
//! prompt then gives way.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, Write};
use std::sync::mpsc::{channel, Receiver, Sender};

use chrono::Utc;

use crate::agent::approve::{AnsweredBy, QuestionKind};
use crate::core::events::{Event, EventRecord};
use crate::core::state::{PendingApproval, RunState};
use crate::layout::Layout;
use crate::ops;
use crate::run::emitter::EventSink;
use crate::run::questions::AnswerRequest;
use crate::spec::approvals::Decision;
use crate::views::progress::TerminalPause;

/// A question waiting for the person, as the run state has it after its
/// `approval_requested` event.
struct Asked {
    task: String,
    q: PendingApproval,
}

/// What the prompting thread hears about.
enum Input {
    Asked(Box<Asked>),
    /// Answered (elsewhere, or by this prompt) or withdrawn: no longer to be asked.
    Settled(String),
    /// A line the person typed; `None` once stdin is closed.
    Line(Option<String>),
}

/// The sink that hands questions to the prompting thread.
pub struct InlinePrompts {
    tx: Sender<Input>,
}

impl InlinePrompts {
    /// Starts the threads that read the terminal and prompt for the questions of run
    /// `run_id`, lending the terminal from the live view through `pause`.
    pub fn start(layout: Layout, run_id: String, pause: TerminalPause) -> InlinePrompts {
        let (tx, rx) = channel();
        let lines = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                if lines.send(Input::Line(line.ok())).is_err() {
                    return;
                }
            }
            let _ = lines.send(Input::Line(None));
        });
        std::thread::spawn(move || {
            Prompter {
                rx,
                layout,
                run_id,
                queue: VecDeque::new(),
                settled: HashSet::new(),
                closed: false,
            }
            .serve(&pause)
        });
        InlinePrompts { tx }
    }
}

impl EventSink for InlinePrompts {
    fn on_event(&mut self, rec: &EventRecord, state: &RunState) {
        let input = match &rec.event {
            Event::ApprovalRequested { task, id, .. } => {
                let Some(q) = state
                    .task(task)
                    .and_then(|t| t.pending_approvals.iter().find(|p| p.id == *id))
                else {
                    return;
                };
                Input::Asked(Box::new(Asked {
                    task: task.clone(),
                    q: q.clone(),
                }))
            }
            Event::ApprovalAnswered { id, .. } | Event::ApprovalWithdrawn { id, .. } => Input::Settled(id.clone()),
            _ => return,
        };
        let _ = self.tx.send(input);
    }
}

struct Prompter {
    rx: Receiver<Input>,
    layout: Layout,
    run_id: String,
    queue: VecDeque<Asked>,
    settled: HashSet<String>,
    /// stdin ended: nobody can answer here any more.
    closed: bool,
}

/// What one typed line did to the question on screen.
enum Step {
    Done(AnswerRequest),
    /// Ask this next (a follow-up such as the denial's message).
    Ask(String, Follow),
}

/// A follow-up question after the first letter.
#[derive(Clone, Copy)]
enum Follow {
    First,
    DenyMessage,
    Command,
}

impl Prompter {
    fn serve(mut self, pause: &TerminalPause) {
        loop {
            let Some(asked) = self.next_question() else { return };
            pause.hold(|| self.ask(&asked));
        }
    }

    /// The next question not settled yet, waiting for one.
    fn next_question(&mut self) -> Option<Asked> {
        loop {
            while let Some(a) = self.queue.pop_front() {
                if !self.settled.contains(&a.q.id) {
                    return Some(a);
                }
            }
            match self.rx.recv().ok()? {
                Input::Asked(a) => self.queue.push_back(*a),
                Input::Settled(id) => {
                    self.settled.insert(id);
                }
                Input::Line(None) => self.closed = true,
                // Typed while nothing was asked.
                Input::Line(Some(_)) => {}
            }
            if self.closed {
                return None;
            }
        }
    }

    /// Puts `asked` to the person until they answer or someone else does.
    fn ask(&mut self, asked: &Asked) {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "\n{}", heading(asked));
        let mut follow = Follow::First;
        let mut prompt = first_prompt(asked);
        loop {
            let _ = write!(err, "{prompt}");
            let _ = err.flush();
            let line = loop {
                match self.rx.recv() {
                    Ok(Input::Line(Some(l))) => break l,
                    Ok(Input::Line(None)) | Err(_) => {
                        self.closed = true;
                        let _ = writeln!(err, "\n(no more input: answer with gadugi answer {})", asked.task);
                        return;
                    }
                    Ok(Input::Asked(a)) => self.queue.push_back(*a),
                    Ok(Input::Settled(id)) if id == asked.q.id => {
                        let _ = writeln!(err, "\n{}: {} was answered elsewhere", asked.task, asked.q.id);
                        return;
                    }
                    Ok(Input::Settled(id)) => {
                        self.settled.insert(id);
                    }
                }
            };
            match step(asked, follow, line.trim()) {
                Ok(Step::Ask(next, f)) => {
                    prompt = next;
                    follow = f;
                }
                Ok(Step::Done(req)) => {
                    let answered = ops::approvals::answer_in_run(
                        &self.layout,
                        &self.run_id,
                        &asked.task,
                        asked.q.attempt,
                        &req,
                        AnsweredBy::Cli,
                    );
                    match answered {
                        Ok(a) => {
                            let _ = writeln!(err, "{}: {} {}", asked.task, a.id, a.decision.as_str());
                        }
                        Err(e) => {
                            let _ = writeln!(err, "{}: not answered: {e:#}", asked.task);
                        }
                    }
                    self.settled.insert(asked.q.id.clone());
                    return;
                }
                Err(again) => {
                    let _ = writeln!(err, "{again}");
                }
            }
        }
    }
}

/// `a asks (a1-001): Bash(rm -rf dist) — denied in 8m unless answered`, and a question's
/// options.
fn heading(asked: &Asked) -> String {
    let mut s = format!("{} asks ({}): {}", asked.task, asked.q.id, asked.q.describe(Utc::now()));
    for (i, label, description) in options(asked) {
        s.push_str(&format!("\n  {i}. {label}"));
        if !description.is_empty() {
            s.push_str(&format!(" — {description}"));
        }
    }
    s
}

fn first_prompt(asked: &Asked) -> String {
    match asked.q.kind {
        QuestionKind::Question => "answer with a number, your own words, or `deny`: ".into(),
        QuestionKind::Permission if asked.q.tool == "Bash" => "[y]es allow / [n]o deny / [e]dit the command: ".into(),
        QuestionKind::Permission => "[y]es allow / [n]o deny: ".into(),
    }
}

/// The numbered options of a question: (number, label, description).
fn options(asked: &Asked) -> Vec<(usize, String, String)> {
    asked.q.input["questions"][0]["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some((
                o["label"].as_str()?.to_string(),
                o["description"].as_str().unwrap_or("").to_string(),
            ))
        })
        .enumerate()
        .map(|(i, (l, d))| (i + 1, l, d))
        .collect()
}

/// What `line` means at this point of the prompt; `Err` says what was expected.
fn step(asked: &Asked, follow: Follow, line: &str) -> Result<Step, String> {
    let req = |decision, message: Option<String>, command: Option<String>, choice: Option<String>| {
        Step::Done(AnswerRequest {
            id: Some(asked.q.id.clone()),
            decision,
            message,
            command,
            choice,
        })
    };
    let text = (!line.is_empty()).then(|| line.to_string());
    match (follow, asked.q.kind) {
        (Follow::DenyMessage, _) => Ok(req(Decision::Deny, text, None, None)),
        (Follow::Command, _) => match text {
            Some(c) => Ok(req(Decision::Allow, None, Some(c), None)),
            None => Err("type the command to run instead (or Ctrl-C to cancel the run)".into()),
        },
        (Follow::First, QuestionKind::Question) => {
            if line.eq_ignore_ascii_case("deny") {
                return Ok(Step::Ask(
                    "message for the agent (Enter for none): ".into(),
                    Follow::DenyMessage,
                ));
            }
            if let Ok(n) = line.parse::<usize>() {
                return match options(asked).into_iter().find(|(i, _, _)| *i == n) {
                    Some((_, label, _)) => Ok(req(Decision::Allow, None, None, Some(label))),
                    None => Err(format!("there is no option {n}")),
                };
            }
            match text {
                Some(t) => Ok(req(Decision::Allow, Some(t), None, None)),
                None => Err("type a number, your own answer, or `deny`".into()),
            }
        }
        (Follow::First, QuestionKind::Permission) => match line.to_ascii_lowercase().as_str() {
            "y" | "yes" | "allow" => Ok(req(Decision::Allow, None, None, None)),
            "n" | "no" | "deny" => Ok(Step::Ask(
                "message for the agent (Enter for none): ".into(),
                Follow::DenyMessage,
            )),
            "e" | "edit" if asked.q.tool == "Bash" => Ok(Step::Ask(
                format!(
                    "command to run instead of `{}`: ",
                    asked.q.input["command"].as_str().unwrap_or_default()
                ),
                Follow::Command,
            )),
            _ => Err(format!(
                "type y or n{}",
                if asked.q.tool == "Bash" { " (or e to edit)" } else { "" }
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn asked(kind: QuestionKind, tool: &str, input: serde_json::Value) -> Asked {
        Asked {
            task: "a".into(),
            q: PendingApproval {
                id: "a1-001".into(),
                attempt: 1,
                kind,
                tool: tool.into(),
                summary: "s".into(),
                input,
                deadline: Utc::now(),
                default: Decision::Deny,
            },
        }
    }

    fn done(s: Result<Step, String>) -> AnswerRequest {
        match s {
            Ok(Step::Done(r)) => r,
            Ok(Step::Ask(p, _)) => panic!("asked again: {p}"),
            Err(e) => panic!("refused: {e}"),
        }
    }

    #[test]
    fn a_permission_is_allowed_denied_with_a_message_or_edited() {
        let a = asked(QuestionKind::Permission, "Bash", json!({"command": "rm -rf dist"}));
        let r = done(step(&a, Follow::First, "y"));
        assert_eq!((r.decision, r.id.as_deref()), (Decision::Allow, Some("a1-001")));
        let Ok(Step::Ask(p, Follow::DenyMessage)) = step(&a, Follow::First, "n") else {
            panic!("no message asked")
        };
        assert!(p.starts_with("message for the agent"));
        let r = done(step(&a, Follow::DenyMessage, "keep dist"));
        assert_eq!((r.decision, r.message.as_deref()), (Decision::Deny, Some("keep dist")));
        assert_eq!(done(step(&a, Follow::DenyMessage, "")).message, None);
        let Ok(Step::Ask(p, Follow::Command)) = step(&a, Follow::First, "e") else {
            panic!("no command asked")
        };
        assert!(p.contains("`rm -rf dist`"), "{p}");
        assert!(step(&a, Follow::Command, "").is_err());
        let r = done(step(&a, Follow::Command, "rm -rf dist/tmp"));
        assert_eq!(
            (r.decision, r.command.as_deref()),
            (Decision::Allow, Some("rm -rf dist/tmp"))
        );
        assert!(step(&a, Follow::First, "maybe").is_err());
        // Only a Bash command can be edited.
        let w = asked(QuestionKind::Permission, "Write", json!({"file_path": "/x"}));
        assert!(step(&w, Follow::First, "e").is_err());
    }

    #[test]
    fn a_question_takes_an_option_number_free_words_or_deny() {
        let a = asked(
            QuestionKind::Question,
            "AskUserQuestion",
            json!({"questions": [{"question": "Colour?", "options": [{"label": "teal", "description": "calm"}, {"label": "amber"}]}]}),
        );
        assert!(
            heading(&a).contains("\n  1. teal — calm\n  2. amber"),
            "{}",
            heading(&a)
        );
        assert_eq!(done(step(&a, Follow::First, "2")).choice.as_deref(), Some("amber"));
        assert!(step(&a, Follow::First, "3").is_err());
        let r = done(step(&a, Follow::First, "a dark red"));
        assert_eq!(
            (r.decision, r.message.as_deref()),
            (Decision::Allow, Some("a dark red"))
        );
        assert!(matches!(
            step(&a, Follow::First, "deny"),
            Ok(Step::Ask(_, Follow::DenyMessage))
        ));
        assert!(step(&a, Follow::First, "").is_err());
    }
}
