//! The operations every front end calls: prepare a run (every input check before anything
//! is created), start or take over a run and drive it (lock, run loop, reports), load a run's
//! state, cancel a run or a task, retry, resume, clean up. The CLI (`cli/`) fills the
//! options from its arguments and prints; the language server (`lsp/`) fills them from the
//! protocol and answers. Neither re-implements a flow.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::agent::profile::AgentProfile;
use crate::core::events::{RunStatus, TaskStatus};
use crate::core::state::{RunState, TaskState};
use crate::error::{InputError, InputErrors};
use crate::exec::lock::{read_lock, RunLock};
use crate::fsutil::same_path;
use crate::git::Repo;
use crate::layout::{Layout, STATE_DIR};
use crate::run::emitter::EventSink;
use crate::run::request::RunRequest;
use crate::spec::config::Config;
use crate::spec::executor::ExecutorKind;
use crate::spec::plan::{build_plan, Plan};

pub mod approvals;
pub mod merge;
pub mod pr;
pub mod remote_task;
pub mod report;
pub mod trust;

/// How a new run should differ from `gadugi.toml` (the command line's or the editor's
/// choices). Empty: the configuration as it is.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Agents running at once.
    pub max_parallel: Option<u16>,
    /// Agent profile for tasks that don't name one.
    pub agent: Option<String>,
    /// Command line of the `command` profile.
    pub agent_command: Option<String>,
    /// More arguments for every agent, after `[agent] args`.
    pub agent_args: Vec<String>,
    /// Where the worktrees go, relative to the repository root.
    pub worktree_dir: Option<PathBuf>,
    /// Where attempts run (`local`, `slurm`), over `[executor] kind`.
    pub executor: Option<String>,
}

