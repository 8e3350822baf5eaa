//! `textDocument/completion` on prompt files: task ids and prompt paths in `depends_on` and in
//! `Depends on:` lines, front-matter keys, and agent profile names, each with its
//! documentation.

use std::path::Path;

use tower_lsp_server::ls_types::*;

use crate::lsp::language::{key_documentation, profiles, tasks_near, Prompt};
use crate::lsp::session::Shared;
use crate::spec::plan::find_dependency;
use crate::spec::task::{TaskSpec, FRONT_MATTER_KEYS};

/// Characters after which editors ask again without the user asking: the start of a list
/// item (`[`, `,`, a space after `:` or `-`) and a folder of a path (`/`).
pub const TRIGGER_CHARACTERS: [&str; 4] = ["[", ",", " ", "/"];

/// What may be written at the cursor, and from which byte column of its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A front-matter key; `colon`: the line has its `:` already.
    Key { start: usize, colon: bool },
    /// A dependency: a task id or a prompt file's path.
    Dependency { start: usize },
    /// An agent profile's name.
    Agent { start: usize },
}

/// The handler: what fits at the cursor, or nothing outside the places above.
pub fn complete(shared: &Shared, params: &CompletionParams) -> Option<CompletionResponse> {
    let at = &params.text_document_position;
    let prompt = Prompt::of(shared, &at.text_document.uri)?;
    let items = match slot(&prompt, at.position)? {
        Slot::Dependency { .. } => items(&prompt, at.position, &tasks_near(shared, &prompt), &[]),
        Slot::Agent { .. } => items(&prompt, at.position, &[], &profiles(&prompt.repo_root)),
        Slot::Key { .. } => items(&prompt, at.position, &[], &[]),
    };
    Some(CompletionResponse::List(CompletionList {
        is_incomplete: false,
        items,
    }))
}

/// What the cursor is in: a front-matter key or value, or the list of a `Depends on:` line.
fn slot(prompt: &Prompt, position: Position) -> Option<Slot> {
    let (line, column) = prompt.byte_position(position);
    let before = prompt.line(line).get(..column)?;
    let start = before
        .rfind(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ':' | '`' | '"' | '\''))
        .map_or(0, |i| i + before[i..].chars().next().map_or(1, char::len_utf8));
    let outline = &prompt.outline;
    if outline.front_matter.as_ref().is_some_and(|f| f.contains(&line)) {
        let unindented = !before.starts_with(|c: char| c.is_whitespace() || c == '-' || c == '#');
        if unindented && !before.contains(':') {
            let colon = prompt.line(line).contains(':');
            return Some(Slot::Key { start: 0, colon });
        }
        return match outline.key_at(line)?.name.as_str() {
            "depends_on" => Some(Slot::Dependency { start }),
            "agent" => Some(Slot::Agent { start }),
            _ => None,
        };
    }
    let &(_, list) = outline.depends_on_lines.iter().find(|&&(l, _)| l == line)?;
    (column >= list).then_some(Slot::Dependency { start: start.max(list) })
}

