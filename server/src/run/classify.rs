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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_table;

    /// `(exit, agent report, output tail, resumable profile, expected outcome)`.
    ///
    /// Exit: an exit code, `sig9`, `timeout`, `cancel`, `spawn` (could not start) or `-` (no
    /// status). Report: `class|error|session`, each part may be empty. The configuration
    /// retries exit code 75 and output containing "try again later". Outcome: the class
    /// (`ok` on success), the error after `: `, then `resume=<session>` and `cancelled`.
    const CASES: &[(&str, &str, &str, bool, &str)] = &[
        // Success, whatever the agent's session.
        ("0", "", "", false, "ok"),
        ("0", "||s1", "", true, "ok"),
        // Exit 0, but the agent's own report says it failed.
        ("0", "|max turns reached|", "", false, "task: max turns reached"),
        ("0", "systemic|Not logged in|", "", false, "systemic: Not logged in"),
        ("0", "transient|overloaded|s1", "", true, "transient: overloaded"),
        // A plain non-zero exit is the task's own failure, even from a resumable agent.
        ("3", "", "", false, "task: the agent exited with code 3"),
        ("3", "||s1", "", true, "task: the agent exited with code 3"),
        // Configured as temporary: exit codes and output patterns (stdout or stderr).
        ("75", "", "", false, "transient: the agent exited with code 75"),
        (
            "75",
            "||s1",
            "",
            true,
            "transient: the agent exited with code 75 resume=s1",
        ),
        ("75", "||s1", "", false, "transient: the agent exited with code 75"),
        (
            "3",
            "",
            "err:upstream busy, try again later\n",
            false,
            "transient: the agent exited with code 3",
        ),
        (
            "3",
            "||s1",
            "out:try again later",
            true,
            "transient: the agent exited with code 3 resume=s1",
        ),
        (
            "3",
            "",
            "err:Try Again Later",
            false,
            "task: the agent exited with code 3",
        ),
        // Only the tail of the output counts.
        (
            "3",
            "",
            "err:try again later\n<300k>",
            false,
            "task: the agent exited with code 3",
        ),
        // A signal Gadugi did not send.
        (
            "-9",
            "",
            "",
            false,
            "transient: the agent was killed by signal 9 (SIGKILL)",
        ),
        (
            "-9",
            "||s1",
            "",
            true,
            "transient: the agent was killed by signal 9 (SIGKILL) resume=s1",
        ),
        // The agent's classified account beats the exit code and the configuration.
        ("1", "systemic|Not logged in|", "", false, "systemic: Not logged in"),
        (
            "1",
            "transient|API Error: 529|s1",
            "",
            true,
            "transient: API Error: 529 resume=s1",
        ),
        (
            "1",
            "transient|API Error: 529|s1",
            "",
            false,
            "transient: API Error: 529",
        ),
        (
            "75",
            "task|max turns|s1",
            "err:try again later",
            true,
            "task: max turns",
        ),
        (
            "1",
            "transient||s1",
            "",
            true,
            "transient: the agent exited with code 1 resume=s1",
        ),
        // An unclassified error text does not replace the exit.
        ("1", "|some error|", "", false, "task: the agent exited with code 1"),
        // Timeouts and cancellations are the task's, whatever the agent said.
        (
            "timeout",
            "transient|overloaded|s1",
            "",
            true,
            "task: timed out; the agent's process group was stopped",
        ),
        (
            "timeout",
            "",
            "err:try again later",
            false,
            "task: timed out; the agent's process group was stopped",
        ),
        (
            "cancel",
            "systemic|Not logged in|",
            "",
            false,
            "task: cancelled cancelled",
        ),
        // The agent could not start: the same for every task.
        (
            "spawn",
            "transient|overloaded|s1",
            "",
            true,
            "systemic: the agent could not be started: No such file or directory",
        ),
        ("-", "", "", false, "task: the agent ended without an exit status"),
    ];

    #[test]
    fn attempts_are_classified_from_the_exit_the_report_and_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults(dir.path());
        config.retry_exit_codes = vec![75];
        config.retry_patterns = vec!["try again later".into()];
        check_table(CASES, |&(exit, report, output, resumable, expected)| {
            // Each case writes its own output over the last one's.
            let launch = launch(dir.path(), output);
            let outcome = classify(&config, &agent_exit(exit), agent_report(report), &launch, resumable);
            (
                format!("{exit} {report:?} {output:?} {resumable}"),
                expected.to_string(),
                render(&outcome),
            )
        });
    }

    #[test]
    fn no_patterns_means_no_output_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::defaults(dir.path());
        let launch = launch(dir.path(), "err:try again later");
        let out = classify(&config, &agent_exit("75"), AgentReport::default(), &launch, true);
        assert_eq!(render(&out), "task: the agent exited with code 75");
        assert_eq!((out.exit_code, out.signal), (Some(75), None));
    }

    fn agent_exit(spec: &str) -> AgentExit {
        let mut exit = AgentExit {
            exit_code: None,
            signal: None,
            timed_out: spec == "timeout",
            cancelled: spec == "cancel",
            spawn_error: (spec == "spawn").then(|| "No such file or directory".into()),
            finished_at: chrono::Utc::now(),
        };
        match spec.parse::<i32>() {
            Ok(s) if s < 0 => exit.signal = Some(-s),
            Ok(code) => exit.exit_code = Some(code),
            // Stopped by the supervisor: killed by its SIGTERM.
            Err(_) if exit.timed_out || exit.cancelled => exit.signal = Some(15),
            Err(_) => {}
        }
        exit
    }

    fn agent_report(spec: &str) -> AgentReport {
        let mut parts = spec.split('|').map(|p| (!p.is_empty()).then(|| p.to_string()));
        let class = parts
            .next()
            .flatten()
            .map(|c| serde_json::from_value(c.into()).unwrap());
        AgentReport {
            class,
            error: parts.next().flatten(),
            session_id: parts.next().flatten(),
            ..AgentReport::default()
        }
    }

    /// An attempt's launch whose stdout (`out:`) or stderr (`err:`) holds `output`; `<300k>`
    /// stands for 300 KiB of other output.
    fn launch(dir: &std::path::Path, output: &str) -> LaunchSpec {
        std::fs::create_dir_all(dir).unwrap();
        let text = output.replace("<300k>", &"x".repeat(300 * 1024));
        let (stdout, stderr) = match text.split_once(':') {
            Some(("out", t)) => (t.to_string(), String::new()),
            Some(("err", t)) => (String::new(), t.to_string()),
            _ => (String::new(), String::new()),
        };
        std::fs::write(dir.join("stdout.log"), stdout).unwrap();
        std::fs::write(dir.join("stderr.log"), stderr).unwrap();
        LaunchSpec {
            argv: vec!["agent".into()],
            cwd: dir.to_path_buf(),
            env: vec![],
            stdin: None,
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
            supervisor_file: dir.join("supervisor.json"),
            status_file: dir.join("status.json"),
            exit_file: dir.join("exit.json"),
            timeout_ms: 1000,
            grace_ms: 100,
            questions_dir: None,
            env_file: None,
        }
    }

    fn render(o: &AttemptOutcome) -> String {
        let mut s = match o.class {
            None => "ok".to_string(),
            Some(c) => serde_json::to_value(c).unwrap().as_str().unwrap().to_string(),
        };
        if let Some(e) = &o.error {
            s.push_str(&format!(": {e}"));
        }
        if let Some(r) = &o.resume_session {
            s.push_str(&format!(" resume={r}"));
        }
        if o.cancelled {
            s.push_str(" cancelled");
        }
        s
    }
}
