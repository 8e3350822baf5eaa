//! Terminal views of the event stream, and the follower that turns an agent's output file
//! into "what it is doing now".

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::agent::OutputProtocol;
use crate::events::{Event, EventRecord, TaskPhase, TaskStatus};
use crate::orchestrator::EventSink;
use crate::state::RunState;

/// Longest activity line kept, in characters.
const ACTIVITY_CHARS: usize = 160;
/// At most this much of a fast-growing log is read per poll.
const TAIL_BYTES: u64 = 64 * 1024;

/// Follows an agent's stdout file and reports its latest meaningful line. Reads only what
/// was appended since the last poll (at most the last 64 KiB), so a flooding agent costs
/// little.
pub struct OutputFollower {
    path: PathBuf,
    offset: u64,
    partial: String,
    last: Option<String>,
    protocol: OutputProtocol,
}

impl OutputFollower {
    pub fn new(path: PathBuf, protocol: OutputProtocol) -> OutputFollower {
        OutputFollower {
            path,
            offset: 0,
            partial: String::new(),
            last: None,
            protocol,
        }
    }

    /// The newest summarized line, when it changed since the previous call.
    pub fn poll(&mut self) -> Option<String> {
        let mut file = std::fs::File::open(&self.path).ok()?;
        let len = file.metadata().ok()?.len();
        if len <= self.offset {
            return None;
        }
        if len - self.offset > TAIL_BYTES {
            self.offset = len - TAIL_BYTES;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut buf = Vec::new();
        file.take(len - self.offset).read_to_end(&mut buf).ok()?;
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let complete = self.partial.rfind('\n').map(|end| {
            let lines = self.partial[..end].to_string();
            self.partial.drain(..=end);
            lines
        })?;
        let newest = complete.lines().rev().find_map(|l| summarize(self.protocol, l))?;
        if self.last.as_deref() == Some(newest.as_str()) {
            return None;
        }
        self.last = Some(newest.clone());
        Some(newest)
    }
}

/// The last `max` bytes of a file as text (lossy), or "" when it cannot be read.
pub fn read_tail(path: &std::path::Path, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A one-line, human summary of an output line; `None` when it says nothing new.
pub fn summarize(protocol: OutputProtocol, line: &str) -> Option<String> {
    let text = match protocol {
        OutputProtocol::Plain => line.trim().to_string(),
        OutputProtocol::ClaudeStreamJson => crate::claude::summarize(line)?,
        protocol => crate::profiles::summarize(protocol, line)?,
    };
    let text: String = text.chars().filter(|c| !c.is_control()).take(ACTIVITY_CHARS).collect();
    (!text.trim().is_empty()).then_some(text)
}

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
            Event::AgentStarted { task, attempt, pid, .. } => {
                format!("{task}: agent started (attempt {attempt}, pid {pid})")
            }
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
            Event::WorkspaceReady {
                task,
                copied,
                caches,
                port,
                seconds,
                ..
            } => crate::workspace_setup::ready_line(task, copied, caches, *port, *seconds),
            Event::TaskFinished { task, .. } | Event::TaskSkipped { task, .. } => {
                format!("{}  [{}]", outcome_line(state, task), counts(state))
            }
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
                let _ = self.multi.println(format!(
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
                };
                self.bar(task).set_message(msg);
            }
            Event::AgentStarted { task, attempt, pid, .. } => {
                let msg = format!("agent started (attempt {attempt}, pid {pid})");
                self.bar(task).set_message(msg);
            }
            Event::TaskActivity { task, line } => {
                let line = line.clone();
                self.bar(task).set_message(line);
            }
            Event::AttemptFailed { task, error, .. } => {
                let msg = format!("retrying after: {error}");
                self.bar(task).set_message(msg);
            }
            Event::TaskFinished { task, .. } | Event::TaskSkipped { task, .. } => {
                if let Some(bar) = self.bars.remove(task.as_str()) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                let _ = self.multi.println(outcome_line(state, task));
            }
            Event::RunFinished { .. } => {
                self.header.finish_and_clear();
            }
            Event::ParallelismLimited { limit, reason } => {
                let line = match reason {
                    Some(r) => format!("at most {limit} agent(s) at once: {r}"),
                    None => format!("{limit} agent(s) at once"),
                };
                let _ = self.multi.println(line);
            }
            Event::CircuitOpened { cause, attempts } => {
                let _ = self.multi.println(format!(
                    "circuit breaker: {attempts} attempts in a row failed with: {cause}; starting no more tasks"
                ));
            }
            Event::TaskStalled { task, silent_seconds } => {
                let msg = format!("stalled: no output for {silent_seconds}s");
                self.bar(task).set_message(msg);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_reports_only_new_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        std::fs::write(&p, "one\ntw").unwrap();
        let mut f = OutputFollower::new(p.clone(), OutputProtocol::Plain);
        assert_eq!(f.poll().as_deref(), Some("one"));
        assert_eq!(f.poll(), None);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"o\n")
            .unwrap();
        assert_eq!(f.poll().as_deref(), Some("two"));
    }

    #[test]
    fn summarizes_claude_tool_use() {
        let line = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Write","input":{"file_path":"src/a.rs"}}]}}"#;
        assert_eq!(
            summarize(OutputProtocol::ClaudeStreamJson, line).as_deref(),
            Some("Write src/a.rs")
        );
        assert_eq!(summarize(OutputProtocol::ClaudeStreamJson, "not json"), None);
    }
}
