//! `gadugi pr` and the editor's "Open Pull Requests": push a run's succeeded task branches
//! and open one pull request per task with the GitHub CLI.
//!
//! Everything that can be checked is checked before anything is pushed: `gh` is installed, the
//! remote exists, `gh auth status` passes. Only task branches are pushed (never the user's
//! branch, never with force), with the git CLI; `gh pr create` gets its arguments as argv (no
//! shell) and the body from a file built from the task's report. What happens is told line by
//! line to the caller (`say`), which prints it (the CLI) or shows it (the editor).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::core::events::RunStatus;
use crate::core::state::{RunState, TaskState};
use crate::error::InputError;
use crate::git::Repo;
use crate::ops::LoadedRun;
use crate::views::report::{branch_facts, cost_usd, BranchFacts};

/// What a front end asks of `pr`.
#[derive(Debug, Clone, Default)]
pub struct PrOptions {
    /// Say what would be pushed and opened; push and open nothing.
    pub dry_run: bool,
    /// The remote to push to [default: `origin`, else the only remote].
    pub remote: Option<String>,
    /// The branch the pull requests target [default: the branch the run started from].
    pub base: Option<String>,
}

/// One pull request opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub task: String,
    pub branch: String,
    /// What `gh pr create` printed last: the pull request's address.
    pub url: String,
}

/// One task whose pull request `gh` refused.
#[derive(Debug, Clone, PartialEq)]
pub struct PrFailed {
    pub task: String,
    pub error: String,
}

/// What `open_pull_requests` did.
#[derive(Debug, Clone, Default)]
pub struct PrOutcome {
    pub remote: String,
    pub base: String,
    pub opened: Vec<Opened>,
    pub failed: Vec<PrFailed>,
    /// Succeeded tasks left out, with the reason (no commits, branch gone).
    pub skipped: Vec<String>,
}

