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
use tower_lsp_server::ls_types::{
    MessageType, ProgressToken, Uri, WorkDoneProgress, WorkDoneProgressBegin, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};

use crate::core::events::RunStatus;
use crate::core::state::{RunState, TaskState};
use crate::error::{InputError, InputErrors};
use crate::lsp::diagnostics::{self, Source};
use crate::lsp::errors::{from_anyhow, from_input_errors, invalid_params, request_failed};
use crate::lsp::ext::*;
use crate::lsp::publish::send_progress;
use crate::lsp::session::{lock as lock_map, Root, Shared};
use crate::lsp::sink::TreeSink;
use crate::ops::merge::MergeRequest;
use crate::ops::pr::PrOptions;
use crate::ops::{self, Cancelled, CleanupOptions, Drive, LoadedRun, Resumed, RunOptions};

/// Runs one command; `token` is the request's `workDoneToken`, for commands that report steps.
pub async fn execute(
    shared: &Arc<Shared>,
    command: &str,
    args: Vec<Value>,
    token: Option<ProgressToken>,
) -> Result<Value> {
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
        POOL_PRUNE => crate::lsp::worktrees::prune_pool(shared, parse(command, args)?)
            .await
            .map(|r| serde_json::to_value(r).expect("serializable")),
        MERGE_RUN => merge_run(shared, parse(command, args)?, token).await,
        OPEN_PULL_REQUESTS => open_pull_requests(shared, parse(command, args)?, token).await,
        REPORT => report(shared, parse(command, args)?).await,
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
        POOL_PRUNE => r#"{"repo": "file:///abs/repo", "all": true}"#,
        MERGE_RUN => r#"{"runId": "20261121-094512-3fa2", "verify": "cargo test"}"#,
        OPEN_PULL_REQUESTS => r#"{"runId": "20261121-094512-3fa2", "dryRun": true}"#,
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
        let scheme = Some(uri.scheme().as_str().to_ascii_lowercase());
        if scheme.as_deref() != Some("file") {
            return Err(invalid_params(format!(
                "`{s}` is not a file:// URI; only prompt files saved on this machine can be run (save the document first)"
            )));
        }
        if let Some(host) = uri.authority().map(|a| a.host().to_string()) {
            if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                return Err(invalid_params(format!(
                    "`{s}` names the host `{host}`; only files on this machine can be run (file:///path)"
                )));
            }
        }
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
        crate::lsp::publish::set_diagnostics(shared, &path, Source::Plan, diags).await;
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
    let options = RunOptions {
        max_parallel: args.max_parallel,
        agent: args.agent.filter(|a| !a.is_empty()),
        agent_args: args.agent_args,
        worktree_dir: args.worktree_dir.filter(|d| !d.is_empty()).map(PathBuf::from),
        ..Default::default()
    };
    let repo_root = root.repo_root.clone();
    let prepared = blocking(move || ops::prepare(&options, Some(repo_root), &paths)).await?;
    let req = match prepared {
        Ok(req) => req,
        Err(errs) => {
            publish_input_errors(shared, &errs).await;
            return Err(from_input_errors(&errs));
        }
    };
    let drive = ops::start(req).map_err(from_anyhow)?;
    let run_id = spawn_run(shared, drive);
    Ok(serde_json::to_value(OrchestrateResult { run_id }).expect("serializable"))
}

