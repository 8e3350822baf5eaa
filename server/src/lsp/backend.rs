//! The `LanguageServer` implementation: the routing of every LSP message to its handler
//! (the state the handlers share is `session.rs`). Handlers never await a request to the client: anything that
//! does (progress creation) runs in a spawned task, so the service's request slots are never
//! held while waiting on the client.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use crate::lsp::ext::{self, TreeState, TreeStateParams, WorktreeList, WorktreesParams};
use crate::lsp::ext::{RunGraph, RunGraphParams};
use crate::lsp::session::{lock, Root, Shared};

/// The server object tower-lsp-server drives.
pub struct Backend {
    pub shared: Arc<Shared>,
}

impl Backend {
    /// Builds the server around the client handle.
    pub fn new(client: Client) -> Backend {
        Backend {
            shared: Arc::new(Shared::new(client)),
        }
    }

    /// `gadugi/treeState`: built from the published view, so it never waits for the tree's
    /// lock (held by a run's sink or the file watcher) or for anything a run does. Building it
    /// stats each task's worktree (cached metadata) with no lock held; no extra thread hop,
    /// which costs more than the stats on a loaded machine.
    pub async fn tree_state(&self, params: Option<TreeStateParams>) -> Result<TreeState> {
        let _ = params;
        Ok(self.shared.tree_view().snapshot())
    }

    /// `gadugi/worktrees`.
    pub async fn worktrees(&self, params: Option<WorktreesParams>) -> Result<WorktreeList> {
        let _ = params;
        crate::lsp::worktrees::list(&self.shared).await
    }

    /// `gadugi/runGraph`.
    pub async fn run_graph(&self, params: RunGraphParams) -> Result<RunGraph> {
        crate::lsp::graph::run_graph(&self.shared, params).await
    }

    /// `gadugi/answerApproval`: answers a question a task's agent asked.
    pub async fn answer_approval(&self, params: ext::AnswerApprovalParams) -> Result<ext::AnswerApprovalResult> {
        crate::lsp::approvals::answer(&self.shared, params).await
    }

    /// `window/workDoneProgress/cancel`: cancelling a run's progress cancels the run.
    pub async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        let token = match &params.token {
            NumberOrString::String(s) => s.clone(),
            NumberOrString::Number(n) => n.to_string(),
        };
        // The token names its run, so a cancel that arrives before the progress was
        // registered here (its creation is a request to the client, answered later) still works.
        let run = lock(&self.shared.progress_tokens)
            .get(&token)
            .cloned()
            .or_else(|| token.strip_prefix("gadugi-run-").map(str::to_string));
        match run {
            Some(run_id) => {
                tracing::info!("progress {token} cancelled by the client: cancelling run {run_id}");
                if let Some(tx) = lock(&self.shared.cancels).get(&run_id) {
                    let _ = tx.send(true);
                }
            }
            None => tracing::warn!("cancel for unknown progress token {token}"),
        }
    }
}

