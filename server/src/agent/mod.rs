//! Agents: how a task becomes a process (profiles and their command lines), what an agent's
//! output says (reports, failure classes, "what it is doing now"), and which agent programs
//! are installed (the one process this layer starts: `PROGRAM --version`). Knows nothing of
//! runs, events, worktrees or supervision.

pub mod approve;
pub mod builtins;
pub mod claude;
pub mod follower;
pub mod inventory;
pub mod profile;
pub mod report;
