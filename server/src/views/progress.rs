//! Terminal views of the event stream: plain lines when stderr is not a terminal, live bars
//! when it is.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::core::events::{Event, EventRecord, TaskPhase, TaskStatus};
use crate::core::state::RunState;
use crate::run::emitter::EventSink;

fn outcome_line(state: &RunState, task: &str) -> String {
    let Some(t) = state.task(task) else {
        return task.to_string();
    };
    let secs = t.duration_seconds.map(|d| format!(" in {d:.1}s")).unwrap_or_default();
    match t.status {
        TaskStatus::Succeeded => format!("✓ {} succeeded{secs}: {} commit(s) on {}", t.id, t.commits, t.branch),
        TaskStatus::Failed => format!("✗ {} failed{secs}: {}", t.id, t.error.as_deref().unwrap_or("")),
        TaskStatus::Cancelled => format!("■ {} cancelled{secs}", t.id),
        TaskStatus::Skipped => format!("- {} skipped: {}", t.id, t.error.as_deref().unwrap_or("")),
        _ => t.id.clone(),
    }
}

/// `⚠ api: merging gadugi/api with gadugi/db will conflict in a.txt (2 hunks)`, one line per
/// conflicting pair; `None` when nothing conflicts.
fn conflicts_line(task: &str, conflicts: &[crate::core::events::PredictedConflict]) -> Option<String> {
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "⚠ {task}: merging {} with {} ({}) will conflict in {}",
                c.branch,
                c.with_branch,
                c.other_side(task),
                c.files_text()
            )
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn counts(state: &RunState) -> String {
    let done = state.tasks.iter().filter(|t| t.status.is_final()).count();
    let mut s = format!(
        "{done}/{} done · {} running",
        state.tasks.len(),
        state.count(TaskStatus::Running)
    );
    for (status, word) in [
        (TaskStatus::Failed, "failed"),
        (TaskStatus::Skipped, "skipped"),
        (TaskStatus::Cancelled, "cancelled"),
    ] {
        let n = state.count(status);
        if n > 0 {
            s.push_str(&format!(" · {n} {word}"));
        }
    }
    s
}

/// `a: waiting for approval: Bash(rm -rf dist) — denied in 8m unless answered (gadugi answer a allow|deny)`.
fn approval_line(state: &RunState, task: &str, id: &str) -> String {
    let pending = state
        .task(task)
        .and_then(|t| t.pending_approvals.iter().find(|p| p.id == id));
    match pending {
        Some(p) => format!(
            "{task}: waiting for approval: {} (gadugi answer {task} allow|deny)",
            p.describe(chrono::Utc::now())
        ),
        None => format!("{task}: waiting for approval ({id})"),
    }
}

/// The line of a question asked or answered; `None` for other events.
fn approval_event_line(state: &RunState, event: &Event) -> Option<String> {
    match event {
        Event::ApprovalRequested { task, id, .. } => Some(approval_line(state, task, id)),
        Event::ApprovalAnswered {
            task,
            id,
            decision,
            by,
            edited,
        } => {
            let edited = if *edited { ", edited" } else { "" };
            Some(format!(
                "{task}: {id} answered {} by {}{edited}",
                decision.as_str(),
                by.as_str()
            ))
        }
        _ => None,
    }
}

/// Plain lines on stderr, one per lifecycle event: for logs, CI and pipes.
pub struct PlainProgress;

