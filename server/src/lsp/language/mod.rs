//! Prompt files as a language: completion (`completion.rs`), go to definition
//! (`definition.rs`), hover (`hover.rs`) and document links (`links.rs`), one handler per file.
//!
//! Every handler reads the document through `spec::task::outline` — the loader's own rules
//! for the front matter, `Depends on:` lines and reference lists, with positions — and finds
//! what a dependency names with `spec::plan::find_dependency`, the planner's rule, among the
//! prompt files of the document's folder (the files `documents.rs` checks it with; open ones
//! with the editor's text). Requests read only the document's folder (small prompt files),
//! `gadugi.toml` for the profiles, and the run tree the session already holds.

pub mod completion;
pub mod definition;
pub mod hover;
pub mod links;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tower_lsp_server::ls_types::{Position, Range, Uri};

use crate::agent::builtins::{builtin, BUILTINS};
use crate::agent::profile::AgentProfile;
use crate::lsp::documents::MAX_CHECKED_BYTES;
use crate::lsp::session::{lock, Shared};
use crate::spec::config::{Config, CONFIG_FILE};
use crate::spec::plan::{dependency_path, find_dependency};
use crate::spec::task::{
    load_task, load_task_from_text, outline, FrontMatterKey, Outline, TaskSpec, TextSpan, Written,
};

/// Runs a handler on the blocking pool: handlers read the prompt files of a folder (about
/// 20 ms of reading and parsing for 200 files, release build), which must not hold up one of
/// the two workers that answer the client. A handler that panicked answers nothing.
pub async fn off_the_workers<T: Send + 'static>(
    shared: &Arc<Shared>,
    handler: impl FnOnce(&Shared) -> Option<T> + Send + 'static,
) -> Option<T> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || handler(&shared))
        .await
        .ok()
        .flatten()
}

/// A prompt file as the language features see it.
pub struct Prompt {
    /// Canonical path of the file.
    pub path: PathBuf,
    /// Top level of its repository (canonical).
    pub repo_root: PathBuf,
    /// The editor's text when it is open, else the file's.
    pub text: String,
    pub outline: Outline,
}

impl Prompt {
    /// The prompt file `uri` names, when it is a markdown file of a workspace folder that is
    /// open or small enough to read.
    pub fn of(shared: &Shared, uri: &Uri) -> Option<Prompt> {
        let path = uri.to_file_path()?.into_owned();
        let path = path.canonicalize().unwrap_or(path);
        if path.extension().is_none_or(|x| x != "md") {
            return None;
        }
        let root = shared.root_of(&path)?;
        let open = lock(&shared.docs).get(&path).cloned();
        let text = match open {
            Some(text) => text,
            None => read_small(&path)?,
        };
        Some(Prompt::new(path, root.repo_root, text))
    }

    /// The prompt file at `path` (canonical) with this text.
    pub fn new(path: PathBuf, repo_root: PathBuf, text: String) -> Prompt {
        Prompt {
            outline: outline(&text),
            path,
            repo_root,
            text,
        }
    }

    /// Line `n` of the text (empty past its end).
    pub fn line(&self, n: usize) -> &str {
        self.text.lines().nth(n).unwrap_or_default()
    }

    /// An LSP position (UTF-16 columns) as a line and a byte column on it.
    pub fn byte_position(&self, position: Position) -> (usize, usize) {
        let line = position.line as usize;
        let text = self.line(line);
        let mut units = 0;
        for (i, c) in text.char_indices() {
            if units >= position.character as usize {
                return (line, i);
            }
            units += c.len_utf16();
        }
        (line, text.len())
    }

    /// The LSP range of a span.
    pub fn range(&self, span: TextSpan) -> Range {
        let text = self.line(span.line);
        let column = |byte: usize| text.get(..byte).map_or(0, |s| s.encode_utf16().count()) as u32;
        Range::new(
            Position::new(span.line as u32, column(span.start)),
            Position::new(span.line as u32, column(span.end)),
        )
    }

    /// The dependency written at an LSP position.
    pub fn dependency_at(&self, position: Position) -> Option<&Written> {
        let (line, column) = self.byte_position(position);
        self.outline.depends_on.iter().find(|w| w.span.touches(line, column))
    }

    /// The folder of the prompt file.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// The task a dependency written here names: a prompt file of its folder by id or path
    /// (as the planner resolves it), else a prompt file elsewhere in the repository.
    pub fn resolve(&self, raw: &str, tasks: &[TaskSpec]) -> Option<TaskSpec> {
        if let Some(task) = find_dependency(&self.path, raw, tasks) {
            return Some(task.clone());
        }
        let path = dependency_path(&self.path, raw);
        let inside = path.canonicalize().is_ok_and(|p| p.starts_with(&self.repo_root));
        if !inside || path.extension().is_none_or(|x| x != "md") {
            return None;
        }
        read_small(&path).and_then(|text| load_task_from_text(&path, &text).ok())
    }

