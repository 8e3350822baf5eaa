//! `workspace/executeCommand`: every `gadugi.*` command. Long work is spawned and the
//! request returns at once; blocking checks (git, file reads) run on the blocking pool.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::watch;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{MessageType, Uri};

use crate::error::{InputError, InputErrors};
use crate::events::RunStatus;
use crate::lsp::backend::{lock as lock_map, Root, Shared};
use crate::lsp::diagnostics::{self, Source};
use crate::lsp::errors::{from_anyhow, from_input_errors, invalid_params, request_failed};
use crate::lsp::ext::*;
use crate::lsp::sink::TreeSink;
use crate::RunArgs;

/// Runs one command.
pub async fn execute(shared: &Arc<Shared>, command: &str, args: Vec<Value>) -> Result<Value> {
    match command {
        ORCHESTRATE => orchestrate(shared, parse(command, args)?).await,
        PLAN => plan(shared, parse(command, args)?).await,
        CANCEL_RUN => cancel_run(shared, parse(command, args)?),
        CANCEL_TASK => cancel_task(shared, parse(command, args)?),
        RETRY_TASK => retry_task(shared, parse(command, args)?).await,
        RESUME => resume(shared, parse(command, args)?).await,
        CLEANUP => cleanup(shared, parse(command, args)?).await,
        STATUS => status(shared, parse(command, args)?),
        TASK_DIFF => task_diff(shared, parse(command, args)?).await,
        other => Err(invalid_params(format!(
            "unknown command `{other}`; the commands are: {}",
            COMMANDS.join(", ")
        ))),
    }
}

/// The first argument as `T` (a missing argument reads as `{}`).
fn parse<T: DeserializeOwned>(command: &str, args: Vec<Value>) -> Result<T> {
    if args.len() > 1 {
        return Err(invalid_params(format!(
            "{command} takes one argument object, got {}",
            args.len()
        )));
    }
    let value = args.into_iter().next().unwrap_or_else(|| json!({}));
    serde_json::from_value(value).map_err(|e| {
        invalid_params(format!(
            "{command}: bad arguments[0]: {e} (see docs/lsp-extensions.md; e.g. {})",
            example(command)
        ))
    })
}

fn example(command: &str) -> &'static str {
    match command {
        ORCHESTRATE => r#"{"files": ["file:///abs/a.md"], "maxParallel": 4}"#,
        PLAN => r#"{"files": ["file:///abs/a.md"]}"#,
        CANCEL_RUN | RESUME => r#"{"runId": "20261121-094512-3fa2"}"#,
        CANCEL_TASK | RETRY_TASK | TASK_DIFF => r#"{"runId": "20261121-094512-3fa2", "taskId": "api-client"}"#,
        CLEANUP => r#"{"runId": "20261121-094512-3fa2", "deleteBranches": false, "force": false, "dryRun": true}"#,
        _ => r#"{"runId": "20261121-094512-3fa2"}"#,
    }
}

/// Turns `file://` URIs into paths, all inside one workspace folder.
fn file_paths(shared: &Shared, uris: &[String]) -> Result<(Root, Vec<PathBuf>)> {
    if uris.is_empty() {
        return Err(invalid_params("`files` is empty: name at least one prompt file URI"));
    }
    let mut root: Option<Root> = None;
    let mut paths = vec![];
    for s in uris {
        let uri = Uri::from_str(s).map_err(|e| invalid_params(format!("`{s}` is not a URI: {e}")))?;
        let path = uri
            .to_file_path()
            .map(|p| p.into_owned())
            .ok_or_else(|| invalid_params(format!("`{s}` is not a file:// URI")))?;
        let path = path
            .canonicalize()
            .map_err(|e| invalid_params(format!("{}: cannot open the prompt file: {e}", path.display())))?;
        let r = shared.root_of(&path).ok_or_else(|| {
            let folders: Vec<String> = lock_map(&shared.roots)
                .iter()
                .map(|r| r.folder.display().to_string())
                .collect();
            invalid_params(format!(
                "{} is outside the workspace folders ({}); only prompt files of the workspace can be run",
                path.display(),
                if folders.is_empty() {
                    "none".to_string()
                } else {
                    folders.join(", ")
                }
            ))
        })?;
        match &root {
            Some(first) if first.repo_root != r.repo_root => {
                return Err(invalid_params(format!(
                    "{} is in repository {}, the other files in {}; one run covers one repository",
                    path.display(),
                    r.repo_root.display(),
                    first.repo_root.display()
                )))
            }
            Some(_) => {}
            None => root = Some(r),
        }
        paths.push(path);
    }
    Ok((root.expect("at least one file"), paths))
}