/// The remote to push to: `--remote`, else `origin`, else the only remote.
fn pick_remote(repo: &Repo, wanted: Option<String>) -> Result<String, InputError> {
    let remotes: Vec<String> = repo
        .git(repo.root(), &["remote"])
        .map_err(|e| InputError::new(format!("cannot list remotes: {e:#}"), "check `git remote -v`"))?
        .lines()
        .map(str::to_string)
        .collect();
    match wanted {
        Some(name) if remotes.contains(&name) => Ok(name),
        Some(name) => Err(InputError::new(
            format!(
                "the repository has no remote `{name}` (remotes: {})",
                list_or_none(&remotes)
            ),
            format!("add it: git remote add {name} URL, or name another with --remote"),
        )),
        None if remotes.iter().any(|r| r == "origin") => Ok("origin".into()),
        None if remotes.len() == 1 => Ok(remotes[0].clone()),
        None if remotes.is_empty() => Err(InputError::new(
            "the repository has no remote to push the task branches to",
            "add one: git remote add origin URL",
        )),
        None => Err(InputError::new(
            format!(
                "the repository has several remotes and none is `origin`: {}",
                remotes.join(", ")
            ),
            "choose one (gadugi pr --remote NAME), or name one of them `origin` (git remote rename NAME origin)",
        )),
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Checks that `gh` is installed and logged in; returns its path.
fn check_gh(repo_root: &Path) -> Result<PathBuf, InputError> {
    let gh = crate::fsutil::find_on_path("gh").ok_or_else(|| {
        InputError::new(
            "the GitHub CLI `gh` is not installed (not found on PATH); nothing was pushed",
            "install it (https://cli.github.com), run `gh auth login`, then run `gadugi pr` again; `gadugi pr --dry-run` shows what would happen",
        )
    })?;
    let out = Command::new(&gh)
        .args(["auth", "status"])
        .current_dir(repo_root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| InputError::new(format!("cannot run {}: {e}", gh.display()), "check the gh installation"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(InputError::new(
            format!("`gh auth status` fails: gh is not logged in ({said}); nothing was pushed"),
            "run `gh auth login`, then run `gadugi pr` again",
        ));
    }
    Ok(gh)
}

/// The body of a task's pull request, from its report.
pub fn pr_body(
    state: &RunState,
    t: &TaskState,
    facts: Option<&BranchFacts>,
    dep_links: &BTreeMap<String, String>,
) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "{}\n", t.title);
    let _ = writeln!(
        b,
        "Task `{}` of Gadugi run `{}`: {} after {} attempt(s){}, agent `{}`{}.",
        t.id,
        state.run_id,
        t.status.as_str(),
        t.attempts,
        t.duration_seconds.map(|d| format!(" in {d:.1}s")).unwrap_or_default(),
        t.agent,
        cost_usd(t).map(|c| format!(", cost ${c:.4}")).unwrap_or_default()
    );
    if let Some(a) = &t.last_activity {
        let _ = writeln!(b, "\n**What the agent said last:** {}", a.replace('\n', " "));
    }
    if !t.depends_on.is_empty() {
        let _ = writeln!(b, "\n**Depends on:**");
        for d in &t.depends_on {
            match dep_links.get(d) {
                Some(url) => {
                    let _ = writeln!(b, "- {url} (task `{d}`)");
                }
                None => {
                    let branch = state.task(d).map(|x| x.branch.as_str()).unwrap_or("");
                    let _ = writeln!(b, "- task `{d}` (branch `{branch}`)");
                }
            }
        }
    }
    if let Some(f) = facts {
        if !f.commits.is_empty() {
            let _ = writeln!(b, "\n**Commits:**");
            for (id, subject) in &f.commits {
                let _ = writeln!(b, "- {} {subject}", id.get(..10).unwrap_or(id));
            }
        }
        if !f.files.is_empty() {
            let _ = writeln!(b, "\n**Files:**");
            for (path, add, del) in &f.files {
                let _ = writeln!(b, "- `{path}` +{add} −{del}");
            }
        }
    }
    let conflicts: Vec<_> = state.merge_conflicts.iter().filter(|c| c.involves(&t.id)).collect();
    if !conflicts.is_empty() {
        let _ = writeln!(b, "\n**Predicted merge conflicts:**");
        for c in conflicts {
            let _ = writeln!(b, "- with {}: {}", c.other_side(&t.id), c.files_text());
        }
    }
    let _ = writeln!(b, "\n---\nOpened by `gadugi pr` from branch `{}`.", t.branch);
    b
}

/// Pushes the run's succeeded task branches that hold commits and opens one pull request per
/// task (dependencies first; a task's body links the pull requests of its dependencies). Bad
/// input (a running run, nothing to open, no remote, `gh` missing or logged out) is an
/// [`InputError`], found before anything is pushed.
pub fn open_pull_requests(loaded: &LoadedRun, options: PrOptions, say: &mut dyn FnMut(String)) -> Result<PrOutcome> {
    let LoadedRun { repo, layout, state } = loaded;
    let PrOptions { dry_run, remote, base } = options;
    let mut outcome = PrOutcome::default();
    if state.status == RunStatus::Running && crate::exec::supervisor::process_is_alive(state.orchestrator_pid, None) {
        return Err(InputError::new(
            format!("run {} is still running", state.run_id),
            "wait until it ends (gadugi status), then open the pull requests",
        )
        .into());
    }
    let facts = branch_facts(state);
    let mut tasks = vec![];
    for i in crate::integrate::merge::merge_order(state) {
        let t = &state.tasks[i];
        let left_out = if repo.branch_head(&t.branch)?.is_none() {
            Some(format!(
                "{}: branch {} no longer exists; no pull request",
                t.id, t.branch
            ))
        } else if facts.get(&t.id).is_none_or(|f| f.commits.is_empty()) {
            Some(format!("{}: no commits on {}; no pull request", t.id, t.branch))
        } else {
            None
        };
        if let Some(why) = left_out {
            say(format!("- {why}"));
            outcome.skipped.push(why);
        } else {
            tasks.push(t);
        }
    }
    if tasks.is_empty() {
        return Err(InputError::new(
            format!("run {} has no succeeded task with commits", state.run_id),
            "see `gadugi report`; pull requests are opened for succeeded tasks that committed work",
        )
        .into());
    }
    let remote = pick_remote(repo, remote)?;
    let base = base.or_else(|| state.base_branch.clone()).ok_or_else(|| {
        InputError::new(
            "the run started from a detached HEAD, so there is no branch for the pull requests to target",
            "name the branch the pull requests should target (gadugi pr --base BRANCH)",
        )
    })?;
    let gh = if dry_run { None } else { Some(check_gh(repo.root())?) };
    let refspecs: Vec<String> = tasks
        .iter()
        .map(|t| format!("refs/heads/{0}:refs/heads/{0}", t.branch))
        .collect();
    let mut push = vec!["push".to_string(), "--porcelain".into(), remote.clone()];
    push.extend(refspecs);
    outcome.remote = remote.clone();
    outcome.base = base.clone();
    let Some(gh) = gh else {
        say(format!("Would run: git {}", push.join(" ")));
        let none = BTreeMap::new();
        for t in &tasks {
            say(format!(
                "Would run: gh pr create --head {} --base {base} --title {:?} --body-file <body below>",
                t.branch, t.title
            ));
            for line in pr_body(state, t, facts.get(&t.id), &none).lines() {
                say(format!("    {line}"));
            }
        }
        match check_gh(repo.root()) {
            Ok(_) => say("gh is installed and logged in.".into()),
            Err(e) => say(format!("Note: {e}")),
        }
        return Ok(outcome);
    };
    say(format!("Pushing {} task branch(es) to {remote}", tasks.len()));
    repo.git(repo.root(), &push)
        .with_context(|| format!("pushing the task branches to {remote}"))?;
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    for t in &tasks {
        let body = pr_body(state, t, facts.get(&t.id), &links);
        let body_file = layout.pr_body_file(&state.run_id, &t.id);
        crate::fsutil::write_atomic(&body_file, body.as_bytes())?;
        let title = if t.title.trim().is_empty() {
            t.id.as_str()
        } else {
            t.title.as_str()
        };
        let out = Command::new(&gh)
            .arg("pr")
            .arg("create")
            .arg("--head")
            .arg(&t.branch)
            .arg("--base")
            .arg(&base)
            .arg("--title")
            .arg(title)
            .arg("--body-file")
            .arg(&body_file)
            .current_dir(repo.root())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", gh.display()))?;
        if out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let url = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            say(format!("✓ {}: {url}", t.id));
            links.insert(t.id.clone(), url.to_string());
            outcome.opened.push(Opened {
                task: t.id.clone(),
                branch: t.branch.clone(),
                url: url.to_string(),
            });
        } else {
            let error = format!(
                "gh pr create failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            say(format!("✗ {}: {error}", t.id));
            outcome.failed.push(PrFailed {
                task: t.id.clone(),
                error,
            });
        }
    }
    say(format!(
        "{} pull request(s) opened, {} failed.",
        outcome.opened.len(),
        outcome.failed.len()
    ));
    Ok(outcome)
}
