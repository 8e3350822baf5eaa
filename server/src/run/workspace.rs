//! Worktrees ready to work in: before a task's agent starts, its new worktree gets the local
//! files git does not track (`.worktreeinclude`), its dependency caches (symlinked or
//! copied `node_modules`, `.venv`, `target`...), a block of ports, and the `setup` commands
//! run in it; `teardown` commands run before `gadugi cleanup` removes it.
//!
//! The rules that keep the user's work safe:
//! - Only files git *ignores* in the main checkout are copied: a tracked file is never
//!   copied (the worktree has its own), and an untracked file git does not ignore would be
//!   committed on the task's branch, so it is skipped with that reason.
//! - Nothing that exists in the worktree is overwritten, and nothing is written through a
//!   symlink: a destination folder that is a symlink is refused.
//! - Symlinks are never followed. A symlink among the local files is recreated only when it
//!   is relative and stays inside the repository.
//! - Cache folders are added to `info/exclude`, so a symlink or copy is never committed.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::core::events::{Event, TaskPhase, TaskStatus};
use crate::core::state::TaskState;
use crate::exec::ports::{PortBlock, PortError};
use crate::exec::shell::{ShellCommand, ShellError};
use crate::layout::{Layout, STATE_DIR};
use crate::run::request::RunRequest;
use crate::spec::config::Config;
use crate::spec::worktree::{CacheDir, CacheMode};

/// At most this many copied paths are named in the `workspace_ready` event (all are logged).
const EVENT_LIST_LIMIT: usize = 50;

/// The task's worktree is ready; dropping this releases its port block.
pub struct Workspace {
    _ports: Option<PortBlock>,
}

