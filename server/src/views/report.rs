//! The end-of-run report: `report.json` (machine) and `report.md` (people), plus the text
//! the CLI prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::core::events::TaskStatus;
use crate::core::state::{round3, RunState, TaskState};
use crate::fsutil::{write_atomic, write_json_atomic};
use crate::layout::Layout;

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
    let facts = branch_facts(state);
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
            j["placement"] = json!(t.placement);
            j["signal"] = json!(t.signal);
            j["depends_on"] = json!(t.depends_on);
            j["files_changed"] = json!(t.files_changed);
            j["agent"] = json!(t.agent);
            j["model"] = json!(t.model);
            j["summary"] = json!(t.last_activity);
            j["next_step"] = json!(next_step(t, &state.run_id));
            j["predicted_conflicts"] = json!(state
                .merge_conflicts
                .iter()
                .filter(|c| c.involves(&t.id))
                .collect::<Vec<_>>());
            if let Some(f) = facts.get(&t.id) {
                j["commit_subjects"] = json!(f.commits.iter().map(|(_, s)| s).collect::<Vec<_>>());
                j["diffstat"] = json!({
                    "insertions": f.insertions(),
                    "deletions": f.deletions(),
                    "files": f.files.iter().map(|(p, a, d)| json!({"path": p, "insertions": a, "deletions": d})).collect::<Vec<_>>(),
                });
            }
        }
    }
    v["merge_conflicts"] = json!(state.merge_conflicts);
    v
}

/// What a task's branch holds, read from git when the report is written.
#[derive(Debug, Clone, Default)]
pub struct BranchFacts {
    /// (commit id, subject), oldest first.
    pub commits: Vec<(String, String)>,
    /// (path, insertions, deletions) against the commit the branch started from.
    pub files: Vec<(String, usize, usize)>,
}

impl BranchFacts {
    fn insertions(&self) -> usize {
        self.files.iter().map(|f| f.1).sum()
    }
    fn deletions(&self) -> usize {
        self.files.iter().map(|f| f.2).sum()
    }
}

/// Reads every started task's commits and diffstat (tasks whose branch is gone are left out).
pub fn branch_facts(state: &RunState) -> BTreeMap<String, BranchFacts> {
    let Ok(repo) = git2::Repository::open(&state.repo_root) else {
        return BTreeMap::new();
    };
    state
        .tasks
        .iter()
        .filter_map(|t| {
            Some((
                t.id.clone(),
                facts_of(&repo, &t.branch, t.start_commit.as_deref()?).ok()?,
            ))
        })
        .collect()
}