/// Publishes bad input found by the core as plan diagnostics on the files at fault.
async fn publish_input_errors(shared: &Shared, errs: &InputErrors) {
    let mut by_file: BTreeMap<PathBuf, Vec<&InputError>> = BTreeMap::new();
    for e in &errs.0 {
        if let Some(f) = &e.file {
            if f.extension().is_some_and(|x| x == "md") {
                by_file
                    .entry(f.canonicalize().unwrap_or_else(|_| f.clone()))
                    .or_default()
                    .push(e);
            }
        }
    }
    for (path, list) in by_file {
        let text = std::fs::read_to_string(&path).ok();
        let diags = list
            .iter()
            .map(|e| diagnostics::from_input_error(e, text.as_deref()))
            .collect();
        diagnostics::set(shared, &path, Source::Plan, diags).await;
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| from_anyhow(anyhow::anyhow!("a check panicked: {e}")))
}

/// `gadugi.orchestrate`: checks everything like `gadugi run`, then runs on a spawned task and
/// answers at once with the run id.
async fn orchestrate(shared: &Arc<Shared>, args: OrchestrateArgs) -> Result<Value> {
    let (root, paths) = file_paths(shared, &args.files)?;
    if args.max_parallel == Some(0) {
        return Err(invalid_params("maxParallel must be at least 1"));
    }
    {
        let tree = lock_map(&shared.tree);
        for run in tree.runs().filter(|r| r.owned && r.state.status == RunStatus::Running) {
            if let Some(t) = run.state.tasks.iter().find(|t| paths.contains(&t.prompt_file)) {
                return Err(request_failed(format!(
                    "{} is task `{}` of run {}, which is still running; wait for it or cancel it ({CANCEL_RUN})",
                    t.prompt_file.display(),
                    t.id,
                    run.state.run_id
                )));
            }
        }
    }
    let run_args = RunArgs {
        max_parallel: args.max_parallel,
        agent: args.agent.filter(|a| !a.is_empty()),
        agent_args: args.agent_args,
        worktree_dir: args.worktree_dir.filter(|d| !d.is_empty()).map(PathBuf::from),
        ..Default::default()
    };
    let repo_root = root.repo_root.clone();
    let prepared = blocking(move || crate::cli::prepare(&run_args, Some(repo_root), &paths)).await?;
    let req = match prepared {
        Ok(req) => req,
        Err(errs) => {
            publish_input_errors(shared, &errs).await;
            return Err(from_input_errors(&errs));
        }
    };
    let lock = crate::lock::RunLock::acquire(&req.layout, &req.run_id).map_err(from_anyhow)?;
    crate::cli::begin_run(&req).map_err(from_anyhow)?;
    let run_id = spawn_run(shared, req, None, lock);
    Ok(serde_json::to_value(OrchestrateResult { run_id }).expect("serializable"))
}

/// `gadugi.plan`: the `gadugi plan --json` object.
async fn plan(shared: &Arc<Shared>, args: PlanArgs) -> Result<Value> {
    let (root, paths) = file_paths(shared, &args.files)?;
    let planned = blocking(move || -> std::result::Result<Value, InputErrors> {
        let repo = crate::cli::open_repo(Some(root.repo_root))?;
        let config = crate::config::Config::load(repo.root())?;
        let (plan, _) = crate::cli::load_plan(&repo, &config, &paths)?;
        Ok(crate::plan::to_json(&plan))
    })
    .await?;
    match planned {
        Ok(v) => Ok(v),
        Err(errs) => {
            publish_input_errors(shared, &errs).await;
            Err(from_input_errors(&errs))
        }
    }
}

/// `gadugi.cancelRun`.
fn cancel_run(shared: &Shared, args: RunRef) -> Result<Value> {
    // What the run's own state says comes first: a run that has ended is not cancelled, even
    // while its driver here is still winding down.
    let running_here = lock_map(&shared.tree)
        .get(&args.run_id)
        .is_none_or(|r| r.state.status == RunStatus::Running);
    if running_here {
        if let Some(tx) = lock_map(&shared.cancels).get(&args.run_id) {
            let _ = tx.send(true);
            return Ok(serde_json::to_value(CancelResult { cancelled: true }).expect("serializable"));
        }
    }
    let tree = lock_map(&shared.tree);
    let Some(run) = tree.get(&args.run_id) else {
        return Err(invalid_params(format!(
            "no run `{}` is known to this server (see gadugi/treeState)",
            args.run_id
        )));
    };
    if run.state.status != RunStatus::Running {
        return Ok(serde_json::to_value(CancelResult { cancelled: false }).expect("serializable"));
    }
    // Driven by another process (the CLI, another editor): the run's cancel marker stops it
    // there, and the supervisors of its running agents get SIGTERM, as `gadugi cancel` does.
    let layout = crate::state::Layout::new(&run.state.repo_root);
    std::fs::write(crate::orchestrator::run_cancel_marker(&layout, &args.run_id), b"")
        .map_err(|e| request_failed(format!("cannot cancel run {}: {e}", args.run_id)))?;
    for t in run
        .state
        .tasks
        .iter()
        .filter(|t| t.status == crate::events::TaskStatus::Running)
    {
        crate::cli::stop_supervisor(&layout, &args.run_id, t);
    }
    Ok(serde_json::to_value(CancelResult { cancelled: true }).expect("serializable"))
}

