//! Where every file under `.gadugi/` lives. The one place that knows the state folder's
//! shape: runs, their event logs and snapshots, tasks, attempts and the files of an attempt,
//! cancel markers, reports, the lock and the process registry. Knows nothing of what the
//! files hold.

use std::path::{Path, PathBuf};

/// Name of the state directory at the repository root (ignored via `.git/info/exclude`).
pub const STATE_DIR: &str = ".gadugi";

/// Paths of the state files of one repository.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<repo>/.gadugi`
    pub root: PathBuf,
}

/// The files of one attempt of a task (`.gadugi/runs/<run>/tasks/<task>/attempt-<n>/`).
#[derive(Debug, Clone)]
pub struct AttemptFiles {
    /// The attempt's folder.
    pub dir: PathBuf,
    /// What the supervisor starts (`launch.json`).
    pub launch: PathBuf,
    /// Who supervises the attempt (`supervisor.json`).
    pub supervisor: PathBuf,
    /// The supervisor's own log (`supervisor.log`).
    pub supervisor_log: PathBuf,
    /// The agent's pid and start time (`status.json`).
    pub status: PathBuf,
    /// How the agent ended (`exit.json`).
    pub exit: PathBuf,
    /// The agent's standard output (`stdout.log`).
    pub stdout: PathBuf,
    /// The agent's standard error (`stderr.log`).
    pub stderr: PathBuf,
    /// The output of the task's `verify` command (`verify.log`).
    pub verify_log: PathBuf,
    /// What a cluster's job of this attempt runs (`remote-spec.json`).
    pub remote_spec: PathBuf,
    /// The job's standard output: the remote task's records (`remote.out`).
    pub remote_out: PathBuf,
    /// The job's standard error (`remote.err`).
    pub remote_err: PathBuf,
    /// How far the orchestrator followed the job (`remote.json`).
    pub remote_progress: PathBuf,
}

impl AttemptFiles {
    /// The files of the attempt whose folder is `dir`.
    pub fn in_dir(dir: PathBuf) -> AttemptFiles {
        AttemptFiles {
            launch: dir.join("launch.json"),
            supervisor: dir.join("supervisor.json"),
            supervisor_log: dir.join("supervisor.log"),
            status: dir.join("status.json"),
            exit: dir.join("exit.json"),
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
            verify_log: dir.join("verify.log"),
            remote_spec: dir.join("remote-spec.json"),
            remote_out: dir.join("remote.out"),
            remote_err: dir.join("remote.err"),
            remote_progress: dir.join("remote.json"),
            dir,
        }
    }
}