/// Why a worktree could not be made ready, or should be kept instead of removed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The task's `setup.log` could not be opened.
    #[error("{0:#}")]
    Log(anyhow::Error),
    #[error(transparent)]
    Ports(#[from] PortError),
    /// Copying the local files or bringing in the cache folders failed.
    #[error("preparing the worktree failed: {0}")]
    Files(#[from] FilesError),
    /// A setup or teardown command failed, could not start, or was cancelled.
    #[error(transparent)]
    Command(ShellError),
    /// The setup or teardown commands ran out of their time (`kind` is which).
    #[error("{shell}; raise {kind}_timeout in gadugi.toml if it needs longer")]
    TimedOut { shell: ShellError, kind: &'static str },
    #[error("the teardown left uncommitted changes")]
    LeftChanges,
    #[error("{0:#}")]
    Git(anyhow::Error),
    #[error("internal error: {0}")]
    Internal(#[from] tokio::task::JoinError),
}

impl WorkspaceError {
    /// The status the task ends with.
    pub fn status(&self) -> TaskStatus {
        if matches!(self, WorkspaceError::Command(ShellError::Cancelled { .. })) {
            TaskStatus::Cancelled
        } else {
            TaskStatus::Failed
        }
    }
}

/// Why the local files or the cache folders could not be brought into a worktree.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Listing the repository's files failed, or its `info/exclude` could not be written.
    #[error("{0:#}")]
    Git(anyhow::Error),
    /// The include patterns do not compile.
    #[error("{0}")]
    Include(String),
    /// Reading, creating, linking or copying: `what` says which, on what.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A folder on the way is a symlink or a file.
    #[error("{} is not a folder (a symlink or file); nothing is written through it", .0.display())]
    NotAFolder(PathBuf),
}

/// An [`FilesError::Io`] saying `what` failed.
fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> FilesError {
    move |source| FilesError::Io {
        what: what.to_string(),
        source,
    }
}

/// Makes the new worktree of task `i` ready for its agent: takes a port block, copies the
/// local files, links or copies the cache folders, runs the setup commands. Everything is
/// logged to `setup.log` in the task's run directory; progress goes out through `emit`.
pub async fn prepare(
    req: &RunRequest,
    i: usize,
    cancel: watch::Receiver<bool>,
    emit: impl Fn(Event),
) -> Result<Workspace, WorkspaceError> {
    let started = Instant::now();
    let spec = &req.plan.tasks[i].spec;
    let id = spec.id.clone();
    let wc = &req.config.worktree;
    emit(Event::TaskPhase {
        task: id.clone(),
        phase: TaskPhase::Setup,
    });
    let activity = |line: String| emit(Event::TaskActivity { task: id.clone(), line });
    let log_path = req.layout.task_dir(&req.run_id, &id).join("setup.log");
    let mut log = crate::fsutil::open_append(&log_path).map_err(WorkspaceError::Log)?;
    let mut note = |line: &str| {
        let _ = writeln!(log, "gadugi: {line}");
    };

    let ports = if wc.ports == 0 {
        None
    } else {
        let mut block = crate::exec::ports::allocate(wc.ports, wc.port_range)?;
        block.register(&req.run_id, &id);
        note(&format!(
            "ports {}-{} (GADUGI_PORT={}, GADUGI_PORT_COUNT={})",
            block.first,
            block.first + block.count - 1,
            block.first,
            block.count
        ));
        Some(block)
    };

    let (repo, root, wt, config) = (
        req.repo.clone(),
        req.repo.root().to_path_buf(),
        req.config.worktree_path(&id),
        req.config.clone(),
    );
    let (report, caches) = tokio::task::spawn_blocking(move || -> Result<(CopyReport, Vec<String>), FilesError> {
        let report = copy_local_files(&repo, &root, &wt, &config)?;
        let caches = link_caches(&repo, &root, &wt, &config.worktree.cache)?;
        Ok((report, caches))
    })
    .await??;
    for p in &report.copied {
        note(&format!("copied {p}"));
    }
    for s in &report.skipped {
        note(&format!("skipped {s}"));
    }
    for c in &caches {
        note(&format!("cache {c}"));
    }
    if !report.copied.is_empty() || !report.skipped.is_empty() {
        activity(format!(
            "copied {} local file(s), skipped {}",
            report.copied.len(),
            report.skipped.len()
        ));
    }
    for c in &caches {
        activity(format!("cache {c}"));
    }

    let commands: Vec<String> = wc.setup.iter().chain(&spec.setup).cloned().collect();
    if !commands.is_empty() {
        activity(format!("setup: {}", commands.join(" && ")));
        let mut env = task_env(req, &id);
        if let Some(b) = &ports {
            env.extend(b.vars());
        }
        let run = Commands {
            kind: "setup",
            commands,
            cwd: req.config.worktree_path(&id),
            env,
            log: log_path.clone(),
            timeout: wc.setup_timeout,
            grace: req.config.kill_grace,
        };
        drop(log);
        run.run(Some(cancel)).await?;
    }
    let listed = |v: &[String]| -> Vec<String> {
        let mut out: Vec<String> = v.iter().take(EVENT_LIST_LIMIT).cloned().collect();
        if v.len() > EVENT_LIST_LIMIT {
            out.push(format!(
                "... and {} more (see {})",
                v.len() - EVENT_LIST_LIMIT,
                log_path.display()
            ));
        }
        out
    };
    emit(Event::WorkspaceReady {
        task: id.clone(),
        copied: listed(&report.copied),
        skipped: listed(&report.skipped),
        caches,
        port: ports.as_ref().map(|b| b.first),
        port_count: ports.as_ref().map_or(0, |b| b.count),
        seconds: crate::core::state::round3(started.elapsed().as_secs_f64()),
    });
    Ok(Workspace { _ports: ports })
}

/// One progress line for a `workspace_ready` event.
pub fn ready_line(task: &str, copied: &[String], caches: &[String], port: Option<u16>, seconds: f64) -> String {
    let mut parts = vec![format!("worktree ready in {seconds:.1}s")];
    if !copied.is_empty() {
        parts.push(format!("{} local file(s) copied", copied.len()));
    }
    parts.extend(caches.iter().cloned());
    if let Some(p) = port {
        parts.push(format!("GADUGI_PORT={p}"));
    }
    format!("{task}: {}", parts.join("; "))
}

/// Variables every setup and teardown command gets.
fn task_env(req: &RunRequest, id: &str) -> Vec<(String, String)> {
    vec![
        ("GADUGI_RUN_ID".into(), req.run_id.clone()),
        ("GADUGI_TASK_ID".into(), id.to_string()),
        (
            "GADUGI_WORKTREE".into(),
            req.config.worktree_path(id).to_string_lossy().into_owned(),
        ),
        ("GADUGI_BRANCH".into(), req.config.branch_name(id)),
        (
            "GADUGI_REPO_ROOT".into(),
            req.repo.root().to_string_lossy().into_owned(),
        ),
    ]
}

/// Runs the teardown commands in a task's worktree before `gadugi cleanup` removes it.
/// Output goes to `teardown.log` in the task's run directory. An error says why the
/// worktree should be kept: the teardown failed or timed out, or left uncommitted changes
/// (which `git worktree remove` would refuse, and which are work).
pub fn teardown_before_removal(
    repo: &crate::git::Repo,
    config: &Config,
    layout: &Layout,
    state: &crate::core::state::RunState,
    task: &TaskState,
) -> Result<(), WorkspaceError> {
    let wc = &config.worktree;
    if wc.teardown.is_empty() {
        return Ok(());
    }
    let run = Commands {
        kind: "teardown",
        commands: wc.teardown.clone(),
        cwd: task.worktree.clone(),
        env: vec![
            ("GADUGI_RUN_ID".into(), state.run_id.clone()),
            ("GADUGI_TASK_ID".into(), task.id.clone()),
            ("GADUGI_WORKTREE".into(), task.worktree.to_string_lossy().into_owned()),
            ("GADUGI_BRANCH".into(), task.branch.clone()),
            (
                "GADUGI_REPO_ROOT".into(),
                state.repo_root.to_string_lossy().into_owned(),
            ),
        ],
        log: layout.task_dir(&state.run_id, &task.id).join("teardown.log"),
        timeout: wc.teardown_timeout,
        grace: config.kill_grace,
    };
    crate::exec::shell::block_on(run.run(None)).map_err(|source| {
        WorkspaceError::Command(ShellError::Start {
            name: "teardown".into(),
            source,
        })
    })??;
    match repo.is_dirty(&task.worktree) {
        Ok(false) => Ok(()),
        Ok(true) => Err(WorkspaceError::LeftChanges),
        Err(e) => Err(WorkspaceError::Git(e)),
    }
}

/// Shell command lines run one after the other in a folder, under one time limit.
struct Commands {
    kind: &'static str,
    commands: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    timeout: Duration,
    grace: Duration,
}

impl Commands {
    /// Runs each command with the shell runner (`exec::shell`), in the worktree, output
    /// appended to the log after a `$ command` line. Stops at the first failure. The time
    /// limit is for all of them together; on timeout or `cancel` the running command's whole
    /// process group is stopped.
    async fn run(&self, cancel: Option<watch::Receiver<bool>>) -> Result<(), WorkspaceError> {
        let deadline = Instant::now() + self.timeout;
        for line in &self.commands {
            let shell = ShellCommand {
                what: self.kind.into(),
                line: line.clone(),
                dir: self.cwd.clone(),
                env: self.env.clone(),
                log: self.log.clone(),
                timeout: deadline.saturating_duration_since(Instant::now()),
                grace: self.grace,
            };
            shell.note(&format!("$ {line}")).map_err(WorkspaceError::Command)?;
            match shell.run(cancel.clone()).await {
                Ok(()) => {}
                Err(ShellError::TimedOut { name, log, .. }) => {
                    let shell = ShellError::TimedOut {
                        name,
                        after: self.timeout,
                        log,
                    };
                    return Err(WorkspaceError::TimedOut { shell, kind: self.kind });
                }
                Err(e) => return Err(WorkspaceError::Command(e)),
            }
        }
        Ok(())
    }
}

/// What [`copy_local_files`] did.
#[derive(Debug, Default, PartialEq)]
struct CopyReport {
    /// Paths copied, relative to the worktree.
    copied: Vec<String>,
    /// Matched paths not copied, each with the reason.
    skipped: Vec<String>,
}

/// Copies the files git ignores in the main checkout that the include patterns match.
fn copy_local_files(
    repo: &crate::git::Repo,
    root: &Path,
    wt: &Path,
    config: &Config,
) -> Result<CopyReport, FilesError> {
    let mut report = CopyReport::default();
    let wc = &config.worktree;
    if wc.include.is_empty() {
        return Ok(report);
    }
    let matcher = wc.matcher(root).map_err(FilesError::Include)?;
    let skip_prefixes: Vec<PathBuf> = [PathBuf::from(STATE_DIR), PathBuf::from(".git")]
        .into_iter()
        .chain(config.worktree_dir.strip_prefix(root).ok().map(Path::to_path_buf))
        .chain(wc.cache.iter().map(|c| PathBuf::from(&c.path)))
        .collect();
    let skipped_area = |rel: &Path| skip_prefixes.iter().any(|p| rel.starts_with(p));
    let entries = repo.ignored_paths().map_err(FilesError::Git)?;
    let mut files: Vec<PathBuf> = vec![];
    for entry in entries {
        let is_dir = entry.ends_with('/');
        let rel = PathBuf::from(entry.trim_end_matches('/'));
        if skipped_area(&rel) {
            continue;
        }
        if is_dir {
            walk(root, &rel, &mut files, &skipped_area)?;
        } else {
            files.push(rel);
        }
    }
    files.sort();
    for rel in files {
        let meta = match std::fs::symlink_metadata(root.join(&rel)) {
            Ok(m) => m,
            Err(_) => continue,
        };
        if !matcher.matched_path_or_any_parents(&rel, false).is_ignore() {
            continue;
        }
        let shown = rel.to_string_lossy().into_owned();
        let dst = wt.join(&rel);
        if dst.symlink_metadata().is_ok() {
            report.skipped.push(format!("{shown}: exists in the worktree"));
            continue;
        }
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(root.join(&rel)).map_err(io(format!("reading the link {shown}")))?;
            if !link_stays_inside(&rel, &target) {
                report.skipped.push(format!(
                    "{shown}: symlink to {} leaves the repository",
                    target.display()
                ));
                continue;
            }
            real_dirs(wt, rel.parent().unwrap_or(Path::new("")))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(io(format!("linking {shown}")))?;
        } else if meta.is_file() {
            real_dirs(wt, rel.parent().unwrap_or(Path::new("")))?;
            copy_file(&root.join(&rel), &dst, &meta, &mut true).map_err(io(format!("copying {shown}")))?;
        } else {
            report.skipped.push(format!("{shown}: not a regular file"));
            continue;
        }
        report.copied.push(shown);
    }
    // Matched files git does not ignore would be committed on the task's branch.
    let untracked = repo.untracked_paths().map_err(FilesError::Git)?;
    for entry in untracked {
        let rel = PathBuf::from(entry.trim_end_matches('/'));
        if !skipped_area(&rel)
            && matcher
                .matched_path_or_any_parents(&rel, entry.ends_with('/'))
                .is_ignore()
        {
            report.skipped.push(format!(
                "{entry}: not ignored by git, so it would be committed on the task's branch (add it to .gitignore to have it copied)"
            ));
        }
    }
    Ok(report)
}

/// Adds every file and symlink below `rel` (relative to `root`) to `out`, never following
/// symlinks and never entering `.git` folders or skipped areas.
fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>, skipped: &dyn Fn(&Path) -> bool) -> Result<(), FilesError> {
    let dir = root.join(rel);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(format!("reading {}", dir.display()))(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(format!("reading {}", dir.display())))?;
        let child = rel.join(entry.file_name());
        let kind = entry.file_type().map_err(io(format!("reading {}", child.display())))?;
        if kind.is_dir() {
            if entry.file_name() != ".git" && !skipped(&child) {
                walk(root, &child, out, skipped)?;
            }
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// Whether a symlink at `rel` pointing at `target` resolves inside the repository (judged
/// on the text alone: relative, and never climbing above the root).
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Creates `rel` (relative to `base`) folder by folder, refusing to go through anything
/// that is not a real folder: nothing is ever written through a symlink.
fn real_dirs(base: &Path, rel: &Path) -> Result<(), FilesError> {
    let mut here = base.to_path_buf();
    for c in rel.components() {
        here.push(c);
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(FilesError::NotAFolder(here)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&here).map_err(io(format!("creating {}", here.display())))?;
            }
            Err(e) => return Err(io(format!("reading {}", here.display()))(e)),
        }
    }
    Ok(())
}

