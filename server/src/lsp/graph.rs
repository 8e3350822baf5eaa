//! `gadugi/runGraph`: what the editor's run graph draws beyond the tree — dependencies, the
//! critical path, declared and predicted conflicts, and every agent attempt in time. The
//! statuses stay with `gadugi/treeChanged`; the editor asks for this again when a task's
//! status or attempt count changes.
//!
//! Built from the run's state (the tree's copy, or `ops::load_run` for a run the tree does not
//! hold) and its event log, which alone has the start and end of each attempt.

use std::sync::Arc;

use tower_lsp_server::jsonrpc::Result;

use crate::core::events::{describe_file, parse_event_log, Event, EventRecord, RunStatus, TaskStatus};
use crate::core::state::{rfc3339, RunState};
use crate::layout::Layout;
use crate::lsp::errors::{from_anyhow, request_failed};
use crate::lsp::ext::{GraphAttempt, GraphConflict, GraphTask, RunGraph, RunGraphParams};
use crate::lsp::session::{lock, Shared};

/// Answers `gadugi/runGraph` (reads the event log on the blocking pool).
pub async fn run_graph(shared: &Arc<Shared>, params: RunGraphParams) -> Result<RunGraph> {
    let known = shared
        .tree_view()
        .runs
        .iter()
        .find(|r| r.state.run_id == params.run_id)
        .map(|r| r.state.clone());
    let mut roots: Vec<_> = lock(&shared.roots).iter().map(|r| r.repo_root.clone()).collect();
    roots.sort();
    roots.dedup();
    let run_id = params.run_id;
    tokio::task::spawn_blocking(move || -> Result<RunGraph> {
        let state = match known {
            Some(state) => state,
            None => Arc::new(
                roots
                    .into_iter()
                    .find_map(|root| crate::ops::load_run(Some(root), Some(run_id.clone())).ok())
                    .ok_or_else(|| {
                        request_failed(format!(
                            "no run `{run_id}` in the workspace's repositories; the Runs view lists the known runs"
                        ))
                    })?
                    .state,
            ),
        };
        // A log that cannot be read (removed meanwhile) leaves the timeline empty, nothing else.
        let records = std::fs::read_to_string(Layout::new(&state.repo_root).events_file(&state.run_id))
            .map(|log| parse_event_log(&log))
            .unwrap_or_default();
        Ok(build(&state, &records))
    })
    .await
    .map_err(|e| from_anyhow(anyhow::anyhow!("building the run graph panicked: {e}")))?
}

/// The graph of a run from its state and its event records.
pub fn build(state: &RunState, records: &[EventRecord]) -> RunGraph {
    let mut conflicts: Vec<GraphConflict> = state
        .conflicts
        .iter()
        .map(|c| GraphConflict {
            tasks: c.tasks.to_vec(),
            base_branch: None,
            files: c.paths.clone(),
            predicted: false,
            serialized: c.serialized,
        })
        .collect();
    conflicts.extend(state.merge_conflicts.iter().map(|c| GraphConflict {
        tasks: std::iter::once(c.task.clone()).chain(c.with_task.clone()).collect(),
        base_branch: c.with_task.is_none().then(|| c.with_branch.clone()),
        files: c.files.iter().map(describe_file).collect(),
        predicted: true,
        serialized: false,
    }));
    RunGraph {
        run_id: state.run_id.clone(),
        started_at: rfc3339(state.started_at),
        finished_at: state.finished_at.map(rfc3339),
        critical_path: state.critical_path.clone(),
        tasks: state
            .tasks
            .iter()
            .map(|t| GraphTask {
                id: t.id.clone(),
                depends_on: t.depends_on.clone(),
                after: t.after.clone(),
                started_at: t.started_at.map(rfc3339),
                finished_at: t.finished_at.map(rfc3339),
            })
            .collect(),
        conflicts,
        attempts: attempts(records),
    }
}

