//! Merge-conflict prediction, in memory: two commits are merged with libgit2 into an
//! in-memory index — nothing is checked out, no ref moves — and the conflicts are read off
//! that index: which files, what kind, and how many conflicting regions (hunks) a real
//! `git merge` would leave markers for. The run loop calls it (through [`PredictJob`]) each
//! time a task succeeds, against the base branch and every other succeeded branch, and emits
//! [`Event::ConflictsPredicted`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{IndexEntry, MergeFileOptions, MergeOptions, Repository};

use crate::core::events::{ConflictFile, Event, PredictedConflict, TaskStatus};
use crate::core::state::RunState;

/// Predicts the conflicts of merging `theirs` into `ours` (any revisions: branch names,
/// commit ids) in the repository at `repo_root`, in memory: no checkout, no index file, no
/// ref changes (the only write is the empty blob, to count the hunks of an add/add conflict
/// the way git does). An empty list means the merge is clean.
pub fn predict(repo_root: &Path, ours: &str, theirs: &str) -> Result<Vec<ConflictFile>> {
    let repo = Repository::open(repo_root).with_context(|| format!("opening {}", repo_root.display()))?;
    predict_in(&repo, ours, theirs)
}

fn predict_in(repo: &Repository, ours: &str, theirs: &str) -> Result<Vec<ConflictFile>> {
    let commit = |rev: &str| -> Result<git2::Commit<'_>> {
        repo.revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .with_context(|| format!("cannot resolve {rev}"))
    };
    let (our_commit, their_commit) = (commit(ours)?, commit(theirs)?);
    let mut opts = MergeOptions::new();
    opts.find_renames(true);
    let index = repo
        .merge_commits(&our_commit, &their_commit, Some(&opts))
        .with_context(|| format!("merging {theirs} into {ours} in memory"))?;
    if !index.has_conflicts() {
        return Ok(vec![]);
    }
    let mut files: BTreeMap<String, ConflictFile> = BTreeMap::new();
    for conflict in index.conflicts()? {
        let conflict = conflict?;
        let path_of = |e: &Option<IndexEntry>| e.as_ref().map(|e| String::from_utf8_lossy(&e.path).into_owned());
        let path = path_of(&conflict.our)
            .or_else(|| path_of(&conflict.their))
            .or_else(|| path_of(&conflict.ancestor))
            .unwrap_or_default();
        let (kind, hunks) = match (&conflict.ancestor, &conflict.our, &conflict.their) {
            (ancestor, Some(our), Some(their)) => {
                let empty;
                let base = match ancestor {
                    Some(a) => a,
                    None => {
                        // add/add: git merges both versions against an empty file.
                        empty = IndexEntry {
                            id: repo.blob(b"")?,
                            ..clone_entry(our)
                        };
                        &empty
                    }
                };
                let mut fopts = MergeFileOptions::new();
                fopts.style_standard(true);
                let merged = repo.merge_file_from_index(base, our, their, Some(&mut fopts))?;
                let hunks = merged
                    .content()
                    .split(|&b| b == b'\n')
                    .filter(|l| l.starts_with(b"<<<<<<<"))
                    .count() as u32;
                let binary = hunks == 0;
                let kind = match (ancestor.is_none(), binary) {
                    (_, true) => "binary",
                    (true, false) => "add/add",
                    (false, false) => "content",
                };
                (kind, hunks)
            }
            _ => ("modify/delete", 0),
        };
        files.insert(
            path.clone(),
            ConflictFile {
                path,
                kind: kind.to_string(),
                hunks,
            },
        );
    }
    Ok(files.into_values().collect())
}

fn clone_entry(e: &IndexEntry) -> IndexEntry {
    IndexEntry {
        ctime: e.ctime,
        mtime: e.mtime,
        dev: e.dev,
        ino: e.ino,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        file_size: 0,
        id: e.id,
        flags: e.flags,
        flags_extended: e.flags_extended,
        path: e.path.clone(),
    }
}

/// The prediction that runs when a task succeeded: its branch against the base branch (when
/// that moved since the run started) and every other succeeded branch of the run whose
/// changed files overlap its own (branches that change disjoint files merge cleanly, so a run
/// of n tasks merges only the pairs that can conflict, not all n²/2).
#[derive(Debug, Clone)]
pub struct PredictJob {
    repo_root: PathBuf,
    task: String,
    branch: String,
    base_branch: Option<String>,
    base_commit: String,
    others: Vec<(String, String)>,
}

