//! `gadugi merge [RUN] [--verify CMD] [--onto BRANCH]`: fills the options, calls the merge
//! engine (`integrate::merge`), prints each step.

use anyhow::Result;

use crate::error::{EXIT_OK, EXIT_TASKS_FAILED};
use crate::integrate::merge::{merge_run, MergeOptions};

/// `gadugi merge`. Returns the exit code: 0 when every branch merged (and `--onto` moved).
pub fn merge(run: Option<String>, verify: Option<String>, onto: Option<String>) -> Result<i32> {
    let loaded = crate::ops::load_run(None, run)?;
    let config = crate::spec::config::Config::load(loaded.repo.root())?;
    let report = merge_run(
        &loaded.repo,
        &loaded.layout,
        &loaded.state,
        &config,
        MergeOptions { verify, onto },
        &mut |line| println!("{line}"),
    )?;
    Ok(if report.succeeded() { EXIT_OK } else { EXIT_TASKS_FAILED })
}
