//! The Gadugi library: everything behind the `gadugi` binary (`main.rs` is only the command
//! line). A library target so that the examples and the benchmarks (`server/benches/`) can
//! call the planner, the scheduler, the state reducer and the protocol types directly.
//!
//! See ARCHITECTURE.md at the repository root for the bird's-eye view.

pub mod agent;
pub mod claude;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod fsutil;
pub mod git;
pub mod init;
pub mod integrate;
pub mod lock;
pub mod lsp;
pub mod orchestrator;
pub mod plan;
pub mod ports;
pub mod pr;
pub mod profiles;
pub mod progress;
pub mod report;
pub mod scheduler;
pub mod state;
pub mod supervisor;
pub mod task;
pub mod task_run;
pub mod workspace_setup;

/// Options shared by commands that start a run.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Agents running at once [default: max_parallel from gadugi.toml, else 4].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_parallel: Option<u16>,
    /// Agent profile for tasks that don't name one: claude, command, simulated, or a
    /// [profiles.NAME] of gadugi.toml.
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
    /// Print one JSON summary on stdout at the end (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}
