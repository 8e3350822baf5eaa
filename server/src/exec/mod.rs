//! Processes on this machine: the supervisor of an agent attempt, the one shell runner
//! for the user's own command lines, port blocks, and the repository's run lock.

pub mod engine;
pub mod kubernetes;
pub mod lock;
pub mod ports;
pub mod shell;
pub mod slurm;
pub mod supervisor;