/// `gadugi.cleanup`.
async fn cleanup(shared: &Arc<Shared>, args: CleanupArgs) -> Result<Value> {
    if args.task_id.is_some() && args.run_id.is_none() {
        return Err(invalid_params("`taskId` needs the `runId` of its run"));
    }
    let root = match &args.folder {
        Some(f) => file_paths(shared, std::slice::from_ref(f))?.0,
        None => lock_map(&shared.roots)
            .first()
            .cloned()
            .ok_or_else(|| request_failed("the server has no workspace folder in a git repository"))?,
    };
    let lines = blocking(move || -> anyhow::Result<Vec<String>> {
        let repo = crate::cli::open_repo(Some(root.repo_root))?;
        crate::cli::cleanup_repo(
            &repo,
            args.run_id,
            args.task_id,
            args.delete_branches,
            args.force,
            args.dry_run,
        )
    })
    .await?
    .map_err(from_anyhow)?;
    lock_map(&shared.tree).bump();
    shared.touch();
    Ok(serde_json::to_value(CleanupResult { lines }).expect("serializable"))
}

/// `gadugi.status`: the `gadugi status --json` object.
fn status(shared: &Shared, args: StatusArgs) -> Result<Value> {
    let tree = lock_map(&shared.tree);
    let run = match &args.run_id {
        Some(id) => tree.get(id),
        None => tree.latest(),
    };
    run.map(|r| r.state.summary_json()).ok_or_else(|| -> Error {
        match &args.run_id {
            Some(id) => invalid_params(format!("no run `{id}` is known to this server (see gadugi/treeState)")),
            None => request_failed("no runs yet in the workspace; start one with gadugi.orchestrate"),
        }
    })
}

/// Drives a run (new, or `resumed` from its recorded state) on a spawned task, holding the
/// repository's run lock, with the tree as its view; returns its id at once.
fn spawn_run(
    shared: &Arc<Shared>,
    req: crate::orchestrator::RunRequest,
    resumed: Option<crate::state::RunState>,
    lock: crate::lock::RunLock,
) -> String {
    let run_id = req.run_id.clone();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    lock_map(&shared.cancels).insert(run_id.clone(), cancel_tx);
    let layout = req.layout.clone();
    let (shared, id) = (shared.clone(), run_id.clone());
    tokio::spawn(async move {
        let _lock = lock;
        let sinks: Vec<Box<dyn crate::orchestrator::EventSink>> = vec![Box::new(TreeSink { shared: shared.clone() })];
        let result = match resumed {
            None => crate::orchestrator::execute(req, sinks, cancel_rx).await,
            Some(state) => crate::orchestrator::resume(req, state, sinks, cancel_rx).await,
        };
        match result {
            Ok(state) => {
                if let Err(e) = crate::report::write_reports(&layout, &state) {
                    tracing::error!("run {id}: writing the reports failed: {e:#}");
                }
            }
            Err(e) => {
                tracing::error!("run {id} stopped: {e:#}");
                shared
                    .client
                    .show_message(MessageType::ERROR, format!("Gadugi run {id} stopped: {e:#}"))
                    .await;
            }
        }
        lock_map(&shared.cancels).remove(&id);
        lock_map(&shared.tree).release(&id);
        shared.touch();
    });
    run_id
}

/// The recorded state of a run, from disk (the authority, whoever drives the run).
fn recorded(shared: &Shared, run_id: &str) -> Result<(PathBuf, crate::state::RunState)> {
    let repo_root = lock_map(&shared.tree)
        .get(run_id)
        .map(|r| r.state.repo_root.clone())
        .ok_or_else(|| {
            invalid_params(format!(
                "no run `{run_id}` is known to this server (see gadugi/treeState)"
            ))
        })?;
    let state = crate::state::Layout::new(&repo_root)
        .load_run(Some(run_id))
        .map_err(from_anyhow)?
        .ok_or_else(|| request_failed(format!("run {run_id} has no state on disk any more")))?;
    Ok((repo_root, state))
}

