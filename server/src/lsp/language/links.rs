//! `textDocument/documentLink` on prompt files: each path of the front matter's `files` that
//! names a file of the repository links to it (globs and paths not there yet do not).

use tower_lsp_server::ls_types::*;

use crate::lsp::language::Prompt;
use crate::lsp::session::Shared;

/// The handler.
pub fn links(shared: &Shared, params: &DocumentLinkParams) -> Option<Vec<DocumentLink>> {
    Some(document_links(&Prompt::of(shared, &params.text_document.uri)?))
}

fn document_links(prompt: &Prompt) -> Vec<DocumentLink> {
    prompt
        .outline
        .files
        .iter()
        .filter(|w| !w.text.contains(['*', '?', '[', '{']))
        .filter_map(|w| {
            let path = prompt.repo_root.join(&w.text).canonicalize().ok()?;
            if !path.starts_with(&prompt.repo_root) || !path.is_file() {
                return None;
            }
            Some(DocumentLink {
                range: prompt.range(w.span),
                target: Some(Uri::from_file_path(&path)?),
                tooltip: Some(format!("Open {}", prompt.in_repo(&path))),
                data: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::language::fixture::fixture;

    #[test]
    fn link_cases() {
        let cases = [
            (
                "a flow list",
                "---\nfiles: [src/lib.rs, src/*.rs, src/new.rs, src]\n---\n# T$0\nx\n",
                vec![("src/lib.rs", (1, 8, 18))],
            ),
            (
                "a block list, quoted",
                "---\nfiles:\n  - 'src/lib.rs'\n  - ./README.md # c\n---\n# T$0\nx\n",
                vec![("src/lib.rs", (2, 5, 15)), ("README.md", (3, 4, 15))],
            ),
            (
                "a scalar",
                "---\nfiles: src/lib.rs\n---\n# T$0\nx\n",
                vec![("src/lib.rs", (1, 7, 17))],
            ),
            (
                "outside the repository",
                "---\nfiles: [../../etc/passwd]\n---\n# T$0\nx\n",
                vec![],
            ),
            ("no front matter", "# T$0\nfiles: src/lib.rs\n", vec![]),
        ];
        crate::testing::check_table(&cases, |(name, text, expected)| {
            let f = fixture(&[("src/lib.rs", "x"), ("README.md", "x"), ("prompts/a.md", text)]);
            let got: Vec<(String, (u32, u32, u32))> = document_links(&f.prompt)
                .into_iter()
                .map(|l| {
                    let target = l.target.unwrap().to_file_path().unwrap().into_owned();
                    let target = target.strip_prefix(&f.root).unwrap().display().to_string();
                    (
                        target,
                        (l.range.start.line, l.range.start.character, l.range.end.character),
                    )
                })
                .collect();
            let expected: Vec<(String, (u32, u32, u32))> = expected.iter().map(|(p, r)| (p.to_string(), *r)).collect();
            (format!("{name}: {text:?}"), expected, got)
        });
    }
}