impl Layout {
    pub fn new(repo_root: &Path) -> Layout {
        Layout {
            root: repo_root.join(STATE_DIR),
        }
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.runs_dir().join(run_id)
    }
    pub fn state_file(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("state.json")
    }
    pub fn events_file(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("events.jsonl")
    }
    /// The request a run started with (`run.json`), read back by `resume`.
    pub fn request_file(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("run.json")
    }
    /// `report.md` and `report.json` of a run.
    pub fn report_files(&self, run_id: &str) -> (PathBuf, PathBuf) {
        let dir = self.run_dir(run_id);
        (dir.join("report.md"), dir.join("report.json"))
    }
    /// The run's timeline as a picture (`timeline.svg`), next to `report.md`, which shows it.
    pub fn timeline_file(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("timeline.svg")
    }
    /// The body of a task's pull request that `gadugi pr` passed to `gh` (`pr-body.md`).
    pub fn pr_body_file(&self, run_id: &str, task: &str) -> PathBuf {
        self.task_dir(run_id, task).join("pr-body.md")
    }
    /// What the last `gadugi merge` of a run did (`merge.json`).
    pub fn merge_file(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("merge.json")
    }
    /// Marker `gadugi cancel` writes to cancel a whole run, whichever process drives it.
    pub fn run_cancel_marker(&self, run_id: &str) -> PathBuf {
        self.run_dir(run_id).join("cancel")
    }
    pub fn task_dir(&self, run_id: &str, task: &str) -> PathBuf {
        self.run_dir(run_id).join("tasks").join(task)
    }
    /// Marker `gadugi cancel TASK` writes to cancel one task of a live run.
    pub fn task_cancel_marker(&self, run_id: &str, task: &str) -> PathBuf {
        self.task_dir(run_id, task).join("cancel")
    }
    /// The prompt Gadugi generated for a task (`prompt.md`).
    pub fn prompt_file(&self, run_id: &str, task: &str) -> PathBuf {
        self.task_dir(run_id, task).join("prompt.md")
    }
    /// The output of a task's `setup` commands.
    pub fn setup_log(&self, run_id: &str, task: &str) -> PathBuf {
        self.task_dir(run_id, task).join("setup.log")
    }
    /// The output of a task's `teardown` commands.
    pub fn teardown_log(&self, run_id: &str, task: &str) -> PathBuf {
        self.task_dir(run_id, task).join("teardown.log")
    }
    /// Where the approval broker of a task's attempts stores their questions and answers
    /// (`tasks/<task>/questions/`): in the main repository's state folder, never a worktree.
    pub fn questions_dir(&self, run_id: &str, task: &str) -> PathBuf {
        self.task_dir(run_id, task).join("questions")
    }
    /// The approvals policy an attempt's broker applies (`attempt-N/approvals.json`).
    pub fn approvals_policy_file(&self, run_id: &str, task: &str, attempt: u32) -> PathBuf {
        self.attempt_dir(run_id, task, attempt).join("approvals.json")
    }
    pub fn attempt_dir(&self, run_id: &str, task: &str, attempt: u32) -> PathBuf {
        self.task_dir(run_id, task).join(format!("attempt-{attempt}"))
    }
    /// The files of one attempt.
    pub fn attempt(&self, run_id: &str, task: &str, attempt: u32) -> AttemptFiles {
        AttemptFiles::in_dir(self.attempt_dir(run_id, task, attempt))
    }
    /// `.gadugi/lock`: the process driving runs in this repository.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }
    pub fn registry_file(&self) -> PathBuf {
        self.root.join("monitoring").join("process_registry.json")
    }

    /// Run ids, oldest first (ids sort by start time).
    pub fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.runs_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("state.json").is_file() || e.path().join("events.jsonl").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids
    }
}

/// A question of the approval broker: `<dir>/<id>.question.json`.
pub fn question_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.question.json"))
}

/// The answer to a question: `<dir>/<id>.answer.json`.
pub fn answer_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.answer.json"))
}

/// Where a rejected (forged) answer is moved: `<dir>/<id>.rejected-<n>.json`.
pub fn rejected_answer_file(dir: &Path, id: &str, n: u32) -> PathBuf {
    dir.join(format!("{id}.rejected-{n}.json"))
}

/// Marks an answer that already answered a retried attempt's repeated call:
/// `<dir>/<id>.reused.json`.
pub fn reused_answer_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.reused.json"))
}

/// Ids of the questions in `dir`, sorted, with whether each has an answer file.
pub fn question_ids(dir: &Path) -> Vec<(String, bool)> {
    let mut ids: Vec<(String, bool)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".question.json")?.to_string();
            let answered = answer_file(dir, &id).exists();
            Some((id, answered))
        })
        .collect();
    ids.sort();
    ids
}

/// The user's own state folder, outside every repository and worktree:
/// `$XDG_STATE_HOME/gadugi`, else `~/.local/state/gadugi`.
pub fn user_state_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .map(|base| base.join("gadugi"))
}

/// The key that authenticates answers to agents' questions (`<user state>/approval.key`).
pub fn approval_key_file() -> Option<PathBuf> {
    user_state_dir().map(|d| d.join("approval.key"))
}

/// Where `gadugi trust` keeps the hashes of the repository configurations the person trusts
/// (`<user state>/trust/`, one file per repository): next to the approvals key, outside every
/// repository, so no repository can trust itself.
pub fn trust_dir() -> Option<PathBuf> {
    user_state_dir().map(|d| d.join("trust"))
}
