//! Running a checked plan: the run loop (scheduling under the limiter, the circuit breaker,
//! cancel), the life of one task (worktree, attempts under supervisors, leftovers, verify),
//! worktrees made ready to work in, and the single writer of events.

pub mod branches;
pub mod classify;
pub mod context;
pub mod emitter;
pub mod executor;
pub mod limiter;
pub mod pool;
pub mod questions;
pub mod remote;
pub mod request;
pub mod run_loop;
pub mod settle;
pub mod task;
pub mod workspace;
