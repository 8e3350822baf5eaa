//! What the user wrote: prompt files (tasks), the plan built from them (dependency graph,
//! critical path, file conflicts) and the configuration (`gadugi.toml`, including the
//! `[claude]` and `[worktree]` tables). Reads and checks; never creates anything.

pub mod approvals;
pub mod claude_settings;
pub mod config;
pub mod executor;
pub mod plan;
pub mod pool;
pub mod task;
pub mod toml_text;
pub mod trust;
pub mod worktree;
