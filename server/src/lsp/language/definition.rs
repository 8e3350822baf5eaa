//! `textDocument/definition` on prompt files: from a dependency (in `depends_on` or a
//! `Depends on:` line) to the prompt file it names.

use tower_lsp_server::ls_types::*;

use crate::lsp::language::{tasks_near, Prompt};
use crate::lsp::session::Shared;
use crate::spec::task::TaskSpec;

/// The handler.
pub fn definition(shared: &Shared, params: &GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
    let at = &params.text_document_position_params;
    let prompt = Prompt::of(shared, &at.text_document.uri)?;
    prompt.dependency_at(at.position)?;
    let location = target(&prompt, at.position, &tasks_near(shared, &prompt))?;
    Some(GotoDefinitionResponse::Scalar(location))
}

/// Where the dependency at `position` is defined: the start of its prompt file.
fn target(prompt: &Prompt, position: Position, tasks: &[TaskSpec]) -> Option<Location> {
    let written = prompt.dependency_at(position)?;
    let task = prompt.resolve(&written.text, tasks)?;
    Some(Location::new(Uri::from_file_path(&task.prompt_file)?, Range::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::language::fixture::fixture;

    #[test]
    fn definition_cases() {
        let cases = [
            (
                "an id in a flow list",
                "---\ndepends_on: [sch$0ema]\n---\n# T\nx\n",
                Some("prompts/schema.md"),
            ),
            (
                "a path at its end",
                "---\ndepends_on: [schema.md$0]\n---\n# T\nx\n",
                Some("prompts/schema.md"),
            ),
            (
                "a block list item",
                "---\ndepends_on:\n  - $0setup-db\n---\n# T\nx\n",
                Some("prompts/setup-db.md"),
            ),
            (
                "a Depends on line",
                "# T\n\nDepends on: schema, `set$0up-db`\n",
                Some("prompts/setup-db.md"),
            ),
            (
                "a path elsewhere",
                "# T\n\nDepends on: ../other/f$0ar.md\n",
                Some("other/far.md"),
            ),
            (
                "after non-ASCII text (UTF-16 columns)",
                "# T\n\nDepends on: ünï😀, sch$0ema\n",
                Some("prompts/schema.md"),
            ),
            ("an unknown id", "# T\n\nDepends on: nob$0ody\n", None),
            ("outside the repository", "# T\n\nDepends on: ../../../x$0.md\n", None),
            (
                "not on a dependency",
                "---\ndepends_on: [schema]\n---\n# T$0\nx\n",
                None,
            ),
            (
                "a Depends on line in a fence",
                "# T\n```\nDepends on: sch$0ema\n```\n",
                None,
            ),
        ];
        crate::testing::check_table(&cases, |(name, text, expected)| {
            let f = fixture(&[
                ("prompts/schema.md", "---\nid: schema\n---\n# Schema\nx\n"),
                ("prompts/setup-db.md", "# Set up\nx\n"),
                ("other/far.md", "# Far\nx\n"),
                ("prompts/api.md", text),
            ]);
            let got = target(&f.prompt, f.cursor, &f.tasks).map(|l| {
                let path = l.uri.to_file_path().unwrap().into_owned();
                assert_eq!(l.range, Range::default());
                path.strip_prefix(&f.root).unwrap().display().to_string()
            });
            (format!("{name}: {text:?}"), expected.map(String::from), got)
        });
    }
}
