//! The core: the event vocabulary, the run state and its reducer, and the scheduler. Pure
//! data and decisions; it starts no process and runs no git command (the state's files are
//! written here, through `fsutil`'s crash-safe writes).

pub mod events;
pub mod scheduler;
pub mod state;

#[cfg(test)]
mod reducer_tests;
