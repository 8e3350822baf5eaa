//! `gadugi merge` and the editor's "Merge Run": the options checked and filled the same way
//! for both front ends, then the merge engine (`integrate::merge`).

use std::time::Duration;

use anyhow::Result;

use crate::error::InputError;
use crate::integrate::merge::{merge_run, MergeOptions, MergeReport};
use crate::ops::LoadedRun;
use crate::spec::config::Config;

/// What a front end asks of a merge, as the user wrote it.
#[derive(Debug, Clone, Default)]
pub struct MergeRequest {
    /// A command (through `sh -c`) that must pass after each merge; empty or `None`: none.
    pub verify: Option<String>,
    /// Time limit of each verify, like `90s`, `10m`, `1h30m` [default: `timeout` of gadugi.toml].
    pub verify_timeout: Option<String>,
    /// A local branch to fast-forward to the integration branch when every merge succeeded.
    pub onto: Option<String>,
}

/// Parses a duration the user wrote for `what` (e.g. `--verify-timeout`).
fn parse_timeout(what: &str, text: &str) -> Result<Duration, InputError> {
    crate::spec::toml_text::parse_duration(text).ok_or_else(|| {
        InputError::new(
            format!("{what}: `{text}` is not a duration"),
            format!("write it like 90s, 10m or 1h30m, e.g. {what} 10m"),
        )
    })
}

/// Builds (or continues) the run's integration branch `gadugi/integrate/<run>` from its
/// succeeded task branches in dependency order, telling each step to `say`. Never touches the
/// user's checkout; the branch moves only after each merge (and its verify) succeeded. Bad
/// input (a duration, a running run, nothing to merge, a bad `onto`) is an [`InputError`].
pub fn merge(loaded: &LoadedRun, request: MergeRequest, say: &mut dyn FnMut(String)) -> Result<MergeReport> {
    let verify_timeout = match request.verify_timeout.as_deref().filter(|t| !t.trim().is_empty()) {
        None => None,
        Some(text) => Some(parse_timeout("--verify-timeout", text.trim())?),
    };
    let config = Config::load(loaded.repo.root())?;
    merge_run(
        &loaded.repo,
        &loaded.layout,
        &loaded.state,
        &config,
        MergeOptions {
            verify: request.verify.filter(|v| !v.trim().is_empty()),
            verify_timeout,
            onto: request.onto.filter(|o| !o.trim().is_empty()),
        },
        say,
    )
}