/// Every agent attempt in the log: from `AgentStarted` to the `AttemptFailed` or
/// `TaskFinished` that ends it. An attempt still open when the run finished (its driver
/// stopped it) ends there as cancelled; one adopted after a resume is not started twice.
pub fn attempts(records: &[EventRecord]) -> Vec<GraphAttempt> {
    let mut out: Vec<GraphAttempt> = vec![];
    let open =
        |out: &mut Vec<GraphAttempt>, task: &str| out.iter().rposition(|a| a.task == task && a.finished_at.is_none());
    for rec in records {
        let ts = rfc3339(rec.ts);
        match &rec.event {
            Event::AgentStarted { task, attempt, .. } => {
                let again = out
                    .iter()
                    .any(|a| a.task == *task && a.attempt == *attempt && a.finished_at.is_none());
                if !again {
                    out.push(GraphAttempt {
                        task: task.clone(),
                        attempt: *attempt,
                        started_at: ts,
                        finished_at: None,
                        status: TaskStatus::Running,
                    });
                }
            }
            Event::AttemptFailed { task, .. } => {
                if let Some(i) = open(&mut out, task) {
                    out[i].finished_at = Some(ts);
                    out[i].status = TaskStatus::Failed;
                }
            }
            Event::TaskFinished { task, status, .. } => {
                if let Some(i) = open(&mut out, task) {
                    out[i].finished_at = Some(ts);
                    out[i].status = *status;
                }
            }
            Event::RunFinished { status } => {
                for a in out.iter_mut().filter(|a| a.finished_at.is_none()) {
                    a.finished_at = Some(ts.clone());
                    a.status = match status {
                        RunStatus::Cancelled => TaskStatus::Cancelled,
                        _ => TaskStatus::Failed,
                    };
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    /// A run's event log as `events.jsonl` holds it: second `s` of the run, then the event.
    fn log() -> Vec<EventRecord> {
        let lines = [
            (
                0,
                r#""type":"run_started","run_id":"r1","repo_root":"/r","base_commit":"0","base_branch":"main","max_parallel":2,"orchestrator_pid":1,"critical_path":["a","c"],"conflicts":[{"tasks":["a","b"],"paths":["src/x.rs"],"serialized":false}],"tasks":[{"id":"a","title":"A","prompt_file":"/r/a.md","branch":"gadugi/a","worktree":"/w/a","depends_on":[],"after":[],"agent":"simulated"},{"id":"b","title":"B","prompt_file":"/r/b.md","branch":"gadugi/b","worktree":"/w/b","depends_on":[],"after":[],"agent":"simulated"},{"id":"c","title":"C","prompt_file":"/r/c.md","branch":"gadugi/c","worktree":"/w/c","depends_on":["a"],"after":[],"agent":"simulated"}]"#,
            ),
            (1, r#""type":"task_phase","task":"a","phase":"preparing""#),
            (
                2,
                r#""type":"agent_started","task":"a","attempt":1,"pid":11,"supervisor_pid":12"#,
            ),
            (
                2,
                r#""type":"agent_started","task":"b","attempt":1,"pid":13,"supervisor_pid":14"#,
            ),
            (
                5,
                r#""type":"attempt_failed","task":"a","attempt":1,"error":"overloaded","retry_in_ms":1000"#,
            ),
            (
                6,
                r#""type":"agent_started","task":"a","attempt":2,"pid":15,"supervisor_pid":16"#,
            ),
            // A resumed run adopts the running attempt: the same start again changes nothing.
            (7, r#""type":"run_resumed","orchestrator_pid":9"#),
            (
                7,
                r#""type":"agent_started","task":"b","attempt":1,"pid":13,"supervisor_pid":14"#,
            ),
            (
                9,
                r#""type":"task_finished","task":"a","status":"succeeded","exit_code":0,"signal":null,"commits":1,"files_changed":[],"error":null"#,
            ),
            (
                10,
                r#""type":"task_finished","task":"b","status":"succeeded","exit_code":0,"signal":null,"commits":1,"files_changed":[],"error":null"#,
            ),
            (
                11,
                r#""type":"conflicts_predicted","task":"b","checked":["gadugi/a"],"conflicts":[{"task":"b","branch":"gadugi/b","with_task":"a","with_branch":"gadugi/a","files":[{"path":"src/x.rs","kind":"content","hunks":2}]}],"error":null"#,
            ),
            (
                12,
                r#""type":"agent_started","task":"c","attempt":1,"pid":17,"supervisor_pid":18"#,
            ),
        ];
        let text: String = lines
            .iter()
            .map(|(s, event)| format!("{{\"ts\":\"{}\",{event}}}\n", t(*s)))
            .collect();
        let records = parse_event_log(&text);
        assert_eq!(records.len(), lines.len(), "every line is an event");
        records
    }

    fn t(s: i64) -> String {
        rfc3339(Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap())
    }

    #[test]
    fn attempts_run_from_agent_start_to_their_end_and_a_resume_adopts_the_running_one() {
        let got: Vec<_> = attempts(&log())
            .into_iter()
            .map(|a| (a.task, a.attempt, a.started_at, a.finished_at, a.status))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), 1, t(2), Some(t(5)), TaskStatus::Failed),
                ("b".into(), 1, t(2), Some(t(10)), TaskStatus::Succeeded),
                ("a".into(), 2, t(6), Some(t(9)), TaskStatus::Succeeded),
                ("c".into(), 1, t(12), None, TaskStatus::Running),
            ]
        );
    }

    #[test]
    fn an_attempt_open_when_the_run_ends_ends_with_it() {
        let mut records = log();
        records.extend(parse_event_log(&format!(
            "{{\"ts\":\"{}\",\"type\":\"run_finished\",\"status\":\"cancelled\"}}\n",
            t(20)
        )));
        let last = attempts(&records).pop().unwrap();
        assert_eq!(
            (last.task.as_str(), last.status, last.finished_at),
            ("c", TaskStatus::Cancelled, Some(t(20)))
        );
    }

    #[test]
    fn the_graph_has_dependencies_critical_path_and_both_kinds_of_conflict() {
        let records = log();
        let state = RunState::replay(&records).unwrap();
        let g = build(&state, &records);
        assert_eq!(g.run_id, "r1");
        assert_eq!(g.critical_path, vec!["a", "c"]);
        let ids: Vec<_> = g.tasks.iter().map(|t| (t.id.as_str(), t.depends_on.clone())).collect();
        assert_eq!(ids, vec![("a", vec![]), ("b", vec![]), ("c", vec!["a".to_string()])]);
        assert_eq!(
            (g.tasks[0].started_at.clone(), g.tasks[0].finished_at.clone()),
            (Some(t(1)), Some(t(9)))
        );
        assert!(g.tasks[2].finished_at.is_none());
        let conflicts: Vec<_> = g
            .conflicts
            .iter()
            .map(|c| {
                (
                    c.tasks.join(" "),
                    c.base_branch.clone(),
                    c.files.join(", "),
                    c.predicted,
                )
            })
            .collect();
        assert_eq!(
            conflicts,
            vec![
                ("a b".into(), None, "src/x.rs".into(), false),
                ("b a".into(), None, "src/x.rs (2 hunks)".into(), true),
            ]
        );
        assert_eq!(g.attempts.len(), 4);
    }
}