/// `gadugi.plan`: the `gadugi plan --json` object.
async fn plan(shared: &Arc<Shared>, args: PlanArgs) -> Result<Value> {
    let (root, paths) = file_paths(shared, &args.files)?;
    let planned = blocking(move || -> std::result::Result<Value, InputErrors> {
        let (_, plan) = ops::plan(Some(root.repo_root), &paths)?;
        Ok(crate::spec::plan::to_json(&plan))
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

/// `gadugi.cancelRun`: like `gadugi cancel`, whichever process drives the run.
fn cancel_run(shared: &Shared, args: RunRef) -> Result<Value> {
    let (repo_root, state) = recorded(shared, &args.run_id)?;
    cancel(shared, &repo_root, &state, None)
}

/// `gadugi.cancelTask`: like `gadugi cancel TASK`, whichever process drives the run.
fn cancel_task(shared: &Shared, args: TaskRef) -> Result<Value> {
    let (repo_root, state) = recorded(shared, &args.run_id)?;
    task_of(&state, &args.task_id)?;
    cancel(shared, &repo_root, &state, Some(&args.task_id))
}

/// The one cancel of the CLI and the editor (`ops::cancel`); when this server drives the run,
/// its run loop is woken at once instead of at its next look at the cancel marker.
fn cancel(shared: &Shared, repo_root: &std::path::Path, state: &RunState, task: Option<&str>) -> Result<Value> {
    let layout = crate::layout::Layout::new(repo_root);
    let cancelled = match ops::cancel(&layout, state, task).map_err(from_anyhow)? {
        Cancelled::RunEnded | Cancelled::TaskEnded(_) => false,
        Cancelled::Requested { driver } => {
            if task.is_none() && driver == Some(std::process::id()) {
                if let Some(tx) = lock_map(&shared.cancels).get(&state.run_id) {
                    let _ = tx.send(true);
                }
            }
            true
        }
    };
    Ok(serde_json::to_value(CancelResult { cancelled }).expect("serializable"))
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
        let repo = ops::open_repo(Some(root.repo_root))?;
        ops::cleanup(
            &repo,
            CleanupOptions {
                run: args.run_id,
                task: args.task_id,
                delete_branches: args.delete_branches,
                force: args.force,
                dry_run: args.dry_run,
            },
        )
    })
    .await?
    .map_err(from_anyhow)?;
    shared.change_tree(|tree| tree.bump());
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

/// Drives a run on a spawned task (`ops::drive`: it holds the repository's run lock), with
/// the tree as its view; returns its id at once.
fn spawn_run(shared: &Arc<Shared>, drive: Drive) -> String {
    let run_id = drive.run_id().to_string();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    lock_map(&shared.cancels).insert(run_id.clone(), cancel_tx);
    let (shared, id) = (shared.clone(), run_id.clone());
    tokio::spawn(async move {
        let sinks: Vec<Box<dyn crate::run::emitter::EventSink>> = vec![Box::new(TreeSink { shared: shared.clone() })];
        // The run loop persists every event (fsync), writes reports and reads agents' output
        // on the thread that drives it: on its own runtime, that never stalls the workers
        // that read, route and answer the client's messages.
        let driven = runs_runtime().spawn(ops::drive(drive, sinks, cancel_rx)).await;
        let driven = driven.unwrap_or_else(|e| Err(anyhow::anyhow!("the run's task failed: {e}")));
        if let Err(e) = driven {
            tracing::error!("run {id} stopped: {e:#}");
            shared
                .client
                .show_message(MessageType::ERROR, format!("Gadugi run {id} stopped: {e:#}"))
                .await;
        }
        lock_map(&shared.cancels).remove(&id);
        shared.change_tree(|tree| tree.release(&id));
        shared.touch();
    });
    run_id
}

/// Waits (a few seconds at most) until this server's own driver of a finished run has let go
/// of it: the run shows as finished as soon as its last event is out, while the driver, on its
/// own runtime, still writes the reports and then releases the run's lock.
async fn finished_driving(shared: &Shared, run_id: &str) {
    for _ in 0..250 {
        if !lock_map(&shared.cancels).contains_key(run_id) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The runtime the runs this server drives live on, apart from the one serving the protocol.
/// Never dropped: own runs end with the process (their agents live on, see `ops::resume`).
fn runs_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gadugi-run")
            .enable_all()
            .build()
            .expect("cannot start the runtime for runs")
    })
}

/// The recorded state of a run, from disk (the authority, whoever drives the run).
fn recorded(shared: &Shared, run_id: &str) -> Result<(PathBuf, RunState)> {
    let repo_root = lock_map(&shared.tree)
        .get(run_id)
        .map(|r| r.state.repo_root.clone())
        .ok_or_else(|| {
            invalid_params(format!(
                "no run `{run_id}` is known to this server (see gadugi/treeState)"
            ))
        })?;
    let loaded = ops::load_run(Some(repo_root.clone()), Some(run_id.to_string()))
        .map_err(|_| request_failed(format!("run {run_id} has no state on disk any more")))?;
    Ok((repo_root, loaded.state))
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
        let repo = ops::open_repo(Some(repo_root))?;
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
fn task_of<'a>(state: &'a RunState, task_id: &str) -> Result<&'a TaskState> {
    ops::task_of(state, task_id).map_err(|e| invalid_params(format!("{}; {}", e.problem, e.fix)))
}