/// `gadugi.taskDiff`: the task's commits and its diff against where it started.
async fn task_diff(shared: &Arc<Shared>, args: TaskRef) -> Result<Value> {
    let (repo_root, state) = recorded(shared, &args.run_id)?;
    let task = task_of(&state, &args.task_id)?.clone();
    let Some(base) = task.start_commit.clone() else {
        return Err(request_failed(format!(
            "task `{}` has not started yet: it has no branch to compare",
            task.id
        )));
    };
    let diff = blocking(move || -> anyhow::Result<String> {
        let repo = crate::cli::open_repo(Some(repo_root))?;
        let wt = task.worktree.is_dir().then_some(task.worktree.as_path());
        repo.task_diff(&base, &task.branch, wt)
    })
    .await?
    .map_err(from_anyhow)?;
    let state_task = task_of(&state, &args.task_id)?;
    Ok(serde_json::to_value(TaskDiff {
        base: state_task.start_commit.clone().unwrap_or_default(),
        branch: state_task.branch.clone(),
        diff,
    })
    .expect("serializable"))
}

/// A task of a run, or `-32602` naming the run's tasks.
fn task_of<'a>(state: &'a crate::state::RunState, task_id: &str) -> Result<&'a crate::state::TaskState> {
    state.task(task_id).ok_or_else(|| {
        let ids: Vec<&str> = state.tasks.iter().map(|t| t.id.as_str()).collect();
        invalid_params(format!(
            "run {} has no task `{task_id}`; its tasks: {}",
            state.run_id,
            ids.join(", ")
        ))
    })
}

/// `gadugi.cancelTask`: like `gadugi cancel TASK`, whichever process drives the run: a
/// cancel marker for the run loop and SIGTERM to the task's supervisor.
fn cancel_task(shared: &Shared, args: TaskRef) -> Result<Value> {
    let (repo_root, state) = recorded(shared, &args.run_id)?;
    let task = task_of(&state, &args.task_id)?;
    if state.status != RunStatus::Running || task.status.is_final() {
        return Ok(serde_json::to_value(CancelResult { cancelled: false }).expect("serializable"));
    }
    let layout = crate::state::Layout::new(&repo_root);
    let marker = crate::task_run::cancel_marker(&layout, &args.run_id, &args.task_id);
    std::fs::create_dir_all(marker.parent().unwrap_or(&layout.root))
        .and_then(|_| std::fs::write(&marker, b""))
        .map_err(|e| from_anyhow(anyhow::anyhow!("writing the cancel marker {}: {e}", marker.display())))?;
    crate::cli::stop_supervisor(&layout, &args.run_id, task);
    Ok(serde_json::to_value(CancelResult { cancelled: true }).expect("serializable"))
}

/// `gadugi.retryTask`: queues a finished task of an ended run again and drives the run
/// from this server, like `gadugi retry`.
async fn retry_task(shared: &Arc<Shared>, args: TaskRef) -> Result<Value> {
    let (repo_root, mut state) = recorded(shared, &args.run_id)?;
    let task = args.task_id.clone();
    let (req, state, lock) = blocking(move || -> anyhow::Result<_> {
        let repo = crate::cli::open_repo(Some(repo_root))?;
        let layout = crate::state::Layout::new(repo.root());
        let lock = crate::lock::RunLock::acquire(&layout, &state.run_id)?;
        crate::orchestrator::queue_retry(&layout, &mut state, &task)?;
        let req = crate::orchestrator::RunRequest::load(Arc::new(repo), layout, &state.run_id)?;
        Ok((req, state, lock))
    })
    .await?
    .map_err(from_anyhow)?;
    let run_id = spawn_run(shared, req, Some(state), lock);
    Ok(json!({ "runId": run_id }))
}

/// `gadugi.resume`: like `gadugi resume`: takes over a run whose orchestrator is gone
/// (running agents are re-attached, never restarted) and drives it from this server.
async fn resume(shared: &Arc<Shared>, args: RunRef) -> Result<Value> {
    let (repo_root, state) = recorded(shared, &args.run_id)?;
    if state.status != RunStatus::Running {
        return Err(request_failed(format!(
            "run {} already ended ({}); nothing to resume",
            args.run_id,
            crate::report::summary_counts(&state)
        )));
    }
    if let Some(owner) = crate::lock::read_lock(&crate::state::Layout::new(&repo_root))
        .filter(|l| l.run_id == args.run_id && l.owner_alive())
    {
        return Err(request_failed(format!(
            "run {} is still driven by gadugi process {}; nothing to resume",
            args.run_id, owner.pid
        )));
    }
    let id = args.run_id.clone();
    let (req, lock) = blocking(move || -> anyhow::Result<_> {
        let repo = crate::cli::open_repo(Some(repo_root))?;
        let layout = crate::state::Layout::new(repo.root());
        let req = crate::orchestrator::RunRequest::load(Arc::new(repo), layout, &id)?;
        let lock = crate::lock::RunLock::acquire(&req.layout, &req.run_id)?;
        Ok((req, lock))
    })
    .await?
    .map_err(from_anyhow)?;
    let run_id = spawn_run(shared, req, Some(state), lock);
    Ok(json!({ "runId": run_id }))
}
