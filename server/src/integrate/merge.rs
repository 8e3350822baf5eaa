//! `gadugi merge`'s engine: builds a run's integration branch from its succeeded task
//! branches, in dependency order, with an optional verify command after each merge (run by
//! the shell runner, `exec::shell`: its own process group, stopped at its time limit).
//!
//! It never touches the user's checkout and never pushes: it merges inside a temporary
//! detached worktree and moves the integration branch only after each merge (and its
//! verify) succeeded, with a compare-and-swap ref update. So on a conflict or a failing
//! verify the branch stays at the last good merge. What it does is told line by line to the
//! caller (`say`), which prints it (the CLI) or shows it (the editor).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

use crate::core::events::{describe_file, ConflictFile, RunStatus, TaskStatus};
use crate::core::state::RunState;
use crate::error::InputError;
use crate::exec::shell::{ShellCommand, ShellError};
use crate::git::{MergeError, Repo};
use crate::integrate::predict::predict;
use crate::layout::Layout;
use crate::spec::config::Config;

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

/// Runs `cmd` with the shell runner in `dir`, output to `log` (emptied first), stopped after
/// `timeout`.
fn run_verify(cmd: &str, dir: &Path, log: &Path, timeout: Duration, grace: Duration) -> Result<(), ShellError> {
    let shell = ShellCommand {
        what: String::new(),
        line: cmd.to_string(),
        dir: dir.to_path_buf(),
        env: vec![],
        log: log.to_path_buf(),
        timeout,
        grace,
    };
    let emptied = log
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::File::create(log).map(drop));
    emptied.map_err(|source| ShellError::Log {
        log: log.to_path_buf(),
        source,
    })?;
    shell.run_blocking()
}

/// What `gadugi merge` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// A command (the user's own, through `sh -c`) that must pass after each merge.
    pub verify: Option<String>,
    /// Time limit of each verify [default: `timeout` of gadugi.toml].
    pub verify_timeout: Option<Duration>,
    /// A local branch to fast-forward to the integration branch when every merge succeeded.
    pub onto: Option<String>,
}

impl MergeReport {
    /// Whether everything asked for was done: every branch merged and `onto` (when asked)
    /// fast-forwarded.
    pub fn succeeded(&self) -> bool {
        self.complete && (self.onto.is_none() || self.onto_updated)
    }
}

/// Builds (or continues) the integration branch of the run `state`, telling each step to
/// `say`; writes `merge.json` and returns what happened. Bad input (a running run, nothing
/// to merge, a bad `--onto`) is an [`InputError`] and changes nothing.
pub fn merge_run(
    repo: &Repo,
    layout: &Layout,
    state: &RunState,
    config: &Config,
    options: MergeOptions,
    say: &mut dyn FnMut(String),
) -> Result<MergeReport> {
    let MergeOptions {
        verify,
        verify_timeout,
        onto,
    } = options;
    let verify_timeout = verify_timeout.unwrap_or(config.timeout);
    if state.status == RunStatus::Running && crate::exec::supervisor::process_is_alive(state.orchestrator_pid, None) {
        return Err(InputError::new(
            format!("run {} is still running", state.run_id),
            "wait until it ends (gadugi status), then merge",
        )
        .into());
    }
    let order = merge_order(state);
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
        Some(name) => Some(check_onto(repo, name, &branch)?),
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
    say(format!(
        "{} {branch} at {}; merging {} task branch(es) of run {} in dependency order",
        if existing.is_some() { "Continuing" } else { "Created" },
        short(&start),
        order.len(),
        state.run_id
    ));
    let tmp = tempfile::Builder::new()
        .prefix("gadugi-merge-")
        .tempdir()
        .context("creating a temporary folder")?;
    let merge_wt = add_temp_worktree(repo, &tmp.path().join("merge"), &start)?;
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
            say(format!("✗ {}: {}", t.id, step.error.as_deref().unwrap_or_default()));
            steps.push(step);
            break;
        };
        if is_ancestor(repo.root(), &tip, &head)? {
            step.outcome = "already_merged".into();
            say(format!("= {}: {} is already in {branch}", t.id, t.branch));
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
                say(format!("✗ {}", step.error.as_deref().unwrap_or_default()));
                steps.push(step);
                break;
            }
            Err(MergeError::Other(e)) => return Err(e.context(format!("merging {}", t.branch))),
        }
        let merged = rev(repo, &merge_wt.path, "HEAD")?;
        if let Some(cmd) = &verify {
            let dir = match &verify_wt {
                Some(wt) => {
                    repo.git(&wt.path, &["checkout", "-q", "-f", "--detach", &merged])?;
                    wt.path.clone()
                }
                None => {
                    let wt = add_temp_worktree(repo, &tmp.path().join("verify"), &merged)?;
                    let path = wt.path.clone();
                    verify_wt = Some(wt);
                    path
                }
            };
            let log = log_dir.join(format!("verify-{}-{}.log", n + 1, t.id));
            let failed = match run_verify(cmd, &dir, &log, verify_timeout, config.kill_grace) {
                Ok(()) => None,
                Err(e @ ShellError::Failed { .. }) => Some(e.to_string()),
                Err(e @ ShellError::TimedOut { .. }) => Some(format!("{e}; give it longer with --verify-timeout")),
                Err(e) => return Err(e.into()),
            };
            if let Some(e) = failed {
                step.outcome = "verify_failed".into();
                step.error = Some(format!(
                    "after merging {} (task {}): {e}; {branch} stays at {} (the failed merge is commit {})",
                    t.branch,
                    t.id,
                    short(&head),
                    short(&merged)
                ));
                say(format!("✗ {}", step.error.as_deref().unwrap_or_default()));
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
        say(format!(
            "✓ {}: merged {} ({} commit(s)){}",
            t.id,
            t.branch,
            t.commits,
            if verify.is_some() { ", verified" } else { "" }
        ));
        steps.push(step);
    }
    drop(verify_wt);
    drop(merge_wt);
    let complete = steps.len() == order.len() && steps.iter().all(|s| s.outcome.contains("merged"));
    let mut onto_updated = false;
    if let (Some(name), Some(old)) = (&onto, &onto_head) {
        if !complete {
            say(format!("Not fast-forwarding {name}: the integration stopped early."));
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
            say(format!(
                "Fast-forwarded {name} from {} to {}.",
                short(old),
                short(&head)
            ));
        } else {
            say(format!(
                "Not fast-forwarding {name}: it has commits that {branch} lacks. Merge it yourself: git checkout {name} && git merge {branch}"
            ));
        }
    }
    let merged_count = steps.iter().filter(|s| s.outcome.contains("merged")).count();
    say(format!(
        "{branch} is at {}: {merged_count} of {} task branch(es) merged{}.",
        short(&head),
        order.len(),
        if complete {
            ""
        } else {
            " — resolve it (merge the branch named above into the integration branch yourself, or fix the task's branch), then run `gadugi merge` again to continue"
        }
    ));
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
    crate::fsutil::write_json_atomic(&layout.merge_file(&state.run_id), &report)?;
    Ok(report)
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
