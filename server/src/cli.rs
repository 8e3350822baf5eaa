//! The command-line front-end: turns arguments into a checked run, runs it with a terminal
//! view, prints results. No orchestration logic lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::agent::AgentProfile;
use crate::config::Config;
use crate::error::{InputError, InputErrors, EXIT_OK, EXIT_TASKS_FAILED};
use crate::events::{RunStatus, TaskStatus};
use crate::fsutil::same_path;
use crate::git::Repo;
use crate::orchestrator::{branch_name, worktree_path, EventSink, RunRequest};
use crate::plan::{build_plan, Plan};
use crate::state::{Layout, RunState, STATE_DIR};
use crate::RunArgs;

/// The repository: `--repo`, else the one containing the current directory.
pub(crate) fn open_repo(repo: Option<PathBuf>) -> Result<Repo, InputError> {
    let dir = match repo {
        Some(d) => d,
        None => std::env::current_dir().map_err(|e| {
            InputError::new(
                format!("cannot read the current directory: {e}"),
                "cd into your repository",
            )
        })?,
    };
    if !dir.is_dir() {
        return Err(InputError::at(
            &dir,
            None,
            "is not a directory",
            "pass the folder of a git repository with --repo",
        ));
    }
    Repo::discover(&dir)
}

/// Expands directories to the `*.md` files they hold (sorted) and checks every file is a
/// readable file inside the repository.
fn collect_prompt_files(repo: &Repo, files: &[PathBuf]) -> Result<Vec<PathBuf>, InputErrors> {
    let mut out = vec![];
    let mut errors = vec![];
    let root = repo.root().canonicalize().unwrap_or_else(|_| repo.root().to_path_buf());
    for f in files {
        if f.is_dir() {
            let mut md: Vec<PathBuf> = std::fs::read_dir(f)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "md"))
                .collect();
            md.sort();
            if md.is_empty() {
                errors.push(InputError::at(
                    f,
                    None,
                    "folder holds no .md prompt files",
                    "name prompt files directly, or put *.md files in the folder",
                ));
            }
            out.extend(md);
            continue;
        }
        match f.canonicalize() {
            Err(_) => errors.push(InputError::at(
                f,
                None,
                "prompt file not found",
                "check the path (it is taken relative to the current directory)",
            )),
            Ok(c) if !c.starts_with(&root) => errors.push(InputError::at(
                f,
                None,
                format!("is outside the repository {}", root.display()),
                "move the prompt file into the repository, or run from the repository it belongs to (--repo)",
            )),
            Ok(c) if c.starts_with(root.join(".git")) || c.starts_with(root.join(STATE_DIR)) => {
                errors.push(InputError::at(
                    f,
                    None,
                    "is inside .git or .gadugi, not a prompt file",
                    "name a prompt file of your own",
                ))
            }
            Ok(_) => out.push(f.clone()),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(InputErrors(errors))
    }
}

