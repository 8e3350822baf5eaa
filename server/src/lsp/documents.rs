//! Open prompt files: plan problems as diagnostics while the user edits. A prompt file is
//! checked together with the other `*.md` files of its folder (where its dependencies are
//! named), using the editor's unsaved text for open files: bad front matter, an unknown
//! dependency, a cycle — each on the offending line.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tower_lsp_server::ls_types::{Diagnostic, Uri};

use crate::error::InputError;
use crate::git::Repo;
use crate::lsp::diagnostics::{self, Source};
use crate::lsp::session::{lock, Shared};
use crate::spec::config::Config;

fn path_of(uri: &Uri) -> Option<PathBuf> {
    let p = uri.to_file_path()?.into_owned();
    if p.extension().is_some_and(|x| x == "md") {
        Some(p.canonicalize().unwrap_or(p))
    } else {
        None
    }
}

/// `textDocument/didOpen`.
pub fn opened(shared: &Arc<Shared>, uri: &Uri, text: String) {
    let Some(path) = path_of(uri) else { return };
    if shared.root_of(&path).is_none() {
        return;
    }
    if let Some(dir) = path.parent() {
        shared.watch_folder(dir);
    }
    lock(&shared.docs).insert(path.clone(), text);
    recheck_file(shared, &path);
}

/// `textDocument/didChange` (full text).
pub fn changed(shared: &Arc<Shared>, uri: &Uri, text: String) {
    let Some(path) = path_of(uri) else { return };
    if !lock(&shared.docs).contains_key(&path) {
        return;
    }
    lock(&shared.docs).insert(path.clone(), text);
    recheck_file(shared, &path);
}

/// `textDocument/didSave` (with or without the text).
pub fn saved(shared: &Arc<Shared>, uri: &Uri, text: Option<String>) {
    let Some(path) = path_of(uri) else { return };
    if let Some(text) = text {
        if let Some(doc) = lock(&shared.docs).get_mut(&path) {
            *doc = text;
        }
    }
    recheck_file(shared, &path);
}

/// `textDocument/didClose`: the file is checked from disk from now on (its diagnostics stay
/// until the problem is fixed, as for any file of a checked folder).
pub fn closed(shared: &Arc<Shared>, uri: &Uri) {
    if let Some(path) = path_of(uri) {
        lock(&shared.docs).remove(&path);
    }
}

fn recheck_file(shared: &Arc<Shared>, path: &Path) {
    if let Some(dir) = path.parent() {
        recheck_folder(shared, dir);
    }
}

/// Re-checks the prompt files of `dir` when one of them is open, and publishes the changes.
pub fn recheck_folder(shared: &Arc<Shared>, dir: &Path) {
    let open: HashMap<PathBuf, String> = lock(&shared.docs)
        .iter()
        .filter(|(p, _)| p.parent() == Some(dir))
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect();
    if open.is_empty() {
        return;
    }
    let Some(root) = shared.root_of(dir) else { return };
    let (shared, dir) = (shared.clone(), dir.to_path_buf());
    tokio::spawn(async move {
        let checked = tokio::task::spawn_blocking(move || check_folder(&root.repo_root, &dir, &open)).await;
        match checked {
            Ok(by_file) => {
                for (path, list) in by_file {
                    crate::lsp::publish::set_diagnostics(&shared, &path, Source::Plan, list).await;
                }
            }
            Err(e) => tracing::error!("checking prompt files failed: {e}"),
        }
    });
}

/// Plan diagnostics of every `*.md` file of `dir` (empty lists for files without problems).
fn check_folder(repo_root: &Path, dir: &Path, open: &HashMap<PathBuf, String>) -> BTreeMap<PathBuf, Vec<Diagnostic>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "md"))
        .map(|p| p.canonicalize().unwrap_or(p))
        .collect();
    files.extend(open.keys().filter(|p| !files.contains(p)).cloned().collect::<Vec<_>>());
    files.sort();
    let texts: HashMap<PathBuf, String> = files
        .iter()
        .filter_map(|p| {
            Some((
                p.clone(),
                open.get(p).cloned().or_else(|| std::fs::read_to_string(p).ok())?,
            ))
        })
        .collect();
    let mut out: BTreeMap<PathBuf, Vec<Diagnostic>> = files.iter().map(|p| (p.clone(), vec![])).collect();
    let mut add = |e: &InputError| {
        let Some(file) = &e.file else { return };
        let file = file.canonicalize().unwrap_or_else(|_| file.clone());
        if let Some(list) = out.get_mut(&file) {
            list.push(diagnostics::from_input_error(e, texts.get(&file).map(String::as_str)));
        }
    };
    let mut specs = vec![];
    let mut load_errors = false;
    for p in &files {
        let Some(text) = texts.get(p) else { continue };
        match crate::spec::task::load_task_from_text(p, text) {
            Ok(s) => specs.push(s),
            Err(e) => {
                load_errors = true;
                add(&e);
            }
        }
    }
    if load_errors {
        // The plan needs every task; its errors would only repeat these.
        return out;
    }
    let Ok(repo) = Repo::discover(repo_root) else {
        return out;
    };
    let policy = Config::load(repo.root()).map(|c| c.conflicts).unwrap_or_default();
    let tracked = repo
        .head_commit()
        .ok()
        .and_then(|c| repo.tracked_files(&c).ok())
        .unwrap_or_default();
    if let Err(errs) = crate::spec::plan::build_plan(repo.root(), specs, &tracked, policy) {
        for e in &errs.0 {
            add(e);
        }
    }
    out
}
