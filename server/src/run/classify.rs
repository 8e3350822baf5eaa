//! How an attempt ended, decided from the supervisor's record of the agent's exit and the
//! agent's own report: succeeded, or failed as transient (retried), systemic (feeds the
//! circuit breaker) or the task's own failure.

use crate::agent::follower::read_tail;
use crate::agent::report::{AgentReport, FailureClass};
use crate::exec::supervisor::{AgentExit, LaunchSpec};
use crate::spec::config::Config;

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub error: Option<String>,
    /// The agent session a retry continues (a transient failure of a resumable agent).
    pub resume_session: Option<String>,
    /// How a failure is treated (None on success).
    pub class: Option<FailureClass>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cancelled: bool,
}

impl AttemptOutcome {
    pub fn failed(error: String, class: FailureClass) -> AttemptOutcome {
        AttemptOutcome {
            error: Some(error),
            resume_session: None,
            class: Some(class),
            exit_code: None,
            signal: None,
            cancelled: false,
        }
    }
}

/// Decides whether an attempt failed and how: transient failures are retried, systemic ones
/// feed the circuit breaker, task failures end the task.
pub fn classify(
    config: &Config,
    exit: &AgentExit,
    report: AgentReport,
    launch: &LaunchSpec,
    profile_can_resume: bool,
) -> AttemptOutcome {
    let mut out = AttemptOutcome {
        error: None,
        resume_session: None,
        class: None,
        exit_code: exit.exit_code,
        signal: exit.signal,
        cancelled: exit.cancelled,
    };
    let Some(failure) = exit.failure() else {
        if let Some(e) = report.error {
            out.class = report.class.or(Some(FailureClass::Task));
            out.error = Some(e);
        }
        return out;
    };
    out.error = Some(failure);
    out.class = Some(if exit.cancelled || exit.timed_out {
        FailureClass::Task
    } else if exit.spawn_error.is_some() {
        FailureClass::Systemic
    } else if let Some(class) = report.class {
        // The agent's own account says more than "exited with code 1".
        out.error = report.error.clone().or(out.error);
        class
    } else if exit.signal.is_some()
        || exit.exit_code.is_some_and(|c| config.retry_exit_codes.contains(&c))
        || output_matches(&config.retry_patterns, launch)
    {
        // Killed by a signal Gadugi did not send (OOM killer, a user's kill -9), or a failure
        // the configuration calls temporary: try again.
        FailureClass::Transient
    } else {
        FailureClass::Task
    });
    if out.class == Some(FailureClass::Transient) && profile_can_resume {
        out.resume_session = report.session_id;
    }
    out
}

/// Whether the end of the attempt's output contains one of `patterns`.
fn output_matches(patterns: &[String], launch: &LaunchSpec) -> bool {
    if patterns.is_empty() {
        return false;
    }
    [&launch.stdout, &launch.stderr].iter().any(|p| {
        let tail = read_tail(p, 256 * 1024);
        patterns.iter().any(|pat| tail.contains(pat.as_str()))
    })
}
