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

/// Open prompt files larger than this are neither kept nor checked as the user types (the
/// same order as the front matter's limit): a 20 MB buffer cost about 16 times its size in
/// copies (the message, its JSON value, the params, the stored text, the check's copies).
pub const MAX_CHECKED_BYTES: usize = 1 << 20;

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
    keep(shared, path, text);
}

/// `textDocument/didChange` (full text).
pub fn changed(shared: &Arc<Shared>, uri: &Uri, text: String) {
    let Some(path) = path_of(uri) else { return };
    if !lock(&shared.docs).contains_key(&path) && !lock(&shared.large_docs).contains(&path) {
        return;
    }
    keep(shared, path, text);
}

/// `textDocument/didSave` (with or without the text).
pub fn saved(shared: &Arc<Shared>, uri: &Uri, text: Option<String>) {
    let Some(path) = path_of(uri) else { return };
    match text {
        Some(text) if lock(&shared.docs).contains_key(&path) || lock(&shared.large_docs).contains(&path) => {
            keep(shared, path, text)
        }
        _ if lock(&shared.large_docs).contains(&path) => {}
        _ => recheck_file(shared, &path),
    }
}

/// `textDocument/didClose`: the file is checked from disk from now on (its diagnostics stay
/// until the problem is fixed, as for any file of a checked folder). Nothing of its text is
/// kept.
pub fn closed(shared: &Arc<Shared>, uri: &Uri) {
    if let Some(path) = path_of(uri) {
        let text = lock(&shared.docs).remove(&path);
        let large = lock(&shared.large_docs).remove(&path);
        if large || text.is_some_and(|t| t.len() > MAX_CHECKED_BYTES / 4) {
            release_memory_soon();
        }
    }
}

/// Stores an open document's text and checks its folder, or, when it is too large, keeps
/// nothing of it and says so in one diagnostic.
fn keep(shared: &Arc<Shared>, path: PathBuf, text: String) {
    if text.len() <= MAX_CHECKED_BYTES {
        lock(&shared.large_docs).remove(&path);
        lock(&shared.docs).insert(path.clone(), text);
        recheck_file(shared, &path);
        return;
    }
    let size = text.len();
    drop(text);
    lock(&shared.docs).remove(&path);
    lock(&shared.large_docs).insert(path.clone());
    let diagnostic = Diagnostic {
        range: Default::default(),
        severity: Some(tower_lsp_server::ls_types::DiagnosticSeverity::WARNING),
        source: Some("gadugi".into()),
        message: format!(
            "this prompt file is too large to check as you type ({} MiB; the limit is {} MiB)",
            size >> 20,
            MAX_CHECKED_BYTES >> 20
        ),
        ..Default::default()
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        crate::lsp::publish::set_diagnostics(&shared, &path, Source::Plan, vec![diagnostic]).await;
    });
    release_memory_soon();
}

/// Gives freed memory back to the system after a large document went away. jemalloc is not
/// in use, and glibc's malloc keeps freed memory in its arenas: without a trim the server
/// kept the peak of one 20 MB `didOpen` (hundreds of MB) resident after `didClose`. Runs a
/// moment later, once the message's own buffers (framing, JSON) are freed too.
fn release_memory_soon() {
    tokio::spawn(async {
        // Twice: the buffers of the message and of its handling are freed at different times.
        for wait in [200, 2000] {
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
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
        // A prompt too large to check as you type is left out (its own diagnostic says so).
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() <= MAX_CHECKED_BYTES as u64))
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
