//! Ready-queue scheduling: a task starts the moment its dependencies have succeeded (and the
//! tasks it is serialized after have finished) and a slot is free; among ready tasks the one
//! with the longest remaining path goes first. Pure logic, no I/O.

use crate::spec::plan::Plan;

/// Where a task is in the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Waiting,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl Slot {
    fn is_final(self) -> bool {
        !matches!(self, Slot::Waiting | Slot::Running)
    }
}

/// A task the scheduler skipped, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub task: usize,
    /// The dependency that caused it.
    pub because_of: usize,
    pub reason: String,
}

/// The scheduler's view of a run.
#[derive(Debug, Clone)]
pub struct Scheduler {
    ids: Vec<String>,
    deps: Vec<Vec<usize>>,
    after: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    priority: Vec<usize>,
    slots: Vec<Slot>,
}

impl Scheduler {
    pub fn new(plan: &Plan) -> Scheduler {
        Scheduler {
            ids: plan.tasks.iter().map(|t| t.spec.id.clone()).collect(),
            deps: plan.tasks.iter().map(|t| t.deps.clone()).collect(),
            after: plan.tasks.iter().map(|t| t.after.clone()).collect(),
            dependents: plan.tasks.iter().map(|t| t.dependents.clone()).collect(),
            priority: plan.tasks.iter().map(|t| t.remaining_path).collect(),
            slots: vec![Slot::Waiting; plan.tasks.len()],
        }
    }

    /// Current slot of every task.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Number of running tasks.
    pub fn running(&self) -> usize {
        self.slots.iter().filter(|s| **s == Slot::Running).count()
    }

    /// Whether every task reached a final state.
    pub fn is_done(&self) -> bool {
        self.slots.iter().all(|s| s.is_final())
    }

    fn is_ready(&self, i: usize) -> bool {
        self.slots[i] == Slot::Waiting
            && self.deps[i].iter().all(|&d| self.slots[d] == Slot::Succeeded)
            && self.after[i].iter().all(|&d| self.slots[d].is_final())
    }

    /// Up to `free` ready tasks, longest remaining path first (ties: command-line order);
    /// they are marked running.
    pub fn take_ready(&mut self, free: usize) -> Vec<usize> {
        let mut ready: Vec<usize> = (0..self.slots.len()).filter(|&i| self.is_ready(i)).collect();
        ready.sort_by_key(|&i| (std::cmp::Reverse(self.priority[i]), i));
        ready.truncate(free);
        for &i in &ready {
            self.slots[i] = Slot::Running;
        }
        ready
    }

    /// Records the end of a running task. Returns the tasks skipped because of it
    /// (transitively), each with its reason.
    pub fn finish(&mut self, task: usize, outcome: Slot) -> Vec<Skip> {
        debug_assert!(outcome.is_final());
        self.slots[task] = outcome;
        if outcome == Slot::Succeeded {
            return vec![];
        }
        let mut skipped = vec![];
        let mut stack = vec![task];
        while let Some(cause) = stack.pop() {
            for &d in &self.dependents[cause] {
                if self.slots[d] == Slot::Waiting && self.deps[d].contains(&cause) {
                    self.slots[d] = Slot::Skipped;
                    let what = match self.slots[cause] {
                        Slot::Failed => "failed".to_string(),
                        Slot::Cancelled => "was cancelled".to_string(),
                        _ => "was skipped".to_string(),
                    };
                    skipped.push(Skip {
                        task: d,
                        because_of: cause,
                        reason: format!("dependency `{}` {what}", self.ids[cause]),
                    });
                    stack.push(d);
                }
            }
        }
        skipped
    }

    /// Sets a task's slot from a recorded state (resuming a run).
    pub fn restore(&mut self, task: usize, slot: Slot) {
        self.slots[task] = slot;
    }