    /// `path` relative to the repository, for people.
    pub fn in_repo(&self, path: &Path) -> String {
        path.strip_prefix(&self.repo_root).unwrap_or(path).display().to_string()
    }
}

/// The prompt files of `dir` that load, as tasks, in file-name order; `open` holds the
/// editor's text of open documents (path → text).
pub fn folder_tasks(dir: &Path, open: &HashMap<PathBuf, String>) -> Vec<TaskSpec> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| p.canonicalize().unwrap_or(p))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| match open.get(p) {
            Some(text) => load_task_from_text(p, text).ok(),
            None => read_small(p).and_then(|_| load_task(p).ok()),
        })
        .collect()
}

/// The tasks of a prompt file's folder, with the editor's text of the open ones.
pub fn tasks_near(shared: &Shared, prompt: &Prompt) -> Vec<TaskSpec> {
    let dir = prompt.dir();
    let open: HashMap<PathBuf, String> = lock(&shared.docs)
        .iter()
        .filter(|(p, _)| p.parent() == Some(dir))
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect();
    folder_tasks(dir, &open)
}

/// The agent profiles a prompt file may name, each with a description of what it runs: the
/// built-ins (`claude` first), `command` when gadugi.toml gives its command line, and the
/// `[profiles]` of gadugi.toml (a gadugi.toml that does not load gives the built-ins).
pub fn profiles(repo_root: &Path) -> Vec<(String, String)> {
    let file = repo_root.join(CONFIG_FILE);
    let config = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| Config::parse(repo_root, &file, &text).ok())
        .unwrap_or_else(|| Config::defaults(repo_root));
    let mut names: Vec<&str> = vec!["claude"];
    names.extend(BUILTINS.iter().map(|b| b.name));
    names.push("simulated");
    if config.agent.command.is_some() {
        names.push("command");
    }
    names.extend(config.profiles.keys().map(String::as_str));
    let default = config
        .agent
        .profile
        .as_deref()
        .unwrap_or(crate::agent::profile::DEFAULT_PROFILE);
    names
        .into_iter()
        .filter_map(|name| {
            let profile = AgentProfile::resolve(Some(name), &config, None).ok()?;
            let command = shell_words::join(&profile.argv);
            let what = match name {
                "claude" => "Claude Code (`claude`).".to_string(),
                "simulated" => "Gadugi's simulated agent, for demos and tests: no model, it does what the prompt's `<!-- gadugi-sim: ... -->` line says.".to_string(),
                "command" => "The command line of `[agent] command` in gadugi.toml.".to_string(),
                _ if config.profiles.contains_key(name) => format!("`[profiles.{name}]` of gadugi.toml."),
                _ => match builtin(name) {
                    Some(b) => format!("Built in. Install: `{}`.\n\nPermissions: {}", b.install, b.permissions),
                    None => String::new(),
                },
            };
            let default = if name == default { "\n\nThe default profile of this repository." } else { "" };
            Some((name.to_string(), format!("{what}{default}\n\n```sh\n{command}\n```")))
        })
        .collect()
}

/// What a front-matter key sets, its value and an example, in Markdown.
pub fn key_documentation(key: &FrontMatterKey) -> String {
    format!(
        "{}\n\nValue: {}.\n\n```yaml\n{}\n```",
        key.doc, key.expected, key.example
    )
}

/// The text of a regular file no larger than `documents::MAX_CHECKED_BYTES`.
fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_CHECKED_BYTES as u64 {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

#[cfg(test)]
pub mod fixture {
    //! Prompt folders for the handlers' tests: files written to a temporary repository,
    //! one of them holding the cursor `$0`.

    use super::*;

    /// A temporary repository with prompt files, and the one holding the cursor.
    pub struct Fixture {
        _tmp: tempfile::TempDir,
        pub root: PathBuf,
        pub prompt: Prompt,
        pub cursor: Position,
        pub tasks: Vec<TaskSpec>,
    }

    /// Writes `files` (path relative to the repository, text) and reads back the one with
    /// `$0` (its cursor, removed from the text).
    pub fn fixture(files: &[(&str, &str)]) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let mut with_cursor = None;
        for (rel, text) in files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            if let Some(at) = text.find("$0") {
                let before = &text[..at];
                let line = before.matches('\n').count() as u32;
                let column = before.rsplit('\n').next().unwrap_or_default().encode_utf16().count() as u32;
                with_cursor = Some((path.clone(), Position::new(line, column)));
                std::fs::write(&path, text.replacen("$0", "", 1)).unwrap();
            } else {
                std::fs::write(&path, text).unwrap();
            }
        }
        let (path, cursor) = with_cursor.expect("one file holds the cursor $0");
        let text = std::fs::read_to_string(&path).unwrap();
        let prompt = Prompt::new(path.canonicalize().unwrap(), root.clone(), text);
        let tasks = folder_tasks(prompt.dir(), &HashMap::new());
        Fixture {
            _tmp: tmp,
            root,
            prompt,
            cursor,
            tasks,
        }
    }
}