/// `gadugi.retryTask`: like `gadugi retry`: queues a finished task of an ended run again and
/// drives the run from this server.
async fn retry_task(shared: &Arc<Shared>, args: TaskRef) -> Result<Value> {
    let (repo_root, state) = recorded(shared, &args.run_id)?;
    if state.status != RunStatus::Running {
        finished_driving(shared, &args.run_id).await;
    }
    let drive = blocking(move || -> anyhow::Result<Drive> {
        ops::retry(ops::load_run(Some(repo_root), Some(args.run_id))?, &args.task_id)
    })
    .await?
    .map_err(from_anyhow)?;
    let run_id = spawn_run(shared, drive);
    Ok(serde_json::to_value(OrchestrateResult { run_id }).expect("serializable"))
}

/// `gadugi.resume`: like `gadugi resume`: takes over a run whose orchestrator is gone
/// (running agents are re-attached, never restarted) and drives it from this server.
async fn resume(shared: &Arc<Shared>, args: RunRef) -> Result<Value> {
    let (repo_root, state) = recorded(shared, &args.run_id)?;
    let layout = crate::layout::Layout::new(&repo_root);
    if state.status == RunStatus::Running {
        if let Some(pid) = ops::driver_of(&layout, &args.run_id) {
            return Err(request_failed(format!(
                "run {} is still driven by gadugi process {pid}; nothing to resume",
                args.run_id
            )));
        }
    }
    let resumed = blocking(move || {
        ops::resume(LoadedRun {
            repo: ops::open_repo(Some(repo_root))?,
            layout,
            state,
        })
    })
    .await?
    .map_err(from_anyhow)?;
    match resumed {
        Resumed::Ended(state) => Err(request_failed(format!(
            "run {} already ended ({}); nothing to resume",
            args.run_id,
            crate::views::report::summary_counts(&state)
        ))),
        Resumed::Drive(drive) => {
            let run_id = spawn_run(shared, *drive);
            Ok(serde_json::to_value(OrchestrateResult { run_id }).expect("serializable"))
        }
    }
}

/// Runs `work` on run `run_id` (loaded from disk) on the blocking pool and collects the lines
/// it says; with a `workDoneToken`, each line is also a `$/progress` report (between a `begin`
/// titled `title` and an `end`), so the editor shows the steps while they happen.
async fn with_steps<T: Send + 'static>(
    shared: &Shared,
    token: Option<ProgressToken>,
    title: String,
    run_id: String,
    work: impl FnOnce(&LoadedRun, &mut dyn FnMut(String)) -> anyhow::Result<T> + Send + 'static,
) -> Result<(Vec<String>, anyhow::Result<T>)> {
    let (repo_root, _) = recorded(shared, &run_id)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    if let Some(t) = &token {
        let begin = WorkDoneProgressBegin {
            title,
            cancellable: Some(false),
            ..Default::default()
        };
        send_progress(shared, t, WorkDoneProgress::Begin(begin)).await;
    }
    let job = tokio::task::spawn_blocking(move || {
        let mut say = |line: String| {
            let _ = tx.send(line);
        };
        work(&ops::load_run(Some(repo_root), Some(run_id))?, &mut say)
    });
    // The channel closes when the work ends (its sender is dropped with the closure).
    let mut lines = vec![];
    while let Some(line) = rx.recv().await {
        if let Some(t) = &token {
            let report = WorkDoneProgressReport {
                message: Some(line.clone()),
                ..Default::default()
            };
            send_progress(shared, t, WorkDoneProgress::Report(report)).await;
        }
        lines.push(line);
    }
    let outcome = job
        .await
        .map_err(|e| from_anyhow(anyhow::anyhow!("the command's work panicked: {e}")));
    if let Some(t) = &token {
        send_progress(shared, t, WorkDoneProgress::End(WorkDoneProgressEnd { message: None })).await;
    }
    Ok((lines, outcome?))
}