fn facts_of(repo: &git2::Repository, branch: &str, start: &str) -> Result<BranchFacts, git2::Error> {
    let tip = repo
        .revparse_single(&format!("refs/heads/{branch}"))?
        .peel_to_commit()?;
    let start = repo.revparse_single(start)?.peel_to_commit()?;
    let mut walk = repo.revwalk()?;
    walk.push(tip.id())?;
    walk.hide(start.id())?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    let mut facts = BranchFacts::default();
    for id in walk {
        let c = repo.find_commit(id?)?;
        facts
            .commits
            .push((c.id().to_string(), c.summary().unwrap_or("").to_string()));
    }
    let diff = repo.diff_tree_to_tree(Some(&start.tree()?), Some(&tip.tree()?), None)?;
    for i in 0..diff.deltas().len() {
        let Some(patch) = git2::Patch::from_diff(&diff, i)? else {
            continue;
        };
        let delta = patch.delta();
        let path = delta
            .new_file()
            .path()
            .or(delta.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (_, add, del) = patch.line_stats()?;
        facts.files.push((path, add, del));
    }
    Ok(facts)
}

/// The task's cost in US dollars, when its agent reported one (never estimated).
pub fn cost_usd(t: &crate::core::state::TaskState) -> Option<f64> {
    t.cost_usd
}

/// The run's timeline as a picture (`timeline.svg`, shown by `report.md`): one bar per task
/// that started, from its start to its end in seconds since the run started, coloured by its
/// status, over a time axis. Drawn here as SVG text, without any program, so every Markdown
/// viewer (VS Code's preview, GitHub, a browser) shows a picture, not chart source. Each bar
/// carries `data-task`, `data-from` and `data-to` (milliseconds) for tools and tests.
pub fn timeline_svg(state: &RunState) -> String {
    const WIDTH: f64 = 760.0;
    const LABEL: f64 = 170.0;
    const RIGHT: f64 = 64.0;
    const ROW: f64 = 24.0;
    const TOP: f64 = 48.0;
    let end_of_run = state.finished_at.unwrap_or_else(chrono::Utc::now);
    let bars: Vec<(&TaskState, i64, i64)> = state
        .tasks
        .iter()
        .filter_map(|t| {
            let start = t.started_at?;
            let end = t.finished_at.unwrap_or(end_of_run);
            let from = (start - state.started_at).num_milliseconds().max(0);
            Some((t, from, (end - state.started_at).num_milliseconds().max(from + 1)))
        })
        .collect();
    let span_ms = bars.iter().map(|b| b.2).max().unwrap_or(0).max(1000) as f64;
    let plot = WIDTH - LABEL - RIGHT;
    let x = |ms: i64| LABEL + ms as f64 / span_ms * plot;
    let height = TOP + ROW * bars.len().max(1) as f64 + 36.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        svg,
        r##"<title>Timeline of Gadugi run {}</title>
<rect x="0.5" y="0.5" width="{}" height="{}" rx="6" fill="#ffffff" stroke="#d0d7de"/>
<text x="12" y="20" font-weight="600" fill="#1f2328">Run {} — {} task(s) started, {:.1}s wall time</text>"##,
        xml(&state.run_id),
        WIDTH - 1.0,
        height - 1.0,
        xml(&state.run_id),
        bars.len(),
        state.wall_seconds()
    );
    // The time axis: about six ticks at a round number of seconds.
    let step = tick_step(span_ms / 1000.0 / 6.0);
    let axis_bottom = TOP + ROW * bars.len().max(1) as f64;
    let mut tick = 0.0;
    while tick * 1000.0 <= span_ms + 1.0 {
        let tx = x((tick * 1000.0) as i64);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{}" x2="{tx:.1}" y2="{axis_bottom}" stroke="#eaeef2"/><text x="{tx:.1}" y="{}" text-anchor="middle" fill="#59636e">{}</text>"##,
            TOP - 10.0,
            TOP - 14.0,
            seconds_label(tick)
        );
        tick += step;
    }
    if bars.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{LABEL}" y="{}" fill="#59636e">No task started.</text>"##,
            TOP + 16.0
        );
    }
    for (row, (t, from, to)) in bars.iter().enumerate() {
        let y = TOP + ROW * row as f64;
        let (x0, x1) = (x(*from), x(*to));
        let seconds = (to - from) as f64 / 1000.0;
        let _ = writeln!(
            svg,
            r##"<g><title>{id}: {status} after {attempts} attempt(s), {seconds:.1}s (from {f:.1}s to {e:.1}s)</title><text x="{lx}" y="{ty:.1}" text-anchor="end" fill="#1f2328">{icon} {id}</text><rect class="bar" data-task="{id}" data-status="{status}" data-from="{from}" data-to="{to}" x="{x0:.1}" y="{by:.1}" width="{w:.1}" height="16" rx="3" fill="{fill}"/><text x="{dx:.1}" y="{ty:.1}" fill="#59636e">{seconds:.1}s</text></g>"##,
            id = xml(&t.id),
            status = t.status.as_str(),
            attempts = t.attempts,
            f = *from as f64 / 1000.0,
            e = *to as f64 / 1000.0,
            lx = LABEL - 8.0,
            ty = y + 16.0,
            icon = icon(t.status),
            by = y + 4.0,
            w = (x1 - x0).max(2.0),
            fill = status_colour(t.status),
            dx = x1.max(x0 + 2.0) + 6.0,
        );
    }
    // The legend: the statuses the bars use.
    let mut lx = LABEL;
    let ly = axis_bottom + 14.0;
    for status in [
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
        TaskStatus::Running,
    ] {
        if !bars.iter().any(|b| b.0.status == status) {
            continue;
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{lx}" y="{ly}" width="10" height="10" rx="2" fill="{}"/><text x="{}" y="{}" fill="#59636e">{}</text>"##,
            status_colour(status),
            lx + 14.0,
            ly + 9.5,
            status.as_str()
        );
        lx += 90.0;
    }
    svg.push_str("</svg>\n");
    svg
}

/// The colour of a bar (GitHub's Primer palette: readable on white, for every kind of colour vision
/// the icons and the legend say the same).
fn status_colour(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Succeeded => "#1a7f37",
        TaskStatus::Failed => "#cf222e",
        TaskStatus::Running => "#0969da",
        _ => "#8c959f",
    }
}

