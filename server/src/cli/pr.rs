//! `gadugi pr [RUN] [--dry-run] [--remote NAME] [--base BRANCH]`: fills the options, calls
//! `ops::pr` (the flow the editor's "Open Pull Requests" shares), prints each step.

use anyhow::Result;

use crate::error::{EXIT_OK, EXIT_TASKS_FAILED};
use crate::ops::pr::{open_pull_requests, PrOptions};

/// `gadugi pr`. Returns the exit code: 0 when every pull request was opened (or `--dry-run`).
pub fn pr(run: Option<String>, dry_run: bool, remote: Option<String>, base: Option<String>) -> Result<i32> {
    let loaded = crate::ops::load_run(None, run)?;
    let outcome = open_pull_requests(&loaded, PrOptions { dry_run, remote, base }, &mut |line| {
        println!("{line}")
    })?;
    Ok(if outcome.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_TASKS_FAILED
    })
}