/// The repository: `--repo`, else the one containing the current directory.
pub fn open_repo(repo: Option<PathBuf>) -> Result<Repo, InputError> {
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
pub fn load_plan(repo: &Repo, config: &Config, files: &[PathBuf]) -> Result<(Plan, String), InputErrors> {
    let base = repo.head_commit()?;
    let files = collect_prompt_files(repo, files)?;
    let mut specs = vec![];
    let mut errors = vec![];
    for f in &files {
        match crate::spec::task::load_task(f) {
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

/// The state folder `.gadugi/` must be a plain folder of this checkout (or not exist yet):
/// never a symlink (a cloned repository could point it anywhere, and Gadugi would write and
/// delete there), nothing git tracks, nothing but a folder.
pub fn check_state_dir(repo: &Repo) -> Result<(), InputError> {
    let dir = repo.root().join(STATE_DIR);
    let refuse = |problem: &str, fix: &str| InputError::at(&dir, None, problem, fix);
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(refuse(
                "is a symbolic link; Gadugi keeps its state only in a folder of this checkout, never through a link",
                "remove the link (git rm .gadugi if it is committed) and run again; Gadugi creates the folder itself",
            ))
        }
        Ok(m) if !m.is_dir() => {
            return Err(refuse(
                "exists and is not a folder",
                "move or remove that file; Gadugi creates the folder .gadugi itself",
            ))
        }
        _ => {}
    }
    if repo.tracks(STATE_DIR).unwrap_or(false) {
        return Err(refuse(
            "is tracked by git; it is Gadugi's local state and must not come from the repository",
            "remove it from git (git rm -r --cached .gadugi, then commit), and run again",
        ));
    }
    Ok(())
}

/// Plans prompt files (`gadugi plan`): reads only, creates nothing.
pub fn plan(repo: Option<PathBuf>, files: &[PathBuf]) -> Result<(Repo, Plan), InputErrors> {
    let repo = open_repo(repo)?;
    let config = Config::load(repo.root())?;
    let (plan, _) = load_plan(&repo, &config, files)?;
    Ok((repo, plan))
}

/// What a checked run would hand its cluster (`gadugi run --dry-run`): each task's job as
/// the engine would submit it. Pushes, submits and creates nothing.
pub fn dry_run(req: &RunRequest) -> Result<String, InputErrors> {
    if !req.config.executor.is_remote() {
        return Err(InputError::new(
            "--dry-run shows the jobs a cluster would get, and this run's executor is local",
            "see what a local run would do with `gadugi plan`, or pass --executor slurm",
        )
        .into());
    }
    let exe = std::env::current_exe().map_err(|e| {
        InputError::new(
            format!("cannot find this gadugi's own path: {e}"),
            "run gadugi by its path",
        )
    })?;
    crate::run::remote::dry_run(req, &exe)
        .map_err(|e| InputError::new(format!("{e:#}"), "fix the [executor] table of gadugi.toml").into())
}

/// The checks of a remote executor, before anything is pushed or submitted: the engine's
/// tools and controller answer, the remote exists and answers, its URL means the same on
/// every node, and credential files are their owner's alone. Approvals need the person
/// at this machine's agents: refused with a remote executor. Fills in how a node runs
/// Gadugi (this binary's path, unless `[executor] gadugi` says otherwise).
fn check_executor(repo: &Repo, config: &mut Config) -> Result<(), InputErrors> {
    let kind = config.executor.kind.name();
    let at_kind = |problem: String, fix: &str| config.blame(InputError::new(problem, fix), Some("executor"), "kind");
    let mut errors = vec![];
    if config.approvals.enabled {
        errors.push(at_kind(
            format!("[approvals] is on, and the {kind} executor cannot put an agent's questions to you yet"),
            "turn approvals off for this run (enabled = false), or run it with --executor local",
        ));
    }
    if let Some(engine) = crate::run::executor::engine_for(config) {
        if let Err(problem) = engine.check() {
            errors.push(at_kind(
                problem,
                "fix the cluster's set-up, or run with --executor local",
            ));
        }
    }
    let name = config.executor.remote.clone();
    let at_remote =
        |problem: String, fix: &str| config.blame(InputError::new(problem, fix), Some("executor"), "remote");
    match repo.remote_url(&name) {
        None => errors.push(at_remote(
            format!(
                "the repository has no git remote `{name}`, which the {kind} executor's jobs fetch from and push to"
            ),
            "add a remote every node can reach (git remote add origin URL), or name one with [executor] remote",
        )),
        Some(url) => {
            let local_path = !url.contains("://") && !url.contains(':');
            if local_path && !Path::new(url.trim_start_matches("file://")).is_absolute() {
                errors.push(at_remote(
                    format!("remote `{name}` is the relative path {url}, which means something else on every node"),
                    "give the remote an absolute path or a URL (git remote set-url)",
                ));
            } else if let Err(e) = repo.remote_ref(&url, "HEAD", config.executor.git_credentials.as_deref()) {
                errors.push(at_remote(
                    format!("remote `{name}` ({url}) does not answer: {e:#}"),
                    "check the URL and your credentials (git ls-remote), or set [executor] git_credentials",
                ));
            }
        }
    }
    for (key, file) in [
        ("agent_env_file", &config.executor.agent_env_file),
        ("git_credentials", &config.executor.git_credentials),
    ] {
        let Some(file) = file else { continue };
        use std::os::unix::fs::PermissionsExt;
        let problem = match std::fs::metadata(file) {
            Err(e) => Some(format!("{key} {}: {e}", file.display())),
            Ok(m) if m.permissions().mode() & 0o077 != 0 => Some(format!(
                "{key} {} can be read by others than you (mode {:o})",
                file.display(),
                m.permissions().mode() & 0o777
            )),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            errors.push(config.blame(
                InputError::new(problem, "create it readable by you only: chmod 600 FILE"),
                Some("executor"),
                key,
            ));
        }
    }
    if !errors.is_empty() {
        return Err(InputErrors(errors));
    }
    if config.executor.gadugi.is_none() {
        let exe = std::env::current_exe().map_err(|e| {
            InputError::new(
                format!("cannot find this gadugi's own path: {e}"),
                "set [executor] gadugi to how the nodes run gadugi",
            )
        })?;
        config.executor.gadugi = Some(exe.to_string_lossy().into_owned());
    }
    Ok(())
}

/// Everything checked before a run creates anything: repository, configuration, prompt files,
/// plan, agent programs, prompts the agent can receive, branch and worktree names.
pub fn prepare(args: &RunOptions, repo: Option<PathBuf>, files: &[PathBuf]) -> Result<RunRequest, InputErrors> {
    let repo = open_repo(repo)?;
    check_state_dir(&repo)?;
    let mut config = Config::load(repo.root())?;
    if let Some(n) = args.max_parallel {
        config.max_parallel = n as usize;
    }
    config.agent.args.extend(args.agent_args.iter().cloned());
    if let Some(dir) = &args.worktree_dir {
        config.worktree_dir = crate::fsutil::join_normalized(repo.root(), dir);
    }
    if let Some(kind) = &args.executor {
        config.executor.kind = ExecutorKind::parse(kind).map_err(|problem| {
            InputError::new(
                format!("--executor {kind}: {problem}"),
                "pass --executor local, slurm or kubernetes",
            )
        })?;
    }
    let (plan, base_commit) = load_plan(&repo, &config, files)?;
    let remote = config.executor.is_remote();
    if remote {
        check_executor(&repo, &mut config)?;
    }
    let mut errors = vec![];
    let mut profiles = vec![];
    let mut checked_programs = std::collections::BTreeSet::new();
    for t in &plan.tasks {
        let name = t.spec.agent.as_deref().or(args.agent.as_deref());
        match AgentProfile::resolve(name, &config, args.agent_command.as_deref()) {
            Ok(p) => {
                // A cluster's nodes have their own programs; a node that lacks the agent
                // fails its attempt as systemic, which opens the circuit breaker.
                if !remote && checked_programs.insert(p.argv[0].clone()) {
                    if let Err(e) = p.find_program() {
                        errors.push(blame_profile(e, t, args, &config));
                    }
                }
                // A prompt the agent cannot receive is refused now, not after the branch and
                // worktree exist (E2BIG when the agent is spawned).
                if let Err(mut e) = p.check_prompt_size(&t.spec.body) {
                    e.file = Some(t.spec.prompt_file.clone());
                    errors.push(e);
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
        let branch = config.branch_name(&t.spec.id);
        let wt = config.worktree_path(&t.spec.id);
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
fn blame_profile(
    mut e: InputError,
    t: &crate::spec::plan::PlannedTask,
    args: &RunOptions,
    config: &Config,
) -> InputError {
    if t.spec.agent.is_some() && e.file.is_none() && !e.problem.contains("placeholder") {
        e.file = Some(t.spec.prompt_file.clone());
        e.line = crate::spec::task::front_matter_line(&t.spec.prompt_file, "agent");
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

/// A run ready to be driven by this process: the repository lock is held, and the run is
/// either new or taken over from its recorded state.
pub struct Drive {
    pub req: RunRequest,
    start: Start,
    _lock: RunLock,
}

/// How a driven run starts.
enum Start {
    /// A new run: `run_started` comes first.
    New,
    /// A recorded run taken over: running agents are re-attached, queued tasks start.
    Resume(Box<RunState>),
}

impl Drive {
    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.req.run_id
    }
}

/// Test hook (debug builds only): sleeps for the milliseconds the environment variable
/// `var` names, to widen a race window deterministically in a test.
fn pause_for_tests(var: &str) {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    #[cfg(not(debug_assertions))]
    let _ = var;
}

/// Under the lock: removes what writers killed mid-write left behind in the state folder.
fn remove_stale_temp_files(layout: &Layout, run_id: &str) {
    for dir in [
        layout.root.clone(),
        layout.run_dir(run_id),
        layout.registry_file().parent().unwrap_or(&layout.root).to_path_buf(),
    ] {
        let n = crate::fsutil::remove_stale_temp_files(&dir);
        if n > 0 {
            tracing::info!("removed {n} temp file(s) a killed gadugi left in {}", dir.display());
        }
    }
}

/// Takes the repository lock for a new, prepared run and does what it needs before its first
/// event: `.gadugi/` (and an in-repository worktree folder) ignored through
/// `.git/info/exclude` (with the files an agent program leaves, e.g. aider's `.aider*`), the
/// runs folder created.
pub fn start(req: RunRequest) -> Result<Drive> {
    let lock = RunLock::acquire(&req.layout, &req.run_id)?;
    remove_stale_temp_files(&req.layout, &req.run_id);
    req.repo.ensure_excluded(&format!("/{STATE_DIR}/"))?;
    if let Ok(rel) = req.config.worktree_dir.strip_prefix(req.repo.root()) {
        req.repo.ensure_excluded(&format!("/{}/", rel.to_string_lossy()))?;
    }
    for pattern in req
        .profiles
        .iter()
        .flat_map(|p| crate::agent::builtins::excluded_files(&p.name, p.protocol))
    {
        req.repo.ensure_excluded(pattern)?;
    }
    std::fs::create_dir_all(req.layout.runs_dir()).context("creating .gadugi/runs")?;
    Ok(Drive {
        req,
        start: Start::New,
        _lock: lock,
    })
}

/// Drives a run to its end (or until `cancel` turns true) with `sinks` as its views, then
/// writes its reports. Returns the final state.
pub async fn drive(drive: Drive, sinks: Vec<Box<dyn EventSink>>, cancel: watch::Receiver<bool>) -> Result<RunState> {
    let Drive { req, start, _lock } = drive;
    let layout = req.layout.clone();
    let state = match start {
        Start::New => crate::run::run_loop::execute(req, sinks, cancel).await?,
        Start::Resume(state) => crate::run::run_loop::resume(req, *state, sinks, cancel).await?,
    };
    crate::views::report::write_reports(&layout, &state)?;
    Ok(state)
}

/// A run read back from its files, with its repository.
pub struct LoadedRun {
    pub repo: Repo,
    pub layout: Layout,
    pub state: RunState,
}

/// Loads run `run` (or the latest) of the repository at `repo` (or the current one). The
/// one loader every front end uses: the event log is the source of truth (the snapshot
/// may lag by one event after a crash).
pub fn load_run(repo: Option<PathBuf>, run: Option<String>) -> Result<LoadedRun> {
    let repo = open_repo(repo)?;
    check_state_dir(&repo)?;
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
    Ok(LoadedRun { repo, layout, state })
}

/// A task of `state`, or an error that names the run's tasks.
pub fn task_of<'a>(state: &'a RunState, task: &str) -> Result<&'a TaskState, InputError> {
    state.task(task).ok_or_else(|| {
        let ids: Vec<&str> = state.tasks.iter().map(|t| t.id.as_str()).collect();
        InputError::new(
            format!("run {} has no task `{task}`", state.run_id),
            format!("use one of: {}", ids.join(", ")),
        )
    })
}

/// The pid of the live process that drives `run_id`, if one does.
pub fn driver_of(layout: &Layout, run_id: &str) -> Option<u32> {
    read_lock(layout)
        .filter(|l| l.run_id == run_id && l.owner_alive())
        .map(|l| l.pid)
}

/// What `resume` found.
pub enum Resumed {
    /// The run had already ended; nothing to drive.
    Ended(Box<RunState>),
    /// The run is taken over, ready to drive.
    Drive(Box<Drive>),
}

/// Takes over a run whose orchestrator is gone (`gadugi resume`): its running agents are
/// re-attached when driven, never restarted. A run still driven by a live process is refused.
pub fn resume(loaded: LoadedRun) -> Result<Resumed> {
    let LoadedRun { repo, layout, state } = loaded;
    if state.status != RunStatus::Running {
        return Ok(Resumed::Ended(Box::new(state)));
    }
    pause_for_tests("GADUGI_TEST_PAUSE_BEFORE_LOCK_MS");
    let lock = RunLock::acquire(&layout, &state.run_id)?;
    remove_stale_temp_files(&layout, &state.run_id);
    // Read again under the lock: whoever held it before may have moved the run on (another
    // `gadugi resume` that took the lock first may even have finished it).
    let state = layout.load_run(Some(&state.run_id))?.unwrap_or(state);
    if state.status != RunStatus::Running {
        return Ok(Resumed::Ended(Box::new(state)));
    }
    let req = RunRequest::load(Arc::new(repo), layout, &state.run_id)?;
    Ok(Resumed::Drive(Box::new(Drive {
        req,
        start: Start::Resume(Box::new(state)),
        _lock: lock,
    })))
}

/// Queues a failed, cancelled or skipped task of an ended run again, with every task
/// skipped because of it (`gadugi retry`): the run is taken over and, when driven, the task
/// continues on its branch with a new attempt.
pub fn retry(loaded: LoadedRun, task: &str) -> Result<Drive> {
    let LoadedRun { repo, layout, state } = loaded;
    let lock = RunLock::acquire(&layout, &state.run_id)?;
    remove_stale_temp_files(&layout, &state.run_id);
    let state = layout.load_run(Some(&state.run_id))?.unwrap_or(state);
    if state.status == RunStatus::Running {
        return Err(InputError::new(
            format!("run {} is still going", state.run_id),
            "retry a task once the run has ended (gadugi cancel ends it)",
        )
        .into());
    }
    if task_of(&state, task)?.status == TaskStatus::Succeeded {
        return Err(InputError::new(
            format!("task `{task}` succeeded; there is nothing to retry"),
            "retry a failed, cancelled or skipped task",
        )
        .into());
    }
    // Old cancel requests would stop the retry at once.
    let _ = std::fs::remove_file(layout.task_cancel_marker(&state.run_id, task));
    let _ = std::fs::remove_file(layout.run_cancel_marker(&state.run_id));
    let state = crate::run::run_loop::queue_retry(&layout, state, task)?;
    let req = RunRequest::load(Arc::new(repo), layout, &state.run_id)?;
    Ok(Drive {
        req,
        start: Start::Resume(Box::new(state)),
        _lock: lock,
    })
}

/// What a cancel request found.
#[derive(Debug, Clone, PartialEq)]
pub enum Cancelled {
    /// The run had already ended: nothing was cancelled.
    RunEnded,
    /// The task had already ended: nothing was cancelled.
    TaskEnded(TaskStatus),
    /// Requested: the cancel markers are written and the running agents' supervisors got
    /// SIGTERM. `driver` is the pid of the live process that drives the run and records the
    /// cancellation; `None` when nobody does (the caller takes the run over to record it).
    Requested { driver: Option<u32> },
}

/// Cancels a run, or one of its tasks, whichever process drives it (`gadugi cancel`, the
/// editor's cancel): a cancel marker the run loop sees, and SIGTERM to the supervisors of the
/// running agents. A cancelled task keeps its branch and worktree.
pub fn cancel(layout: &Layout, state: &RunState, task: Option<&str>) -> Result<Cancelled> {
    if state.status != RunStatus::Running {
        return Ok(Cancelled::RunEnded);
    }
    let run_id = &state.run_id;
    match task {
        Some(id) => {
            let t = task_of(state, id)?;
            if t.status.is_final() {
                return Ok(Cancelled::TaskEnded(t.status));
            }
            let marker = layout.task_cancel_marker(run_id, id);
            std::fs::create_dir_all(marker.parent().unwrap_or(&layout.root))
                .and_then(|_| std::fs::write(&marker, b""))
                .with_context(|| format!("writing the cancel marker {}", marker.display()))?;
            stop_supervisor(layout, run_id, t);
        }
        None => {
            let marker = layout.run_cancel_marker(run_id);
            std::fs::write(&marker, b"").with_context(|| format!("writing the cancel marker {}", marker.display()))?;
            for t in state.tasks.iter().filter(|t| t.status == TaskStatus::Running) {
                stop_supervisor(layout, run_id, t);
            }
        }
    }
    Ok(Cancelled::Requested {
        driver: driver_of(layout, run_id),
    })
}

/// Waits (up to `limit`) until the driver of a cancelled run recorded the cancellation of
/// the run, or of `task`; returns the state then, or `None` when it is still in progress.
pub fn wait_cancelled(layout: &Layout, run_id: &str, task: Option<&str>, limit: Duration) -> Result<Option<RunState>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(now) = layout.load_run(Some(run_id))? {
            let done = match task {
                Some(id) => now.task(id).is_none_or(|t| t.status.is_final()),
                None => now.status != RunStatus::Running,
            };
            if done {
                return Ok(Some(now));
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        // The driver records the cancellation within a second (its loop's tick).
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends SIGTERM to the supervisor of a task's latest attempt, if it still runs.
fn stop_supervisor(layout: &Layout, run_id: &str, task: &TaskState) {
    let files = layout.attempt(run_id, &task.id, task.attempts.max(1));
    if let Ok(Some(s)) = crate::fsutil::read_json::<crate::exec::supervisor::SupervisorInfo>(&files.supervisor) {
        if crate::exec::supervisor::process_is_alive(s.pid, s.start_ticks) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(s.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

/// What `cleanup` may do.
#[derive(Debug, Clone, Default)]
pub struct CleanupOptions {
    /// Only this run's worktrees [default: every run; with `task`, the latest run].
    pub run: Option<String>,
    /// Only this task's worktree.
    pub task: Option<String>,
    /// Also delete task branches whose commits another branch holds.
    pub delete_branches: bool,
    /// Commit uncommitted work onto the branch and remove anyway; delete unmerged branches.
    pub force: bool,
    /// Say what would be done, do nothing.
    pub dry_run: bool,
}

/// The warm worktree pool of the repository (`gadugi pool status`): its entries, oldest
/// first, with their sizes (a directory walk each).
pub fn pool_status(repo: &Repo) -> Result<Vec<crate::run::pool::EntryStatus>> {
    let config = Config::load(repo.root())?;
    crate::run::pool::status(&config)
}

/// Removes pooled worktrees (`gadugi pool prune`): those over the `[pool]` budget and the
/// ones a dead process left half-taken, or every one with `all`. Holds the repository lock,
/// so no run takes or releases one meanwhile. Returns one line per entry removed or kept.
pub fn pool_prune(repo: &Repo, all: bool) -> Result<Vec<String>> {
    check_state_dir(repo)?;
    let config = Config::load(repo.root())?;
    let _lock = RunLock::acquire(&Layout::new(repo.root()), "pool-prune")?;
    crate::run::pool::prune(repo, &config, all)
}

/// Removes worktrees of finished tasks (`gadugi cleanup`): never one with uncommitted
/// changes or of a running task, and deletes branches only when asked and only those whose
/// commits another branch holds (unless `force`). Returns the lines that say what was
/// removed or kept (and why), last the totals.
pub fn cleanup(repo: &Repo, options: CleanupOptions) -> Result<Vec<String>> {
    let CleanupOptions {
        run,
        task,
        delete_branches,
        force,
        dry_run,
    } = options;
    check_state_dir(repo)?;
    let mut lines = vec![];
    let layout = Layout::new(repo.root());
    // One task's worktree belongs to one run: the latest unless `run` names another.
    let run = match (&task, run) {
        (Some(_), None) => layout.run_ids().into_iter().next_back(),
        (_, run) => run,
    };
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
                let nested = crate::git::nested_repositories(&t.worktree)?;
                if !nested.is_empty() && !force {
                    lines.push(format!(
                        "kept    {}: it holds a nested git repository in {} whose commits exist nowhere else (move them, or --force)",
                        t.worktree.display(),
                        nested.join(", ")
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
                    if let Err(why) = crate::run::workspace::teardown_before_removal(repo, &config, &layout, &state, t)
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
