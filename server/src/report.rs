//! The end-of-run report: `report.json` (machine) and `report.md` (people), plus the text
//! the CLI prints.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::events::TaskStatus;
use crate::fsutil::{write_atomic, write_json_atomic};
use crate::state::{round3, Layout, RunState};

/// Speedup of the run: summed task time over wall time.
pub fn speedup(state: &RunState) -> f64 {
    let wall = state.wall_seconds();
    if wall > 0.0 {
        state.task_seconds() / wall
    } else {
        0.0
    }
}

/// `report.json`: the `--json` summary plus the run's context.
pub fn report_json(state: &RunState) -> serde_json::Value {
    let mut v = state.summary_json();
    v["base_commit"] = json!(state.base_commit);
    v["base_branch"] = json!(state.base_branch);
    v["task_seconds"] = json!(round3(state.task_seconds()));
    v["speedup"] = json!(round3(speedup(state)));
    v["critical_path"] = json!(state.critical_path);
    v["conflicts"] = json!(state.conflicts);
    if let Some(tasks) = v["tasks"].as_array_mut() {
        for (j, t) in tasks.iter_mut().zip(&state.tasks) {
            j["title"] = json!(t.title);
            j["attempts"] = json!(t.attempts);
            j["signal"] = json!(t.signal);
            j["depends_on"] = json!(t.depends_on);
            j["files_changed"] = json!(t.files_changed);
            j["agent"] = json!(t.agent);
            j["model"] = json!(t.model);
        }
    }
    v
}

fn icon(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Succeeded => "✓",
        TaskStatus::Failed => "✗",
        TaskStatus::Skipped => "-",
        TaskStatus::Cancelled => "■",
        TaskStatus::Queued => "·",
        TaskStatus::Running => "▶",
    }
}

/// What to do next about a task that did not succeed.
fn next_step(t: &crate::state::TaskState, run_id: &str) -> Option<String> {
    match t.status {
        TaskStatus::Failed => Some(format!("read `gadugi logs {} --run {run_id}`, look at the worktree {}, fix the prompt or the cause, then run it again", t.id, t.worktree.display())),
        TaskStatus::Skipped => Some("run it again once its dependency succeeds".into()),
        TaskStatus::Cancelled => Some(format!("its branch {} and worktree are kept; run it again to continue", t.branch)),
        _ => None,
    }
}