/// Loads and plans the prompt files. Reads only; creates nothing.
pub(crate) fn load_plan(repo: &Repo, config: &Config, files: &[PathBuf]) -> Result<(Plan, String), InputErrors> {
    let base = repo.head_commit()?;
    let files = collect_prompt_files(repo, files)?;
    let mut specs = vec![];
    let mut errors = vec![];
    for f in &files {
        match crate::task::load_task(f) {
            Ok(s) => specs.push(s),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(InputErrors(errors));
    }
    let tracked = repo.tracked_files(&base).map_err(|e| {
        InputError::new(
            format!("cannot list the repository's files: {e:#}"),
            "check that the repository is not corrupt (git fsck)",
        )
    })?;
    let plan = build_plan(repo.root(), specs, &tracked, config.conflicts)?;
    Ok((plan, base))
}

/// Everything checked before a run creates anything: repository, configuration, prompt files,
/// plan, agent programs, branch and worktree names.
pub fn prepare(args: &RunArgs, repo: Option<PathBuf>, files: &[PathBuf]) -> Result<RunRequest, InputErrors> {
    let repo = open_repo(repo)?;
    let mut config = Config::load(repo.root())?;
    if let Some(n) = args.max_parallel {
        config.max_parallel = n as usize;
    }
    config.agent.args.extend(args.agent_args.iter().cloned());
    if let Some(dir) = &args.worktree_dir {
        config.worktree_dir = crate::fsutil::join_normalized(repo.root(), dir);
    }
    let (plan, base_commit) = load_plan(&repo, &config, files)?;
    let mut errors = vec![];
    let mut profiles = vec![];
    let mut checked_programs = std::collections::BTreeSet::new();
    for t in &plan.tasks {
        let name = t.spec.agent.as_deref().or(args.agent.as_deref());
        match AgentProfile::resolve(name, &config, args.agent_command.as_deref()) {
            Ok(p) => {
                if checked_programs.insert(p.argv[0].clone()) {
                    if let Err(e) = p.find_program() {
                        errors.push(blame_profile(e, t, args, &config));
                    }
                }
                profiles.push(p);
            }
            Err(e) => errors.push(blame_profile(e, t, args, &config)),
        }
    }
    errors.dedup();
    errors.extend(check_worktree_dir(&repo, &config));
    let branches = repo.local_branches().map_err(|e| {
        InputError::new(
            format!("cannot read branches: {e:#}"),
            "check the repository with git fsck",
        )
    })?;
    let registered = repo.list_worktrees().map_err(|e| {
        InputError::new(
            format!("cannot list worktrees: {e:#}"),
            "check the repository with git worktree list",
        )
    })?;
    for t in &plan.tasks {
        let branch = branch_name(&config, &t.spec.id);
        let wt = worktree_path(&config, &t.spec.id);
        let at = |problem: String, fix: String| InputError::at(&t.spec.prompt_file, t.spec.id_line, problem, fix);
        if !Repo::is_valid_branch_name(&branch) {
            errors.push(at(
                format!("`{branch}` is not a valid branch name"),
                "give the task a simpler id (letters, digits, '-')".into(),
            ));
        } else if branches.contains(&branch) {
            errors.push(at(
                format!("branch `{branch}` already exists (from an earlier run?); Gadugi never overwrites or reuses a branch"),
                format!("merge or keep what you need from it, then delete it (git branch -D {branch}) and remove its worktree (gadugi cleanup); or give this task another id, or set branch_prefix in gadugi.toml"),
            ));
        } else if let Some(clash) = branches
            .iter()
            .find(|b| branch.starts_with(&format!("{b}/")) || b.starts_with(&format!("{branch}/")))
        {
            errors.push(at(
                format!("branch `{branch}` cannot be created next to the existing branch `{clash}` (git cannot have both `x` and `x/y`)"),
                format!("rename or delete `{clash}`, or set another branch_prefix in gadugi.toml"),
            ));
        }
        if wt.exists() {
            errors.push(at(
                format!("worktree folder {} already exists", wt.display()),
                "remove it (gadugi cleanup, or git worktree remove), or set worktree_dir in gadugi.toml".into(),
            ));
        } else if registered.iter().any(|w| same_path(&w.path, &wt)) {
            errors.push(at(
                format!(
                    "git still has a worktree registered at {} although its folder is gone",
                    wt.display()
                ),
                "run `git worktree prune` (or `gadugi cleanup`), then run again".into(),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(InputErrors(errors));
    }
    let max_parallel = config.max_parallel;
    let base_branch = repo.head_branch();
    let layout = Layout::new(repo.root());
    Ok(RunRequest {
        repo: Arc::new(repo),
        layout,
        config,
        plan,
        profiles,
        run_id: new_run_id(),
        base_commit,
        base_branch,
        max_parallel,
    })
}

/// Points a profile error at where the profile came from: the prompt's `agent:` line, the
/// command-line flags, or gadugi.toml.
fn blame_profile(mut e: InputError, t: &crate::plan::PlannedTask, args: &RunArgs, config: &Config) -> InputError {
    if t.spec.agent.is_some() && e.file.is_none() && !e.problem.contains("placeholder") {
        e.file = Some(t.spec.prompt_file.clone());
        e.line = crate::task::front_matter_line(&t.spec.prompt_file, "agent");
        return e;
    }
    if args.agent_command.is_some() || (args.agent.is_some() && t.spec.agent.is_none()) {
        return e;
    }
    let profile = t.spec.agent.as_deref().or(config.agent.profile.as_deref());
    if e.problem.starts_with("unknown agent profile") {
        return config.blame(e, Some("agent"), "profile");
    }
    match profile {
        Some(p) if config.profiles.contains_key(p) => config.blame(e, Some(&format!("profiles.{p}")), "command"),
        _ if e.problem.contains("placeholder") && config.agent.args.iter().any(|a| e.problem.contains(a.as_str())) => {
            config.blame(e, Some("agent"), "args")
        }
        _ => config.blame(e, Some("agent"), "command"),
    }
}

/// The worktree folder must be a folder (or not exist yet), outside `.git` and `.gadugi`,
/// and not the repository itself.
fn check_worktree_dir(repo: &Repo, config: &Config) -> Vec<InputError> {
    let dir = &config.worktree_dir;
    let bad = |problem: String, fix: &str| config.blame(InputError::new(problem, fix), None, "worktree_dir");
    let root = repo.root();
    if same_path(dir, root) {
        return vec![bad(
            format!("worktree_dir {} is the repository itself", dir.display()),
            "choose a folder of its own, such as \"../worktrees\"",
        )];
    }
    if dir.starts_with(repo.common_dir()) || dir.starts_with(root.join(STATE_DIR)) {
        return vec![bad(
            format!("worktree_dir {} is inside .git or .gadugi", dir.display()),
            "choose a folder outside the repository, such as \"../worktrees\"",
        )];
    }
    if dir.exists() && !dir.is_dir() {
        return vec![bad(
            format!("worktree_dir {} exists and is not a folder", dir.display()),
            "remove or rename that file, or set worktree_dir in gadugi.toml",
        )];
    }
    vec![]
}

/// A run id that sorts by start time: `20261121-094512-3fa2`.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{salt:04x}", now.format("%Y%m%d-%H%M%S"))
}

/// Side effects a new run needs before it starts: `.gadugi/` (and an in-repository
/// worktree folder) ignored through `.git/info/exclude`, the runs folder created. Shared by
/// every front-end that starts runs.
pub fn begin_run(req: &RunRequest) -> Result<()> {
    req.repo.ensure_excluded(&format!("/{STATE_DIR}/"))?;
    if let Ok(rel) = req.config.worktree_dir.strip_prefix(req.repo.root()) {
        req.repo.ensure_excluded(&format!("/{}/", rel.to_string_lossy()))?;
    }
    std::fs::create_dir_all(req.layout.runs_dir()).context("creating .gadugi/runs")?;
    Ok(())
}

/// Starts a new run and drives it to the end with a terminal view.
pub fn execute_with_terminal(req: RunRequest, json: bool) -> Result<RunState> {
    begin_run(&req)?;
    drive_with_terminal(req, None, json)
}

/// Drives a run (a new one, or `resumed` from its recorded state) holding the repository
/// lock, with a terminal view. Ctrl-C or SIGTERM cancels the run; a second Ctrl-C leaves at
/// once (agents keep running under their supervisors; `gadugi resume` picks them up).
fn drive_with_terminal(req: RunRequest, resumed: Option<RunState>, json: bool) -> Result<RunState> {
    let _lock = crate::lock::RunLock::acquire(&req.layout, &req.run_id)?;
    let sink: Box<dyn EventSink> = if std::io::stderr().is_terminal() && !json {
        Box::new(crate::progress::LiveProgress::new())
    } else {
        Box::new(crate::progress::PlainProgress)
    };
    let layout = req.layout.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let state = runtime.block_on(async move {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        tokio::spawn(async move {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            let mut interrupts = 0;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => interrupts += 1,
                    _ = term.recv() => interrupts = interrupts.max(1),
                }
                if interrupts > 1 {
                    eprintln!("gadugi: leaving; running agents finish under their supervisors (gadugi resume picks them up).");
                    std::process::exit(130);
                }
                eprintln!("\ngadugi: cancelling the run (agents get SIGTERM; branches and worktrees are kept). Ctrl-C again to leave now.");
                let _ = cancel_tx.send(true);
            }
        });
        match resumed {
            None => crate::orchestrator::execute(req, vec![sink], cancel_rx).await,
            Some(state) => crate::orchestrator::resume(req, state, vec![sink], cancel_rx).await,
        }
    })?;
    runtime.shutdown_timeout(Duration::from_millis(100));
    crate::report::write_reports(&layout, &state)?;
    Ok(state)
}

/// The recorded state of a run, rebuilt from its event log (the source of truth; the
/// snapshot may lag by one event after a crash).
fn recorded_state(layout: &Layout, run: Option<String>) -> Result<RunState> {
    let id = match run {
        Some(id) => id,
        None => layout.run_ids().pop().ok_or_else(|| {
            InputError::new(
                "no runs yet in this repository",
                "start one with: gadugi run prompts/*.md",
            )
        })?,
    };
    let log = std::fs::read_to_string(layout.events_file(&id)).map_err(|_| {
        InputError::new(
            format!("no run `{id}` in {}", layout.runs_dir().display()),
            "see the runs with: ls .gadugi/runs",
        )
    })?;
    RunState::replay(&crate::events::parse_event_log(&log)).ok_or_else(|| {
        anyhow::anyhow!(
            "{} does not start with a run_started event",
            layout.events_file(&id).display()
        )
    })
}

/// `gadugi resume`: takes over a run whose orchestrator is gone.
pub fn resume(json: bool, run: Option<String>) -> Result<i32> {
    let repo = open_repo(None)?;
    let layout = Layout::new(repo.root());
    let state = recorded_state(&layout, run)?;
    if state.status != RunStatus::Running {
        eprintln!("run {} already ended; nothing to resume.", state.run_id);
        print_result(&state, json)?;
        return Ok(exit_code(&state));
    }
    let req = RunRequest::load(Arc::new(repo), layout, &state.run_id)?;
    let state = drive_with_terminal(req, Some(state), json)?;
    print_result(&state, json)?;
    Ok(exit_code(&state))
}

/// `gadugi retry TASK`: runs a failed, cancelled or skipped task of an ended run again (and
/// what was skipped because of it), continuing on its branch.
pub fn retry(task: String, run: Option<String>, json: bool) -> Result<i32> {
    let repo = open_repo(None)?;
    let layout = Layout::new(repo.root());
    let mut state = recorded_state(&layout, run)?;
    {
        let _lock = crate::lock::RunLock::acquire(&layout, &state.run_id)?;
        crate::orchestrator::queue_retry(&layout, &mut state, &task)?;
    }
    let req = RunRequest::load(Arc::new(repo), layout, &state.run_id)?;
    let state = drive_with_terminal(req, Some(state), json)?;
    print_result(&state, json)?;
    Ok(exit_code(&state))
}

/// Sends SIGTERM to the supervisor of a task's latest attempt, if it still runs.
pub(crate) fn stop_supervisor(layout: &Layout, run_id: &str, task: &crate::state::TaskState) {
    let dir = layout.attempt_dir(run_id, &task.id, task.attempts.max(1));
    if let Ok(Some(s)) = crate::fsutil::read_json::<crate::supervisor::SupervisorInfo>(&dir.join("supervisor.json")) {
        if crate::supervisor::process_is_alive(s.pid, s.start_ticks) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(s.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

/// `gadugi cancel [TASK]`: cancels a run or one task, whichever process drives the run.
/// A cancelled task keeps its branch and worktree.
pub fn cancel(task: Option<String>, run: Option<String>, json: bool) -> Result<i32> {
    let repo = open_repo(None)?;
    let layout = Layout::new(repo.root());
    let state = recorded_state(&layout, run)?;
    if state.status != RunStatus::Running {
        println!(
            "run {} already ended ({}); nothing to cancel.",
            state.run_id,
            crate::report::summary_counts(&state)
        );
        return Ok(EXIT_OK);
    }
    let run_id = state.run_id.clone();
    match &task {
        Some(id) => {
            let t = state.task(id).ok_or_else(|| {
                let ids: Vec<&str> = state.tasks.iter().map(|t| t.id.as_str()).collect();
                InputError::new(
                    format!("run {run_id} has no task `{id}`"),
                    format!("use one of: {}", ids.join(", ")),
                )
            })?;
            if t.status.is_final() {
                println!("task {id} already ended ({}).", t.status.as_str());
                return Ok(EXIT_OK);
            }
            let marker = crate::task_run::cancel_marker(&layout, &run_id, id);
            std::fs::create_dir_all(marker.parent().unwrap_or(&layout.root))?;
            std::fs::write(&marker, b"")?;
            stop_supervisor(&layout, &run_id, t);
        }
        None => {
            std::fs::write(crate::orchestrator::run_cancel_marker(&layout, &run_id), b"")?;
            for t in state.tasks.iter().filter(|t| t.status == TaskStatus::Running) {
                stop_supervisor(&layout, &run_id, t);
            }
        }
    }
    let owner = crate::lock::read_lock(&layout).filter(|l| l.run_id == run_id && l.owner_alive());
    let Some(owner) = owner else {
        // Nobody drives the run: record the cancellation ourselves.
        let req = RunRequest::load(Arc::new(repo), layout, &run_id)?;
        let state = drive_with_terminal(req, Some(state), json)?;
        print_result(&state, json)?;
        return Ok(EXIT_OK);
    };
    eprintln!(
        "cancel requested; the run's orchestrator (pid {}) is stopping it",
        owner.pid
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let now = recorded_state(&layout, Some(run_id.clone()))?;
        let done = match &task {
            Some(id) => now.task(id).is_none_or(|t| t.status.is_final()),
            None => now.status != RunStatus::Running,
        };
        if done {
            match &task {
                Some(id) => println!(
                    "task {id}: {}",
                    now.task(id).map(|t| t.status.as_str()).unwrap_or("gone")
                ),
                None => print_result(&now, json)?,
            }
            return Ok(EXIT_OK);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("the cancellation is still in progress; see `gadugi status`");
    Ok(EXIT_OK)
}

fn exit_code(state: &RunState) -> i32 {
    if state.status == RunStatus::Succeeded {
        EXIT_OK
    } else {
        EXIT_TASKS_FAILED
    }
}

/// Prints the end of a run: JSON on stdout, or the terminal summary.
pub fn print_result(state: &RunState, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&state.summary_json())?);
    } else {
        print!("{}", crate::report::terminal_summary(state, &state.repo_root));
    }
    Ok(())
}

/// `gadugi run`.
pub fn run(args: RunArgs, repo: Option<PathBuf>, files: Vec<PathBuf>) -> Result<i32> {
    let req = prepare(&args, repo, &files)?;
    let state = execute_with_terminal(req, args.json)?;
    print_result(&state, args.json)?;
    Ok(exit_code(&state))
}

/// `gadugi plan`.
pub fn plan(json: bool, repo: Option<PathBuf>, files: Vec<PathBuf>) -> Result<i32> {
    let repo = open_repo(repo)?;
    let config = Config::load(repo.root())?;
    let (plan, _) = load_plan(&repo, &config, &files)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&crate::plan::to_json(&plan))?);
    } else {
        print!("{}", crate::plan::render_text(&plan, repo.root()));
    }
    Ok(EXIT_OK)
}