/// A round step for about `raw` seconds between ticks.
fn tick_step(raw: f64) -> f64 {
    const STEPS: [f64; 15] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|&s| s >= raw)
        .unwrap_or_else(|| (raw / 3600.0).ceil() * 3600.0)
}

/// `0s`, `1.5s`, `2:30`, `1:02:00`.
fn seconds_label(s: f64) -> String {
    if s < 60.0 {
        let text = format!("{s:.1}");
        return format!("{}s", text.trim_end_matches(".0"));
    }
    let total = s.round() as u64;
    if total >= 3600 {
        format!("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
    } else {
        format!("{}:{:02}", total / 60, total % 60)
    }
}

/// Text for SVG (XML) content and attribute values.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
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
fn next_step(t: &crate::core::state::TaskState, run_id: &str) -> Option<String> {
    match t.status {
        TaskStatus::Failed => Some(format!("read `gadugi logs {} --run {run_id}`, look at the worktree {}, fix the prompt or the cause, then run it again", t.id, t.worktree.display())),
        TaskStatus::Skipped => Some("run it again once its dependency succeeds".into()),
        TaskStatus::Cancelled => Some(format!("its branch {} and worktree are kept; run it again to continue", t.branch)),
        _ => None,
    }
}

/// `report.md`.
pub fn report_markdown(state: &RunState) -> String {
    let facts = branch_facts(state);
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
        "- Wall time: {:.1}s · summed task time: {:.1}s · speedup: {:.2}× (at most {} at once)",
        state.wall_seconds(),
        state.task_seconds(),
        speedup(state),
        state.max_parallel
    );
    if !state.critical_path.is_empty() {
        let _ = writeln!(md, "- Critical path: {}", state.critical_path.join(" → "));
    }
    if let Some(cost) = state.cost_usd() {
        let _ = writeln!(md, "- Cost: ${cost:.4} (reported by the agents)");
    }
    let _ = writeln!(
        md,
        "\n| | Task | Status | Attempts | Duration | Cost | Commits | Diff | Branch |\n|---|---|---|---|---|---|---|---|---|"
    );
    for t in &state.tasks {
        let diff = facts
            .get(&t.id)
            .map(|f| format!("{} file(s) +{} −{}", f.files.len(), f.insertions(), f.deletions()))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | `{}` {} | {} | {} | {} | {} | {} | {} | `{}` |",
            icon(t.status),
            t.id,
            cell(&t.title),
            t.status.as_str(),
            t.attempts,
            t.duration_seconds.map(|d| format!("{d:.1}s")).unwrap_or_default(),
            cost_usd(t).map(|c| format!("${c:.4}")).unwrap_or_else(|| "—".into()),
            t.commits,
            diff,
            t.branch,
        );
    }
    md.push_str(&agents_markdown(state));
    // The picture is written next to report.md by `write_reports`.
    let _ = writeln!(
        md,
        "\n## Timeline\n\n![Timeline of run {}: one bar per task, seconds since the run started](timeline.svg)\n",
        state.run_id
    );
    if !state.merge_conflicts.is_empty() {
        let _ = writeln!(md, "## Predicted merge conflicts\n");
        let _ = writeln!(md, "Found by merging the branches in memory as the tasks finished:\n");
        for c in &state.merge_conflicts {
            let _ = writeln!(
                md,
                "- `{}` ↔ {}: {} file(s), {} hunk(s) — {}",
                c.task,
                match &c.with_task {
                    Some(w) => format!("`{w}`"),
                    None => format!("base branch `{}`", c.with_branch),
                },
                c.files.len(),
                c.hunks(),
                c.files_text()
            );
        }
        md.push('\n');
    }
    if !state.conflicts.is_empty() {
        let _ = writeln!(md, "## File overlaps found when planning\n");
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
        md.push('\n');
    }
    let _ = writeln!(md, "## Tasks\n");
    for t in &state.tasks {
        let _ = writeln!(md, "### {} `{}` — {}\n", icon(t.status), t.id, t.title);
        let _ = writeln!(
            md,
            "- {} after {} attempt(s){} · agent `{}` · branch `{}`",
            t.status.as_str(),
            t.attempts,
            t.duration_seconds.map(|d| format!(" in {d:.1}s")).unwrap_or_default(),
            t.agent,
            t.branch
        );
        if let Some(p) = &t.placement {
            let _ = writeln!(md, "- Ran {p}");
        }
        if !t.depends_on.is_empty() {
            let _ = writeln!(
                md,
                "- Depends on: {}",
                t.depends_on
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(a) = &t.last_activity {
            let _ = writeln!(md, "- Agent's last word: {}", a.replace('\n', " "));
        }
        if let Some(f) = facts.get(&t.id) {
            if !f.commits.is_empty() {
                let _ = writeln!(md, "- Commits:");
                for (id, subject) in &f.commits {
                    let _ = writeln!(md, "  - `{}` {}", short(id), subject);
                }
            }
            if !f.files.is_empty() {
                let _ = writeln!(md, "- Files (+{} −{}):", f.insertions(), f.deletions());
                for (path, add, del) in &f.files {
                    let _ = writeln!(md, "  - `{path}` +{add} −{del}");
                }
            }
        }
        for c in state.merge_conflicts.iter().filter(|c| c.involves(&t.id)) {
            let _ = writeln!(md, "- ⚠ Will conflict with {}: {}", c.other_side(&t.id), c.files_text());
        }
        if t.status != TaskStatus::Succeeded {
            if let Some(e) = &t.error {
                let _ = writeln!(md, "- Reason: {}", e.replace('\n', " "));
            }
        }
        if let Some(next) = next_step(t, &state.run_id) {
            let _ = writeln!(md, "- Next: {next}");
        }
        md.push('\n');
    }
    let merge_file = Layout::new(&state.repo_root).merge_file(&state.run_id);
    if let Ok(Some(m)) = crate::fsutil::read_json::<crate::integrate::merge::MergeReport>(&merge_file) {
        let _ = writeln!(md, "## Integration\n");
        let _ = writeln!(
            md,
            "`gadugi merge` built `{}` at `{}`: {}{}",
            m.integration_branch,
            short(&m.head),
            if m.complete {
                "every succeeded task is merged"
            } else {
                "stopped early"
            },
            m.verify
                .as_deref()
                .map(|v| format!(", each merge verified with `{v}`"))
                .unwrap_or_default()
        );
        for step in &m.steps {
            let _ = writeln!(
                md,
                "- `{}`: {}{}",
                step.task,
                step.outcome.replace('_', " "),
                step.error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default()
            );
        }
        md.push('\n');
    }
    let todo: Vec<String> = state
        .tasks
        .iter()
        .filter_map(|t| next_step(t, &state.run_id).map(|s| format!("- `{}`: {s}", t.id)))
        .collect();
    if !todo.is_empty() {
        let _ = writeln!(md, "## Next steps\n\n{}", todo.join("\n"));
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
            "\nTo review a branch: `git log -p {}..BRANCH`. Branches ready to merge: {}. \
             Merge them all in dependency order with `gadugi merge {}`.",
            short(&state.base_commit),
            done.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", "),
            state.run_id
        );
    }
    md
}