    /// Marks every waiting task skipped (the circuit breaker opened); returns them.
    pub fn skip_waiting(&mut self) -> Vec<usize> {
        let waiting: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i] == Slot::Waiting)
            .collect();
        for &i in &waiting {
            self.slots[i] = Slot::Skipped;
        }
        waiting
    }

    /// Marks every waiting task cancelled (a cancelled run); returns them.
    pub fn cancel_waiting(&mut self) -> Vec<usize> {
        let waiting: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i] == Slot::Waiting)
            .collect();
        for &i in &waiting {
            self.slots[i] = Slot::Cancelled;
        }
        waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::plan::PlannedTask;
    use crate::spec::task::TaskSpec;

    /// A plan from (id, deps, after) triples; remaining paths computed here.
    fn plan(spec: &[(&str, &[usize], &[usize])]) -> Plan {
        let n = spec.len();
        let mut dependents = vec![vec![]; n];
        for (i, (_, deps, after)) in spec.iter().enumerate() {
            for &d in deps.iter().chain(after.iter()) {
                dependents[d].push(i);
            }
        }
        fn path(i: usize, dependents: &[Vec<usize>]) -> usize {
            1 + dependents[i].iter().map(|&d| path(d, dependents)).max().unwrap_or(0)
        }
        let tasks = spec
            .iter()
            .enumerate()
            .map(|(i, (id, deps, after))| PlannedTask {
                spec: TaskSpec {
                    id: id.to_string(),
                    id_line: None,
                    title: id.to_string(),
                    prompt_file: format!("/{id}.md").into(),
                    body: String::new(),
                    depends_on: vec![],
                    files: vec![],
                    mentioned_paths: vec![],
                    agent: None,
                    timeout: None,
                    retries: None,
                    verify: None,
                    setup: vec![],
                },
                deps: deps.to_vec(),
                after: after.to_vec(),
                dependents: dependents[i].clone(),
                remaining_path: path(i, &dependents),
            })
            .collect();
        Plan {
            tasks,
            critical_path: vec![],
            conflicts: vec![],
        }
    }

    #[test]
    fn longest_remaining_path_goes_first() {
        // 0 and 1 are independent; 1 heads a chain 1 → 2 → 3.
        let mut s = Scheduler::new(&plan(&[
            ("a", &[], &[]),
            ("b", &[], &[]),
            ("c", &[1], &[]),
            ("d", &[2], &[]),
        ]));
        assert_eq!(s.take_ready(1), vec![1]);
        assert_eq!(s.take_ready(1), vec![0]);
        assert_eq!(s.take_ready(5), Vec::<usize>::new());
    }

    #[test]
    fn starts_a_dependent_the_moment_its_dependency_succeeds() {
        let mut s = Scheduler::new(&plan(&[("a", &[], &[]), ("b", &[0], &[]), ("c", &[], &[])]));
        assert_eq!(s.take_ready(4), vec![0, 2]);
        assert!(s.finish(0, Slot::Succeeded).is_empty());
        assert_eq!(s.take_ready(4), vec![1]);
    }

    #[test]
    fn failure_skips_dependents_transitively_and_nothing_else() {
        let mut s = Scheduler::new(&plan(&[
            ("a", &[], &[]),
            ("b", &[0], &[]),
            ("c", &[1], &[]),
            ("d", &[], &[]),
        ]));
        assert_eq!(s.take_ready(4), vec![0, 3]);
        let skipped = s.finish(0, Slot::Failed);
        assert_eq!(skipped.iter().map(|k| k.task).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(skipped[0].reason, "dependency `a` failed");
        assert_eq!(skipped[1].reason, "dependency `b` was skipped");
        assert_eq!(s.slots()[3], Slot::Running);
        s.finish(3, Slot::Succeeded);
        assert!(s.is_done());
    }

    #[test]
    fn serialized_task_waits_for_any_outcome() {
        let mut s = Scheduler::new(&plan(&[("a", &[], &[]), ("b", &[], &[0])]));
        assert_eq!(s.take_ready(4), vec![0]);
        assert!(s.finish(0, Slot::Failed).is_empty());
        assert_eq!(s.take_ready(4), vec![1]);
    }

    #[test]
    fn respects_free_slots() {
        let mut s = Scheduler::new(&plan(&[("a", &[], &[]), ("b", &[], &[]), ("c", &[], &[])]));
        assert_eq!(s.take_ready(2).len(), 2);
        assert_eq!(s.running(), 2);
        assert_eq!(s.cancel_waiting(), vec![2]);
    }
}