/// `gadugi.mergeRun`: `gadugi merge` (`ops::merge`), the steps reported as they happen.
async fn merge_run(shared: &Arc<Shared>, args: MergeArgs, token: Option<ProgressToken>) -> Result<Value> {
    let title = format!("Merging run {}", args.run_id);
    let MergeArgs {
        run_id,
        verify,
        verify_timeout,
    } = args;
    let request = MergeRequest {
        verify,
        verify_timeout,
        onto: None,
    };
    let work = move |loaded: &LoadedRun, say: &mut dyn FnMut(String)| ops::merge::merge(loaded, request, say);
    let (lines, merged) = with_steps(shared, token, title, run_id, work).await?;
    let m = merged.map_err(from_anyhow)?;
    let steps = m
        .steps
        .into_iter()
        .map(|s| MergeStepNode {
            task_id: s.task,
            branch: s.branch,
            outcome: s.outcome,
            files: s.files.into_iter().map(|f| f.path).collect(),
            error: s.error,
        })
        .collect();
    Ok(serde_json::to_value(MergeResult {
        run_id: m.run_id,
        integration_branch: m.integration_branch,
        head: m.head,
        complete: m.complete,
        steps,
        lines,
    })
    .expect("serializable"))
}

/// `gadugi.openPullRequests`: `gadugi pr` (`ops::pr`), the steps reported as they happen.
async fn open_pull_requests(
    shared: &Arc<Shared>,
    args: PullRequestsArgs,
    token: Option<ProgressToken>,
) -> Result<Value> {
    let title = format!("Opening pull requests of run {}", args.run_id);
    let options = PrOptions {
        dry_run: args.dry_run,
        remote: args.remote.filter(|r| !r.is_empty()),
        base: args.base.filter(|b| !b.is_empty()),
    };
    let work = move |loaded: &LoadedRun, say: &mut dyn FnMut(String)| ops::pr::open_pull_requests(loaded, options, say);
    let (lines, opened) = with_steps(shared, token, title, args.run_id, work).await?;
    let o = opened.map_err(from_anyhow)?;
    Ok(serde_json::to_value(PullRequestsResult {
        remote: o.remote,
        base: o.base,
        pull_requests: o
            .opened
            .into_iter()
            .map(|p| PullRequestNode {
                task_id: p.task,
                branch: p.branch,
                url: p.url,
            })
            .collect(),
        failed: o
            .failed
            .into_iter()
            .map(|f| PullRequestFailure {
                task_id: f.task,
                error: f.error,
            })
            .collect(),
        skipped: o.skipped,
        lines,
    })
    .expect("serializable"))
}

/// `gadugi.report`: writes the run's report (`ops::report`) and says where it is.
async fn report(shared: &Arc<Shared>, args: RunRef) -> Result<Value> {
    let (repo_root, _) = recorded(shared, &args.run_id)?;
    let files = blocking(move || -> anyhow::Result<ops::report::ReportFiles> {
        ops::report::write(&ops::load_run(Some(repo_root), Some(args.run_id))?)
    })
    .await?
    .map_err(from_anyhow)?;
    let text = |p: PathBuf| p.display().to_string();
    Ok(serde_json::to_value(ReportResult {
        markdown: text(files.markdown),
        json: text(files.json),
        timeline: text(files.timeline),
    })
    .expect("serializable"))
}
