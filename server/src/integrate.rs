//! From parallel branches to one result: merge-conflict prediction (in memory, no checkout)
//! and `gadugi merge`, which builds the run's integration branch in dependency order.
//!
//! Prediction merges two commits with libgit2 into an in-memory index — nothing is checked
//! out, no ref moves — and reads the conflicts off that index: which files, what kind, and
//! how many conflicting regions (hunks) a real `git merge` would leave markers for. The run
//! loop calls it (through [`PredictJob`]) each time a task succeeds, against the base branch
//! and every other succeeded branch, and emits [`Event::ConflictsPredicted`].
//!
//! `gadugi merge` never touches the user's checkout and never pushes: it merges inside a
//! temporary detached worktree and moves the integration branch only after each merge (and
//! its `--verify`) succeeded, with a compare-and-swap ref update. So on a conflict or a failing
//! verify the branch stays at the last good merge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use git2::{IndexEntry, MergeFileOptions, MergeOptions, Oid, Repository};
use serde::{Deserialize, Serialize};

use crate::error::{InputError, EXIT_OK, EXIT_TASKS_FAILED};
use crate::events::{Event, RunStatus, TaskStatus};
use crate::git::{MergeError, Repo};
use crate::state::RunState;

/// One file that would conflict when two commits are merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictFile {
    /// Path relative to the repository root (the path on "our" side when it differs).
    pub path: String,
    /// `content` (both changed the same lines), `add/add` (both created it differently),
    /// `modify/delete` (one changed it, the other deleted it) or `binary`.
    pub kind: String,
    /// Conflicting regions a merge leaves markers for; 0 when the whole file conflicts
    /// (`modify/delete`, `binary`).
    pub hunks: u32,
}

/// A predicted conflict between a task's branch and another succeeded task's branch, or
/// the base branch when it moved since the run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictedConflict {
    /// The task that finished.
    pub task: String,
    /// Its branch.
    pub branch: String,
    /// The other task, or `None` when the other side is the base branch.
    pub with_task: Option<String>,
    /// The other branch.
    pub with_branch: String,
    /// Every conflicting file, sorted by path.
    pub files: Vec<ConflictFile>,
}

impl PredictedConflict {
    /// Whether `task` is one of the two sides.
    pub fn involves(&self, task: &str) -> bool {
        self.task == task || self.with_task.as_deref() == Some(task)
    }

    /// The side that is not `task` (task id, or the base branch's name).
    pub fn other_side(&self, task: &str) -> String {
        if self.task == task {
            self.with_task
                .clone()
                .unwrap_or_else(|| format!("base {}", self.with_branch))
        } else {
            self.task.clone()
        }
    }

    /// `a.txt (2 hunks), b.txt (modify/delete)`.
    pub fn files_text(&self) -> String {
        self.files.iter().map(describe_file).collect::<Vec<_>>().join(", ")
    }

    /// Total conflicting hunks over all files.
    pub fn hunks(&self) -> u32 {
        self.files.iter().map(|f| f.hunks).sum()
    }
}