/// Copies one regular file: a reflink (copy-on-write clone) while `reflink` holds, else a
/// plain copy; `reflink` turns false for good once the file system refuses a clone. The
/// destination gets the source's permissions. Returns whether it was cloned.
fn copy_file(src: &Path, dst: &Path, meta: &std::fs::Metadata, reflink: &mut bool) -> std::io::Result<bool> {
    let cloned = if *reflink {
        let cloned = reflink_copy::reflink_or_copy(src, dst)?.is_none();
        *reflink = cloned;
        cloned
    } else {
        std::fs::copy(src, dst)?;
        false
    };
    std::fs::set_permissions(dst, meta.permissions())?;
    Ok(cloned)
}

/// Serializes edits of `info/exclude` by concurrent tasks.
static EXCLUDE_LOCK: Mutex<()> = Mutex::new(());

/// Brings each cache folder into the worktree; returns one line per folder saying what
/// happened.
fn link_caches(
    repo: &crate::git::Repo,
    root: &Path,
    wt: &Path,
    caches: &[CacheDir],
) -> Result<Vec<String>, FilesError> {
    let mut out = vec![];
    for cache in caches {
        let (src, dst) = (root.join(&cache.path), wt.join(&cache.path));
        let name = &cache.path;
        match std::fs::symlink_metadata(&src) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                out.push(format!(
                    "{name}: not a folder in the checkout (a symlink or file), skipped"
                ));
                continue;
            }
            Err(_) => {
                out.push(format!("{name}: not in the checkout, skipped"));
                continue;
            }
        }
        if dst.symlink_metadata().is_ok() {
            out.push(format!("{name}: exists in the worktree, left alone"));
            continue;
        }
        {
            let _one_at_a_time = EXCLUDE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            repo.ensure_excluded(&format!("/{name}")).map_err(FilesError::Git)?;
        }
        let parent = Path::new(name).parent().unwrap_or(Path::new(""));
        real_dirs(wt, parent)?;
        match cache.mode {
            CacheMode::Symlink => {
                std::os::unix::fs::symlink(&src, &dst).map_err(io(format!("linking {name}")))?;
                out.push(format!("{name}: symlinked to {}", src.display()));
            }
            CacheMode::Copy => {
                let mut stats = CopyStats {
                    reflink: true,
                    ..CopyStats::default()
                };
                copy_tree(&src, &dst, &src, &dst, &mut stats).map_err(io(format!("copying {name}")))?;
                let how = if stats.cloned > 0 && stats.copied == 0 {
                    "copy-on-write clones"
                } else if stats.cloned > 0 {
                    "partly copy-on-write clones"
                } else {
                    "plain copies, the file system has no reflink"
                };
                out.push(format!("{name}: copied {} files ({how})", stats.cloned + stats.copied));
            }
        }
    }
    Ok(out)
}

