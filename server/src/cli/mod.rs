//! The command-line front end: fills the operations' options from the arguments, calls
//! `ops`, and prints. The terminal is its view: live progress, Ctrl-C to cancel, the summary.
//! Each subcommand with more to say than a few lines has its own file.

pub mod agents;
pub mod answer;
pub mod demo;
pub mod init;
pub mod merge;
pub mod pr;
pub mod prompt;
pub mod report;
pub mod trust;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;

use crate::core::events::RunStatus;
use crate::core::state::RunState;
use crate::error::{EXIT_OK, EXIT_TASKS_FAILED};
use crate::layout::Layout;
use crate::ops::{self, Cancelled, CleanupOptions, Drive, Resumed, RunOptions};
use crate::run::emitter::EventSink;

/// Options shared by commands that start a run.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Agents running at once [default: max_parallel from gadugi.toml, else 4].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_parallel: Option<u16>,
    /// Agent profile for tasks that don't name one: claude, codex, gemini, aider, opencode,
    /// command, simulated, or a [profiles.NAME] of gadugi.toml.
    #[arg(long, value_name = "PROFILE")]
    pub agent: Option<String>,
    /// Command line of the `command` profile, e.g. 'my-agent --task {prompt_file}'.
    /// Split like a shell would; never run through a shell.
    #[arg(long, value_name = "CMD")]
    pub agent_command: Option<String>,
    /// One more argument for every agent, after `[agent] args` of gadugi.toml (repeat it for
    /// several; write `--agent-arg=--model` for one that starts with a dash).
    #[arg(long = "agent-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub agent_args: Vec<String>,
    /// Where the worktrees go [default: worktree_dir of gadugi.toml, else
    /// ../REPO.gadugi-worktrees]; relative to the repository root.
    #[arg(long, value_name = "DIR")]
    pub worktree_dir: Option<std::path::PathBuf>,
    /// Where the agents run: local (this machine) or slurm (one Slurm job per attempt)
    /// [default: [executor] kind of gadugi.toml, else local].
    #[arg(long, value_name = "KIND")]
    pub executor: Option<String>,
    /// Check everything and print the jobs the cluster would get (a remote executor's
    /// command lines or manifests); nothing is pushed, submitted or created.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON summary on stdout at the end (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl RunArgs {
    /// The run's options (everything but the output format).
    pub fn options(&self) -> RunOptions {
        RunOptions {
            max_parallel: self.max_parallel,
            agent: self.agent.clone(),
            agent_command: self.agent_command.clone(),
            agent_args: self.agent_args.clone(),
            worktree_dir: self.worktree_dir.clone(),
            executor: self.executor.clone(),
        }
    }
}

/// `gadugi remote-task --spec FILE`: what a cluster's job runs on its node
/// (`ops::remote_task`); its records go to standard output.
pub fn remote_task(spec: Option<PathBuf>, spec_env: Option<String>) -> Result<i32> {
    let source = match (spec, spec_env) {
        (Some(file), _) => ops::remote_task::SpecSource::File(file),
        (None, Some(name)) => ops::remote_task::SpecSource::Env(name),
        (None, None) => anyhow::bail!("pass --spec FILE or --spec-env NAME"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    Ok(runtime.block_on(ops::remote_task::run(&source)))
}

/// `gadugi run`.
pub fn run(args: RunArgs, repo: Option<PathBuf>, files: Vec<PathBuf>) -> Result<i32> {
    let req = ops::prepare(&args.options(), repo, &files)?;
    if args.dry_run {
        print!("{}", ops::dry_run(&req)?);
        return Ok(EXIT_OK);
    }
    let state = drive_with_terminal(ops::start(req)?, args.json)?;
    print_result(&state, args.json)?;
    Ok(exit_code(&state))
}

/// `gadugi plan`.
pub fn plan(json: bool, repo: Option<PathBuf>, files: Vec<PathBuf>) -> Result<i32> {
    let (repo, plan) = ops::plan(repo, &files)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&crate::spec::plan::to_json(&plan))?);
    } else {
        print!("{}", crate::spec::plan::render_text(&plan, repo.root()));
    }
    Ok(EXIT_OK)
}

/// Drives a run holding the repository lock, with a terminal view. Ctrl-C or SIGTERM
/// cancels the run; a second Ctrl-C leaves at once (agents keep running under their
/// supervisors; `gadugi resume` picks them up).
pub fn drive_with_terminal(drive: Drive, json: bool) -> Result<RunState> {
    let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
    if std::io::stderr().is_terminal() && !json {
        let live = crate::views::progress::LiveProgress::new();
        // On a terminal the person can answer the agents' questions right here.
        let prompts = (drive.req.config.approvals.enabled
            && std::io::stdin().is_terminal()
            && std::io::stdout().is_terminal())
        .then(|| prompt::InlinePrompts::start(drive.req.layout.clone(), drive.req.run_id.clone(), live.pause()));
        sinks.push(Box::new(live));
        if let Some(p) = prompts {
            sinks.push(Box::new(p));
        }
    } else {
        sinks.push(Box::new(crate::views::progress::PlainProgress));
    }
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
        ops::drive(drive, sinks, cancel_rx).await
    })?;
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(state)
}

/// `gadugi resume`: takes over a run whose orchestrator is gone.
pub fn resume(json: bool, run: Option<String>) -> Result<i32> {
    let state = match ops::resume(ops::load_run(None, run)?)? {
        Resumed::Ended(state) => {
            eprintln!("run {} already ended; nothing to resume.", state.run_id);
            *state
        }
        Resumed::Drive(drive) => drive_with_terminal(*drive, json)?,
    };
    print_result(&state, json)?;
    Ok(exit_code(&state))
}