/// `report.md`.
pub fn report_markdown(state: &RunState) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Gadugi run {}\n", state.run_id);
    let _ = writeln!(
        md,
        "- Status: **{}** — {}",
        serde_json::to_value(state.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        summary_counts(state)
    );
    let _ = writeln!(
        md,
        "- Base: `{}`{}",
        &state.base_commit,
        state
            .base_branch
            .as_deref()
            .map(|b| format!(" ({b})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "- Wall time: {:.1}s · summed task time: {:.1}s · speedup: {:.2}×",
        state.wall_seconds(),
        state.task_seconds(),
        speedup(state)
    );
    if !state.critical_path.is_empty() {
        let _ = writeln!(md, "- Critical path: {}", state.critical_path.join(" → "));
    }
    let _ = writeln!(
        md,
        "\n| | Task | Status | Duration | Commits | Branch | Note |\n|---|---|---|---|---|---|---|"
    );
    for t in &state.tasks {
        let note = t.error.as_deref().unwrap_or("").replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(
            md,
            "| {} | `{}` {} | {} | {} | {} | `{}` | {} |",
            icon(t.status),
            t.id,
            t.title.replace('|', "\\|"),
            t.status.as_str(),
            t.duration_seconds.map(|d| format!("{d:.1}s")).unwrap_or_default(),
            t.commits,
            t.branch,
            note
        );
    }
    md.push_str(&agents_markdown(state));
    if !state.conflicts.is_empty() {
        let _ = writeln!(md, "\n## Predicted file conflicts\n");
        for c in &state.conflicts {
            let _ = writeln!(
                md,
                "- `{}` ↔ `{}`: {}{}",
                c.tasks[0],
                c.tasks[1],
                c.paths.join(", "),
                if c.serialized { " (serialized)" } else { "" }
            );
        }
    }
    let todo: Vec<String> = state
        .tasks
        .iter()
        .filter_map(|t| next_step(t, &state.run_id).map(|s| format!("- `{}`: {s}", t.id)))
        .collect();
    if !todo.is_empty() {
        let _ = writeln!(md, "\n## Next steps\n\n{}", todo.join("\n"));
    }
    let done: Vec<&str> = state
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Succeeded && t.commits > 0)
        .map(|t| t.branch.as_str())
        .collect();
    if !done.is_empty() {
        let _ = writeln!(
            md,
            "\nTo review a branch: `git log -p {}..BRANCH`. Branches ready to merge: {}",
            short(&state.base_commit),
            done.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")
        );
    }
    md
}

/// What the agents reported (cost, turns, model, session, warnings), for the tasks whose agent
/// reports anything.
fn agents_markdown(state: &RunState) -> String {
    let mut md = String::new();
    let reported: Vec<_> = state
        .tasks
        .iter()
        .filter(|t| t.cost_usd.is_some() || t.turns.is_some() || !t.warnings.is_empty())
        .collect();
    if reported.is_empty() {
        return md;
    }
    let _ = writeln!(md, "\n## Agents\n");
    if let Some(cost) = state.cost_usd() {
        let _ = writeln!(md, "Total cost: ${cost:.4}\n");
    }
    for t in reported {
        let _ = writeln!(
            md,
            "- `{}` ({}): {} turn(s), {}{}{}",
            t.id,
            t.model.as_deref().unwrap_or(&t.agent),
            t.turns.unwrap_or(0),
            t.cost_usd
                .map(|c| format!("${c:.4}"))
                .unwrap_or_else(|| "cost not reported".into()),
            t.session_id
                .as_deref()
                .map(|s| format!(", session `{s}`"))
                .unwrap_or_default(),
            t.warnings
                .iter()
                .map(|w| format!("\n  - warning: {w}"))
                .collect::<String>()
        );
    }
    md
}

fn short(c: &str) -> &str {
    c.get(..10).unwrap_or(c)
}

/// `3 succeeded, 1 failed, 2 skipped`.
pub fn summary_counts(state: &RunState) -> String {
    let parts: Vec<String> = [
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Skipped,
        TaskStatus::Cancelled,
        TaskStatus::Running,
        TaskStatus::Queued,
    ]
    .iter()
    .filter_map(|&s| {
        let n = state.count(s);
        (n > 0).then(|| format!("{n} {}", s.as_str()))
    })
    .collect();
    parts.join(", ")
}

/// Terminal summary printed at the end of `gadugi run` and by `gadugi status`.
pub fn terminal_summary(state: &RunState, repo_root: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {}: {} — {}",
        state.run_id,
        serde_json::to_value(state.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        summary_counts(state)
    );
    for t in &state.tasks {
        let dur = t
            .duration_seconds
            .map(|d| format!("{d:>6.1}s"))
            .unwrap_or_else(|| "      -".into());
        let _ = write!(
            out,
            "  {} {:<24} {:<9} {dur}  {} commit(s)  {}",
            icon(t.status),
            t.id,
            t.status.as_str(),
            t.commits,
            t.branch
        );
        if t.turns.is_some() || t.cost_usd.is_some() {
            let cost = t.cost_usd.map(|c| format!(", ${c:.4}")).unwrap_or_default();
            let _ = write!(out, "  ({} turn(s){cost})", t.turns.unwrap_or(0));
        }
        if t.stalled {
            let since = t
                .last_heartbeat
                .map(|h| format!(" since {}", h.format("%H:%M:%S")))
                .unwrap_or_default();
            let _ = write!(out, "\n      stalled: no output{since}");
        } else if let (TaskStatus::Running, Some(a)) = (t.status, &t.last_activity) {
            let _ = write!(out, "\n      {a}");
        }
        if let Some(e) = &t.error {
            let _ = write!(out, "\n      {e}");
        }
        for w in &t.warnings {
            let _ = write!(out, "\n      warning: {w}");
        }
        out.push('\n');
    }
    if let Some(cost) = state.cost_usd() {
        let _ = writeln!(out, "Agent cost ${cost:.4}");
    }
    let _ = writeln!(
        out,
        "Wall time {:.2}s, summed task time {:.2}s, speedup {:.2}×",
        state.wall_seconds(),
        state.task_seconds(),
        speedup(state)
    );
    let report = Layout::new(repo_root).run_dir(&state.run_id).join("report.md");
    let _ = writeln!(out, "Report: {}", report.display());
    out
}

/// Writes `report.json` and `report.md` into the run directory.
pub fn write_reports(layout: &Layout, state: &RunState) -> Result<()> {
    let dir = layout.run_dir(&state.run_id);
    write_json_atomic(&dir.join("report.json"), &report_json(state))?;
    write_atomic(&dir.join("report.md"), report_markdown(state).as_bytes())
}