pub(crate) fn load_state(run: Option<String>) -> Result<(Repo, Layout, RunState)> {
    let repo = open_repo(None)?;
    let layout = Layout::new(repo.root());
    let state = layout.load_run(run.as_deref())?.ok_or_else(|| match &run {
        Some(id) => InputError::new(
            format!("no run `{id}` in {}", layout.runs_dir().display()),
            "see the runs with: ls .gadugi/runs",
        ),
        None => InputError::new(
            "no runs yet in this repository",
            "start one with: gadugi run prompts/*.md (or try gadugi demo)",
        ),
    })?;
    Ok((repo, layout, state))
}

/// `gadugi status`.
pub fn status(json: bool, run: Option<String>) -> Result<i32> {
    let (_, _, state) = load_state(run)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&state.summary_json())?);
        return Ok(EXIT_OK);
    }
    print!("{}", crate::report::terminal_summary(&state, &state.repo_root));
    if let Some(reason) = &state.circuit_open {
        println!("Circuit breaker: {reason}; the remaining tasks were skipped.");
    }
    if state.status == RunStatus::Running {
        if let Some(reason) = &state.limit_reason {
            println!("Running fewer agents at once: {reason}.");
        }
        let layout = Layout::new(&state.repo_root);
        let driven = crate::lock::read_lock(&layout).is_some_and(|l| l.run_id == state.run_id && l.owner_alive());
        if !driven {
            println!("No gadugi process drives this run any more (pid {} is gone); agents that were running keep running under their supervisors. Continue it with `gadugi resume`.", state.orchestrator_pid);
        }
    }
    Ok(EXIT_OK)
}