/// The completion items at `position`: `tasks` are the prompt files of the folder (for
/// dependencies), `profiles` the agent profiles with their documentation (for `agent`).
fn items(
    prompt: &Prompt,
    position: Position,
    tasks: &[TaskSpec],
    profiles: &[(String, String)],
) -> Vec<CompletionItem> {
    let Some(slot) = slot(prompt, position) else {
        return vec![];
    };
    let (line, _) = prompt.byte_position(position);
    let start = match slot {
        Slot::Key { start, .. } | Slot::Dependency { start } | Slot::Agent { start } => start,
    };
    let from = prompt.range(crate::spec::task::TextSpan {
        line,
        start,
        end: start,
    });
    let replace = Range::new(from.start, position);
    let item =
        |label: String, insert: String, kind, detail: Option<String>, doc: String, sort: String| CompletionItem {
            filter_text: Some(label.clone()),
            label,
            kind: Some(kind),
            detail,
            documentation: Some(Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: doc,
            })),
            sort_text: Some(sort),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(replace, insert))),
            ..Default::default()
        };
    match slot {
        Slot::Key { colon, .. } => {
            let written: Vec<&str> = prompt
                .outline
                .keys
                .iter()
                .filter(|k| k.span.line != line)
                .map(|k| k.name.as_str())
                .collect();
            FRONT_MATTER_KEYS
                .iter()
                .enumerate()
                .filter(|(_, k)| !written.contains(&k.name))
                .map(|(i, k)| {
                    let insert = if colon {
                        k.name.to_string()
                    } else {
                        format!("{}: ", k.name)
                    };
                    let doc = key_documentation(k);
                    let detail = Some(k.expected.to_string());
                    item(
                        k.name.into(),
                        insert,
                        CompletionItemKind::PROPERTY,
                        detail,
                        doc,
                        format!("{i:02}"),
                    )
                })
                .collect()
        }
        Slot::Agent { .. } => profiles
            .iter()
            .enumerate()
            .map(|(i, (name, doc))| {
                let sort = format!("{i:02}");
                item(
                    name.clone(),
                    name.clone(),
                    CompletionItemKind::ENUM_MEMBER,
                    None,
                    doc.clone(),
                    sort,
                )
            })
            .collect(),
        Slot::Dependency { start } => {
            let typed = &prompt.line(line)[start..prompt.byte_position(position).1];
            let listed: Vec<&Path> = prompt
                .outline
                .depends_on
                .iter()
                .filter(|w| w.span.start != start || w.span.line != line)
                .filter_map(|w| find_dependency(&prompt.path, &w.text, tasks))
                .map(|t| t.prompt_file.as_path())
                .collect();
            let mut out = vec![];
            if let Some((folder, _)) = typed.rsplit_once('/') {
                // A path: the prompt files of the folder typed so far.
                let dir = crate::spec::plan::dependency_path(&prompt.path, &format!("{folder}/x"));
                let dir = dir.parent().unwrap_or(prompt.dir());
                let inside = dir.canonicalize().is_ok_and(|d| d.starts_with(&prompt.repo_root));
                let there = if inside {
                    crate::lsp::language::folder_tasks(dir, &Default::default())
                } else {
                    vec![]
                };
                for task in there.iter().filter(|t| t.prompt_file != prompt.path) {
                    let name = task.prompt_file.file_name().unwrap_or_default().to_string_lossy();
                    let label = format!("{folder}/{name}");
                    let doc = format!("`{}` (task `{}`)", prompt.in_repo(&task.prompt_file), task.id);
                    out.push(item(
                        label.clone(),
                        label,
                        CompletionItemKind::FILE,
                        Some(task.title.clone()),
                        doc,
                        format!("1{name}"),
                    ));
                }
                return out;
            }
            let others = tasks
                .iter()
                .filter(|t| t.prompt_file != prompt.path && !listed.contains(&t.prompt_file.as_path()));
            for task in others {
                let file = prompt.in_repo(&task.prompt_file);
                let doc = format!("**{}**\n\n`{file}`", task.title);
                let detail = Some(task.title.clone());
                out.push(item(
                    task.id.clone(),
                    task.id.clone(),
                    CompletionItemKind::REFERENCE,
                    detail.clone(),
                    doc.clone(),
                    format!("0{}", task.id),
                ));
                let name = task
                    .prompt_file
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                out.push(item(
                    name.clone(),
                    name.clone(),
                    CompletionItemKind::FILE,
                    detail,
                    doc,
                    format!("1{name}"),
                ));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::language::fixture::fixture;

    const SCHEMA: (&str, &str) = ("prompts/schema.md", "---\nid: schema\n---\n# Write the schema\nx\n");
    const SETUP: (&str, &str) = ("prompts/setup-db.md", "# Set up the database\nx\n");
    const OTHER: (&str, &str) = ("other/far.md", "# Far away\nx\n");

    /// Completion at `$0` in the last file: the labels offered and the text the first one
    /// replaces (from where to the cursor).
    fn labels(files: &[(&str, &str)]) -> (Vec<String>, String) {
        let f = fixture(files);
        let profiles = profiles(&f.root);
        let got = items(&f.prompt, f.cursor, &f.tasks, &profiles);
        let replaced = got.first().map_or(String::new(), |i| match &i.text_edit {
            Some(CompletionTextEdit::Edit(e)) => {
                let line = f.prompt.line(e.range.start.line as usize);
                let (_, from) = f.prompt.byte_position(e.range.start);
                let (_, to) = f.prompt.byte_position(e.range.end);
                line[from..to].to_string()
            }
            _ => "no edit".into(),
        });
        (got.into_iter().map(|i| i.label).collect(), replaced)
    }

    #[test]
    fn completion_cases() {
        let ids_and_paths = || -> Vec<String> {
            ["schema", "schema.md", "setup-db", "setup-db.md"]
                .map(String::from)
                .to_vec()
        };
        let profiles: Vec<String> = ["claude", "codex", "gemini", "aider", "opencode", "simulated"]
            .map(String::from)
            .to_vec();
        let keys_but = |but: &[&str]| -> Vec<String> {
            FRONT_MATTER_KEYS
                .iter()
                .map(|k| k.name.to_string())
                .filter(|k| !but.contains(&k.as_str()))
                .collect()
        };
        /// Name, prompt text with the cursor, and the labels offered with the text the first replaces.
        type Case<'a> = (&'a str, &'a str, (Vec<String>, String));
        let cases: Vec<Case> = vec![
            (
                "flow list, empty",
                "---\ndepends_on: [$0]\n---\n# T\nx\n",
                (ids_and_paths(), String::new()),
            ),
            (
                "flow list, typed",
                "---\ndepends_on: [sch$0]\n---\n# T\nx\n",
                (ids_and_paths(), "sch".into()),
            ),
            (
                "flow list, second item: the first is not offered again",
                "---\ndepends_on: [schema, set$0]\n---\n# T\nx\n",
                (vec!["setup-db".into(), "setup-db.md".into()], "set".into()),
            ),
            (
                "block list",
                "---\ndepends_on:\n  - setup$0\n---\n# T\nx\n",
                (ids_and_paths(), "setup".into()),
            ),
            (
                "scalar",
                "---\ndepends_on: $0\n---\n# T\nx\n",
                (ids_and_paths(), String::new()),
            ),
            (
                "unclosed front matter",
                "---\ndepends_on: [$0",
                (ids_and_paths(), String::new()),
            ),
            (
                "Depends on line",
                "# T\n\nDepends on: $0\n",
                (ids_and_paths(), String::new()),
            ),
            (
                "Depends on line, second item",
                "# T\n\n- **Depends on:** setup-db, `sc$0`\n",
                (vec!["schema".into(), "schema.md".into()], "sc".into()),
            ),
            (
                "before the list of a Depends on line",
                "# T\n\nDepends$0 on: a\n",
                (vec![], String::new()),
            ),
            (
                "a Depends on line in a fence",
                "# T\n```\nDepends on: $0\n```\n",
                (vec![], String::new()),
            ),
            ("plain text", "# T\n\nSome $0 text\n", (vec![], String::new())),
            (
                "a path into another folder",
                "---\ndepends_on: [../other/$0]\n---\n# T\nx\n",
                (vec!["../other/far.md".into()], "../other/".into()),
            ),
            (
                "a key",
                "---\nid: x\nde$0\n---\n# T\nx\n",
                (keys_but(&["id"]), "de".into()),
            ),
            (
                "an empty line of the front matter",
                "---\n$0\n---\n# T\nx\n",
                (keys_but(&[]), String::new()),
            ),
            (
                "a key's value that takes no completion",
                "---\ntitle: $0\n---\n# T\nx\n",
                (vec![], String::new()),
            ),
            (
                "an agent",
                "---\nagent: c$0\n---\n# T\nx\n",
                (profiles.clone(), "c".into()),
            ),
        ];
        crate::testing::check_table(&cases, |(name, text, expected)| {
            let got = labels(&[SCHEMA, SETUP, OTHER, ("prompts/api.md", text)]);
            (format!("{name}: {text:?}"), expected.clone(), got)
        });
    }

    #[test]
    fn keys_insert_their_colon_and_say_what_they_do() {
        let f = fixture(&[("p/a.md", "---\ndep$0\n---\n# T\nx\n")]);
        let got = items(&f.prompt, f.cursor, &f.tasks, &[]);
        let depends = got.iter().find(|i| i.label == "depends_on").unwrap();
        let Some(CompletionTextEdit::Edit(edit)) = &depends.text_edit else {
            panic!()
        };
        assert_eq!(edit.new_text, "depends_on: ");
        let Some(Documentation::MarkupContent(doc)) = &depends.documentation else {
            panic!()
        };
        assert!(
            doc.value.contains("must succeed before this one starts"),
            "{}",
            doc.value
        );
        let f = fixture(&[("p/a.md", "---\nag$0: x\n---\n# T\nx\n")]);
        let got = items(&f.prompt, f.cursor, &f.tasks, &[]);
        let Some(CompletionTextEdit::Edit(edit)) = &got.iter().find(|i| i.label == "agent").unwrap().text_edit else {
            panic!()
        };
        assert_eq!(edit.new_text, "agent");
    }

    #[test]
    fn profiles_come_with_gadugi_toml() {
        let f = fixture(&[
            (
                "gadugi.toml",
                "[agent]\nprofile = \"mine\"\n\n[profiles.mine]\ncommand = \"my-agent --go {prompt_file}\"\n",
            ),
            ("p/a.md", "---\nagent: $0\n---\n# T\nx\n"),
        ]);
        let profiles = profiles(&f.root);
        let got = items(&f.prompt, f.cursor, &f.tasks, &profiles);
        let names: Vec<&str> = got.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(
            names,
            ["claude", "codex", "gemini", "aider", "opencode", "simulated", "mine"]
        );
        let doc = |name: &str| match &got.iter().find(|i| i.label == name).unwrap().documentation {
            Some(Documentation::MarkupContent(m)) => m.value.clone(),
            _ => panic!(),
        };
        assert!(doc("mine").contains("my-agent --go"), "{}", doc("mine"));
        assert!(doc("mine").contains("The default profile"), "{}", doc("mine"));
        assert!(
            doc("codex").contains("npm install -g @openai/codex"),
            "{}",
            doc("codex")
        );
        assert!(!doc("codex").contains("The default profile"), "{}", doc("codex"));
    }
}