/// `a.txt (2 hunks)` or `b.txt (modify/delete)`.
pub fn describe_file(f: &ConflictFile) -> String {
    match (f.kind.as_str(), f.hunks) {
        ("content", 1) => format!("{} (1 hunk)", f.path),
        ("content", n) => format!("{} ({n} hunks)", f.path),
        (kind, 0) => format!("{} ({kind})", f.path),
        (kind, 1) => format!("{} ({kind}, 1 hunk)", f.path),
        (kind, n) => format!("{} ({kind}, {n} hunks)", f.path),
    }
}

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
/// that moved since the run started) and every other succeeded branch of the run.
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
    /// The job for `task`, which just succeeded in `state`.
    pub fn after_success(state: &RunState, task: &str) -> PredictJob {
        let branch = state.task(task).map(|t| t.branch.clone()).unwrap_or_default();
        PredictJob {
            repo_root: state.repo_root.clone(),
            task: task.to_string(),
            branch,
            base_branch: state.base_branch.clone(),
            base_commit: state.base_commit.clone(),
            others: state
                .tasks
                .iter()
                .filter(|t| t.id != task && t.status == TaskStatus::Succeeded)
                .map(|t| (t.id.clone(), t.branch.clone()))
                .collect(),
        }
    }

    /// Runs the prediction on a blocking thread and returns the event to emit.
    pub async fn run(self) -> Event {
        let task = self.task.clone();
        match tokio::task::spawn_blocking(move || self.compute()).await {
            Ok(event) => event,
            Err(e) => Event::ConflictsPredicted {
                task,
                checked: vec![],
                conflicts: vec![],
                error: Some(format!("the prediction thread failed: {e}")),
            },
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

/// The run's succeeded tasks in dependency order: in plan order, each task right after
/// what it depends on or was serialized after (those first, recursively).
pub fn merge_order(state: &RunState) -> Vec<usize> {
    fn visit(state: &RunState, index: &BTreeMap<&str, usize>, i: usize, seen: &mut [bool], order: &mut Vec<usize>) {
        if seen[i] {
            return;
        }
        // Marked before the recursion: a cycle (impossible in a checked plan) cannot loop.
        seen[i] = true;
        let t = &state.tasks[i];
        for d in t.depends_on.iter().chain(&t.after) {
            if let Some(&j) = index.get(d.as_str()) {
                visit(state, index, j, seen, order);
            }
        }
        order.push(i);
    }
    let index: BTreeMap<&str, usize> = state
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut seen = vec![false; state.tasks.len()];
    let mut order = vec![];
    for i in 0..state.tasks.len() {
        visit(state, &index, i, &mut seen, &mut order);
    }
    order
        .into_iter()
        .filter(|&i| state.tasks[i].status == TaskStatus::Succeeded)
        .collect()
}

/// Name of a run's integration branch.
pub fn integration_branch(prefix: &str, run_id: &str) -> String {
    format!("{prefix}integrate/{run_id}")
}

/// What happened to one task branch in `gadugi merge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeStep {
    pub task: String,
    pub branch: String,
    /// `merged`, `already_merged`, `conflict`, `verify_failed` or `missing`.
    pub outcome: String,
    /// The integration branch's commit after this step (unchanged when it failed).
    pub head: String,
    /// Conflicting files (for `conflict`).
    pub files: Vec<ConflictFile>,
    /// What went wrong, in words.
    pub error: Option<String>,
}

/// The outcome of `gadugi merge`, also written to `merge.json` in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeReport {
    pub run_id: String,
    pub integration_branch: String,
    /// Where the integration branch points now.
    pub head: String,
    pub steps: Vec<MergeStep>,
    /// Whether every succeeded task's branch is in the integration branch.
    pub complete: bool,
    pub verify: Option<String>,
    /// `--onto` branch and whether it was fast-forwarded.
    pub onto: Option<String>,
    pub onto_updated: bool,
}

/// A temporary worktree removed (with its folder) when dropped.
struct TempWorktree<'a> {
    repo: &'a Repo,
    path: PathBuf,
}

impl Drop for TempWorktree<'_> {
    fn drop(&mut self) {
        let path = self.path.as_os_str().to_os_string();
        if let Err(e) = self.repo.git(
            self.repo.root(),
            &["worktree".into(), "remove".into(), "--force".into(), path],
        ) {
            tracing::warn!("removing the temporary worktree {}: {e:#}", self.path.display());
        }
        let _ = self.repo.prune_worktrees();
    }
}

fn add_temp_worktree<'a>(repo: &'a Repo, path: &Path, commit: &str) -> Result<TempWorktree<'a>> {
    repo.git(
        repo.root(),
        &[
            "worktree".into(),
            "add".into(),
            "-q".into(),
            "--detach".into(),
            path.as_os_str().to_os_string(),
            std::ffi::OsString::from(commit),
        ],
    )?;
    Ok(TempWorktree {
        repo,
        path: path.to_path_buf(),
    })
}

fn rev(repo: &Repo, dir: &Path, what: &str) -> Result<String> {
    Ok(repo
        .git(dir, &["rev-parse", "--verify", "-q", what])?
        .trim()
        .to_string())
}

/// Whether `ancestor` is `descendant` or one of its ancestors.
fn is_ancestor(repo_root: &Path, ancestor: &str, descendant: &str) -> Result<bool> {
    let repo = Repository::open(repo_root)?;
    let (a, d) = (Oid::from_str(ancestor)?, Oid::from_str(descendant)?);
    Ok(a == d || repo.graph_descendant_of(d, a)?)
}

/// Runs `cmd` through `sh -c` (the user's own command line) in `dir`, output to `log`.
fn run_verify(cmd: &str, dir: &Path, log: &Path) -> Result<std::result::Result<(), String>> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("running `{cmd}`"))?;
    if status.success() {
        return Ok(Ok(()));
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Ok(Err(format!(
        "`{cmd}` failed ({status}): {} (log: {})",
        tail.join(" | "),
        log.display()
    )))
}

