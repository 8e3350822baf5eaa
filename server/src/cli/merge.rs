//! `gadugi merge [RUN] [--verify CMD] [--verify-timeout DURATION] [--onto BRANCH]`: checks
//! and fills the options, calls the merge engine (`integrate::merge`), prints each step.

use anyhow::Result;

use crate::error::{InputError, EXIT_OK, EXIT_TASKS_FAILED};
use crate::integrate::merge::{merge_run, MergeOptions};

/// `gadugi merge`. Returns the exit code: 0 when every branch merged (and `--onto` moved).
pub fn merge(
    run: Option<String>,
    verify: Option<String>,
    verify_timeout: Option<String>,
    onto: Option<String>,
) -> Result<i32> {
    let verify_timeout = match verify_timeout {
        None => None,
        Some(text) => Some(crate::spec::toml_text::parse_duration(&text).ok_or_else(|| {
            InputError::new(
                format!("--verify-timeout: `{text}` is not a duration"),
                "write it like 90s, 10m or 1h30m, e.g. --verify-timeout 10m",
            )
        })?),
    };
    let loaded = crate::ops::load_run(None, run)?;
    let config = crate::spec::config::Config::load(loaded.repo.root())?;
    let report = merge_run(
        &loaded.repo,
        &loaded.layout,
        &loaded.state,
        &config,
        MergeOptions {
            verify,
            verify_timeout,
            onto,
        },
        &mut |line| println!("{line}"),
    )?;
    Ok(if report.succeeded() { EXIT_OK } else { EXIT_TASKS_FAILED })
}