impl EventSink for PlainProgress {
    fn on_event(&mut self, rec: &EventRecord, state: &RunState) {
        let elapsed = (rec.ts - state.started_at).num_milliseconds() as f64 / 1000.0;
        let line = match &rec.event {
            Event::RunStarted {
                run_id,
                tasks,
                max_parallel,
                ..
            } => format!("run {run_id}: {} task(s), at most {max_parallel} at once", tasks.len()),
            Event::AgentStarted { task, attempt, pid, .. } => match state.task(task).and_then(|t| t.placement.as_ref())
            {
                Some(p) => format!("{task}: agent started (attempt {attempt}, pid {pid} {p})"),
                None => format!("{task}: agent started (attempt {attempt}, pid {pid})"),
            },
            Event::AttemptPlaced {
                task,
                attempt,
                executor,
                job,
                node,
            } => match node {
                Some(node) => format!("{task}: attempt {attempt} runs on {node} ({executor} job {job})"),
                None => format!("{task}: attempt {attempt} submitted as {executor} job {job}"),
            },
            Event::AttemptFailed {
                task,
                attempt,
                error,
                retry_in_ms,
            } => format!(
                "{task}: attempt {attempt} failed ({error}); retrying in {:.1}s",
                *retry_in_ms as f64 / 1000.0
            ),
            Event::TaskPhase {
                task,
                phase: TaskPhase::Verifying,
            } => format!("{task}: verifying"),
            Event::TaskStalled { task, silent_seconds } => {
                format!("{task}: stalled, no output for {silent_seconds}s (still running)")
            }
            Event::ParallelismLimited {
                limit,
                reason: Some(reason),
            } => format!("at most {limit} agent(s) at once: {reason}"),
            Event::ParallelismLimited { limit, reason: None }
                if state.max_parallel == *limit && state.tasks.iter().any(|t| t.status != TaskStatus::Queued) =>
            {
                format!("back to {limit} agent(s) at once")
            }
            Event::CircuitOpened { cause, attempts } => {
                format!("circuit breaker: {attempts} attempts in a row failed with: {cause}; starting no more tasks")
            }
            Event::RunResumed { orchestrator_pid } => format!("resumed by pid {orchestrator_pid}"),
            Event::AgentReported { task, attempt, report } if report.turns.is_some() || !report.warnings.is_empty() => {
                let cost = report.cost_usd.map(|c| format!(", ${c:.4}")).unwrap_or_default();
                let mut line = format!("{task}: attempt {attempt}: {} turn(s){cost}", report.turns.unwrap_or(0));
                for w in &report.warnings {
                    line.push_str(&format!("; warning: {w}"));
                }
                line
            }
            Event::TaskPhase {
                task,
                phase: TaskPhase::Setup,
            } => format!("{task}: setting up worktree"),
            Event::TaskWarning { task, warning } => format!("{task}: warning: {warning}"),
            Event::ApprovalRequested { .. } | Event::ApprovalAnswered { .. } => {
                approval_event_line(state, &rec.event).unwrap_or_default()
            }
            Event::WorkspaceReady {
                task,
                copied,
                caches,
                port,
                seconds,
                ..
            } => crate::run::workspace::ready_line(task, copied, caches, *port, *seconds),
            Event::TaskFinished { task, .. } | Event::TaskSkipped { task, .. } => {
                format!("{}  [{}]", outcome_line(state, task), counts(state))
            }
            Event::ConflictsPredicted { task, conflicts, .. } => match conflicts_line(task, conflicts) {
                Some(line) => line,
                None => return,
            },
            Event::RunFinished { status } => format!(
                "run {}: {} in {:.1}s",
                state.run_id,
                serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                state.wall_seconds()
            ),
            _ => return,
        };
        let _ = writeln!(std::io::stderr().lock(), "[{elapsed:7.2}s] {line}");
    }
}

/// Live view for a terminal: a header with the counts and one spinner line per running task
/// with its phase, elapsed time and latest activity; finished tasks scroll above.
pub struct LiveProgress {
    multi: MultiProgress,
    header: ProgressBar,
    bars: HashMap<String, ProgressBar>,
    /// Lines printed while the terminal is lent out ([`TerminalPause`]), shown after.
    held: Arc<Mutex<Option<Vec<String>>>>,
}

/// Lends the live view's terminal to another thread for a while (an inline question): the
/// bars are cleared and not drawn, and the view's lines wait, so a prompt and what the
/// person types are not overwritten; afterwards the bars come back and the held lines print.
#[derive(Clone)]
pub struct TerminalPause {
    multi: MultiProgress,
    held: Arc<Mutex<Option<Vec<String>>>>,
}

impl TerminalPause {
    /// Runs `f` with the terminal to itself.
    pub fn hold<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            *held = Some(Vec::new());
            let _ = self.multi.clear();
            self.multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        let out = f();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        self.multi.set_draw_target(ProgressDrawTarget::stderr());
        for line in held.take().unwrap_or_default() {
            let _ = self.multi.println(line);
        }
        out
    }
}

