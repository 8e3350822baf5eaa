//! The language server's session: the state every handler and background task shares
//! (workspace roots, the run tree, open documents, diagnostics, the cancel switches of the
//! runs this process drives). Kept apart from the router (`backend.rs`) so that handlers
//! never import the router.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{watch, Notify};
use tower_lsp_server::Client;

use crate::lsp::diagnostics::Diagnostics;
use crate::lsp::tree::{Tree, TreeView};

/// A workspace folder and the repository it is in.
#[derive(Debug, Clone)]
pub struct Root {
    /// The workspace folder (canonical).
    pub folder: PathBuf,
    /// The git repository's top level (canonical).
    pub repo_root: PathBuf,
}

/// Everything the handlers and background tasks share.
pub struct Shared {
    pub client: Client,
    pub roots: Mutex<Vec<Root>>,
    /// Change it only through [`Shared::change_tree`], which keeps `tree_view` in step.
    pub tree: Mutex<Tree>,
    /// The tree as of its last change. `gadugi/treeState` and the publisher read only this:
    /// its lock is held just to swap or clone the `Arc`, never across I/O or a run's work.
    tree_view: Mutex<Arc<TreeView>>,
    /// Signalled whenever `tree` changed; the publisher debounces and publishes.
    pub changed: Notify,
    /// Cancel switches of the runs this process runs, by run id.
    pub cancels: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Progress tokens handed to the client → run id.
    pub progress_tokens: Mutex<HashMap<String, String>>,
    /// Open documents: path → current text.
    pub docs: Mutex<HashMap<PathBuf, String>>,
    /// Open documents too large to keep or check (`documents::MAX_CHECKED_BYTES`).
    pub large_docs: Mutex<HashSet<PathBuf>>,
    pub diagnostics: Mutex<Diagnostics>,
    /// The client can show `window/workDoneProgress`.
    pub progress_supported: AtomicBool,
    /// The client accepts `workspace/codeLens/refresh`.
    pub lens_refresh_supported: AtomicBool,
    shut_down: AtomicBool,
    /// The file watcher (created at `initialized`).
    pub watcher: Mutex<Option<crate::lsp::watcher::Watcher>>,
}

/// Locks a mutex, recovering the data when a panicking thread poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The state of a new session with `client`.
    pub fn new(client: Client) -> Shared {
        Shared {
            client,
            roots: Mutex::default(),
            tree: Mutex::default(),
            tree_view: Mutex::default(),
            changed: Notify::new(),
            cancels: Mutex::default(),
            progress_tokens: Mutex::default(),
            docs: Mutex::default(),
            large_docs: Mutex::default(),
            diagnostics: Mutex::default(),
            progress_supported: AtomicBool::new(false),
            lens_refresh_supported: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
            watcher: Mutex::default(),
        }
    }

    /// The client sent `shutdown`.
    pub fn mark_shut_down(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
    }

    /// Whether the client sent `shutdown`.
    pub fn was_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::SeqCst)
    }

    /// The workspace root holding `path`, if any.
    pub fn root_of(&self, path: &Path) -> Option<Root> {
        lock(&self.roots)
            .iter()
            .filter(|r| path.starts_with(&r.folder))
            .max_by_key(|r| r.folder.as_os_str().len())
            .cloned()
    }

    /// Watches the folder of an open prompt file (once the watcher runs).
    pub fn watch_folder(&self, dir: &Path) {
        if let Some(w) = lock(&self.watcher).as_mut() {
            w.watch(dir, notify::RecursiveMode::NonRecursive);
        }
    }

    /// Changes the run tree and publishes its new view. `f` must be quick: everything that
    /// reads files, runs git or clones a run state happens before or after it.
    pub fn change_tree<R>(&self, f: impl FnOnce(&mut Tree) -> R) -> R {
        let mut tree = lock(&self.tree);
        let out = f(&mut tree);
        // Swapped while the tree is still locked, so views are published in change order.
        *lock(&self.tree_view) = Arc::new(tree.view());
        out
    }

    /// The tree as of its last change; takes no lock but the view's own (an `Arc` clone).
    pub fn tree_view(&self) -> Arc<TreeView> {
        lock(&self.tree_view).clone()
    }

    /// Signals the publisher.
    pub fn touch(&self) {
        self.changed.notify_one();
    }
}