fn folders_of(params: &InitializeParams) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Some(folders) = &params.workspace_folders {
        out.extend(
            folders
                .iter()
                .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned())),
        );
    }
    #[allow(deprecated)]
    if out.is_empty() {
        if let Some(uri) = &params.root_uri {
            out.extend(uri.to_file_path().map(|p| p.into_owned()));
        } else if let Some(path) = &params.root_path {
            out.push(PathBuf::from(path));
        }
    }
    out
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let supports_progress = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false);
        self.shared
            .progress_supported
            .store(supports_progress, Ordering::SeqCst);
        let lens_refresh = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.code_lens.as_ref())
            .and_then(|c| c.refresh_support)
            .unwrap_or(false);
        self.shared.lens_refresh_supported.store(lens_refresh, Ordering::SeqCst);
        let mut roots = vec![];
        for folder in folders_of(&params) {
            let folder = folder.canonicalize().unwrap_or(folder);
            match crate::git::Repo::discover(&folder) {
                Ok(repo) => {
                    let repo_root = repo.root().canonicalize().unwrap_or_else(|_| repo.root().to_path_buf());
                    roots.push(Root { folder, repo_root });
                }
                Err(e) => tracing::warn!("workspace folder {} is not usable: {e}", folder.display()),
            }
        }
        tracing::info!("workspace roots: {roots:?}, work done progress: {supports_progress}");
        *lock(&self.shared.roots) = roots;
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "gadugi".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::FULL),
                    save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                        include_text: Some(true),
                    })),
                    ..Default::default()
                })),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(
                        crate::lsp::language::completion::TRIGGER_CHARACTERS
                            .iter()
                            .map(|c| c.to_string())
                            .collect(),
                    ),
                    ..Default::default()
                }),
                definition_provider: Some(OneOf::Left(true)),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                document_link_provider: Some(DocumentLinkOptions {
                    resolve_provider: Some(false),
                    work_done_progress_options: Default::default(),
                }),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: ext::COMMANDS.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        crate::lsp::watch::start(&self.shared);
        crate::lsp::publish::start(&self.shared);
    }

    async fn shutdown(&self) -> Result<()> {
        self.shared.mark_shut_down();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        crate::lsp::documents::opened(&self.shared, &doc.uri, doc.text);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // Full sync: the last change holds the whole text.
        if let Some(change) = params.content_changes.into_iter().last() {
            crate::lsp::documents::changed(&self.shared, &params.text_document.uri, change.text);
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        crate::lsp::documents::saved(&self.shared, &params.text_document.uri, params.text);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        crate::lsp::documents::closed(&self.shared, &params.text_document.uri);
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        Ok(Some(crate::lsp::lens::lenses(&self.shared, &params.text_document.uri)))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        use crate::lsp::language::{completion, off_the_workers};
        Ok(off_the_workers(&self.shared, move |shared| completion::complete(shared, &params)).await)
    }

    async fn goto_definition(&self, params: GotoDefinitionParams) -> Result<Option<GotoDefinitionResponse>> {
        use crate::lsp::language::{definition, off_the_workers};
        Ok(off_the_workers(&self.shared, move |shared| definition::definition(shared, &params)).await)
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        use crate::lsp::language::{hover, off_the_workers};
        Ok(off_the_workers(&self.shared, move |shared| hover::hover(shared, &params)).await)
    }

    async fn document_link(&self, params: DocumentLinkParams) -> Result<Option<Vec<DocumentLink>>> {
        Ok(crate::lsp::language::links::links(&self.shared, &params))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        let token = params.work_done_progress_params.work_done_token;
        let value: Value =
            crate::lsp::commands::execute(&self.shared, &params.command, params.arguments, token).await?;
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 d10: `gadugi/treeState` is answered while the tree's lock is held (as a run's
    /// sink or the file watcher holds it): the handler reads only the published view. Not a
    /// timing test: taking the tree lock would block the handler until the test gives up.
    #[test]
    fn d10_tree_state_never_waits_for_the_tree_lock() {
        let (service, _socket) = tower_lsp_server::LspService::new(Backend::new);
        let shared = service.inner().shared.clone();
        let state: crate::core::state::RunState = serde_json::from_value(serde_json::json!({
            "run_id": "r1", "status": "running", "repo_root": "/nonexistent", "base_commit": "0",
            "base_branch": null, "max_parallel": 1, "orchestrator_pid": 1,
            "started_at": "2026-01-01T00:00:00Z", "finished_at": null, "critical_path": [],
            "conflicts": [], "tasks": []
        }))
        .unwrap();
        shared.change_tree(|tree| tree.update(state, true));
        let held = lock(&shared.tree);
        let (tx, rx) = std::sync::mpsc::channel();
        let backend = Backend { shared: shared.clone() };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = tx.send(rt.block_on(backend.tree_state(None)).map(|s| (s.version, s.runs.len())));
        });
        let answer = rx.recv_timeout(std::time::Duration::from_secs(60));
        drop(held);
        assert_eq!(answer.expect("treeState waited for the tree lock").unwrap(), (1, 1));
    }
}