/// Text for a markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
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
        if let Some(p) = &t.placement {
            let _ = write!(out, "  {p}");
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
    for c in &state.merge_conflicts {
        let _ = writeln!(
            out,
            "  ⚠ {} ↔ {}: merging will conflict in {}",
            c.task,
            c.other_side(&c.task),
            c.files_text()
        );
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
    let report = Layout::new(repo_root).report_files(&state.run_id).0;
    let _ = writeln!(out, "Report: {}", report.display());
    out
}

/// Writes `report.json`, `report.md` and the timeline it shows (`timeline.svg`) into the run
/// directory.
pub fn write_reports(layout: &Layout, state: &RunState) -> Result<()> {
    let (md, json) = layout.report_files(&state.run_id);
    write_json_atomic(&json, &report_json(state))?;
    write_atomic(&layout.timeline_file(&state.run_id), timeline_svg(state).as_bytes())?;
    write_atomic(&md, report_markdown(state).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::events::{Event, EventRecord, TaskInit};
    use chrono::{Duration, TimeZone, Utc};

    fn rec(ms: i64, event: Event) -> EventRecord {
        EventRecord {
            ts: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::milliseconds(ms),
            event,
        }
    }

    fn state() -> RunState {
        let init = |id: &str| TaskInit {
            id: id.into(),
            title: format!("Task: {id}"),
            prompt_file: format!("/r/{id}.md").into(),
            branch: format!("gadugi/{id}"),
            worktree: format!("/w/{id}").into(),
            depends_on: vec![],
            after: vec![],
            agent: "command".into(),
        };
        let mut s = RunState::from_start(&rec(
            0,
            Event::RunStarted {
                run_id: "r1".into(),
                repo_root: "/nonexistent".into(),
                base_commit: "0123456789abcdef".into(),
                base_branch: Some("main".into()),
                max_parallel: 2,
                orchestrator_pid: 1,
                tasks: vec![init("ok"), init("bad"), init("later")],
                critical_path: vec!["ok".into()],
                conflicts: vec![],
            },
        ))
        .unwrap();
        let phase = |task: &str| Event::TaskPhase {
            task: task.into(),
            phase: crate::core::events::TaskPhase::Preparing,
        };
        let finished = |task: &str, status| Event::TaskFinished {
            task: task.into(),
            status,
            exit_code: Some(0),
            signal: None,
            commits: 1,
            files_changed: vec![],
            error: (status == TaskStatus::Failed).then(|| "exit 3".into()),
            class: None,
        };
        for r in [
            rec(10, phase("ok")),
            rec(20, phase("bad")),
            rec(1510, finished("bad", TaskStatus::Failed)),
            rec(2010, finished("ok", TaskStatus::Succeeded)),
            rec(
                2020,
                Event::TaskSkipped {
                    task: "later".into(),
                    reason: "dependency bad failed".into(),
                },
            ),
            rec(
                2100,
                Event::RunFinished {
                    status: RunStatus::Failed,
                },
            ),
        ] {
            s.apply(&r);
        }
        s
    }

    use crate::core::events::RunStatus;

    #[test]
    fn timeline_is_a_picture_with_one_bar_per_started_task_in_ms_since_start() {
        let svg = timeline_svg(&state());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        let bars: Vec<&str> = svg.lines().filter(|l| l.contains(r#"class="bar""#)).collect();
        assert_eq!(bars.len(), 2, "`later` never started: {svg}");
        assert!(
            bars[0].contains(r#"data-task="ok" data-status="succeeded" data-from="10" data-to="2010""#),
            "{}",
            bars[0]
        );
        assert!(
            bars[1].contains(r#"data-task="bad" data-status="failed" data-from="20" data-to="1510""#),
            "{}",
            bars[1]
        );
        // The longer bar is the wider one: widths follow the durations.
        let width = |l: &str| -> f64 {
            l.split(" width=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(
            (width(bars[0]) / width(bars[1]) - 2000.0 / 1490.0).abs() < 0.01,
            "{svg}"
        );
        assert_eq!(svg.matches("<g>").count(), svg.matches("</g>").count());
        let md = report_markdown(&state());
        assert!(
            md.contains("![Timeline of run r1: one bar per task, seconds since the run started](timeline.svg)"),
            "{md}"
        );
        assert!(!md.contains("mermaid"), "{md}");
    }

    #[test]
    fn timeline_text_is_escaped_and_ticks_are_round() {
        let mut s = state();
        s.tasks[0].id = "a<&>\"b".into();
        let svg = timeline_svg(&s);
        assert!(svg.contains("a&lt;&amp;&gt;&quot;b"), "{svg}");
        assert!(!svg.contains("a<&"), "{svg}");
        for (raw, step) in [(0.05, 0.1), (0.3, 0.5), (7.0, 10.0), (50.0, 60.0), (7200.0, 7200.0)] {
            assert_eq!(tick_step(raw), step, "{raw}");
        }
        for (s, text) in [(0.0, "0s"), (1.5, "1.5s"), (150.0, "2:30"), (3720.0, "1:02:00")] {
            assert_eq!(seconds_label(s), text);
        }
    }

    #[test]
    fn markdown_names_the_reason_and_the_next_step_and_old_state_files_still_load() {
        let s = state();
        let md = report_markdown(&s);
        assert!(md.contains("- Reason: exit 3"), "{md}");
        assert!(md.contains("- Reason: dependency bad failed"), "{md}");
        assert!(
            md.contains("`later`: run it again once its dependency succeeds"),
            "{md}"
        );
        assert!(md.contains("| — |"), "no cost reported, none invented: {md}");
        // A state.json written before merge_conflicts existed.
        let mut v = serde_json::to_value(&s).unwrap();
        v.as_object_mut().unwrap().remove("merge_conflicts");
        let back: RunState = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        let json = report_json(&s);
        assert_eq!(json["tasks"][0]["cost_usd"], serde_json::Value::Null);
        assert_eq!(json["merge_conflicts"], serde_json::json!([]));
    }
}
