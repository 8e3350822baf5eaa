//! `gadugi server --stdio`: the language server. One more view of the core's event stream:
//! commands start and control runs through the same operations as the CLI (`ops::prepare`,
//! `ops::start`, `ops::drive`, `ops::cancel` ...); progress, diagnostics and the task tree are derived from run
//! state, whether the run is this process's own or one started elsewhere and watched
//! through `.gadugi/`.
//!
//! Layout: `ext.rs` declares the custom protocol; `session.rs` holds the state every handler
//! shares; `backend.rs` is the `LanguageServer` implementation that routes to one handler
//! file per concern (`commands.rs`, `documents.rs`, and `language/` for completion, definition,
//! hover and links on prompt files); `tree.rs` holds what the server knows about runs; `publish.rs` turns
//! changes into notifications, diagnostics and progress; `sink.rs` feeds own runs in,
//! `watch.rs` (with the watcher of `watcher.rs`) runs started elsewhere. stdout carries only the protocol; logs go to stderr
//! through `tracing` (filter: `GADUGI_LOG`).

mod approvals;
mod backend;
mod commands;
mod diagnostics;
mod documents;
mod errors;
pub mod ext;
pub mod framing;
mod graph;
mod language;
mod lens;
mod publish;
mod session;
mod sink;
mod tree;
mod watch;
mod watcher;
mod worktrees;

use anyhow::Result;
use tower_lsp_server::{LspService, Server};

use crate::error::{EXIT_OK, EXIT_TASKS_FAILED};

/// Serves LSP over stdin/stdout until the client sends `exit` or closes stdin. Returns the
/// process exit code: 0 after a `shutdown` request, 1 when the client left without one (as
/// the LSP specification asks). Running agents are never stopped: they live on under their
/// supervisors.
pub fn serve_stdio() -> Result<i32> {
    // A client may send one huge message (a 20 MB document). glibc raises its mmap threshold
    // after such a buffer is freed, so the next ones land in the arenas and stay resident;
    // a fixed threshold keeps every buffer of 1 MiB or more in its own mapping, returned to
    // the system when freed (jemalloc is not in use).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clean = runtime.block_on(async {
        let (service, socket) = LspService::build(backend::Backend::new)
            .custom_method(ext::TREE_STATE, backend::Backend::tree_state)
            .custom_method(ext::WORKTREES, backend::Backend::worktrees)
            .custom_method(ext::RUN_GRAPH, backend::Backend::run_graph)
            .custom_method(ext::ANSWER_APPROVAL, backend::Backend::answer_approval)
            .custom_method("window/workDoneProgress/cancel", backend::Backend::progress_cancel)
            .finish();
        let shared = service.inner().shared.clone();
        // stdin → guard → server; server → framer → one writer ← guard's error replies.
        let (server_in, guard_out) = tokio::io::duplex(1 << 16);
        let (server_out, framer_in) = tokio::io::duplex(1 << 16);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(framing::guard_input(tokio::io::stdin(), guard_out, tx.clone()));
        let end = tx.clone();
        let framer = tokio::spawn(framing::frames_of(framer_in, tx));
        let writer = tokio::spawn(framing::write_output(tokio::io::stdout(), rx));
        Server::new(server_in, server_out, socket).serve(service).await;
        // The server's output ends with it; let the last messages reach stdout.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), framer).await;
        let _ = end.send(Vec::new());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
        shared.was_shut_down()
    });
    // Orchestrator tasks of own runs end with the process; their agents keep running.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(if clean { EXIT_OK } else { EXIT_TASKS_FAILED })
}