impl LiveProgress {
    pub fn new() -> LiveProgress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let header = multi.add(ProgressBar::new(1));
        header.set_style(
            ProgressStyle::with_template("{prefix:.bold} [{bar:30.cyan/blue}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        header.set_prefix("gadugi");
        LiveProgress {
            multi,
            header,
            bars: HashMap::new(),
            held: Arc::new(Mutex::new(None)),
        }
    }

    /// The handle that lends this view's terminal to a prompt.
    pub fn pause(&self) -> TerminalPause {
        TerminalPause {
            multi: self.multi.clone(),
            held: self.held.clone(),
        }
    }

    /// A line above the bars, or held while the terminal is lent out.
    fn print(&self, line: impl Into<String>) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_mut() {
            Some(lines) => lines.push(line.into()),
            None => {
                let _ = self.multi.println(line.into());
            }
        }
    }

    fn bar(&mut self, task: &str) -> &ProgressBar {
        let multi = &self.multi;
        self.bars.entry(task.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner:.green} {prefix:24} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(task.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        })
    }
}

impl Default for LiveProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSink for LiveProgress {
    fn on_event(&mut self, rec: &EventRecord, state: &RunState) {
        self.header.set_length(state.tasks.len() as u64);
        self.header
            .set_position(state.tasks.iter().filter(|t| t.status.is_final()).count() as u64);
        self.header.set_message(counts(state));
        match &rec.event {
            Event::RunStarted { run_id, .. } => {
                self.print(format!(
                    "run {run_id}: {} task(s), at most {} at once",
                    state.tasks.len(),
                    state.max_parallel
                ));
            }
            Event::TaskPhase { task, phase } => {
                let msg = match phase {
                    TaskPhase::Preparing => "preparing worktree",
                    TaskPhase::Setup => "setting up worktree",
                    TaskPhase::Agent => "agent running",
                    TaskPhase::Committing => "committing",
                    TaskPhase::Verifying => "verifying",
                    TaskPhase::Retrying => "waiting to retry",
                    TaskPhase::WaitingForApproval => "waiting for approval",
                };
                self.bar(task).set_message(msg);
            }
            Event::AgentStarted { task, attempt, pid, .. } => {
                let msg = match state.task(task).and_then(|t| t.placement.as_ref()) {
                    Some(p) => format!("agent started (attempt {attempt}, pid {pid} {p})"),
                    None => format!("agent started (attempt {attempt}, pid {pid})"),
                };
                self.bar(task).set_message(msg);
            }
            Event::AttemptPlaced { task, .. } => {
                if let Some(p) = state.task(task).and_then(|t| t.placement.as_ref()) {
                    let msg = p.to_string();
                    self.bar(task).set_message(msg);
                }
            }
            Event::TaskActivity { task, line } => {
                let line = line.clone();
                self.bar(task).set_message(line);
            }
            Event::AttemptFailed { task, error, .. } => {
                let msg = format!("retrying after: {error}");
                self.bar(task).set_message(msg);
            }
            Event::ApprovalRequested { task, .. } | Event::ApprovalAnswered { task, .. } => {
                let line = approval_event_line(state, &rec.event).unwrap_or_default();
                self.print(line.clone());
                self.bar(task).set_message(line);
            }
            Event::TaskFinished { task, .. } | Event::TaskSkipped { task, .. } => {
                if let Some(bar) = self.bars.remove(task.as_str()) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.print(outcome_line(state, task));
            }
            Event::ConflictsPredicted { task, conflicts, .. } => {
                if let Some(line) = conflicts_line(task, conflicts) {
                    self.print(line);
                }
            }
            Event::RunFinished { .. } => {
                self.header.finish_and_clear();
            }
            Event::ParallelismLimited { limit, reason } => {
                let line = match reason {
                    Some(r) => format!("at most {limit} agent(s) at once: {r}"),
                    None => format!("{limit} agent(s) at once"),
                };
                self.print(line);
            }
            Event::CircuitOpened { cause, attempts } => {
                self.print(format!(
                    "circuit breaker: {attempts} attempts in a row failed with: {cause}; starting no more tasks"
                ));
            }
            Event::TaskWarning { task, warning } => {
                self.print(format!("{task}: warning: {warning}"));
            }
            Event::TaskStalled { task, silent_seconds } => {
                let msg = format!("stalled: no output for {silent_seconds}s");
                self.bar(task).set_message(msg);
            }
            _ => {}
        }
    }
}
