//! The Gadugi library: everything behind the `gadugi` binary (`main.rs` is only the command
//! line). A library target so that the examples and the benchmarks (`server/benches/`) can
//! call the planner, the scheduler, the state reducer and the protocol types directly.
//!
//! The modules are layers; each uses only the layers listed before it (the layering test in
//! `tests/layers.rs` enforces it). See ARCHITECTURE.md at the repository root.

// Leaves: no knowledge of runs.
pub mod error;
pub mod fsutil;
pub mod git;
pub mod layout;
#[cfg(test)]
mod testing;
// What the user wrote.
pub mod spec;
// Agents: profiles, their output, their programs.
pub mod agent;
// Events, state and its reducer, the scheduler.
pub mod core;
// Processes on this machine: supervisor, shell runner, ports, the run lock.
pub mod exec;
// Merge-conflict prediction and the merge engine.
pub mod integrate;
// The run loop and the life of a task.
pub mod run;
// Terminal progress and reports.
pub mod views;
// The operations every front end calls.
pub mod ops;
// Front ends.
pub mod cli;
pub mod lsp;