impl PredictJob {
    /// The job for `task`, which just succeeded in `state`. A side whose changed files are
    /// unknown (none recorded) is always compared.
    pub fn after_success(state: &RunState, task: &str) -> PredictJob {
        let branch = state.task(task).map(|t| t.branch.clone()).unwrap_or_default();
        let mine: std::collections::HashSet<&str> = state
            .task(task)
            .map(|t| t.files_changed.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let may_conflict =
            |files: &[String]| mine.is_empty() || files.is_empty() || files.iter().any(|f| mine.contains(f.as_str()));
        PredictJob {
            repo_root: state.repo_root.clone(),
            task: task.to_string(),
            branch,
            base_branch: state.base_branch.clone(),
            base_commit: state.base_commit.clone(),
            others: state
                .tasks
                .iter()
                .filter(|t| t.id != task && t.status == TaskStatus::Succeeded && may_conflict(&t.files_changed))
                .map(|t| (t.id.clone(), t.branch.clone()))
                .collect(),
        }
    }

    /// Runs the prediction and returns the event to emit. Predictions never compete with the
    /// agents for the CPU: one at a time (per process), each on a thread of its own at a
    /// lower scheduling priority (nice 10). Not on tokio's blocking pool: a thread cannot
    /// raise its priority back, and the pool's threads also create worktrees.
    pub async fn run(self) -> Event {
        static ONE_AT_A_TIME: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
        let task = self.task.clone();
        let _turn = ONE_AT_A_TIME.acquire().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("gadugi-predict".into())
            .spawn(move || {
                // SAFETY: setpriority on the calling thread (Linux: PRIO_PROCESS with tid 0
                // means this thread) has no memory effects; a failure only leaves the priority.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, 0, 10);
                }
                let _ = tx.send(self.compute());
            });
        let failed = |why: String| Event::ConflictsPredicted {
            task: task.clone(),
            checked: vec![],
            conflicts: vec![],
            error: Some(why),
        };
        match spawned {
            Err(e) => failed(format!("cannot start the prediction thread: {e}")),
            Ok(_) => rx
                .await
                .unwrap_or_else(|_| failed("the prediction thread stopped without an answer".into())),
        }
    }

