//! New task branches, made together: the tasks of a run that start at the same moment (64 of
//! them at `-j 64`) hand their branch to a [`BranchBatch`], and one git process creates all
//! that are waiting ([`Repo::create_branches`]). Made one by one, each branch cost a git
//! process of its own, in a row: 0.4 s for 64 on an idle 2-core machine and more under load,
//! while the last agent waited for the first worktree's neighbours.
//!
//! Group commit: the first task to arrive runs a batch of everything queued; tasks arriving
//! meanwhile wait for it and go in the next batch, run by the first of them. A batch is one
//! transaction, all or none; when it fails, each of its branches is tried on its own, so each
//! task gets its own answer (a branch that exists, a bad name) and no other task is failed.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use crate::git::Repo;

/// Creates branches for many threads at once; see the module documentation.
#[derive(Default)]
pub struct BranchBatch {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Requests not taken by a batch yet: ticket, branch, start commit.
    queued: Vec<(u64, String, String)>,
    /// Answers not collected yet, by ticket (`Err` holds the message).
    answers: HashMap<u64, Result<(), String>>,
    /// A thread is running a batch now.
    running: bool,
    next_ticket: u64,
    /// Batches run so far, and the most branches one of them made (for the tests).
    batches: u64,
    largest: usize,
}

impl BranchBatch {
    /// Creates `branch` at `commit` (which must not exist), together with whatever other
    /// threads ask for at the same time. Blocks until it is made or refused.
    pub fn create(&self, repo: &Repo, branch: &str, commit: &str) -> anyhow::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queued.push((ticket, branch.to_string(), commit.to_string()));
        loop {
            if let Some(answer) = state.answers.remove(&ticket) {
                return answer.map_err(anyhow::Error::msg);
            }
            if state.running {
                state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // This thread runs the next batch: everything queued, its own request included.
            let batch = std::mem::take(&mut state.queued);
            state.running = true;
            state.batches += 1;
            state.largest = state.largest.max(batch.len());
            drop(state);
            // The lock is not held while git runs: requests queue up for the next batch. A
            // panic in it still answers every request and frees the next batch (no waiter is
            // left waiting for a batch that will never end).
            let answers = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_batch(repo, &batch)))
                .unwrap_or_else(|_| {
                    let failed = || Err("creating the branches failed unexpectedly (a panic; see the log)".to_string());
                    batch.iter().map(|(t, _, _)| (*t, failed())).collect()
                });
            state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.answers.extend(answers);
            state.running = false;
            self.done.notify_all();
        }
    }

    /// Batches run so far and the largest one (branches).
    pub fn stats(&self) -> (u64, usize) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.batches, state.largest)
    }
}

/// One transaction for the whole batch; if it fails, each branch on its own.
fn run_batch(repo: &Repo, batch: &[(u64, String, String)]) -> Vec<(u64, Result<(), String>)> {
    let all: Vec<(String, String)> = batch.iter().map(|(_, b, c)| (b.clone(), c.clone())).collect();
    match repo.create_branches(&all) {
        Ok(()) => batch.iter().map(|(t, _, _)| (*t, Ok(()))).collect(),
        Err(e) if batch.len() == 1 => vec![(batch[0].0, Err(format!("{e:#}")))],
        Err(_) => batch
            .iter()
            .map(|(t, b, c)| {
                let one = repo.create_branches(&[(b.clone(), c.clone())]);
                (*t, one.map_err(|e| format!("{e:#}")))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::{Arc, Barrier};

    fn repo() -> (tempfile::TempDir, Repo, String) {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        git(&["init", "-q", "-b", "main"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ]);
        let head = git(&["rev-parse", "HEAD"]);
        let repo = Repo::discover(dir.path()).unwrap();
        (dir, repo, head)
    }

    #[test]
    fn threads_that_ask_at_once_share_batches_and_each_gets_its_own_answer() {
        let (_dir, repo, head) = repo();
        repo.create_branches(&[("taken".into(), head.clone())]).unwrap();
        let batch = Arc::new(BranchBatch::default());
        let n = 24;
        let go = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let (batch, repo, head, go) = (batch.clone(), repo.clone(), head.clone(), go.clone());
                std::thread::spawn(move || {
                    // Task 5 asks for a branch that exists, task 7 for an invalid name: both
                    // are refused alone; everyone else's branch is made.
                    let name = match i {
                        5 => "taken".to_string(),
                        7 => "bad..name".to_string(),
                        _ => format!("gadugi/t{i}"),
                    };
                    go.wait();
                    (i, batch.create(&repo, &name, &head))
                })
            })
            .collect();
        for t in threads {
            let (i, answer) = t.join().unwrap();
            match i {
                5 => assert!(format!("{:#}", answer.unwrap_err()).contains("taken"), "task 5"),
                7 => assert!(format!("{:#}", answer.unwrap_err()).contains("not a valid branch name")),
                _ => {
                    answer.unwrap();
                    assert_eq!(
                        repo.branch_head(&format!("gadugi/t{i}")).unwrap().as_deref(),
                        Some(head.as_str())
                    );
                }
            }
        }
        let (batches, largest) = batch.stats();
        assert!(
            batches < n as u64,
            "{batches} batches for {n} branches: none were shared"
        );
        assert!(largest > 1, "the largest batch made {largest} branch");
        assert_eq!(
            repo.branch_head("taken").unwrap().as_deref(),
            Some(head.as_str()),
            "an existing branch is never moved"
        );
    }

    #[test]
    fn a_new_branch_whose_worktree_cannot_be_registered_is_deleted_again() {
        let (dir, repo, head) = repo();
        let config = crate::spec::config::Config::defaults(dir.path());
        let wt = dir.path().join("taken");
        std::fs::create_dir(&wt).unwrap();
        std::fs::write(wt.join("user-file"), "mine").unwrap();
        repo.create_branches(&[("gadugi/t".into(), head)]).unwrap();
        let err = crate::run::pool::register_on_new_branch(&repo, &config, &wt, "gadugi/t").unwrap_err();
        assert!(format!("{err:#}").contains("already exists"), "{err:#}");
        assert_eq!(
            repo.branch_head("gadugi/t").unwrap(),
            None,
            "the branch made for it is gone"
        );
        assert_eq!(
            std::fs::read_to_string(wt.join("user-file")).unwrap(),
            "mine",
            "the folder is untouched"
        );
    }

    #[test]
    fn a_batch_is_all_or_none() {
        let (_dir, repo, head) = repo();
        repo.create_branches(&[("b".into(), head.clone())]).unwrap();
        let err = repo
            .create_branches(&[
                ("a".into(), head.clone()),
                ("b".into(), head.clone()),
                ("c".into(), head.clone()),
            ])
            .unwrap_err();
        assert!(format!("{err:#}").contains("cannot create branch a, b, c"), "{err:#}");
        assert_eq!(
            repo.branch_head("a").unwrap(),
            None,
            "nothing of a failed batch is made"
        );
        assert_eq!(repo.branch_head("c").unwrap(), None);
        // A commit name cannot smuggle in a command of its own.
        let sneaky = format!("{head}\ndelete refs/heads/main");
        assert!(repo.create_branches(&[("x".into(), sneaky)]).is_err());
        assert_eq!(repo.branch_head("main").unwrap().as_deref(), Some(head.as_str()));
        assert_eq!(repo.branch_head("x").unwrap(), None);
        // An abbreviated commit name is git's to resolve.
        repo.create_branches(&[("short".into(), head[..12].to_string())])
            .unwrap();
        assert_eq!(repo.branch_head("short").unwrap().as_deref(), Some(head.as_str()));
    }
}
