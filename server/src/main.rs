//! `gadugi`: run many AI coding agents in parallel, one git worktree and branch per task.
//!
//! See ARCHITECTURE.md at the repository root for the bird's-eye view. This file is the
//! command line only; everything else is the library (`lib.rs`), which the examples and
//! benchmarks use too.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use gadugi::agent::approve::{self, BrokerArgs};
use gadugi::cli::answer::AnswerArgs;
use gadugi::cli::trust::TrustArgs;
use gadugi::cli::{self, agents, answer, demo, init, merge, pr, report, trust, RunArgs};
use gadugi::error::{InputError, InputErrors, EXIT_BAD_INPUT, EXIT_INTERNAL};
use gadugi::exec::supervisor;
use gadugi::lsp;
use gadugi::ops::CleanupOptions;
use gadugi::spec::approvals::Decision;

/// Run many AI coding agents in parallel: one git worktree and branch per task prompt,
/// in dependency order, under a concurrency limit.
#[derive(Parser, Debug)]
#[command(name = "gadugi", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run prompt files: plan, create worktrees, start agents, report.
    Run {
        #[command(flatten)]
        args: RunArgs,
        /// Repository to run in [default: the one containing the current directory].
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
        /// Prompt files (markdown), or directories whose *.md files are prompts.
        #[arg(required = true, value_name = "FILES")]
        files: Vec<PathBuf>,
    },
    /// Show the dependency graph, critical path and file conflicts without running anything.
    Plan {
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Repository [default: the one containing the current directory].
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
        #[arg(required = true, value_name = "FILES")]
        files: Vec<PathBuf>,
    },
    /// Take over a run whose orchestrator is gone (crash, kill, reload): running agents are
    /// re-attached, finished ones collected, queued tasks started.
    Resume {
        /// Print one JSON summary on stdout at the end (progress goes to stderr).
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },
    /// Run a failed, cancelled or skipped task of the latest run (or --run ID) again, with
    /// the tasks skipped because of it; it continues on its branch.
    Retry {
        /// Task id.
        task: String,
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Cancel the latest run (or --run ID), or one of its tasks. Branches and worktrees stay.
    Cancel {
        /// Task id; without it the whole run is cancelled.
        task: Option<String>,
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show the state of the latest run (or --run ID).
    Status {
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },
    /// Print a task's agent output (latest attempt).
    Logs {
        /// Task id.
        task: String,
        /// Keep printing new output until the task ends.
        #[arg(long, short = 'f')]
        follow: bool,
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Attempt number [default: the latest].
        #[arg(long, value_name = "N")]
        attempt: Option<u32>,
    },
    /// Remove worktrees of finished tasks. Never removes uncommitted work or unmerged branches
    /// unless --force (which commits uncommitted work onto the task's branch first).
    Cleanup {
        /// Only this run's worktrees [default: every run].
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Only this task's worktree (of the latest run, or of --run ID).
        #[arg(long, value_name = "TASK")]
        task: Option<String>,
        /// Also delete task branches whose commits are all contained in another branch.
        #[arg(long)]
        delete_branches: bool,
        /// Remove dirty worktrees (after committing their changes) and delete unmerged branches.
        #[arg(long)]
        force: bool,
        /// Say what would be done, do nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The warm worktree pool ([pool] of gadugi.toml): finished tasks' clean worktrees that
    /// new tasks reuse, keeping the ignored build outputs listed in `keep`.
    Pool {
        #[command(subcommand)]
        command: PoolCommand,
    },
    /// A real run in a scratch repository with a built-in simulated agent (no network, no key).
    Demo {
        /// Where to create the scratch repository [default: a new temporary directory].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        max_parallel: Option<u16>,
        #[arg(long)]
        json: bool,
    },
    /// Merge a run's succeeded task branches, in dependency order, into the integration branch
    /// gadugi/integrate/<run-id> (never your branch, never a push). Stops at the first conflict.
    Merge {
        /// Run id [default: the latest run].
        run: Option<String>,
        /// Command run (through sh) on the result after each merge, in a temporary worktree;
        /// when it fails the integration branch stays at the last good merge.
        #[arg(long, value_name = "CMD")]
        verify: Option<String>,
        /// Time limit of each --verify (90s, 10m, 1h30m); then its whole process group is
        /// stopped and the merge stops there [default: timeout of gadugi.toml].
        #[arg(long, value_name = "DURATION", requires = "verify")]
        verify_timeout: Option<String>,
        /// Fast-forward this local branch to the integration branch when every task merged
        /// (refused when it is not a fast-forward or the branch is checked out).
        #[arg(long, value_name = "BRANCH")]
        onto: Option<String>,
    },
    /// Push the run's succeeded task branches and open one pull request per task (GitHub CLI).
    Pr {
        /// Run id [default: the latest run].
        run: Option<String>,
        /// Say what would be pushed and opened; push and open nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remote to push to [default: origin, or the only remote].
        #[arg(long, value_name = "NAME")]
        remote: Option<String>,
        /// Branch the pull requests target [default: the branch the run started from].
        #[arg(long, value_name = "BRANCH")]
        base: Option<String>,
    },
    /// Print a run's report (markdown: tasks, commits, conflicts, timeline).
    Report {
        /// Run id [default: the latest run].
        run: Option<String>,
        /// Print report.json instead.
        #[arg(long)]
        json: bool,
    },
    /// Language server for editors (LSP over stdin/stdout): commands, progress, diagnostics
    /// and the task tree. See docs/lsp-extensions.md.
    Server {
        /// Speak LSP over stdin/stdout (the only transport).
        #[arg(long, required = true)]
        stdio: bool,
    },
    /// List the agent profiles, whether each program is installed, and its version.
    Agents {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        /// Repository whose gadugi.toml adds profiles [default: the current one, if any].
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
    /// Write the WorkflowManager agent (.claude/agents/WorkflowManager.md) and the
    /// /orchestrate command (.claude/commands/orchestrate.md) for Claude Code.
    Init {
        /// Repository [default: the one containing the current directory].
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
        /// Replace the files when they exist.
        #[arg(long)]
        force: bool,
    },
    /// Answer a question a task's agent asked: a tool use that is not pre-approved, or a
    /// question ([approvals] of gadugi.toml). Exit 2 when nothing is pending.
    Answer {
        /// Task id.
        task: String,
        /// allow or deny.
        #[arg(value_enum)]
        decision: DecisionArg,
        /// Told to the model with a denial; the free answer to a question.
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
        /// Allow this Bash command instead of the one asked for.
        #[arg(long, value_name = "COMMAND")]
        command: Option<String>,
        /// The option chosen for a question.
        #[arg(long, value_name = "LABEL")]
        choice: Option<String>,
        /// The question [default: the only one pending].
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },
    /// Trust this repository's [approvals] (and the other keys of gadugi.toml that can grant
    /// agents something), so its allow rules and default = "allow" count, for exactly the
    /// text shown; a later change stops them counting until you trust it again.
    Trust {
        /// Repository [default: the one containing the current directory].
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
        /// Print whether it is trusted (and what changed since) without changing anything.
        #[arg(long, conflicts_with_all = ["revoke", "yes"])]
        show: bool,
        /// Stop trusting it.
        #[arg(long, conflicts_with = "yes")]
        revoke: bool,
        /// Trust without asking for confirmation (needed when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Internal: the approval broker, an MCP stdio server Claude Code starts per attempt
    /// (see agent/approve.rs).
    #[command(name = "__approve", hide = true)]
    Approve {
        #[arg(long)]
        questions: PathBuf,
        #[arg(long)]
        policy: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        attempt: u32,
        #[arg(long)]
        cwd: PathBuf,
    },
    /// Run one attempt of a task on a cluster's node (what a Slurm job of `gadugi run
    /// --executor slurm` runs): fetch its start from the shared remote, run the agent, push
    /// the result to the attempt's own reference, report on standard output.
    #[command(group = clap::ArgGroup::new("source").required(true))]
    RemoteTask {
        /// The attempt's remote-spec.json, written by the orchestrator.
        #[arg(long, value_name = "FILE", group = "source")]
        spec: Option<PathBuf>,
        /// The environment variable that holds the spec (a job that cannot read the
        /// orchestrator's files).
        #[arg(long, value_name = "NAME", group = "source")]
        spec_env: Option<String>,
    },
    /// Internal: supervise one agent attempt (see supervisor.rs).
    #[command(name = "__supervise", hide = true)]
    Supervise { launch: PathBuf },
    /// Internal: the simulated agent used by `gadugi demo` and tests.
    #[command(name = "__sim-agent", hide = true)]
    SimAgent,
}

/// `allow` or `deny` on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DecisionArg {
    Allow,
    Deny,
}

#[derive(Subcommand, Debug)]
enum PoolCommand {
    /// List the pooled worktrees: path, size, age.
    Status {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove pooled worktrees over the budget (and any a dead process left half-taken).
    Prune {
        /// Remove every pooled worktree.
        #[arg(long)]
        all: bool,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            eprintln!("  fix: see `gadugi help` or `gadugi <command> --help` for the accepted arguments");
            std::process::exit(EXIT_BAD_INPUT);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("GADUGI_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colour only for a terminal: editors show the server's stderr as plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let result = match cli.command {
        Command::Supervise { launch } => supervisor::supervise(&launch),
        Command::RemoteTask { spec, spec_env } => cli::remote_task(spec, spec_env),
        Command::SimAgent => demo::sim_agent(),
        Command::Approve {
            questions,
            policy,
            key,
            attempt,
            cwd,
        } => approve::serve(BrokerArgs {
            questions,
            policy,
            key,
            attempt,
            cwd,
        }),
        Command::Answer {
            task,
            decision,
            message,
            command,
            choice,
            id,
            run,
        } => answer::answer(AnswerArgs {
            task,
            decision: match decision {
                DecisionArg::Allow => Decision::Allow,
                DecisionArg::Deny => Decision::Deny,
            },
            message,
            command,
            choice,
            id,
            run,
        }),
        Command::Server { stdio: _ } => lsp::serve_stdio(),
        Command::Run { args, repo, files } => cli::run(args, repo, files),
        Command::Plan { json, repo, files } => cli::plan(json, repo, files),
        Command::Status { json, run } => cli::status(json, run),
        Command::Resume { json, run } => cli::resume(json, run),
        Command::Cancel { task, run, json } => cli::cancel(task, run, json),
        Command::Retry { task, run, json } => cli::retry(task, run, json),
        Command::Logs {
            task,
            follow,
            run,
            attempt,
        } => cli::logs(&task, follow, run, attempt),
        Command::Cleanup {
            run,
            task,
            delete_branches,
            force,
            dry_run,
        } => cli::cleanup(CleanupOptions {
            run,
            task,
            delete_branches,
            force,
            dry_run,
        }),
        Command::Pool {
            command: PoolCommand::Status { json },
        } => cli::pool_status(json),
        Command::Pool {
            command: PoolCommand::Prune { all },
        } => cli::pool_prune(all),
        Command::Merge {
            run,
            verify,
            verify_timeout,
            onto,
        } => merge::merge(run, verify, verify_timeout, onto),
        Command::Pr {
            run,
            dry_run,
            remote,
            base,
        } => pr::pr(run, dry_run, remote, base),
        Command::Report { run, json } => report::report(run, json),
        Command::Demo {
            dir,
            max_parallel,
            json,
        } => demo::demo(dir, max_parallel, json),
        Command::Agents { json, repo } => agents::agents(json, repo),
        Command::Init { repo, force } => init::init(repo, force),
        Command::Trust {
            repo,
            show,
            revoke,
            yes,
        } => trust::run(TrustArgs {
            repo,
            show,
            revoke,
            yes,
        }),
    };
    std::process::exit(match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(errs) = e.downcast_ref::<InputErrors>() {
                eprintln!("{errs}");
                EXIT_BAD_INPUT
            } else if let Some(err) = e.downcast_ref::<InputError>() {
                eprintln!("error: {err}");
                EXIT_BAD_INPUT
            } else {
                eprintln!("gadugi: internal error: {e:#}");
                EXIT_INTERNAL
            }
        }
    });
}