    /// The prediction itself (blocking).
    pub fn compute(&self) -> Event {
        let mut checked = vec![];
        let mut conflicts = vec![];
        let mut errors = vec![];
        let repo = match Repository::open(&self.repo_root) {
            Ok(r) => r,
            Err(e) => {
                return Event::ConflictsPredicted {
                    task: self.task.clone(),
                    checked,
                    conflicts,
                    error: Some(format!("cannot open {}: {}", self.repo_root.display(), e.message())),
                }
            }
        };
        let mut sides: Vec<(Option<String>, String)> = vec![];
        if let Some(base) = &self.base_branch {
            let moved = repo
                .revparse_single(&format!("refs/heads/{base}"))
                .ok()
                .and_then(|o| o.peel_to_commit().ok())
                .is_some_and(|c| c.id().to_string() != self.base_commit);
            if moved {
                sides.push((None, base.clone()));
            }
        }
        sides.extend(self.others.iter().map(|(t, b)| (Some(t.clone()), b.clone())));
        for (with_task, with_branch) in sides {
            let ours = format!("refs/heads/{}", self.branch);
            match predict_in(&repo, &ours, &format!("refs/heads/{with_branch}")) {
                Ok(files) => {
                    checked.push(with_branch.clone());
                    if !files.is_empty() {
                        conflicts.push(PredictedConflict {
                            task: self.task.clone(),
                            branch: self.branch.clone(),
                            with_task,
                            with_branch,
                            files,
                        });
                    }
                }
                Err(e) => errors.push(format!("{with_branch}: {e:#}")),
            }
        }
        Event::ConflictsPredicted {
            task: self.task.clone(),
            checked,
            conflicts,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::events::describe_file;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn repo() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "T"]);
        git(&root, &["config", "user.email", "t@t"]);
        std::fs::write(root.join("a.txt"), "1\n2\n3\n4\n5\n6\n7\n8\n9\n").unwrap();
        std::fs::write(root.join("b.txt"), "b\n").unwrap();
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        (tmp, root)
    }

    fn branch(root: &Path, name: &str, edits: &[(&str, Option<&str>)]) {
        git(root, &["checkout", "-q", "-b", name, "main"]);
        for (file, text) in edits {
            match text {
                Some(t) => std::fs::write(root.join(file), t).unwrap(),
                None => std::fs::remove_file(root.join(file)).unwrap(),
            }
        }
        git(root, &["add", "-A"]);
        git(root, &["commit", "-qm", name]);
        git(root, &["checkout", "-q", "main"]);
    }

    #[test]
    fn kinds_and_hunks() {
        let (_tmp, root) = repo();
        branch(
            &root,
            "x",
            &[
                ("a.txt", Some("1x\n2\n3\n4\n5\n6\n7\n8\n9x\n")),
                ("b.txt", None),
                ("n.txt", Some("x\n")),
            ],
        );
        branch(
            &root,
            "y",
            &[
                ("a.txt", Some("1y\n2\n3\n4\n5\n6\n7\n8\n9y\n")),
                ("b.txt", Some("changed\n")),
                ("n.txt", Some("y\n")),
            ],
        );
        branch(&root, "z", &[("c.txt", Some("z\n"))]);
        let got = predict(&root, "x", "y").unwrap();
        let summary: Vec<String> = got.iter().map(describe_file).collect();
        assert_eq!(
            summary,
            ["a.txt (2 hunks)", "b.txt (modify/delete)", "n.txt (add/add, 1 hunk)"]
        );
        assert_eq!(predict(&root, "y", "x").unwrap().len(), 3);
        assert!(predict(&root, "x", "z").unwrap().is_empty());
        assert!(predict(&root, "main", "x").unwrap().is_empty());
        assert!(predict(&root, "x", "nope").is_err());
    }

    /// What a real `git merge` of `theirs` into `ours` leaves: conflicted paths with the
    /// number of conflict markers in each.
    fn real_merge(wt: &Path, ours: &str, theirs: &str) -> Vec<(String, u32)> {
        git(wt, &["checkout", "-q", "--detach", ours]);
        let out = Command::new("git")
            .arg("-C")
            .arg(wt)
            .args([
                "-c",
                "merge.conflictstyle=merge",
                "merge",
                "--no-commit",
                "--no-ff",
                "-q",
                theirs,
            ])
            .output()
            .unwrap();
        let unmerged = git(wt, &["diff", "--name-only", "--diff-filter=U"]);
        let files: Vec<(String, u32)> = unmerged
            .lines()
            .map(|f| {
                let text = std::fs::read_to_string(wt.join(f)).unwrap_or_default();
                (
                    f.to_string(),
                    text.lines().filter(|l| l.starts_with("<<<<<<<")).count() as u32,
                )
            })
            .collect();
        assert_eq!(
            out.status.success(),
            files.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            git(wt, &["merge", "--abort"]);
        } else {
            let _ = Command::new("git")
                .arg("-C")
                .arg(wt)
                .args(["merge", "--abort"])
                .output();
            git(wt, &["reset", "-q", "--hard"]);
        }
        files
    }

    /// A small deterministic generator (64-bit LCG) so the generated branches are the same
    /// on every machine.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn predictions_agree_with_git_merge_on_generated_branch_pairs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir(&root).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "user.name", "T"]);
        git(&root, &["config", "user.email", "t@t"]);
        let base_lines = |f: usize| -> Vec<String> { (0..16).map(|l| format!("file {f} line {l}")).collect() };
        for f in 0..4 {
            std::fs::write(root.join(format!("f{f}.txt")), base_lines(f).join("\n") + "\n").unwrap();
        }
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-qm", "init"]);
        let mut rng = Lcg(0x6761_6475_6769);
        let make_branch = |name: &str, rng: &mut Lcg| {
            git(&root, &["checkout", "-q", "-b", name, "main"]);
            for f in 0..4 {
                let path = root.join(format!("f{f}.txt"));
                match rng.next(10) {
                    0..=3 => {}
                    4 => std::fs::remove_file(&path).unwrap(),
                    _ => {
                        let mut lines = base_lines(f);
                        for _ in 0..1 + rng.next(3) {
                            let l = rng.next(16) as usize;
                            lines[l] = format!("{name} changed line {l}");
                        }
                        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
                    }
                }
            }
            if rng.next(3) == 0 {
                let n = rng.next(2);
                std::fs::write(root.join(format!("new{n}.txt")), format!("made by {name}\n")).unwrap();
            }
            git(&root, &["add", "-A"]);
            git(&root, &["commit", "-qm", name, "--allow-empty"]);
            git(&root, &["checkout", "-q", "main"]);
        };
        let pairs = 24;
        for p in 0..pairs {
            make_branch(&format!("p{p}a"), &mut rng);
            make_branch(&format!("p{p}b"), &mut rng);
        }
        let wt = tmp.path().join("wt");
        git(
            &root,
            &["worktree", "add", "-q", "--detach", wt.to_str().unwrap(), "main"],
        );
        let (mut clean, mut conflicting) = (0, 0);
        for p in 0..pairs {
            let (a, b) = (format!("p{p}a"), format!("p{p}b"));
            for (ours, theirs) in [(&a, &b), (&b, &a)] {
                let predicted: Vec<(String, u32)> = predict(&root, ours, theirs)
                    .unwrap()
                    .into_iter()
                    .map(|f| (f.path, f.hunks))
                    .collect();
                let real = real_merge(&wt, ours, theirs);
                assert_eq!(predicted, real, "merging {theirs} into {ours}");
                if real.is_empty() {
                    clean += 1;
                } else {
                    conflicting += 1;
                }
            }
        }
        eprintln!("{clean} clean and {conflicting} conflicting merges agree with git merge");
        // Both outcomes occur often enough to catch a false alarm and a miss.
        assert!(
            clean >= 10 && conflicting >= 10,
            "clean {clean}, conflicting {conflicting}"
        );
    }

    fn state_with(root: &Path, base: &str, tasks: &[&str]) -> RunState {
        use crate::core::events::{EventRecord, TaskInit};
        let init = |id: &str| TaskInit {
            id: id.into(),
            title: id.into(),
            prompt_file: root.join(format!("{id}.md")),
            branch: id.into(),
            worktree: root.join(id),
            depends_on: vec![],
            after: vec![],
            agent: "command".into(),
        };
        let rec = |event| EventRecord {
            ts: chrono::Utc::now(),
            event,
        };
        let mut state = RunState::from_start(&rec(Event::RunStarted {
            run_id: "r".into(),
            repo_root: root.to_path_buf(),
            base_commit: base.into(),
            base_branch: Some("main".into()),
            max_parallel: 4,
            orchestrator_pid: 1,
            tasks: tasks.iter().map(|t| init(t)).collect(),
            critical_path: vec![],
            conflicts: vec![],
        }))
        .unwrap();
        for t in tasks {
            state.apply(&rec(Event::TaskFinished {
                task: t.to_string(),
                status: TaskStatus::Succeeded,
                exit_code: Some(0),
                signal: None,
                commits: 1,
                files_changed: vec![],
                error: None,
                class: None,
            }));
        }
        state
    }

    #[test]
    fn predict_job_checks_other_branches_and_the_moved_base_and_the_fold_replaces_pairs() {
        let (_tmp, root) = repo();
        let base = git(&root, &["rev-parse", "HEAD"]);
        let a = |first: &str, last: &str| format!("{first}\n2\n3\n4\n5\n6\n7\n8\n{last}\n");
        branch(&root, "x", &[("a.txt", Some(&a("x", "9")))]);
        branch(&root, "y", &[("a.txt", Some(&a("y", "9")))]);
        branch(&root, "w", &[("a.txt", Some(&a("1", "w")))]);
        // The base branch moves on while the run goes: line 9 changes on main.
        std::fs::write(root.join("a.txt"), a("1", "main")).unwrap();
        git(&root, &["commit", "-qam", "main moves"]);
        let mut state = state_with(&root, &base, &["x", "y", "w"]);

        let event = PredictJob::after_success(&state, "x").compute();
        let Event::ConflictsPredicted {
            checked,
            conflicts,
            error,
            ..
        } = &event
        else {
            panic!("{event:?}")
        };
        assert_eq!(checked, &["main", "y", "w"]);
        assert_eq!(error, &None);
        let pairs: Vec<(&str, Option<&str>)> = conflicts
            .iter()
            .map(|c| (c.task.as_str(), c.with_task.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [("x", Some("y"))],
            "x changes line 1 only: clean with main and w"
        );
        let rec = |event| crate::core::events::EventRecord {
            ts: chrono::Utc::now(),
            event,
        };
        state.apply(&rec(event));

        let event = PredictJob::after_success(&state, "w").compute();
        state.apply(&rec(event));
        let y = PredictJob::after_success(&state, "y").compute();
        state.apply(&rec(y.clone()));
        state.apply(&rec(y));
        let mut got: Vec<String> = state
            .merge_conflicts
            .iter()
            .map(|c| format!("{}|{}|{}", c.task, c.other_side(&c.task), c.files_text()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            ["w|base main|a.txt (1 hunk)", "y|x|a.txt (1 hunk)"],
            "the x–y pair is kept once, whichever side predicted it last"
        );
    }

    #[test]
    fn only_branches_with_overlapping_changes_are_compared() {
        let (_tmp, root) = repo();
        let base = git(&root, &["rev-parse", "HEAD"]);
        branch(&root, "x", &[("a.txt", Some("x\n"))]);
        branch(&root, "y", &[("a.txt", Some("y\n"))]);
        branch(&root, "w", &[("b.txt", Some("w\n"))]);
        branch(&root, "u", &[("c.txt", Some("u\n"))]);
        let mut state = state_with(&root, &base, &["x", "y", "w", "u"]);
        let files = [("x", "a.txt"), ("y", "a.txt"), ("w", "b.txt")];
        for t in state.tasks.iter_mut() {
            if let Some((_, f)) = files.iter().find(|(id, _)| *id == t.id) {
                t.files_changed = vec![f.to_string()];
            }
        }
        let Event::ConflictsPredicted { checked, conflicts, .. } = PredictJob::after_success(&state, "x").compute()
        else {
            unreachable!()
        };
        // y overlaps (a.txt); w does not (b.txt); u's changes are unknown, so it is compared.
        assert_eq!(checked, ["y", "u"]);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].with_task.as_deref(), Some("y"));
    }
}