fn attempt_dir(layout: &Layout, state: &RunState, task: &str, attempt: Option<u32>) -> Result<PathBuf> {
    let t = state.task(task).ok_or_else(|| {
        let ids: Vec<&str> = state.tasks.iter().map(|t| t.id.as_str()).collect();
        InputError::new(
            format!("run {} has no task `{task}`", state.run_id),
            format!("use one of: {}", ids.join(", ")),
        )
    })?;
    let n = attempt.unwrap_or(t.attempts.max(1));
    Ok(layout.attempt_dir(&state.run_id, &t.id, n))
}

/// `gadugi logs`.
pub fn logs(task: &str, follow: bool, run: Option<String>, attempt: Option<u32>) -> Result<i32> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let (_, layout, mut state) = load_state(run.clone())?;
    let dir = attempt_dir(&layout, &state, task, attempt)?;
    let files = [dir.join("stdout.log"), dir.join("stderr.log"), dir.join("verify.log")];
    let mut offsets = [0u64; 3];
    let mut out = std::io::stdout().lock();
    loop {
        for (path, offset) in files.iter().zip(offsets.iter_mut()) {
            if let Ok(mut f) = std::fs::File::open(path) {
                f.seek(SeekFrom::Start(*offset))?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                *offset += buf.len() as u64;
                out.write_all(&buf)?;
            }
        }
        out.flush()?;
        let finished = state.task(task).is_none_or(|t| t.status.is_final()) || state.status != RunStatus::Running;
        if !follow || finished {
            if !follow && offsets.iter().all(|&o| o == 0) && !files[0].exists() {
                eprintln!("(no output yet: {})", dir.display());
            }
            return Ok(EXIT_OK);
        }
        std::thread::sleep(Duration::from_millis(200));
        if let Some(s) = layout.load_run(Some(&state.run_id))? {
            state = s;
        }
    }
}