#[derive(Default)]
struct CopyStats {
    reflink: bool,
    cloned: u64,
    copied: u64,
}

/// Copies the folder `src` to `dst` (which must not exist): files cloned or copied,
/// symlinks recreated without being followed (an absolute one pointing into `top_src` is
/// re-pointed into `top_dst`), folder permissions kept.
fn copy_tree(src: &Path, dst: &Path, top_src: &Path, top_dst: &Path, stats: &mut CopyStats) -> std::io::Result<()> {
    std::fs::create_dir(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            copy_tree(&from, &to, top_src, top_dst, stats)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&from)?;
            let target = match target.strip_prefix(top_src) {
                Ok(inside) if target.is_absolute() => top_dst.join(inside),
                _ => target,
            };
            std::os::unix::fs::symlink(&target, &to)?;
        } else if kind.is_file() {
            if copy_file(&from, &to, &meta, &mut stats.reflink)? {
                stats.cloned += 1;
            } else {
                stats.copied += 1;
            }
        }
    }
    std::fs::set_permissions(dst, std::fs::symlink_metadata(src)?.permissions())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InputError;
    use crate::spec::worktree::{WorktreeConfig, DEFAULT_TEARDOWN_TIMEOUT};

    fn parse(text: &str) -> Result<WorktreeConfig, InputError> {
        Config::parse(Path::new("/r"), Path::new("/r/gadugi.toml"), text).map(|c| c.worktree)
    }

    #[test]
    fn parses_the_documented_keys() {
        let c = parse(
            "[worktree]\ninclude = [\".env\"]\nsetup = [\"npm ci\", \"make\"]\nsetup_timeout = \"10m\"\nteardown = \"docker compose down\"\nports = 4\nport_range = \"21000-21999\"\ncache = [{ path = \"node_modules/\", mode = \"copy\" }, { path = \".venv\", mode = \"symlink\" }]\n",
        )
        .unwrap();
        assert_eq!(c.include[0].pattern, ".env");
        assert_eq!(c.include[0].line, Some(2));
        assert_eq!(c.setup, ["npm ci", "make"]);
        assert_eq!(c.setup_timeout, Duration::from_secs(600));
        assert_eq!(c.teardown, ["docker compose down"]);
        assert_eq!(c.teardown_timeout, DEFAULT_TEARDOWN_TIMEOUT);
        assert_eq!((c.ports, c.port_range), (4, (21000, 21999)));
        assert_eq!(
            c.cache,
            [
                CacheDir {
                    path: "node_modules".into(),
                    mode: CacheMode::Copy
                },
                CacheDir {
                    path: ".venv".into(),
                    mode: CacheMode::Symlink
                }
            ]
        );
        assert_eq!(parse("").unwrap(), WorktreeConfig::default());
    }

    #[test]
    fn bad_values_name_their_line() {
        let cases = [
            ("[worktree]\nsetup = \"\"\n", 2, "setup"),
            ("[worktree]\n\nsetup_timeout = \"soon\"\n", 3, "setup_timeout"),
            ("[worktree]\nports = 5000\n", 2, "ports"),
            ("[worktree]\nport_range = \"80-90\"\n", 2, "port_range"),
            (
                "[worktree]\nports = 20\nport_range = \"30000-30009\"\n",
                3,
                "port_range",
            ),
            (
                "[worktree]\ncache = [\n  { path = \"../x\", mode = \"copy\" },\n]\n",
                3,
                "cache path",
            ),
            (
                "[worktree]\ncache = [{ path = \".git/x\", mode = \"copy\" }]\n",
                2,
                ".git",
            ),
            (
                "[worktree]\ncache = [{ path = \"a\", mode = \"copy\" }, { path = \"a/b\", mode = \"copy\" }]\n",
                2,
                "overlaps",
            ),
            (
                "[worktree]\ninclude = [\"ok\", \"a/**/[z-a\"]\n",
                2,
                "invalid include pattern",
            ),
        ];
        for (text, line, word) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.problem.contains(word), "{text}: {e}");
        }
        let e = parse("[worktree]\ncache = [{ path = \"x\", mode = \"hardlink\" }]\n").unwrap_err();
        assert!(e.problem.contains("hardlink"), "{e}");
    }

    #[test]
    fn symlinks_are_judged_by_where_they_point() {
        assert!(link_stays_inside(Path::new("a/b/link"), Path::new("../c")));
        assert!(link_stays_inside(Path::new("a/link"), Path::new("../c/../d")));
        assert!(!link_stays_inside(Path::new("a/link"), Path::new("../../etc/passwd")));
        assert!(!link_stays_inside(Path::new("link"), Path::new("/etc/passwd")));
    }

    #[test]
    fn folders_are_never_created_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let wt = dir.path().join("wt");
        std::fs::create_dir(&wt).unwrap();
        std::os::unix::fs::symlink(&outside, wt.join("config")).unwrap();
        let e = real_dirs(&wt, Path::new("config/local")).unwrap_err().to_string();
        assert!(e.contains("not a folder"), "{e}");
        assert!(!outside.join("local").exists());
        real_dirs(&wt, Path::new("a/b")).unwrap();
        assert!(wt.join("a/b").is_dir());
    }

    #[test]
    fn a_copied_tree_keeps_links_and_modes_and_is_independent() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("node_modules");
        std::fs::create_dir_all(src.join("pkg/bin")).unwrap();
        std::fs::create_dir_all(src.join(".bin")).unwrap();
        std::fs::write(src.join("pkg/bin/cli.js"), "#!/usr/bin/env node\n").unwrap();
        std::fs::set_permissions(src.join("pkg/bin/cli.js"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("../pkg/bin/cli.js", src.join(".bin/cli")).unwrap();
        std::os::unix::fs::symlink(src.join("pkg"), src.join("abs")).unwrap();
        let dst = dir.path().join("copy");
        let mut stats = CopyStats {
            reflink: true,
            ..CopyStats::default()
        };
        copy_tree(&src, &dst, &src, &dst, &mut stats).unwrap();
        assert_eq!(stats.cloned + stats.copied, 1);
        assert_eq!(
            std::fs::read_link(dst.join(".bin/cli")).unwrap(),
            Path::new("../pkg/bin/cli.js")
        );
        assert_eq!(std::fs::read_link(dst.join("abs")).unwrap(), dst.join("pkg"));
        let mode = std::fs::metadata(dst.join("pkg/bin/cli.js"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        std::fs::write(dst.join("pkg/bin/cli.js"), "changed").unwrap();
        assert_eq!(
            std::fs::read_to_string(src.join("pkg/bin/cli.js")).unwrap(),
            "#!/usr/bin/env node\n"
        );
    }
}