/// `gadugi retry TASK`: runs a failed, cancelled or skipped task of an ended run again (and
/// what was skipped because of it), continuing on its branch.
pub fn retry(task: String, run: Option<String>, json: bool) -> Result<i32> {
    let drive = ops::retry(ops::load_run(None, run)?, &task)?;
    let state = drive_with_terminal(drive, json)?;
    print_result(&state, json)?;
    Ok(exit_code(&state))
}

/// `gadugi cancel [TASK]`: cancels a run or one task, whichever process drives the run.
/// A cancelled task keeps its branch and worktree.
pub fn cancel(task: Option<String>, run: Option<String>, json: bool) -> Result<i32> {
    let loaded = ops::load_run(None, run)?;
    let run_id = loaded.state.run_id.clone();
    match ops::cancel(&loaded.layout, &loaded.state, task.as_deref())? {
        Cancelled::RunEnded => {
            println!(
                "run {run_id} already ended ({}); nothing to cancel.",
                crate::views::report::summary_counts(&loaded.state)
            );
        }
        Cancelled::TaskEnded(status) => {
            println!("task {} already ended ({}).", task.unwrap_or_default(), status.as_str());
        }
        Cancelled::Requested { driver: None } => {
            // Nobody drives the run: record the cancellation ourselves.
            let state = match ops::resume(loaded)? {
                Resumed::Drive(drive) => drive_with_terminal(*drive, json)?,
                Resumed::Ended(state) => *state,
            };
            print_result(&state, json)?;
        }
        Cancelled::Requested { driver: Some(pid) } => {
            eprintln!("cancel requested; the run's orchestrator (pid {pid}) is stopping it");
            match ops::wait_cancelled(&loaded.layout, &run_id, task.as_deref(), Duration::from_secs(60))? {
                Some(now) => match &task {
                    Some(id) => println!(
                        "task {id}: {}",
                        now.task(id).map(|t| t.status.as_str()).unwrap_or("gone")
                    ),
                    None => print_result(&now, json)?,
                },
                None => println!("the cancellation is still in progress; see `gadugi status`"),
            }
        }
    }
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
        print!("{}", crate::views::report::terminal_summary(state, &state.repo_root));
    }
    Ok(())
}

/// `gadugi status`.
pub fn status(json: bool, run: Option<String>) -> Result<i32> {
    let state = ops::load_run(None, run)?.state;
    if json {
        println!("{}", serde_json::to_string_pretty(&state.summary_json())?);
        return Ok(EXIT_OK);
    }
    print!("{}", crate::views::report::terminal_summary(&state, &state.repo_root));
    if let Some(reason) = &state.circuit_open {
        println!("Circuit breaker: {reason}; the remaining tasks were skipped.");
    }
    for t in &state.tasks {
        for p in &t.pending_approvals {
            println!(
                "{}: waiting for approval: {} (gadugi answer {} allow|deny --id {})",
                t.id,
                p.describe(chrono::Utc::now()),
                t.id,
                p.id
            );
        }
    }
    if state.status == RunStatus::Running {
        if let Some(reason) = &state.limit_reason {
            println!("Running fewer agents at once: {reason}.");
        }
        let driven = ops::driver_of(&Layout::new(&state.repo_root), &state.run_id).is_some();
        if !driven {
            println!("No gadugi process drives this run any more (pid {} is gone); agents that were running keep running under their supervisors. Continue it with `gadugi resume`.", state.orchestrator_pid);
        }
    }
    Ok(EXIT_OK)
}

/// `gadugi logs`.
pub fn logs(task: &str, follow: bool, run: Option<String>, attempt: Option<u32>) -> Result<i32> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let ops::LoadedRun { layout, mut state, .. } = ops::load_run(None, run)?;
    let t = ops::task_of(&state, task)?;
    let attempt_files = layout.attempt(&state.run_id, &t.id, attempt.unwrap_or(t.attempts.max(1)));
    let dir = attempt_files.dir.clone();
    let files = [attempt_files.stdout, attempt_files.stderr, attempt_files.verify_log];
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
pub fn cleanup(options: CleanupOptions) -> Result<i32> {
    let repo = ops::open_repo(None)?;
    for line in ops::cleanup(&repo, options)? {
        println!("{line}");
    }
    Ok(EXIT_OK)
}

/// `gadugi pool status [--json]`.
pub fn pool_status(json: bool) -> Result<i32> {
    let repo = ops::open_repo(None)?;
    let entries = ops::pool_status(&repo)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(EXIT_OK);
    }
    if entries.is_empty() {
        println!("the worktree pool is empty");
    }
    for e in &entries {
        let state = match e.entry.claimed_by {
            Some(pid) if e.entry.is_stale_claim() => format!("  (left by process {pid}, which is gone)"),
            Some(pid) => format!("  (being taken by process {pid})"),
            None => String::new(),
        };
        println!(
            "{}  {:>9}  {:>6} old{state}",
            e.entry.path.display(),
            human_size(e.size),
            human_age(e.entry.age_secs)
        );
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    println!("{} pooled worktree(s), {}", entries.len(), human_size(total));
    Ok(EXIT_OK)
}

/// `gadugi pool prune [--all]`.
pub fn pool_prune(all: bool) -> Result<i32> {
    let repo = ops::open_repo(None)?;
    let lines = ops::pool_prune(&repo, all)?;
    if lines.is_empty() {
        println!("nothing to prune");
    }
    for line in lines {
        println!("{line}");
    }
    Ok(EXIT_OK)
}

fn human_size(bytes: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < units.len() {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{size:.1}{}", units[unit])
    }
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
