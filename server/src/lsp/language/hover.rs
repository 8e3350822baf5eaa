//! `textDocument/hover` on prompt files: on a dependency, the task it names (title, id,
//! prompt file) and, when a run included it, its last status and branch; on a front-matter
//! key, what it sets; on the `agent` value, what the profile runs.

use tower_lsp_server::ls_types::*;

use crate::core::state::RunState;
use crate::lsp::language::{key_documentation, profiles, tasks_near, Prompt};
use crate::lsp::session::Shared;
use crate::spec::task::{TaskSpec, FRONT_MATTER_KEYS};

/// The handler. Run states come from the session's published tree view (no lock waited on).
pub fn hover(shared: &Shared, params: &HoverParams) -> Option<Hover> {
    let at = &params.text_document_position_params;
    let prompt = Prompt::of(shared, &at.text_document.uri)?;
    let (range, value) = if prompt.dependency_at(at.position).is_some() {
        let view = shared.tree_view();
        let runs: Vec<&RunState> = view.runs.iter().map(|r| &*r.state).collect();
        describe(&prompt, at.position, &tasks_near(shared, &prompt), &runs)?
    } else {
        describe_setting(&prompt, at.position, || profiles(&prompt.repo_root))?
    };
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

/// The front-matter key at `position` and what it sets, or the `agent` value there and what
/// that profile runs (`profiles` gives the profiles with their documentation).
fn describe_setting(
    prompt: &Prompt,
    position: Position,
    profiles: impl FnOnce() -> Vec<(String, String)>,
) -> Option<(Range, String)> {
    let (line, column) = prompt.byte_position(position);
    if let Some(written) = prompt.outline.keys.iter().find(|k| k.span.touches(line, column)) {
        let key = FRONT_MATTER_KEYS.iter().find(|k| k.name == written.name)?;
        let text = format!("**{}**\n\n{}", key.name, key_documentation(key));
        return Some((prompt.range(written.span), text));
    }
    let agent = prompt.outline.agent.as_ref().filter(|w| w.span.touches(line, column))?;
    let (name, doc) = profiles().into_iter().find(|(name, _)| *name == agent.text)?;
    Some((prompt.range(agent.span), format!("**{name}**\n\n{doc}")))
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
    fn setting_cases() {
        let cases = [
            (
                "a key",
                "---\ndepe$0nds_on: [x]\n---\n# T\nx\n",
                Some("**depends_on**\n\nTasks that must succeed"),
            ),
            ("an unknown key", "---\ncolo$0ur: red\n---\n# T\nx\n", None),
            (
                "an agent",
                "---\nagent: cod$0ex\n---\n# T\nx\n",
                Some("**codex**\n\nBuilt in. Install: `npm install -g @openai/codex`"),
            ),
            ("an unknown agent", "---\nagent: nob$0ody\n---\n# T\nx\n", None),
            ("a value that is no agent", "---\ntitle: cod$0ex\n---\n# T\nx\n", None),
        ];
        crate::testing::check_table(&cases, |(name, text, expected)| {
            let f = fixture(&[("prompts/api.md", text)]);
            let got = describe_setting(&f.prompt, f.cursor, || profiles(&f.root)).map(|(_, t)| t);
            // The start is enough: the rest is the documentation the completion tests check.
            let got = match (expected, got) {
                (Some(start), Some(text)) if text.starts_with(start) => Some(start.to_string()),
                (_, got) => got,
            };
            (format!("{name}: {text:?}"), expected.map(String::from), got)
        });
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
