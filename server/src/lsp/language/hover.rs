//! `textDocument/hover` on prompt files: on a dependency, the task it names (title, id,
//! prompt file) and, when a run included it, its last status and branch.

use tower_lsp_server::ls_types::*;

use crate::core::state::RunState;
use crate::lsp::language::{tasks_near, Prompt};
use crate::lsp::session::Shared;
use crate::spec::task::TaskSpec;

/// The handler. Run states come from the session's published tree view (no lock waited on).
pub fn hover(shared: &Shared, params: &HoverParams) -> Option<Hover> {
    let at = &params.text_document_position_params;
    let prompt = Prompt::of(shared, &at.text_document.uri)?;
    prompt.dependency_at(at.position)?;
    let view = shared.tree_view();
    let runs: Vec<&RunState> = view.runs.iter().map(|r| &*r.state).collect();
    let (range, value) = describe(&prompt, at.position, &tasks_near(shared, &prompt), &runs)?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range: Some(range),
    })
}

/// The dependency at `position` and what to say about it; `runs` oldest first.
fn describe(prompt: &Prompt, position: Position, tasks: &[TaskSpec], runs: &[&RunState]) -> Option<(Range, String)> {
    let written = prompt.dependency_at(position)?;
    let task = prompt.resolve(&written.text, tasks)?;
    let mut text = format!(
        "**{}**\n\nTask `{}` · `{}`",
        task.title,
        task.id,
        prompt.in_repo(&task.prompt_file)
    );
    let last = runs.iter().rev().find_map(|r| {
        r.tasks
            .iter()
            .find(|t| t.prompt_file == task.prompt_file)
            .map(|t| (r, t))
    });
    match last {
        Some((run, t)) => {
            text += &format!(
                "\n\nLast run `{}`: **{}** · branch `{}`",
                run.run_id,
                t.status.as_str(),
                t.branch
            );
            if let Some(error) = t.error.as_deref().and_then(|e| e.lines().next()) {
                text += &format!("\n\n{error}");
            }
        }
        None => text += "\n\nNot run yet.",
    }
    Some((prompt.range(written.span), text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::language::fixture::fixture;

    /// A run state with one task per (id, prompt file, status, error).
    fn run(id: &str, tasks: &[(&str, &std::path::Path, &str, Option<&str>)]) -> RunState {
        let tasks: Vec<serde_json::Value> = tasks
            .iter()
            .map(|(task, file, status, error)| {
                serde_json::json!({
                    "id": task, "title": task, "prompt_file": file, "agent": "claude", "status": status,
                    "branch": format!("gadugi/{task}"), "worktree": "/nonexistent", "depends_on": [],
                    "after": [], "attempts": 1, "commits": 0, "files_changed": [], "error": error,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "run_id": id, "status": "failed", "repo_root": "/nonexistent", "base_commit": "0",
            "base_branch": null, "max_parallel": 1, "orchestrator_pid": 1,
            "started_at": "2026-01-01T00:00:00Z", "finished_at": null, "critical_path": [],
            "conflicts": [], "tasks": tasks
        }))
        .unwrap()
    }

    #[test]
    fn hover_cases() {
        let cases = [
            (
                "never run",
                "---\ndepends_on: [sch$0ema]\n---\n# T\nx\n",
                false,
                Some("**Write the schema**\n\nTask `schema` · `prompts/schema.md`\n\nNot run yet."),
            ),
            (
                "the last run decides",
                "# T\n\nDepends on: sch$0ema.md\n",
                true,
                Some("**Write the schema**\n\nTask `schema` · `prompts/schema.md`\n\nLast run `r2`: **failed** · branch `gadugi/schema`\n\nexit 3"),
            ),
            ("not a task", "# T\n\nDepends on: nob$0ody\n", true, None),
            ("not on a dependency", "# T$0\n\nDepends on: schema\n", true, None),
        ];
        crate::testing::check_table(&cases, |(name, text, with_runs, expected)| {
            let f = fixture(&[
                ("prompts/schema.md", "---\nid: schema\n---\n# Write the schema\nx\n"),
                ("prompts/api.md", text),
            ]);
            let schema = f.root.join("prompts/schema.md");
            let runs = [
                run("r1", &[("schema", &schema, "succeeded", None)]),
                run("r2", &[("schema", &schema, "failed", Some("exit 3\nmore"))]),
                run("r3", &[("other", &f.root.join("prompts/other.md"), "succeeded", None)]),
            ];
            let runs: Vec<&RunState> = if *with_runs { runs.iter().collect() } else { vec![] };
            let got = describe(&f.prompt, f.cursor, &f.tasks, &runs);
            if let Some((range, _)) = &got {
                let (line, _) = f.prompt.byte_position(range.start);
                let (_, from) = f.prompt.byte_position(range.start);
                let (_, to) = f.prompt.byte_position(range.end);
                assert!(f.prompt.line(line)[from..to].starts_with("schema"), "{range:?}");
            }
            (
                format!("{name}: {text:?}"),
                expected.map(String::from),
                got.map(|(_, t)| t),
            )
        });
    }
}
