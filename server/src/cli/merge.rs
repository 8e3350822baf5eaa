//! `gadugi merge [RUN] [--verify CMD] [--verify-timeout DURATION] [--onto BRANCH]`: fills the
//! options, calls `ops::merge` (the flow the editor's "Merge Run" shares), prints each step.

use anyhow::Result;

use crate::error::{EXIT_OK, EXIT_TASKS_FAILED};
use crate::ops::merge::MergeRequest;

/// `gadugi merge`. Returns the exit code: 0 when every branch merged (and `--onto` moved).
pub fn merge(
    run: Option<String>,
    verify: Option<String>,
    verify_timeout: Option<String>,
    onto: Option<String>,
) -> Result<i32> {
    let loaded = crate::ops::load_run(None, run)?;
    let request = MergeRequest {
        verify,
        verify_timeout,
        onto,
    };
    let report = crate::ops::merge::merge(&loaded, request, &mut |line| println!("{line}"))?;
    Ok(if report.succeeded() { EXIT_OK } else { EXIT_TASKS_FAILED })
}