/// `gadugi cleanup`.
pub fn cleanup(
    run: Option<String>,
    task: Option<String>,
    delete_branches: bool,
    force: bool,
    dry_run: bool,
) -> Result<i32> {
    let repo = open_repo(None)?;
    // One task's worktree belongs to one run: the latest unless --run names another.
    let run = match (&task, run) {
        (Some(_), None) => Layout::new(repo.root()).run_ids().into_iter().next_back(),
        (_, run) => run,
    };
    for line in cleanup_repo(&repo, run, task, delete_branches, force, dry_run)? {
        println!("{line}");
    }
    Ok(EXIT_OK)
}

/// What `gadugi cleanup` does, for any front-end: returns the lines that say what was removed
/// or kept (and why), last the totals.
pub fn cleanup_repo(
    repo: &Repo,
    run: Option<String>,
    task: Option<String>,
    delete_branches: bool,
    force: bool,
    dry_run: bool,
) -> Result<Vec<String>> {
    let mut lines = vec![];
    let layout = Layout::new(repo.root());
    let ids = match run {
        Some(id) => vec![id],
        None => layout.run_ids(),
    };
    let worktrees = repo.list_worktrees()?;
    let config = Config::load(repo.root())?;
    let mut removed = 0;
    let mut kept = 0;
    let say = if dry_run { "would remove" } else { "removed" };
    for id in ids {
        let Some(state) = layout.load_run(Some(&id))? else {
            return Err(InputError::new(format!("no run `{id}`"), "see the runs with: ls .gadugi/runs").into());
        };
        if let Some(task) = &task {
            if state.task(task).is_none() {
                return Err(InputError::new(
                    format!("run {id} has no task `{task}`"),
                    "name a task of that run (see gadugi status)",
                )
                .into());
            }
        }
        for t in state
            .tasks
            .iter()
            .filter(|t| task.as_ref().is_none_or(|id| &t.id == id))
        {
            let registered = worktrees.iter().any(|w| same_path(&w.path, &t.worktree));
            if registered {
                if !t.status.is_final() && state.status == RunStatus::Running {
                    lines.push(format!(
                        "kept    {}: task {} is still running",
                        t.worktree.display(),
                        t.id
                    ));
                    kept += 1;
                    continue;
                }
                if repo.is_dirty(&t.worktree)? {
                    if !force {
                        lines.push(format!("kept    {}: it has uncommitted changes (commit them, or --force to commit them onto {} and remove it)", t.worktree.display(), t.branch));
                        kept += 1;
                        continue;
                    }
                    if !dry_run {
                        repo.commit_all(
                            &t.worktree,
                            &format!("gadugi cleanup: uncommitted changes of task {}", t.id),
                        )?;
                    }
                }
                if !dry_run {
                    if let Err(why) = crate::workspace_setup::teardown_before_removal(repo, &config, &layout, &state, t)
                    {
                        if !force {
                            lines.push(format!(
                                "kept    {}: {why} (fix it and run cleanup again, or --force)",
                                t.worktree.display()
                            ));
                            kept += 1;
                            continue;
                        }
                        lines.push(format!(
                            "warning {}: {why}; removing it anyway (--force)",
                            t.worktree.display()
                        ));
                    }
                    repo.remove_worktree(&t.worktree)?;
                }
                lines.push(format!("{say} {} (branch {} stays)", t.worktree.display(), t.branch));
                removed += 1;
            }
            if delete_branches
                && repo.branch_exists(&t.branch)?
                && !worktrees
                    .iter()
                    .any(|w| w.branch.as_deref() == Some(t.branch.as_str()) && !same_path(&w.path, &t.worktree))
            {
                if !repo.branch_is_contained_elsewhere(&t.branch)? && !force {
                    lines.push(format!(
                        "kept    branch {}: it holds commits no other branch has (merge it, or --force)",
                        t.branch
                    ));
                    continue;
                }
                if !dry_run {
                    repo.delete_branch(&t.branch)?;
                }
                lines.push(format!(
                    "{} branch {}",
                    if dry_run { "would delete" } else { "deleted" },
                    t.branch
                ));
            }
        }
    }
    if !dry_run {
        repo.prune_worktrees()?;
    }
    lines.push(format!("{removed} worktree(s) {say}, {kept} kept."));
    Ok(lines)
}