/// `gadugi merge [RUN] [--verify CMD] [--onto BRANCH]`.
pub fn merge_command(run: Option<String>, verify: Option<String>, onto: Option<String>) -> Result<i32> {
    let (repo, layout, state) = crate::cli::load_state(run)?;
    let config = crate::config::Config::load(repo.root())?;
    if state.status == RunStatus::Running && crate::supervisor::process_is_alive(state.orchestrator_pid, None) {
        return Err(InputError::new(
            format!("run {} is still running", state.run_id),
            "wait until it ends (gadugi status), then merge",
        )
        .into());
    }
    let order = merge_order(&state);
    if order.is_empty() {
        return Err(InputError::new(
            format!("run {} has no succeeded task to merge", state.run_id),
            "see why with `gadugi report`; run the tasks again once fixed",
        )
        .into());
    }
    let branch = integration_branch(&config.branch_prefix, &state.run_id);
    if !Repo::is_valid_branch_name(&branch) {
        return Err(InputError::new(
            format!("`{branch}` is not a valid branch name"),
            "set a simpler branch_prefix in gadugi.toml",
        )
        .into());
    }
    if let Some(clash) = repo
        .local_branches()?
        .into_iter()
        .find(|b| branch.starts_with(&format!("{b}/")))
    {
        return Err(InputError::new(
            format!("the integration branch `{branch}` cannot exist next to the branch `{clash}` (git cannot have both `x` and `x/y`)"),
            format!("rename `{clash}` (git branch -m {clash} NEW-NAME), or set another branch_prefix in gadugi.toml"),
        )
        .into());
    }
    let onto_head = match &onto {
        None => None,
        Some(name) => Some(check_onto(&repo, name, &branch)?),
    };
    let existing = repo.branch_head(&branch)?;
    let start = match &existing {
        Some(head) => head.clone(),
        None => {
            repo.git(repo.root(), &["branch", "--no-track", &branch, &state.base_commit])
                .with_context(|| format!("creating {branch}"))?;
            state.base_commit.clone()
        }
    };
    println!(
        "{} {branch} at {}; merging {} task branch(es) of run {} in dependency order",
        if existing.is_some() { "Continuing" } else { "Created" },
        short(&start),
        order.len(),
        state.run_id
    );
    let tmp = tempfile::Builder::new()
        .prefix("gadugi-merge-")
        .tempdir()
        .context("creating a temporary folder")?;
    let merge_wt = add_temp_worktree(&repo, &tmp.path().join("merge"), &start)?;
    let mut verify_wt: Option<TempWorktree<'_>> = None;
    let log_dir = layout.run_dir(&state.run_id).join("merge");
    let mut head = start;
    let mut steps = vec![];
    for (n, &i) in order.iter().enumerate() {
        let t = &state.tasks[i];
        let mut step = MergeStep {
            task: t.id.clone(),
            branch: t.branch.clone(),
            outcome: String::new(),
            head: head.clone(),
            files: vec![],
            error: None,
        };
        let Some(tip) = repo.branch_head(&t.branch)? else {
            step.outcome = "missing".into();
            step.error = Some(format!("branch {} of task {} no longer exists", t.branch, t.id));
            println!("✗ {}: {}", t.id, step.error.as_deref().unwrap_or_default());
            steps.push(step);
            break;
        };
        if is_ancestor(repo.root(), &tip, &head)? {
            step.outcome = "already_merged".into();
            println!("= {}: {} is already in {branch}", t.id, t.branch);
            steps.push(step);
            continue;
        }
        match repo.merge_branches(&merge_wt.path, std::slice::from_ref(&t.branch)) {
            Ok(()) => {}
            Err(MergeError::Conflict { files, .. }) => {
                let predicted = predict(repo.root(), &head, &tip).unwrap_or_default();
                step.files = files
                    .iter()
                    .map(|f| {
                        predicted
                            .iter()
                            .find(|p| &p.path == f)
                            .cloned()
                            .unwrap_or(ConflictFile {
                                path: f.clone(),
                                kind: "content".into(),
                                hunks: 0,
                            })
                    })
                    .collect();
                step.outcome = "conflict".into();
                let merged_so_far: Vec<&str> = steps
                    .iter()
                    .filter(|s: &&MergeStep| s.outcome != "missing")
                    .map(|s| s.task.as_str())
                    .collect();
                step.error = Some(format!(
                    "merging {} (task {}) conflicts with {} in: {}",
                    t.branch,
                    t.id,
                    if merged_so_far.is_empty() {
                        "the base".to_string()
                    } else {
                        format!("the merged work of {}", merged_so_far.join(", "))
                    },
                    step.files.iter().map(describe_file).collect::<Vec<_>>().join(", ")
                ));
                println!("✗ {}", step.error.as_deref().unwrap_or_default());
                steps.push(step);
                break;
            }
            Err(MergeError::Other(e)) => return Err(e.context(format!("merging {}", t.branch))),
        }
        let merged = rev(&repo, &merge_wt.path, "HEAD")?;
        if let Some(cmd) = &verify {
            let dir = match &verify_wt {
                Some(wt) => {
                    repo.git(&wt.path, &["checkout", "-q", "-f", "--detach", &merged])?;
                    wt.path.clone()
                }
                None => {
                    let wt = add_temp_worktree(&repo, &tmp.path().join("verify"), &merged)?;
                    let path = wt.path.clone();
                    verify_wt = Some(wt);
                    path
                }
            };
            let log = log_dir.join(format!("verify-{}-{}.log", n + 1, t.id));
            if let Err(e) = run_verify(cmd, &dir, &log)? {
                step.outcome = "verify_failed".into();
                step.error = Some(format!(
                    "after merging {} (task {}): {e}; {branch} stays at {} (the failed merge is commit {})",
                    t.branch,
                    t.id,
                    short(&head),
                    short(&merged)
                ));
                println!("✗ {}", step.error.as_deref().unwrap_or_default());
                steps.push(step);
                break;
            }
        }
        repo.git(
            repo.root(),
            &[
                "update-ref",
                "-m",
                &format!("gadugi merge: {}", t.branch),
                &format!("refs/heads/{branch}"),
                &merged,
                &head,
            ],
        )
        .with_context(|| format!("moving {branch} (did something else move it?)"))?;
        head = merged;
        step.head = head.clone();
        step.outcome = "merged".into();
        println!(
            "✓ {}: merged {} ({} commit(s)){}",
            t.id,
            t.branch,
            t.commits,
            if verify.is_some() { ", verified" } else { "" }
        );
        steps.push(step);
    }
    drop(verify_wt);
    drop(merge_wt);
    let complete = steps.len() == order.len() && steps.iter().all(|s| s.outcome.contains("merged"));
    let mut onto_updated = false;
    let mut code = if complete { EXIT_OK } else { EXIT_TASKS_FAILED };
    if let (Some(name), Some(old)) = (&onto, &onto_head) {
        if !complete {
            println!("Not fast-forwarding {name}: the integration stopped early.");
        } else if is_ancestor(repo.root(), old, &head)? {
            if old != &head {
                repo.git(
                    repo.root(),
                    &[
                        "update-ref",
                        "-m",
                        &format!("gadugi merge --onto: fast-forward to {branch}"),
                        &format!("refs/heads/{name}"),
                        &head,
                        old,
                    ],
                )?;
            }
            onto_updated = true;
            println!("Fast-forwarded {name} from {} to {}.", short(old), short(&head));
        } else {
            code = EXIT_TASKS_FAILED;
            println!(
                "Not fast-forwarding {name}: it has commits that {branch} lacks. Merge it yourself: git checkout {name} && git merge {branch}"
            );
        }
    }
    let merged_count = steps.iter().filter(|s| s.outcome.contains("merged")).count();
    println!(
        "{branch} is at {}: {merged_count} of {} task branch(es) merged{}.",
        short(&head),
        order.len(),
        if complete {
            ""
        } else {
            " — resolve it (merge the branch named above into the integration branch yourself, or fix the task's branch), then run `gadugi merge` again to continue"
        }
    );
    let report = MergeReport {
        run_id: state.run_id.clone(),
        integration_branch: branch,
        head,
        steps,
        complete,
        verify,
        onto,
        onto_updated,
    };
    crate::fsutil::write_json_atomic(&layout.run_dir(&state.run_id).join("merge.json"), &report)?;
    Ok(code)
}

/// `--onto NAME` must be an existing local branch that no worktree has checked out (moving a
/// checked-out branch would leave that checkout's files behind its branch). Returns its head.
fn check_onto(repo: &Repo, name: &str, integration: &str) -> Result<String> {
    let head = repo.branch_head(name)?.ok_or_else(|| {
        InputError::new(
            format!("--onto: there is no local branch `{name}`"),
            "name an existing branch, e.g. --onto main",
        )
    })?;
    if name == integration {
        bail!(InputError::new(
            "--onto names the integration branch itself",
            "name the branch to fast-forward, e.g. --onto main"
        ));
    }
    let checked_out = repo.head_branch().as_deref() == Some(name)
        || repo.list_worktrees()?.iter().any(|w| w.branch.as_deref() == Some(name));
    if checked_out {
        bail!(InputError::new(
            format!("--onto: branch `{name}` is checked out, and Gadugi never writes to a checkout"),
            format!("run `gadugi merge` without --onto, then in that checkout: git merge --ff-only {integration}"),
        ));
    }
    Ok(head)
}

fn short(c: &str) -> &str {
    c.get(..10).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        use crate::events::{EventRecord, TaskInit};
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
        let rec = |event| crate::events::EventRecord {
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
}
