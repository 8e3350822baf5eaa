//! What the run loop shares with its task futures: the read-only context of the run, the
//! messages a task sends back, and the per-task handle that carries a task's identity and
//! channel and guarantees that the run loop hears the task finish.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::agent::report::FailureClass;
use crate::core::events::{Event, TaskStatus};
use crate::run::request::RunRequest;

/// What a task future reports to the run loop.
pub(crate) enum TaskMsg {
    Event(Event),
    /// An attempt ended (`class` is None on success): feeds the circuit breaker.
    AttemptEnded {
        class: Option<FailureClass>,
        cause: String,
    },
    Done {
        index: usize,
        status: TaskStatus,
    },
}

/// Shared, read-only context of the task futures.
pub(crate) struct Ctx {
    pub req: RunRequest,
    pub exe: PathBuf,
    pub cancel: watch::Receiver<bool>,
    /// `git worktree add` reads every other worktree's metadata while it writes its own;
    /// two at once fail with "failed to read .git/worktrees/X/commondir". Serialized.
    pub worktree_lock: Arc<std::sync::Mutex<()>>,
    /// The new branches of tasks that start together, made by one git process.
    pub branches: Arc<crate::run::branches::BranchBatch>,
    /// The cluster that runs the attempts, when not this machine (`[executor]`).
    pub remote: Option<Arc<crate::run::executor::Remote>>,
}

impl Ctx {
    /// Whether the run or task `id` was asked to stop (the run's switch, or a cancel marker).
    pub fn cancel_requested(&self, id: &str) -> bool {
        *self.cancel.borrow()
            || self.req.layout.task_cancel_marker(&self.req.run_id, id).exists()
            || self.req.layout.run_cancel_marker(&self.req.run_id).exists()
    }
}

/// One task of the run as its future sees it: its index in the plan, id, branch, worktree
/// and the channel to the run loop. In the spirit of cargo's `JobState`: whatever happens to
/// the future — it returns, panics or is dropped — the run loop gets exactly one `Done` for
/// the task, so a panic fails that task instead of the run.
pub(crate) struct TaskHandle {
    pub index: usize,
    pub id: String,
    pub branch: String,
    pub worktree: PathBuf,
    tx: mpsc::UnboundedSender<TaskMsg>,
    done: bool,
}

impl TaskHandle {
    pub fn new(ctx: &Ctx, index: usize, tx: mpsc::UnboundedSender<TaskMsg>) -> TaskHandle {
        let id = ctx.req.plan.tasks[index].spec.id.clone();
        TaskHandle {
            index,
            branch: ctx.req.config.branch_name(&id),
            worktree: ctx.req.config.worktree_path(&id),
            id,
            tx,
            done: false,
        }
    }

    /// Sends an event to the run loop (which applies, persists and publishes it).
    pub fn send(&self, event: Event) {
        let _ = self.tx.send(TaskMsg::Event(event));
    }

    /// Tells the circuit breaker how an attempt ended.
    pub fn attempt_ended(&self, class: Option<FailureClass>, cause: String) {
        let _ = self.tx.send(TaskMsg::AttemptEnded { class, cause });
    }

    /// Sends the task's final `TaskFinished` event carrying only an error.
    pub fn finish_with_error(&self, status: TaskStatus, error: String) {
        self.send(finished_event(&self.id, status, error));
    }

    /// The task is over: the scheduler may start what waited for it.
    pub fn done(&mut self, status: TaskStatus) {
        if !self.done {
            self.done = true;
            let _ = self.tx.send(TaskMsg::Done {
                index: self.index,
                status,
            });
        }
    }

    /// The task's future panicked: the task fails with the panic's message.
    pub fn panicked(&mut self, payload: Box<dyn std::any::Any + Send>) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        tracing::error!("task {} panicked: {message}", self.id);
        self.finish_with_error(
            TaskStatus::Failed,
            format!("internal error: Gadugi's handling of this task panicked: {message} (its branch and worktree are kept; please report this)"),
        );
        self.done(TaskStatus::Failed);
    }
}

impl Drop for TaskHandle {
    /// A future dropped before it finished (the run loop aborted it) still ends its task.
    fn drop(&mut self) {
        if !self.done {
            self.finish_with_error(
                TaskStatus::Failed,
                "internal error: the task's work stopped unexpectedly".into(),
            );
            self.done(TaskStatus::Failed);
        }
    }
}

/// A final `TaskFinished` event carrying only an error.
pub(crate) fn finished_event(task: &str, status: TaskStatus, error: String) -> Event {
    Event::TaskFinished {
        task: task.to_string(),
        status,
        exit_code: None,
        signal: None,
        commits: 0,
        files_changed: vec![],
        error: Some(error),
        class: None,
    }
}
