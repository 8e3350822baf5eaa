//! Git operations: the repository, task worktrees and branches, merging and committing.
//!
//! The user's own checkout is never switched, stashed, reset or modified: everything that
//! writes (creating a worktree, merging, committing) happens inside a linked worktree, and
//! the main checkout only ever gains branches, worktree metadata under the common git dir,
//! and lines in `info/exclude`. Nothing that holds work is deleted here: removing a worktree
//! goes through `git worktree remove` without `--force`, which refuses when it is dirty.
//!
//! Reads use libgit2 (`git2`), opening a fresh handle per call so that [`Repo`] is `Send +
//! Sync`. Writes that touch working trees use the git CLI, which runs the user's hooks and
//! smudge filters (Git LFS) the way they expect; `examples/worktree_bench.rs` measured it
//! against libgit2 for creating worktrees. The one exception: a new worktree's first
//! checkout, done by libgit2 where none of those is in play and the tree is small
//! ([`checkout_method`]).

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use git2::{BranchType, ErrorCode, Repository, TreeWalkMode, TreeWalkResult};

use crate::error::InputError;

/// Variables that would point git at another repository or index than `-C dir` implies
/// (set, for example, when gadugi itself runs from a git hook).
const REDIRECTING_ENV: [&str; 4] = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"];

/// A git repository with a working tree.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    common_dir: PathBuf,
    /// Extra environment for every git child process (tests use it to hide the user's config).
    env: Vec<(OsString, OsString)>,
}

/// A linked worktree, as listed by `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    /// Top of the worktree, as git stores it: absolute, symlinks resolved.
    pub path: PathBuf,
    /// Checked-out branch (without `refs/heads/`), or `None` when detached.
    pub branch: Option<String>,
    /// Whether git considers it prunable (its directory is gone).
    pub prunable: bool,
}

/// What [`Repo::commit_leftovers`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// The new commit, when there was anything to commit.
    pub commit: Option<String>,
    /// Nested repositories left uncommitted (relative, `/`-separated, no trailing `/`).
    pub nested: Vec<String>,
}

/// Where a worktree's HEAD is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeHead {
    /// The checked-out branch (without `refs/heads/`), `None` when HEAD is detached.
    pub branch: Option<String>,
    /// The commit HEAD points at, `None` on a branch without commits.
    pub commit: Option<String>,
}

/// Folders under `wt` that hold a git repository of their own (a `.git` file or folder),
/// relative and `/`-separated, ignored ones included. Symbolic links are not followed and
/// a nested repository is not searched further. `wt`'s own `.git` is not one.
pub fn nested_repositories(wt: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut stack = vec![(wt.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if rel.is_empty() && name == ".git" {
                continue;
            }
            let path = entry.path();
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if path.join(".git").symlink_metadata().is_ok() {
                found.push(child);
            } else {
                stack.push((path, child));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Why [`Repo::merge_branches`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Merging `branch` conflicted in `files`; the merge was aborted, the worktree is clean.
    #[error("merging {branch} conflicts in: {}", files.join(", "))]
    Conflict {
        /// The branch whose merge conflicted.
        branch: String,
        /// Conflicted paths, relative to the worktree.
        files: Vec<String>,
    },
    /// Anything else (git failed, the worktree was dirty...).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Repo {
    /// Open the repository containing `dir`.
    ///
    /// When `dir` is inside a linked worktree, [`Repo::root`] is that worktree's top while
    /// [`Repo::common_dir`] is the git dir shared by all worktrees of the repository.
    pub fn discover(dir: &Path) -> Result<Repo, InputError> {
        let repo = Repository::discover(dir).map_err(|e| match e.code() {
            ErrorCode::NotFound => InputError::new(
                format!("{} is not inside a git repository", dir.display()),
                "run gadugi inside a git checkout, or create one with `git init`",
            ),
            _ if e.message().contains("object format") => InputError::new(
                format!(
                    "the git repository at {} uses an object format Gadugi cannot read ({}); Gadugi reads repositories through libgit2, which supports SHA-1 repositories only",
                    dir.display(),
                    e.message()
                ),
                "run Gadugi on a SHA-1 repository (the default of `git init`); a SHA-256 repository (`git init --object-format=sha256`) is not supported yet",
            ),
            _ => InputError::new(
                format!("cannot open the git repository at {}: {}", dir.display(), e.message()),
                "check that `git status` works there",
            ),
        })?;
        let Some(root) = repo.workdir() else {
            return Err(InputError::new(
                format!(
                    "{} is a bare repository (it has no working tree)",
                    repo.path().display()
                ),
                "run gadugi in a checkout: `git clone <bare repository> <directory>`",
            ));
        };
        Ok(Repo {
            root: normalize(root),
            common_dir: normalize(repo.commondir()),
            env: Vec::new(),
        })
    }

    /// A new, empty repository at `dir` (created), for a remote task's clone on its node.
    pub fn init(dir: &Path) -> anyhow::Result<Repo> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Repository::init(dir).with_context(|| format!("cannot create a git repository in {}", dir.display()))?;
        Repo::discover(dir).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Top of the working tree, as libgit2 found it (symlinks are not resolved, unlike the
    /// paths [`Repo::list_worktrees`] reports).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The git dir shared by all worktrees (`.git` of the main checkout).
    pub fn common_dir(&self) -> &Path {
        &self.common_dir
    }

    /// The commit HEAD points at, as 40 hex digits. A detached HEAD is fine.
    pub fn head_commit(&self) -> Result<String, InputError> {
        let head = self.open().and_then(|repo| Ok(repo.head()?.peel_to_commit()?.id()));
        match head {
            Ok(id) => Ok(id.to_string()),
            Err(e) if e.code() == ErrorCode::UnbornBranch => Err(InputError::at(
                &self.root,
                None,
                "the repository has no commits yet",
                "make a first commit: git commit --allow-empty -m init",
            )),
            Err(e) => Err(InputError::new(
                format!("cannot read HEAD of {}: {}", self.root.display(), e.message()),
                "check the repository with `git status`",
            )),
        }
    }

    /// Name of the current branch (also when it has no commits yet), or `None` when detached.
    pub fn head_branch(&self) -> Option<String> {
        let repo = self.open().ok()?;
        let head = repo.find_reference("HEAD").ok()?;
        let name = head.symbolic_target()?.strip_prefix("refs/heads/")?;
        Some(name.to_string())
    }

    /// Whether `name` can name a new branch: `refs/heads/<name>` is a valid reference name,
    /// and `name` is neither `HEAD` nor starts with `-` (git would take it for an option).
    pub fn is_valid_branch_name(name: &str) -> bool {
        name != "HEAD" && !name.starts_with('-') && git2::Reference::is_valid_name(&format!("refs/heads/{name}"))
    }

    /// Names of all local branches.
    pub fn local_branches(&self) -> anyhow::Result<Vec<String>> {
        let repo = self.open()?;
        let mut names = vec![];
        for branch in repo.branches(Some(BranchType::Local))? {
            if let Some(name) = branch?.0.name()? {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// Whether the local branch `name` exists.
    pub fn branch_exists(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self.branch_head(name)?.is_some())
    }

    /// Commit id the local branch `name` points at, or `None` if there is no such branch.
    pub fn branch_head(&self, name: &str) -> anyhow::Result<Option<String>> {
        let repo = self.open()?;
        let branch = match repo.find_branch(name, BranchType::Local) {
            Ok(branch) => branch,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read branch {name}")),
        };
        let id = branch.get().peel_to_commit()?.id();
        Ok(Some(id.to_string()))
    }

    /// Paths (relative, `/`-separated) of all files in the tree of `commit`, in tree order.
    /// Submodules are not files and are left out.
    pub fn tracked_files(&self, commit: &str) -> anyhow::Result<Vec<String>> {
        let repo = self.open()?;
        let tree = repo.revparse_single(commit)?.peel_to_tree()?;
        let mut files = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) {
                files.push(format!("{dir}{}", String::from_utf8_lossy(entry.name_bytes())));
            }
            TreeWalkResult::Ok
        })?;
        Ok(files)
    }

    /// Whether the index tracks `path` (relative, `/`-separated) or anything under it.
    pub fn tracks(&self, path: &str) -> anyhow::Result<bool> {
        let index = self.open()?.index()?;
        let prefix = format!("{path}/");
        Ok(index.iter().any(|e| {
            let p = String::from_utf8_lossy(&e.path);
            p == path || p.starts_with(&prefix)
        }))
    }

    /// Append `pattern` (e.g. `.gadugi/`) as its own line to `<common_dir>/info/exclude`
    /// unless a line already says exactly that. Never touches `.gitignore`.
    pub fn ensure_excluded(&self, pattern: &str) -> anyhow::Result<()> {
        let info = self.common_dir.join("info");
        let exclude = info.join("exclude");
        let text = match fs::read(&exclude) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", exclude.display())),
        };
        if text.lines().any(|line| line.trim_end() == pattern) {
            return Ok(());
        }
        let separator = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        fs::create_dir_all(&info).with_context(|| format!("cannot create {}", info.display()))?;
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&exclude)
            .and_then(|mut file| writeln!(file, "{separator}{pattern}"))
            .with_context(|| format!("cannot write {}", exclude.display()))
    }

    /// Create a worktree at `path` on a new branch `branch` starting at `start_commit`:
    /// [`Repo::register_worktree`], then [`Repo::populate_worktree`]; when populating fails,
    /// the new worktree and branch are removed again.
    pub fn create_worktree(&self, path: &Path, branch: &str, start_commit: &str) -> anyhow::Result<()> {
        self.register_worktree(path, branch, start_commit)?;
        self.populate_worktree(path, branch)
            .inspect_err(|_| self.discard_new_worktree(path, branch))
    }

    /// The cheap half of creating a worktree: the branch and git's metadata of the worktree
    /// (what `git worktree add --no-checkout -b` makes), no files. Callers serialize this
    /// step only (two `git worktree add` at once on one repository fail on each other's
    /// metadata, "failed to read .git/worktrees/X/commondir"); [`Repo::populate_worktree`],
    /// the expensive one, runs in parallel.
    ///
    /// The metadata is written in-process when the repository's format allows
    /// ([`Repo::write_worktree_metadata`]), after a `git branch`: the N-th agent of a run
    /// starts N × this step after the first, and a `git worktree add` process costs 12–25 ms
    /// where `git branch` costs about 3 and writing four small files well under one.
    ///
    /// Refuses, changing nothing, when the branch already exists or `path` does (an empty
    /// folder is fine: the pool's slots are reserved that way, and git accepts one).
    pub fn register_worktree(&self, path: &Path, branch: &str, start_commit: &str) -> anyhow::Result<()> {
        if !Self::is_valid_branch_name(branch) {
            bail!("{branch:?} is not a valid branch name");
        }
        // One handle for the checks and the branch: this runs in the run's serialized step.
        let repo = self.open()?;
        match repo.find_branch(branch, BranchType::Local) {
            Ok(_) => bail!("branch {branch} already exists"),
            Err(e) if e.code() == ErrorCode::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read branch {branch}")),
        }
        let path = std::path::absolute(path)?;
        refuse_existing(&path)?;
        let commit = repo.revparse_single(start_commit)?.peel_to_commit()?;
        if plain_worktree_format(&repo) {
            // The branch by a git process, not libgit2: a `kill -9` of Gadugi mid-write would
            // leave libgit2's `refs/heads/<branch>.lock` behind and block the resumed task
            // (found by the random-crash test); git's own process finishes on its own.
            let id = commit.id().to_string();
            self.git(&self.root, &["branch", "--no-track", branch, id.as_str()])
                .with_context(|| format!("cannot create branch {branch}"))?;
            if let Err(e) = self.write_worktree_metadata(&path, branch) {
                if let Ok(mut b) = repo.find_branch(branch, BranchType::Local) {
                    let _ = b.delete();
                }
                return Err(e);
            }
            return Ok(());
        }
        let commit = commit.id();
        let mut args = vec![
            OsString::from("worktree"),
            "add".into(),
            "-q".into(),
            "--no-checkout".into(),
            "-b".into(),
        ];
        args.extend([branch.into(), path.into_os_string(), commit.to_string().into()]);
        self.git(&self.root, &args).map(drop)
    }

    /// Creates the local branches `new` (name, start commit) in one git process, all or none:
    /// one `git update-ref --stdin` transaction, which refuses a branch that exists (it never
    /// moves one). Many tasks starting at once each paid a `git branch` of their own, one
    /// after another (6 ms each here, more on a busy machine); one transaction of 64 takes
    /// about as long as one of them. A git process, not libgit2, for the reason
    /// [`Repo::register_worktree`] gives; if Gadugi dies while writing the input, git sees no
    /// `commit` and creates none.
    pub fn create_branches(&self, new: &[(String, String)]) -> anyhow::Result<()> {
        let mut input = String::from("start\n");
        for (branch, commit) in new {
            if !Self::is_valid_branch_name(branch) {
                bail!("{branch:?} is not a valid branch name");
            }
            // One command per line: nothing in it may start another.
            if commit.is_empty()
                || commit.starts_with('-')
                || commit.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
            {
                bail!("{commit:?} is not a commit name");
            }
            input.push_str(&format!("create refs/heads/{branch} {commit}\n"));
        }
        input.push_str("commit\n");
        let names: Vec<&str> = new.iter().map(|(b, _)| b.as_str()).collect();
        self.git_with_input(
            &self.root,
            &["update-ref", "-m", "branch: Created by gadugi", "--stdin"],
            Some(input.as_bytes()),
        )
        .with_context(|| format!("cannot create branch {}", names.join(", ")))
        .map(drop)
    }

    /// Whether new worktrees get their metadata written in-process (see
    /// [`Repo::register_worktree`]): so their branches can be made beforehand, in a batch
    /// ([`Repo::create_branches`]), and registered with [`Repo::register_worktree_on_new_branch`].
    pub fn writes_worktree_metadata(&self) -> bool {
        self.open().is_ok_and(|repo| plain_worktree_format(&repo))
    }

    /// Registers a worktree at `path` on `branch`, which the caller has just made for it with
    /// [`Repo::create_branches`] and nothing else uses, without its files (as
    /// [`Repo::register_worktree`] does). On failure nothing of the worktree is left; the branch
    /// is the caller's to delete (`run::pool::register_on_new_branch` does). Only for
    /// repositories where [`Repo::writes_worktree_metadata`].
    pub fn register_worktree_on_new_branch(&self, path: &Path, branch: &str) -> anyhow::Result<()> {
        let path = std::path::absolute(path)?;
        refuse_existing(&path)?;
        self.write_worktree_metadata(&path, branch)
    }

    /// Writes git's metadata of a new linked worktree at `path` on the existing branch
    /// `branch`, as `git worktree add --no-checkout` does (see gitrepository-layout(5),
    /// "worktrees/<id>"): `<path>/.git` (`gitdir: <common>/worktrees/<id>`), and in
    /// `<common>/worktrees/<id>/` the files `gitdir` (`<path>/.git`), `commondir` (`../..`)
    /// and `HEAD` (`ref: refs/heads/<branch>`); no index, so [`Repo::populate_worktree`]
    /// checks out every file. The entry is written in a scratch folder beside `worktrees/`
    /// and renamed into it whole, so a git process listing worktrees at that moment (another
    /// task's populate runs `git checkout`, which does) sees it complete or not at all.
    fn write_worktree_metadata(&self, path: &Path, branch: &str) -> anyhow::Result<()> {
        let worktrees = self.common_dir.join("worktrees");
        fs::create_dir_all(&worktrees).with_context(|| format!("cannot create {}", worktrees.display()))?;
        let made_folder = !path.exists();
        fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
        // Leaves nothing behind on failure: the scratch entry, `.git`, a folder made here.
        let undo = |scratch: &Path| {
            let _ = fs::remove_dir_all(scratch);
            let _ = fs::remove_file(path.join(".git"));
            if made_folder {
                let _ = fs::remove_dir(path);
            }
        };
        // The id is the folder's name, made unique with a number as git does.
        let base: String = path
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "._-".contains(c) {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect()
            })
            .filter(|n: &String| !n.is_empty() && !n.starts_with('.'))
            .unwrap_or_else(|| "worktree".into());
        let scratch = self
            .common_dir
            .join(format!("gadugi-new-worktree-{}-{base}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let written = (|| -> std::io::Result<()> {
            fs::create_dir(&scratch)?;
            fs::write(scratch.join("commondir"), "../..\n")?;
            fs::write(scratch.join("gitdir"), format!("{}\n", path.join(".git").display()))?;
            fs::write(scratch.join("HEAD"), format!("ref: refs/heads/{branch}\n"))
        })();
        if let Err(e) = written {
            undo(&scratch);
            return Err(e).with_context(|| format!("cannot write {}", scratch.display()));
        }
        // `.git` first, then the entry: a `git worktree prune` never sees an entry whose
        // worktree has no `.git` (it would delete it as stale).
        let dotgit = path.join(".git");
        for n in 0..100 {
            let id = if n == 0 { base.clone() } else { format!("{base}{n}") };
            let entry = worktrees.join(&id);
            if entry.symlink_metadata().is_ok() {
                continue;
            }
            if let Err(e) = fs::write(&dotgit, format!("gitdir: {}\n", entry.display())) {
                undo(&scratch);
                return Err(e).with_context(|| format!("cannot write {}", dotgit.display()));
            }
            // Atomic onto a name that does not exist (the callers hold the worktree lock).
            if fs::rename(&scratch, &entry).is_ok() {
                return Ok(());
            }
        }
        undo(&scratch);
        bail!("cannot find a free name for the worktree in {}", worktrees.display())
    }

    /// The expensive half of creating a worktree: checks out its branch's files. Does
    /// nothing when the worktree already has an index: it was populated before (a resumed
    /// task), and its files may hold work. `git checkout -f`, so post-checkout hooks and
    /// smudge filters such as Git LFS run — or, where nothing of git's own would run and the
    /// tree is small, libgit2 in-process ([`checkout_method`]): the same files and index
    /// without a git process, which costs more than the checkout of a small tree (a few ms
    /// of CPU each, 64 of them when 64 tasks start at once on 2 cores).
    pub fn populate_worktree(&self, path: &Path, branch: &str) -> anyhow::Result<()> {
        // Without its own `.git`, git would look in the parent folders and could find the
        // user's checkout (a worktree folder inside the repository): never check out there.
        if !is_complete_worktree(path) {
            bail!(
                "{} is not a linked worktree (its .git is missing or points nowhere)",
                path.display()
            );
        }
        if worktree_index(path).is_some_and(|index| index.exists()) {
            return Ok(());
        }
        let repo = Repository::open(path)?;
        let commit = repo.find_branch(branch, BranchType::Local)?.get().peel_to_commit()?;
        if checkout_method_of(&repo, &commit.tree()?)? == CheckoutMethod::InProcess {
            let mut force = git2::build::CheckoutBuilder::new();
            force.force();
            return repo
                .checkout_tree(commit.as_object(), Some(&mut force))
                .with_context(|| format!("cannot check out {branch} in {}", path.display()));
        }
        self.git(path, &["checkout", "-q", "-f", branch]).map(drop)
    }

    /// After a crash inside [`Repo::register_worktree`], the task's folder may exist without
    /// being a worktree: empty, or holding only a `.git` that points nowhere. Such a leftover
    /// is cleared (the folder stays, empty, which registering again accepts) and true is
    /// returned; a complete worktree, or a folder holding anything else, is left alone (false).
    pub fn clear_unfinished_worktree(path: &Path) -> bool {
        if !path.is_dir() || is_complete_worktree(path) {
            return false;
        }
        let Ok(names) = fs::read_dir(path).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()) else {
            return false;
        };
        match names.as_slice() {
            [] => true,
            [only] if only == ".git" && path.join(".git").is_file() => fs::remove_file(path.join(".git")).is_ok(),
            _ => false,
        }
    }

    /// Removes a worktree that [`Repo::register_worktree`] just made and its branch (still at
    /// its start commit, so no work is lost), after populating it failed: a failed creation
    /// leaves neither a folder nor a branch behind.
    pub fn discard_new_worktree(&self, path: &Path, branch: &str) {
        let args = [
            OsString::from("worktree"),
            "remove".into(),
            "--force".into(),
            path.as_os_str().to_os_string(),
        ];
        if let Err(e) = self.git(&self.root, &args) {
            tracing::warn!("removing the half-made worktree {}: {e:#}", path.display());
        }
        if let Err(e) = self.git(&self.root, &["branch", "-D", branch]) {
            tracing::warn!("removing the branch {branch} of a half-made worktree: {e:#}");
        }
        remove_dangling_link(path);
    }

    /// Registers a worktree at `path` for the EXISTING branch `branch` (resuming a task whose
    /// branch was created before a crash), without its files: [`Repo::populate_worktree`]
    /// checks them out. Fails if `path` exists (but for an empty folder).
    pub fn add_worktree_for_branch(&self, path: &Path, branch: &str) -> anyhow::Result<()> {
        if !self.branch_exists(branch)? {
            bail!("branch {branch} does not exist");
        }
        let path = std::path::absolute(path)?;
        refuse_existing(&path)?;
        // Metadata of a worktree that vanished in the crash would make git refuse.
        self.prune_worktrees()?;
        let args = [
            OsString::from("worktree"),
            "add".into(),
            "-q".into(),
            "--no-checkout".into(),
            path.into_os_string(),
            branch.into(),
        ];
        self.git(&self.root, &args).map(drop)
    }

    /// In worktree `wt`, merge each of `branches` in order with a merge commit.
    ///
    /// On a conflict the merge is aborted (the worktree is left as it was before that
    /// branch) and [`MergeError::Conflict`] names the branch and the conflicted files.
    pub fn merge_branches(&self, wt: &Path, branches: &[String]) -> Result<(), MergeError> {
        for branch in branches {
            if branch.starts_with('-') {
                return Err(anyhow::anyhow!("{branch:?} is not a branch name").into());
            }
            let mut args = self.git_identity_args(wt);
            let message = format!("gadugi: merge {branch}");
            args.extend(["merge", "--no-ff", "--no-edit", "-m", &message, branch].map(OsString::from));
            let Err(merge_error) = self.git(wt, &args) else {
                continue;
            };
            let unmerged = self.git(wt, &["diff", "-z", "--name-only", "--diff-filter=U"])?;
            let files: Vec<String> = unmerged.split_terminator('\0').map(str::to_string).collect();
            if files.is_empty() {
                return Err(merge_error.into());
            }
            self.git(wt, &["merge", "--abort"])?;
            return Err(MergeError::Conflict {
                branch: branch.clone(),
                files,
            });
        }
        Ok(())
    }

    /// If worktree `wt` has uncommitted changes (see [`Repo::is_dirty`]), stage everything
    /// and commit it with `message`. Returns the new commit id, or `None` when clean.
    /// Nested repositories are left out (see [`Repo::commit_leftovers`]).
    pub fn commit_all(&self, wt: &Path, message: &str) -> anyhow::Result<Option<String>> {
        Ok(self.commit_leftovers(wt, message)?.commit)
    }

    /// Stages and commits everything uncommitted in `wt` except nested repositories (a
    /// folder with its own `.git` that the index does not track as a submodule): `git add`
    /// would record one as a gitlink to commits that exist only in that folder. They stay
    /// in the worktree, uncommitted, and are listed in [`Leftovers::nested`].
    pub fn commit_leftovers(&self, wt: &Path, message: &str) -> anyhow::Result<Leftovers> {
        let submodules = self.gitlinks(wt)?;
        let nested: Vec<String> = nested_repositories(wt)?
            .into_iter()
            .filter(|p| !submodules.contains(p))
            .collect();
        if !self.is_dirty(wt)? {
            return Ok(Leftovers { commit: None, nested });
        }
        // `git ls-files --others` lists a nested repository that `add` would pick up as one
        // entry ending in `/` (ignored ones are not listed, and `add` leaves them alone).
        let untracked = self.git(wt, &["ls-files", "-z", "--others", "--exclude-standard"])?;
        let mut add: Vec<OsString> = ["add", "-A", "--", "."].map(OsString::from).into();
        add.extend(
            untracked
                .split_terminator('\0')
                .filter_map(|p| p.strip_suffix('/'))
                .map(|p| OsString::from(format!(":(exclude,literal){p}"))),
        );
        self.git(wt, &add)?;
        if self.git(wt, &["diff", "--cached", "--quiet"]).is_ok() {
            return Ok(Leftovers { commit: None, nested });
        }
        let mut args = self.git_identity_args(wt);
        args.extend(["commit", "-q", "-m", message].map(OsString::from));
        self.git(wt, &args)?;
        let commit = Some(self.git(wt, &["rev-parse", "HEAD"])?.trim().to_string());
        Ok(Leftovers { commit, nested })
    }

    /// Paths the index of `wt` tracks as gitlinks (submodules), `/`-separated.
    fn gitlinks(&self, wt: &Path) -> anyhow::Result<Vec<String>> {
        let index = Repository::open(wt)?.index()?;
        Ok(index
            .iter()
            .filter(|e| e.mode == 0o160000)
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect())
    }

    /// Where the HEAD of worktree `wt` is: its branch (`None` when detached) and commit
    /// (`None` on a branch without commits).
    pub fn worktree_head(&self, wt: &Path) -> anyhow::Result<WorktreeHead> {
        let repo = Repository::open(wt)?;
        let head = repo.find_reference("HEAD")?;
        let branch = head
            .symbolic_target()
            .map(|t| t.strip_prefix("refs/heads/").unwrap_or(t).to_string());
        let commit = match repo.head() {
            Ok(h) => Some(h.peel_to_commit()?.id().to_string()),
            Err(e) if e.code() == ErrorCode::UnbornBranch => None,
            Err(e) => return Err(e.into()),
        };
        Ok(WorktreeHead { branch, commit })
    }

    /// The git operation left in progress in worktree `wt` (`merge`, `rebase`,
    /// `cherry-pick`, `revert`, `bisect`) with the file or folder that says so, if any.
    pub fn operation_in_progress(&self, wt: &Path) -> anyhow::Result<Option<(&'static str, PathBuf)>> {
        use git2::RepositoryState as S;
        let repo = Repository::open(wt)?;
        let dir = repo.path();
        let (what, marker) = match repo.state() {
            S::Clean => return Ok(None),
            S::Merge => ("merge", "MERGE_HEAD"),
            S::Revert | S::RevertSequence => ("revert", "REVERT_HEAD"),
            S::CherryPick | S::CherryPickSequence => ("cherry-pick", "CHERRY_PICK_HEAD"),
            S::Bisect => ("bisect", "BISECT_LOG"),
            S::Rebase | S::RebaseInteractive | S::RebaseMerge => ("rebase", "rebase-merge"),
            S::ApplyMailbox | S::ApplyMailboxOrRebase => ("rebase", "rebase-apply"),
        };
        Ok(Some((what, dir.join(marker))))
    }

    /// Paths with unresolved merge conflicts in the index of `wt` (what `git diff
    /// --name-only --diff-filter=U` lists: index entries in a conflict stage), sorted. Read
    /// in-process from the worktree's index: every finished task asks, and a git process per
    /// task was a good part of the run's own cost on a small machine.
    pub fn unmerged_paths(&self, wt: &Path) -> anyhow::Result<Vec<String>> {
        // `open`, not `discover`: a folder without its own .git must not find the user's checkout.
        let repo = Repository::open(wt).with_context(|| format!("cannot open the worktree {}", wt.display()))?;
        let index = repo
            .index()
            .with_context(|| format!("cannot read the index of {}", wt.display()))?;
        if !index.has_conflicts() {
            return Ok(vec![]);
        }
        let mut files = vec![];
        for conflict in index.conflicts()? {
            let conflict = conflict?;
            let entry = conflict.our.or(conflict.their).or(conflict.ancestor);
            if let Some(entry) = entry {
                files.push(String::from_utf8_lossy(&entry.path).into_owned());
            }
        }
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// The git dir of worktree `wt` (`<common dir>/worktrees/<name>` for a linked one).
    pub fn worktree_git_dir(&self, wt: &Path) -> anyhow::Result<PathBuf> {
        Ok(normalize(Repository::open(wt)?.path()))
    }

    /// Whether commit `descendant` is `ancestor` or descends from it.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> anyhow::Result<bool> {
        let repo = self.open()?;
        let a = repo.revparse_single(ancestor)?.peel_to_commit()?.id();
        let d = repo.revparse_single(descendant)?.peel_to_commit()?.id();
        Ok(a == d || repo.graph_descendant_of(d, a)?)
    }

    /// Moves branch `branch` from `from` to `to` (a compare-and-swap: fails if it moved
    /// meanwhile) and makes it the checked-out branch of worktree `wt` again, whose HEAD is
    /// at `to`: only HEAD is re-pointed, the index and the files stay as they are.
    pub fn fast_forward_and_attach(&self, wt: &Path, branch: &str, to: &str, from: &str) -> anyhow::Result<()> {
        if !self.is_ancestor(from, to)? {
            bail!("{to} does not descend from {branch} ({from})");
        }
        let name = format!("refs/heads/{branch}");
        let reason = "gadugi: the agent's commits, brought back onto its task branch";
        self.git(&self.root, &["update-ref", "-m", reason, &name, to, from])?;
        self.git(wt, &["symbolic-ref", "-m", reason, "HEAD", &name]).map(drop)
    }

    /// Keeps `commit` reachable under a new reference `<prefix>` (or `<prefix>-2`, `-3`...
    /// when that name already holds another commit) and returns the name used. Never
    /// overwrites a reference.
    pub fn keep_commit(&self, prefix: &str, commit: &str) -> anyhow::Result<String> {
        for n in 1..100 {
            let name = if n == 1 {
                prefix.to_string()
            } else {
                format!("{prefix}-{n}")
            };
            if !git2::Reference::is_valid_name(&name) {
                bail!("{name:?} is not a valid reference name");
            }
            let existing = self.open()?.refname_to_id(&name).ok().map(|id| id.to_string());
            match existing {
                Some(id) if id == commit => return Ok(name),
                Some(_) => continue,
                None => {
                    // The all-zero old value: create only, never overwrite.
                    let zero = "0".repeat(40);
                    self.git(&self.root, &["update-ref", &name, commit, &zero])?;
                    return Ok(name);
                }
            }
        }
        bail!("too many references named {prefix}-N")
    }

    /// Creates branch `name` at `commit`; fails when it exists (never moves a branch).
    pub fn create_branch_at(&self, name: &str, commit: &str) -> anyhow::Result<()> {
        let zero = "0".repeat(40);
        self.git(
            &self.root,
            &["update-ref", &format!("refs/heads/{name}"), commit, &zero],
        )
        .map(drop)
    }

    /// The merge commit of `first` with `others` in memory (libgit2: no worktree, no
    /// checkout, no reference moved), for a task that starts from several branches and runs
    /// away from this machine. Returns the new commit's id.
    pub fn merge_commit_in_memory(&self, first: &str, others: &[String], message: &str) -> Result<String, MergeError> {
        let repo = self.open().map_err(anyhow::Error::from)?;
        let sig = repo
            .signature()
            .or_else(|_| git2::Signature::now("Gadugi", "gadugi@localhost"))
            .map_err(anyhow::Error::from)?;
        let mut head = repo
            .revparse_single(first)
            .and_then(|o| o.peel_to_commit())
            .map_err(anyhow::Error::from)?;
        for other in others {
            let theirs = repo
                .revparse_single(other)
                .and_then(|o| o.peel_to_commit())
                .map_err(anyhow::Error::from)?;
            let mut index = repo.merge_commits(&head, &theirs, None).map_err(anyhow::Error::from)?;
            if index.has_conflicts() {
                let mut files: Vec<String> = index
                    .conflicts()
                    .map_err(anyhow::Error::from)?
                    .flatten()
                    .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                    .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                    .collect();
                files.dedup();
                return Err(MergeError::Conflict {
                    branch: other.clone(),
                    files,
                });
            }
            let tree_id = index.write_tree_to(&repo).map_err(anyhow::Error::from)?;
            let tree = repo.find_tree(tree_id).map_err(anyhow::Error::from)?;
            let id = repo
                .commit(
                    None,
                    &sig,
                    &sig,
                    &format!("{message} {other}"),
                    &tree,
                    &[&head, &theirs],
                )
                .map_err(anyhow::Error::from)?;
            head = repo.find_commit(id).map_err(anyhow::Error::from)?;
        }
        Ok(head.id().to_string())
    }

    /// The URL of remote `name`, when the repository has that remote.
    pub fn remote_url(&self, name: &str) -> Option<String> {
        let repo = self.open().ok()?;
        let remote = repo.find_remote(name).ok()?;
        remote.url().map(str::to_string)
    }

    /// `git push URL +SRC:DST` (forced: `DST` is a reference only Gadugi writes, under
    /// `refs/gadugi/`), with the git credentials file when one is given.
    pub fn push_ref(&self, url: &str, src: &str, dst: &str, credentials: Option<&Path>) -> anyhow::Result<()> {
        if !dst.starts_with("refs/gadugi/") {
            bail!("refusing to force-push {dst}: only references under refs/gadugi/ are overwritten");
        }
        let mut args = credential_args(credentials);
        args.extend(["push", "--quiet", "--no-verify", url, &format!("+{src}:{dst}")].map(String::from));
        self.git(&self.root, &args).map(drop)
    }

    /// Moves `refs/heads/BRANCH` on remote `url` to `to`, only if it still is `expected`
    /// there (`None`: only if it does not exist) — `git push --force-with-lease`, so a
    /// concurrent writer is never overwritten.
    pub fn push_branch_with_lease(
        &self,
        url: &str,
        branch: &str,
        to: &str,
        expected: Option<&str>,
        credentials: Option<&Path>,
    ) -> anyhow::Result<()> {
        let dst = format!("refs/heads/{branch}");
        let lease = format!("--force-with-lease={dst}:{}", expected.unwrap_or(""));
        let mut args = credential_args(credentials);
        args.extend(["push", "--quiet", "--no-verify", &lease, url, &format!("{to}:{dst}")].map(String::from));
        self.git(&self.root, &args).map(drop)
    }

    /// `git fetch URL +SRC:DST` into this repository (DST under `refs/gadugi/`).
    pub fn fetch_ref(&self, url: &str, src: &str, dst: &str, credentials: Option<&Path>) -> anyhow::Result<()> {
        if !dst.starts_with("refs/gadugi/") {
            bail!("refusing to fetch into {dst}: only references under refs/gadugi/ are written");
        }
        let mut args = credential_args(credentials);
        args.extend(["fetch", "--quiet", "--no-tags", url, &format!("+{src}:{dst}")].map(String::from));
        self.git(&self.root, &args).map(drop)
    }

    /// What `refs` is on remote `url` (`git ls-remote`), `None` when it does not exist.
    pub fn remote_ref(&self, url: &str, reference: &str, credentials: Option<&Path>) -> anyhow::Result<Option<String>> {
        let mut args = credential_args(credentials);
        args.extend(["ls-remote", "--refs", url, reference].map(String::from));
        let out = self.git(&self.root, &args)?;
        Ok(out
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(reference))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_string))
    }

    /// Moves branch `branch` from `from` to its descendant `to` (compare-and-swap; no
    /// worktree is touched: for a task whose work was made on another machine).
    pub fn fast_forward_branch(&self, branch: &str, to: &str, from: &str) -> anyhow::Result<()> {
        if !self.is_ancestor(from, to)? {
            bail!("{to} does not descend from {branch} ({from})");
        }
        let reason = "gadugi: the accepted attempt's work, from the cluster";
        self.git(
            &self.root,
            &["update-ref", "-m", reason, &format!("refs/heads/{branch}"), to, from],
        )
        .map(drop)
    }

    /// Whether `wt` has uncommitted changes: modified, staged, deleted, or untracked files
    /// that are not ignored, and changes inside submodules. Whatever the user's git
    /// configuration says `git status` should hide: with `status.showUntrackedFiles = no`
    /// (common in large repositories) it lists no untracked file, and an agent's new files
    /// would be neither committed as leftovers nor protected from the worktree's removal.
    pub fn is_dirty(&self, wt: &Path) -> anyhow::Result<bool> {
        let mut args = vec!["--no-optional-locks", "status", "--porcelain"];
        args.extend(STATUS_SHOWS_ALL);
        let status = self.git(wt, &args)?;
        Ok(!status.is_empty())
    }

    /// Number of commits reachable from `branch` and not from `base` (any revisions).
    pub fn commits_ahead(&self, branch: &str, base: &str) -> anyhow::Result<u32> {
        let repo = self.open()?;
        let mut walk = repo.revwalk()?;
        walk.push(repo.revparse_single(branch)?.peel_to_commit()?.id())?;
        walk.hide(repo.revparse_single(base)?.peel_to_commit()?.id())?;
        let mut count = 0u32;
        for id in walk {
            id?;
            count = count.checked_add(1).context("too many commits")?;
        }
        Ok(count)
    }

    /// Paths that differ between the tree of `base` and the tree at the tip of `branch`,
    /// sorted. Pass the commit the branch started from as `base` to get what it changed.
    pub fn files_changed(&self, branch: &str, base: &str) -> anyhow::Result<Vec<String>> {
        let repo = self.open()?;
        let old = repo.revparse_single(base)?.peel_to_tree()?;
        let new = repo.revparse_single(branch)?.peel_to_tree()?;
        let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), None)?;
        let mut files: Vec<String> = diff
            .deltas()
            .filter_map(|delta| delta.new_file().path().or(delta.old_file().path()))
            .map(|path| path.to_string_lossy().into_owned())
            .collect();
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// Whether every commit of the local branch `branch` is reachable from another local
    /// branch or from a detached HEAD, so that deleting the branch loses no commit.
    pub fn branch_is_contained_elsewhere(&self, branch: &str) -> anyhow::Result<bool> {
        let repo = self.open()?;
        let mut walk = repo.revwalk()?;
        walk.push(
            repo.find_branch(branch, BranchType::Local)?
                .get()
                .peel_to_commit()?
                .id(),
        )?;
        for other in repo.branches(Some(BranchType::Local))? {
            let (other, _) = other?;
            if other.name_bytes()? != branch.as_bytes() {
                walk.hide(other.get().peel_to_commit()?.id())?;
            }
        }
        if repo.head_detached()? {
            walk.hide(repo.head()?.peel_to_commit()?.id())?;
        }
        Ok(walk.next().transpose()?.is_none())
    }

    /// Remove the worktree at `path` with `git worktree remove` (no `--force`: git refuses
    /// when it has changes or untracked files), then prune stale worktree metadata.
    /// What a task changed since `base`: its commits (one line each), then `git diff` of
    /// `base` against the worktree `wt` when it exists (committed and uncommitted changes of
    /// tracked files), else against `branch`.
    pub fn task_diff(&self, base: &str, branch: &str, wt: Option<&Path>) -> anyhow::Result<String> {
        let log = self.git(
            self.root(),
            &["log", "--format=%h %s", &format!("{base}..{branch}"), "--"],
        )?;
        let diff = match wt {
            Some(wt) => self.git(wt, &["diff", "--stat", "--patch", base, "--"])?,
            None => self.git(self.root(), &["diff", "--stat", "--patch", base, branch, "--"])?,
        };
        let mut out = String::new();
        if log.trim().is_empty() {
            out.push_str("# no commits on the branch yet\n");
        } else {
            out.push_str("# commits\n");
            for line in log.lines() {
                out.push_str(&format!("#   {line}\n"));
            }
        }
        if wt.is_some() {
            out.push_str("# diff of the worktree (commits and uncommitted changes) against the task's start\n");
        } else {
            out.push_str("# diff of the branch against the task's start (the worktree is gone)\n");
        }
        out.push_str(&diff);
        Ok(out)
    }

    pub fn remove_worktree(&self, path: &Path) -> anyhow::Result<()> {
        let path = std::path::absolute(path)?;
        self.git(
            &self.root,
            &[OsString::from("worktree"), "remove".into(), path.clone().into()],
        )?;
        // A pooled task's path is a symlink to its slot (run/pool.rs): git removed the slot
        // (it matches worktrees by their real path); the link goes too.
        remove_dangling_link(&path);
        self.prune_worktrees()
    }

    /// Delete the local branch `name`. Callers check first that this loses nothing (see
    /// [`Repo::branch_is_contained_elsewhere`]) unless the user forced it.
    pub fn delete_branch(&self, name: &str) -> anyhow::Result<()> {
        let repo = self.open()?;
        let mut branch = repo.find_branch(name, BranchType::Local)?;
        branch.delete().with_context(|| format!("cannot delete branch {name}"))
    }

    /// Forget worktrees whose directories are gone (`git worktree prune`).
    pub fn prune_worktrees(&self) -> anyhow::Result<()> {
        self.git(&self.root, &["worktree", "prune"]).map(drop)
    }

    /// The linked worktrees (not the main checkout), from `git worktree list --porcelain`.
    pub fn list_worktrees(&self) -> anyhow::Result<Vec<WorktreeInfo>> {
        let out = self.git(&self.root, &["worktree", "list", "--porcelain"])?;
        let mut worktrees: Vec<WorktreeInfo> = Vec::new();
        for line in out.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match (key, worktrees.last_mut()) {
                ("worktree", _) => worktrees.push(WorktreeInfo {
                    path: PathBuf::from(value),
                    branch: None,
                    prunable: false,
                }),
                ("branch", Some(wt)) => {
                    wt.branch = Some(value.strip_prefix("refs/heads/").unwrap_or(value).into());
                }
                ("prunable", Some(wt)) => wt.prunable = true,
                _ => {}
            }
        }
        Ok(worktrees.into_iter().skip(1).collect())
    }

    /// Untracked files and folders of the main checkout that git ignores (`.gitignore`,
    /// `info/exclude`, the global excludes file), relative and `/`-separated. A folder whose
    /// whole content is ignored is one entry ending in `/`, so `node_modules/` is listed
    /// without its files. Tracked files are never listed.
    pub fn ignored_paths(&self) -> anyhow::Result<Vec<String>> {
        let args = [
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
        ];
        let out = self.git(&self.root, &args)?;
        Ok(out.split_terminator('\0').map(str::to_string).collect())
    }

    /// Untracked files and folders of the main checkout that git does not ignore, listed
    /// like [`Repo::ignored_paths`].
    pub fn untracked_paths(&self) -> anyhow::Result<Vec<String>> {
        let args = ["ls-files", "-z", "--others", "--exclude-standard", "--directory"];
        let out = self.git(&self.root, &args)?;
        Ok(out.split_terminator('\0').map(str::to_string).collect())
    }

    /// Whether git ignores `path` (relative to the main checkout, `/`-separated; a trailing
    /// `/` asks about a folder) by `.gitignore`, `info/exclude` or the global excludes,
    /// whether or not it exists (`git check-ignore --no-index`: tracking is not asked).
    pub fn is_ignored(&self, path: &str) -> anyhow::Result<bool> {
        let folder = format!("{}/", path.trim_end_matches('/'));
        let args = ["check-ignore", "--no-index", "--", path, folder.as_str()];
        let out = self.git_output(&self.root, &args)?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => bail!(
                "git check-ignore {path} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }

    /// Detaches HEAD of the linked worktree `wt` at the commit it is on (`git checkout
    /// --detach`): its files stay, its branch is free to be checked out elsewhere, and no
    /// branch moves.
    pub fn detach_worktree(&self, wt: &Path) -> anyhow::Result<()> {
        self.git(wt, &["checkout", "-q", "--detach"]).map(drop)
    }

    /// In an existing linked worktree `wt`, creates the new branch `branch` at `start` and
    /// checks it out, discarding whatever the index and tracked files held (`git checkout -q
    /// -f -b`): git rewrites only the files that differ. Untracked and ignored files stay;
    /// [`Repo::clean_worktree`] removes them. Refuses when `branch` exists.
    pub fn checkout_new_branch(&self, wt: &Path, branch: &str, start: &str) -> anyhow::Result<()> {
        if !Self::is_valid_branch_name(branch) {
            bail!("{branch:?} is not a valid branch name");
        }
        if self.branch_exists(branch)? {
            bail!("branch {branch} already exists");
        }
        let commit = self.open()?.revparse_single(start)?.peel_to_commit()?.id().to_string();
        self.git(wt, &["checkout", "-q", "-f", "-b", branch, commit.as_str()])
            .map(drop)
    }

    /// Deletes every untracked and ignored file of the linked worktree `wt` except those
    /// matching `keep` (`git clean -ffdx -e PATTERN...`; patterns in gitignore syntax).
    pub fn clean_worktree(&self, wt: &Path, keep: &[String]) -> anyhow::Result<()> {
        let mut args = vec!["clean".to_string(), "-q".into(), "-ffdx".into()];
        for k in keep {
            args.extend(["-e".to_string(), k.clone()]);
        }
        self.git(wt, &args).map(drop)
    }

    /// Every path `git status --porcelain --ignored` lists in `wt`, as (status, path): `!!`
    /// for ignored, `??` for untracked, anything else a change to tracked files. A folder
    /// whose whole content is ignored is one entry ending in `/`.
    pub fn status_with_ignored(&self, wt: &Path) -> anyhow::Result<Vec<(String, String)>> {
        let mut args = vec!["--no-optional-locks", "status", "--porcelain", "--ignored", "-z"];
        args.extend(STATUS_SHOWS_ALL);
        let out = self.git(wt, &args)?;
        let mut entries = vec![];
        let mut fields = out.split_terminator('\0');
        while let Some(entry) = fields.next() {
            let (code, path) = (entry.get(..2).unwrap_or(""), entry.get(3..).unwrap_or(""));
            if code.starts_with('R') || code.starts_with('C') {
                fields.next(); // the rename's source
            }
            entries.push((code.to_string(), path.to_string()));
        }
        Ok(entries)
    }

    /// A fresh libgit2 handle (`git2::Repository` is not `Sync`).
    fn open(&self) -> Result<Repository, git2::Error> {
        Repository::open(&self.root)
    }

    /// `-c user.name=… -c user.email=…` for whichever identity setting `wt` lacks, so that
    /// merges and commits work for users who never configured git.
    pub(crate) fn git_identity_args(&self, wt: &Path) -> Vec<OsString> {
        let mut args = Vec::new();
        for (key, fallback) in [("user.name", "Gadugi"), ("user.email", "gadugi@localhost")] {
            if self.git(wt, &["config", key]).is_err() {
                args.extend(["-c".into(), format!("{key}={fallback}").into()]);
            }
        }
        args
    }

    /// Like [`Repo::git`], but returns the finished process whatever its exit status.
    fn git_output<S: AsRef<std::ffi::OsStr>>(&self, dir: &Path, args: &[S]) -> anyhow::Result<std::process::Output> {
        self.git_output_with_input(dir, args, None)
    }

    /// Runs git with `input` on its stdin (or none), returns the finished process.
    fn git_output_with_input<S: AsRef<std::ffi::OsStr>>(
        &self,
        dir: &Path,
        args: &[S],
        input: Option<&[u8]>,
    ) -> anyhow::Result<std::process::Output> {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(dir).args(args);
        for var in REDIRECTING_ENV {
            cmd.env_remove(var);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .envs(self.env.iter().cloned());
        let Some(input) = input else {
            return Ok(cmd.stdin(Stdio::null()).output()?);
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // The input is small (a line per reference): written whole before the output is read.
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(input));
        let out = child.wait_with_output()?;
        if let Some(Err(e)) = written {
            if out.status.success() {
                return Err(e.into());
            }
        }
        Ok(out)
    }

    /// Run `git -C dir <args>` (no shell, no stdin, no prompts, C locale) and return its
    /// stdout; a non-zero exit is an error naming the command and git's stderr.
    pub(crate) fn git<S: AsRef<std::ffi::OsStr>>(&self, dir: &Path, args: &[S]) -> anyhow::Result<String> {
        self.git_with_input(dir, args, None)
    }

    /// [`Repo::git`] with `input` on git's stdin.
    fn git_with_input<S: AsRef<std::ffi::OsStr>>(
        &self,
        dir: &Path,
        args: &[S],
        input: Option<&[u8]>,
    ) -> anyhow::Result<String> {
        let out = self.git_output_with_input(dir, args, input);
        let shown = || {
            let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
            format!("git -C {} {}", dir.display(), args.join(" "))
        };
        let out = out.with_context(|| format!("cannot run {}", shown()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            bail!("{} failed ({}): {}", shown(), out.status, stderr.trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `-c credential.helper=store --file=PATH` (after clearing the user's helpers) when a
/// credentials file is given: the job's git reads its credential from that file only.
fn credential_args(credentials: Option<&Path>) -> Vec<String> {
    match credentials {
        Some(file) => vec![
            "-c".into(),
            "credential.helper=".into(),
            "-c".into(),
            format!("credential.helper=store --file='{}'", file.display()),
        ],
        None => vec![],
    }
}

/// The git dirs of the checkout at `worktree`: its own (`git rev-parse --git-dir`, for a linked
/// worktree `<common>/worktrees/<name>`) and the repository's common one (`--git-common-dir`).
pub fn worktree_git_dirs(worktree: &Path) -> Result<(PathBuf, PathBuf), git2::Error> {
    let repo = Repository::open(worktree)?;
    Ok((normalize(repo.path()), normalize(repo.commondir())))
}

/// `path` without a trailing separator (libgit2 reports directories with one).
fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

/// How [`Repo::populate_worktree`] checks out a worktree's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutMethod {
    /// libgit2, in-process.
    InProcess,
    /// `git checkout -f`, for the reason given.
    Git(&'static str),
}

/// Trees with more files than this are checked out by git: at 20,000 files libgit2 took
/// 2.3 s where git took 1.2 s (`examples/worktree_bench.rs`); at 10 files the git process
/// is most of the cost (CPU 4.6 ms against 2.3 ms in-process), and from 300 to 3,000 files
/// the two cost about the same (measured 2026-12-01).
pub const IN_PROCESS_CHECKOUT_MAX_FILES: usize = 1000;

/// Whether the checkout of `branch` into the new linked worktree `wt` can be done
/// in-process with exactly git's result: only when nothing git would run or apply and
/// libgit2 would not is in play. A post-checkout hook (or any `core.hooksPath`), a
/// configured filter driver (Git LFS is one), attributes libgit2 does not implement
/// (`working-tree-encoding`, in any `.gitattributes` of the tree, `info/attributes` or
/// `core.attributesFile`), submodules, a sparse checkout or another unusual layout
/// ([`plain_worktree_format`]), or more than [`IN_PROCESS_CHECKOUT_MAX_FILES`] files: git.
pub fn checkout_method(wt: &Path, branch: &str) -> anyhow::Result<CheckoutMethod> {
    let repo = Repository::open(wt)?;
    let tree = repo.find_branch(branch, BranchType::Local)?.get().peel_to_tree()?;
    checkout_method_of(&repo, &tree)
}

/// [`checkout_method`] for `tree` in the worktree `repo`, already open.
fn checkout_method_of(repo: &Repository, tree: &git2::Tree) -> anyhow::Result<CheckoutMethod> {
    use CheckoutMethod::Git;
    if !plain_worktree_format(repo) {
        return Ok(Git("the repository's layout or sparse checkout"));
    }
    let config = repo.config()?;
    if config.get_entry("core.hooksPath").is_ok() {
        return Ok(Git("core.hooksPath names the hooks"));
    }
    let common = repo.commondir().to_path_buf();
    if common.join("hooks/post-checkout").exists() {
        return Ok(Git("a post-checkout hook"));
    }
    let mut filters = config.entries(Some(r"^filter\..*\.(smudge|process|required)$"))?;
    if filters.next().is_some() {
        return Ok(Git("a filter driver is configured (Git LFS is one)"));
    }
    if config.get_entry("core.attributesFile").is_ok() || common.join("info/attributes").exists() {
        return Ok(Git("attributes outside the tree"));
    }
    let (mut files, mut why) = (0usize, None);
    tree.walk(TreeWalkMode::PreOrder, |_, entry| {
        match entry.kind() {
            Some(git2::ObjectType::Commit) => why = Some("a submodule"),
            Some(git2::ObjectType::Blob) => {
                files += 1;
                if files > IN_PROCESS_CHECKOUT_MAX_FILES {
                    why = Some("a large tree");
                } else if entry.name_bytes() == b".gitattributes" {
                    let text = entry.to_object(repo).ok().and_then(|o| o.peel_to_blob().ok());
                    if text.is_none_or(|b| contains(b.content(), b"working-tree-encoding")) {
                        why = Some("a working-tree-encoding attribute");
                    }
                }
            }
            _ => {}
        }
        if why.is_some() {
            TreeWalkResult::Abort
        } else {
            TreeWalkResult::Ok
        }
    })
    .or_else(|e| if why.is_some() { Ok(()) } else { Err(e) })?;
    Ok(why.map_or(CheckoutMethod::InProcess, Git))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Options that make `git status` list every change, whatever the configuration hides
/// (`status.showUntrackedFiles`, `diff.ignoreSubmodules`, `submodule.<name>.ignore`).
const STATUS_SHOWS_ALL: [&str; 2] = ["--untracked-files=normal", "--ignore-submodules=none"];

/// Whether Gadugi may write a new worktree's metadata itself ([`Repo::write_worktree_metadata`]):
/// the plain case, where `git worktree add --no-checkout` writes nothing more. Anything else
/// goes through git: reftable refs (a worktree's HEAD lives elsewhere),
/// `worktree.useRelativePaths` (git 2.48+ writes relative paths), a sparse checkout or
/// per-worktree configuration (git copies the sparse patterns and `config.worktree` of the
/// current worktree into the new one).
fn plain_worktree_format(repo: &Repository) -> bool {
    let Ok(config) = repo.config() else {
        return false;
    };
    let set = |key: &str| config.get_entry(key).is_ok();
    let bool_set = |key: &str| config.get_bool(key).unwrap_or(false);
    !repo.is_bare()
        && !set("extensions.refstorage")
        && !set("extensions.worktreeconfig")
        && !bool_set("worktree.userelativepaths")
        && !bool_set("core.sparsecheckout")
}

/// Refuses an existing `path`, but for an empty folder (not a symlink to one).
fn refuse_existing(path: &Path) -> anyhow::Result<()> {
    let Ok(meta) = path.symlink_metadata() else {
        return Ok(());
    };
    let empty_dir = meta.is_dir() && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
    if !empty_dir {
        bail!("{} already exists", path.display());
    }
    Ok(())
}

/// Removes `path` when it is a symlink whose target is gone (what removing a pooled task's
/// worktree through its path leaves).
fn remove_dangling_link(path: &Path) {
    let is_link = path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink());
    if is_link && !path.exists() {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!("removing the link {}: {e}", path.display());
        }
    }
}

/// Whether `wt` is a linked worktree whose `.git` file points at git's entry for it.
fn is_complete_worktree(wt: &Path) -> bool {
    worktree_index(wt)
        .and_then(|index| index.parent().map(Path::is_dir))
        .unwrap_or(false)
}

/// The index file of the linked worktree at `wt` (from its `.git` file, `gitdir: DIR`), if
/// `wt` is one.
fn worktree_index(wt: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(wt.join(".git")).ok()?;
    let dir = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
    Some(if dir.is_absolute() { dir } else { wt.join(dir) }.join("index"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    /// Run git in `dir` for test setup; panics on failure.
    fn run(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A repository at `<tmp>/repo` on `main` with one commit holding a.txt, b.txt, d/c.txt.
    fn fixture() -> (TempDir, Repo) {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().join("repo");
        fs::create_dir(&root).unwrap();
        run(&root, &["init", "-q", "-b", "main"]);
        run(&root, &["config", "user.name", "Test"]);
        run(&root, &["config", "user.email", "test@example.com"]);
        for (file, text) in [("a.txt", "a\n"), ("b.txt", "b\n"), ("d/c.txt", "c\n")] {
            write(&root.join(file), text);
        }
        run(&root, &["add", "-A"]);
        run(&root, &["commit", "-q", "-m", "init"]);
        let repo = Repo::discover(&root).unwrap();
        (tmp, repo)
    }

    /// Create worktree `<tmp>/<branch>` on a new branch from HEAD; returns its path.
    fn worktree(tmp: &TempDir, repo: &Repo, branch: &str) -> PathBuf {
        let path = tmp.path().join(branch);
        repo.create_worktree(&path, branch, &repo.head_commit().unwrap())
            .unwrap();
        path
    }

    /// The metadata `register_worktree` writes itself is what `git worktree add
    /// --no-checkout` writes (file by file, but for the paths), git reads it as its own
    /// (list, status, commit, remove), a taken id gets a number as with git, and a sparse
    /// checkout (whose patterns git copies) or a repository asking for relative paths goes
    /// through git instead.
    #[test]
    fn worktree_metadata_written_in_process_is_gits_own() {
        let (tmp, repo) = fixture();
        let head = repo.head_commit().unwrap();
        let ours = tmp.path().join("ours");
        repo.register_worktree(&ours, "ours", &head).unwrap();
        run(
            repo.root(),
            &[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "-b",
                "theirs",
                tmp.path().join("theirs").to_str().unwrap(),
                &head,
            ],
        );
        let meta = repo.common_dir().join("worktrees");
        for file in ["HEAD", "commondir"] {
            let read = |id: &str| fs::read_to_string(meta.join(id).join(file)).unwrap();
            assert_eq!(
                read("ours").replace("ours", "X"),
                read("theirs").replace("theirs", "X"),
                "{file}"
            );
        }
        let gitdir = fs::read_to_string(meta.join("ours/gitdir")).unwrap();
        assert_eq!(gitdir.trim(), ours.join(".git").to_str().unwrap());
        let dotgit = fs::read_to_string(ours.join(".git")).unwrap();
        assert_eq!(dotgit.trim(), format!("gitdir: {}", meta.join("ours").display()));
        assert!(
            !meta.join("ours/index").exists(),
            "no index: populate checks out every file"
        );
        let listed = run(repo.root(), &["worktree", "list", "--porcelain"]);
        assert!(
            listed.contains(&format!(
                "worktree {}\nHEAD {head}\nbranch refs/heads/ours",
                ours.display()
            )),
            "{listed}"
        );
        repo.populate_worktree(&ours, "ours").unwrap();
        assert_eq!(fs::read_to_string(ours.join("d/c.txt")).unwrap(), "c\n");
        assert!(!repo.is_dirty(&ours).unwrap());
        commit_file(&ours, "new.txt", "new\n");
        assert_eq!(
            run(repo.root(), &["log", "-1", "--format=%s", "ours"]).trim(),
            "new.txt"
        );
        assert!(run(repo.root(), &["fsck", "--no-progress"]).is_empty());
        // A worktree id that is taken (a stale entry git has not pruned) gets a number.
        fs::create_dir(meta.join("again")).unwrap();
        fs::write(meta.join("again/gitdir"), "/nowhere/.git\n").unwrap();
        let again = tmp.path().join("again");
        repo.create_worktree(&again, "again", &head).unwrap();
        assert!(fs::read_to_string(again.join(".git"))
            .unwrap()
            .trim()
            .ends_with("worktrees/again1"));
        assert!(!repo
            .common_dir()
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("gadugi-new-worktree")));
        repo.remove_worktree(&again).unwrap();
        repo.remove_worktree(&ours).unwrap();
        assert!(!ours.exists() && !meta.join("ours").exists());

        // A sparse checkout goes through git, which gives the new worktree its patterns.
        assert!(plain_worktree_format(&repo.open().unwrap()));
        run(repo.root(), &["sparse-checkout", "set", "--no-cone", "/a.txt"]);
        assert!(!plain_worktree_format(&repo.open().unwrap()));
        let sparse = tmp.path().join("sparse");
        repo.create_worktree(&sparse, "sparse", &head).unwrap();
        assert!(
            sparse.join("a.txt").exists() && !sparse.join("b.txt").exists(),
            "the patterns came along"
        );
        // So does a repository that asks for relative paths (git 2.48+).
        let (tmp, repo) = fixture();
        let head = repo.head_commit().unwrap();
        assert!(plain_worktree_format(&repo.open().unwrap()));
        run(repo.root(), &["config", "worktree.useRelativePaths", "true"]);
        assert!(!plain_worktree_format(&repo.open().unwrap()));
        let relative = tmp.path().join("relative");
        repo.create_worktree(&relative, "relative", &head).unwrap();
        assert_eq!(
            run(&relative, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
            "relative"
        );
    }

    /// What a crash inside `register_worktree` can leave is cleared for a second try, and
    /// nothing else is; a folder that is not a worktree is never checked out, even inside
    /// the user's checkout (git would find the checkout's `.git` in a parent folder).
    #[test]
    fn an_unfinished_registration_is_cleared_and_never_checked_out() {
        let (tmp, repo) = fixture();
        let head = repo.head_commit().unwrap();
        let inside = repo.root().join("trees/task");
        fs::create_dir_all(&inside).unwrap();
        run(repo.root(), &["branch", "task", &head]);
        let before = (
            run(repo.root(), &["rev-parse", "--abbrev-ref", "HEAD"]),
            run(repo.root(), &["status", "--porcelain"]),
        );
        let err = repo.populate_worktree(&inside, "task").unwrap_err();
        assert!(err.to_string().contains("not a linked worktree"), "{err}");
        fs::write(inside.join(".git"), "gitdir: /nowhere/worktrees/task\n").unwrap();
        assert!(repo.populate_worktree(&inside, "task").is_err());
        assert_eq!(
            (
                run(repo.root(), &["rev-parse", "--abbrev-ref", "HEAD"]),
                run(repo.root(), &["status", "--porcelain"])
            ),
            before
        );
        // Only a dangling `.git`, or nothing: cleared, and registering again works.
        assert!(Repo::clear_unfinished_worktree(&inside));
        assert!(inside.is_dir() && fs::read_dir(&inside).unwrap().next().is_none());
        assert!(Repo::clear_unfinished_worktree(&inside), "an empty folder");
        repo.add_worktree_for_branch(&inside, "task").unwrap();
        repo.populate_worktree(&inside, "task").unwrap();
        assert_eq!(fs::read_to_string(inside.join("a.txt")).unwrap(), "a\n");
        // A complete worktree, or a folder holding anything else, is left alone.
        assert!(!Repo::clear_unfinished_worktree(&inside));
        let other = tmp.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::write(other.join("notes.txt"), "mine\n").unwrap();
        fs::write(other.join(".git"), "gitdir: /nowhere\n").unwrap();
        assert!(!Repo::clear_unfinished_worktree(&other));
        assert!(other.join(".git").exists() && other.join("notes.txt").exists());
    }

    /// Write `text` to `file` in `wt` and commit it there.
    fn commit_file(wt: &Path, file: &str, text: &str) {
        write(&wt.join(file), text);
        run(wt, &["add", "-A"]);
        run(wt, &["commit", "-q", "-m", file]);
    }

    #[test]
    fn discover_reports_non_repository_and_bare() {
        let tmp = TempDir::new().unwrap();
        let err = Repo::discover(tmp.path()).unwrap_err();
        assert!(err.problem.contains("is not inside a git repository"), "{err}");
        assert!(err.fix.contains("git init"), "{err}");

        run(tmp.path(), &["init", "-q", "--bare"]);
        let err = Repo::discover(tmp.path()).unwrap_err();
        assert!(err.problem.contains("is a bare repository"), "{err}");
    }

    #[test]
    fn unborn_head_has_a_branch_but_no_commit() {
        let tmp = TempDir::new().unwrap();
        run(tmp.path(), &["init", "-q", "-b", "trunk"]);
        let repo = Repo::discover(tmp.path()).unwrap();
        let err = repo.head_commit().unwrap_err();
        assert_eq!(err.problem, "the repository has no commits yet");
        assert_eq!(err.fix, "make a first commit: git commit --allow-empty -m init");
        assert_eq!(repo.head_branch().as_deref(), Some("trunk"));
    }

    #[test]
    fn discover_paths_head_and_detached_head() {
        let (tmp, repo) = fixture();
        assert_eq!(repo.root(), tmp.path().join("repo"));
        assert_eq!(repo.common_dir(), tmp.path().join("repo/.git"));
        let head = repo.head_commit().unwrap();
        assert_eq!(head, run(repo.root(), &["rev-parse", "HEAD"]).trim());
        assert_eq!(repo.head_branch().as_deref(), Some("main"));

        let wt = worktree(&tmp, &repo, "task");
        let inner = Repo::discover(&wt.join("d")).unwrap();
        assert_eq!(inner.root(), wt);
        assert_eq!(inner.common_dir(), repo.common_dir());
        assert_eq!(inner.head_branch().as_deref(), Some("task"));

        run(&wt, &["checkout", "-q", "--detach"]);
        assert_eq!(inner.head_branch(), None);
        assert_eq!(inner.head_commit().unwrap(), head);
    }

    #[test]
    fn branch_names_and_lookups() {
        let (tmp, repo) = fixture();
        for good in ["task", "gadugi/fix-1", "a.b_c"] {
            assert!(Repo::is_valid_branch_name(good), "{good}");
        }
        for bad in ["", "HEAD", "-x", "a..b", "a b", "x.lock", "a/", "~x"] {
            assert!(!Repo::is_valid_branch_name(bad), "{bad}");
        }
        assert!(!repo.branch_exists("task").unwrap());
        assert_eq!(repo.branch_head("task").unwrap(), None);
        worktree(&tmp, &repo, "task");
        assert!(repo.branch_exists("task").unwrap());
        assert_eq!(repo.branch_head("task").unwrap(), Some(repo.head_commit().unwrap()));
    }

    #[test]
    fn tracked_files_lists_the_tree() {
        let (_tmp, repo) = fixture();
        let files = repo.tracked_files(&repo.head_commit().unwrap()).unwrap();
        assert_eq!(files, ["a.txt", "b.txt", "d/c.txt"]);
    }

    #[test]
    fn create_worktree_refuses_existing_branch_or_path() {
        let (tmp, repo) = fixture();
        let head = repo.head_commit().unwrap();
        let wt = worktree(&tmp, &repo, "task");
        assert_eq!(fs::read_to_string(wt.join("d/c.txt")).unwrap(), "c\n");
        assert!(!repo.is_dirty(&wt).unwrap());

        let err = repo
            .create_worktree(&tmp.path().join("other"), "task", &head)
            .unwrap_err();
        assert!(err.to_string().contains("branch task already exists"), "{err}");
        assert!(!tmp.path().join("other").exists());

        let taken = tmp.path().join("taken");
        fs::create_dir(&taken).unwrap();
        fs::write(taken.join("notes.txt"), "someone's file\n").unwrap();
        let err = repo.create_worktree(&taken, "task2", &head).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(!repo.branch_exists("task2").unwrap());
        assert_eq!(fs::read_to_string(taken.join("notes.txt")).unwrap(), "someone's file\n");
        // An empty folder holds nothing: git fills it (the pool reserves its slots so).
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        repo.create_worktree(&empty, "task3", &head).unwrap();
        assert_eq!(fs::read_to_string(empty.join("d/c.txt")).unwrap(), "c\n");

        let err = repo.create_worktree(&tmp.path().join("x"), "-x", &head).unwrap_err();
        assert!(err.to_string().contains("not a valid branch name"), "{err}");
    }

    #[test]
    fn creating_a_worktree_runs_hooks_and_smudge_filters() {
        let (tmp, repo) = fixture();
        let root = repo.root().to_path_buf();
        write(&root.join(".gitattributes"), "*.txt filter=upper\n");
        run(&root, &["add", "-A"]);
        run(&root, &["commit", "-q", "-m", "attributes"]);
        run(&root, &["config", "filter.upper.smudge", "tr a-z A-Z"]);
        run(&root, &["config", "filter.upper.clean", "tr A-Z a-z"]);
        let hook = root.join(".git/hooks/post-checkout");
        write(
            &hook,
            "#!/bin/sh\necho \"$3\" >> \"$(git rev-parse --git-common-dir)/hook-ran\"\n",
        );
        fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let wt = worktree(&tmp, &repo, "task");
        assert_eq!(
            fs::read_to_string(wt.join("a.txt")).unwrap(),
            "A\n",
            "smudged on checkout"
        );
        assert_eq!(
            fs::read_to_string(root.join(".git/hook-ran")).unwrap(),
            "1\n",
            "post-checkout ran"
        );
        assert!(!repo.is_dirty(&wt).unwrap());
    }

    /// Every file under `dir` but `.git`: path, and what it is (a symlink's target, or a
    /// file's content and executable bit).
    fn snapshot(dir: &Path) -> Vec<(String, String)> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = vec![];
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let (p, meta) = (e.path(), e.path().symlink_metadata().unwrap());
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if rel == ".git" {
                    continue;
                }
                if meta.file_type().is_symlink() {
                    out.push((rel, format!("-> {}", fs::read_link(&p).unwrap().display())));
                } else if meta.is_dir() {
                    out.push((rel, "dir".into()));
                    stack.push(p);
                } else {
                    let exec = meta.permissions().mode() & 0o111 != 0;
                    out.push((rel, format!("{exec} {:?}", fs::read(&p).unwrap())));
                }
            }
        }
        out.sort();
        out
    }

    /// Which checkout each repository gets; and where it is the in-process one, the worktree
    /// holds exactly what `git worktree add` gives (files, contents, executable bits,
    /// symlinks, line endings converted by `core.autocrlf`) and git reads its index as
    /// clean, nothing staged.
    #[test]
    fn checkout_is_in_process_only_where_it_gives_gits_result() {
        use CheckoutMethod::{Git, InProcess};
        type Setup = fn(&Path);
        let cases: &[(&str, Setup, CheckoutMethod)] = &[
            ("plain", |_| {}, InProcess),
            (
                "executable, symlink, nested folders, autocrlf",
                |root| {
                    write(&root.join("run.sh"), "#!/bin/sh\necho hi\n");
                    run(root, &["update-index", "--add", "--chmod=+x", "run.sh"]);
                    std::os::unix::fs::symlink("d/c.txt", root.join("link")).unwrap();
                    write(&root.join("x/y/z.txt"), "one\ntwo\n");
                    write(&root.join(".gitattributes"), "*.txt text\n");
                    run(root, &["config", "core.autocrlf", "true"]);
                },
                InProcess,
            ),
            (
                "a filter attribute with no driver configured (git ignores it too)",
                |root| write(&root.join(".gitattributes"), "*.txt filter=nothing\n"),
                InProcess,
            ),
            (
                "post-checkout hook",
                |root| write(&root.join(".git/hooks/post-checkout"), "#!/bin/sh\n"),
                Git("a post-checkout hook"),
            ),
            (
                "core.hooksPath",
                |root| drop(run(root, &["config", "core.hooksPath", "/nowhere"])),
                Git("core.hooksPath names the hooks"),
            ),
            (
                "a filter driver (as Git LFS configures)",
                |root| drop(run(root, &["config", "filter.lfs.process", "git-lfs filter-process"])),
                Git("a filter driver is configured (Git LFS is one)"),
            ),
            (
                "working-tree-encoding in a nested .gitattributes",
                |root| write(&root.join("d/.gitattributes"), "*.utf16 working-tree-encoding=UTF-16\n"),
                Git("a working-tree-encoding attribute"),
            ),
            (
                "info/attributes",
                |root| write(&root.join(".git/info/attributes"), "*.txt text\n"),
                Git("attributes outside the tree"),
            ),
            (
                "a submodule",
                |root| {
                    // A repository inside, which `git add` records as a gitlink.
                    let sub = root.join("sub");
                    write(&sub.join("s.txt"), "s\n");
                    run(&sub, &["init", "-q"]);
                    run(&sub, &["add", "-A"]);
                    run(
                        &sub,
                        &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "s"],
                    );
                },
                Git("a submodule"),
            ),
            (
                "more files than the in-process limit",
                |root| {
                    for i in 0..IN_PROCESS_CHECKOUT_MAX_FILES {
                        write(&root.join(format!("many/{i}.txt")), "x\n");
                    }
                },
                Git("a large tree"),
            ),
        ];
        crate::testing::check_table(cases, |(name, setup, expected)| {
            let (tmp, repo) = fixture();
            let root = repo.root().to_path_buf();
            setup(&root);
            run(&root, &["add", "-A"]);
            run(&root, &["commit", "-q", "--allow-empty", "-m", "case"]);
            let head = repo.head_commit().unwrap();
            let wt = tmp.path().join("task");
            repo.register_worktree(&wt, "task", &head).unwrap();
            let method = checkout_method(&wt, "task").unwrap();
            repo.populate_worktree(&wt, "task").unwrap();
            let by_git = tmp.path().join("by-git");
            run(
                &root,
                &[
                    "worktree",
                    "add",
                    "-q",
                    "-b",
                    "by-git",
                    &by_git.display().to_string(),
                    &head,
                ],
            );
            let same = snapshot(&wt) == snapshot(&by_git);
            let status = run(&wt, &["status", "--porcelain", "--untracked-files=all"]);
            let staged = run(&wt, &["diff", "--cached", "--name-only", "HEAD"]);
            let result = (method, same, status, staged);
            (
                name.to_string(),
                (*expected, true, String::new(), String::new()),
                result,
            )
        });
    }

    #[test]
    fn a_failed_checkout_leaves_no_folder_and_no_branch() {
        let (tmp, repo) = fixture();
        let root = repo.root().to_path_buf();
        write(&root.join(".gitattributes"), "*.txt filter=broken\n");
        run(&root, &["add", "-A"]);
        run(&root, &["commit", "-q", "-m", "attributes"]);
        run(&root, &["config", "filter.broken.smudge", "false"]);
        run(&root, &["config", "filter.broken.required", "true"]);
        let path = tmp.path().join("task");
        let err = repo.create_worktree(&path, "task", &repo.head_commit().unwrap());
        assert!(err.is_err());
        assert!(!path.exists(), "no folder left behind");
        assert!(!repo.branch_exists("task").unwrap(), "no branch left behind");
        let registered = repo.list_worktrees().unwrap();
        assert!(registered.iter().all(|w| !w.path.ends_with("task")), "{registered:?}");
    }

    #[test]
    fn worktrees_are_registered_one_at_a_time_and_populated_in_parallel() {
        let (tmp, repo) = fixture();
        let repo = std::sync::Arc::new(repo);
        let head = repo.head_commit().unwrap();
        let lock = std::sync::Arc::new(std::sync::Mutex::new(()));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (repo, lock, head) = (repo.clone(), lock.clone(), head.clone());
                let path = tmp.path().join(format!("t{i}"));
                std::thread::spawn(move || {
                    {
                        let _one = lock.lock().unwrap();
                        repo.register_worktree(&path, &format!("t{i}"), &head).unwrap();
                    }
                    repo.populate_worktree(&path, &format!("t{i}")).unwrap();
                    path
                })
            })
            .collect();
        for t in threads {
            let path = t.join().unwrap();
            assert_eq!(fs::read_to_string(path.join("d/c.txt")).unwrap(), "c\n");
            assert!(!repo.is_dirty(&path).unwrap(), "{}", path.display());
        }
        // A populated worktree is never checked out again: its files may hold work.
        let wt = tmp.path().join("t0");
        write(&wt.join("a.txt"), "work in progress\n");
        repo.populate_worktree(&wt, "t0").unwrap();
        assert_eq!(fs::read_to_string(wt.join("a.txt")).unwrap(), "work in progress\n");
    }

    #[test]
    fn merge_branches_cleanly() {
        let (tmp, repo) = fixture();
        let base = repo.head_commit().unwrap();
        let one = worktree(&tmp, &repo, "one");
        let two = worktree(&tmp, &repo, "two");
        commit_file(&one, "a.txt", "one\n");
        commit_file(&two, "new.txt", "two\n");
        let merged = worktree(&tmp, &repo, "merged");
        repo.merge_branches(&merged, &["one".into(), "two".into()]).unwrap();
        assert_eq!(fs::read_to_string(merged.join("a.txt")).unwrap(), "one\n");
        assert_eq!(fs::read_to_string(merged.join("new.txt")).unwrap(), "two\n");
        assert_eq!(repo.commits_ahead("merged", &base).unwrap(), 4);
        assert_eq!(run(&merged, &["log", "-1", "--format=%s"]), "gadugi: merge two\n");
        assert!(!repo.is_dirty(&merged).unwrap());
    }

    #[test]
    fn unmerged_paths_are_the_ones_git_lists() {
        let (tmp, repo) = fixture();
        let one = worktree(&tmp, &repo, "one");
        let two = worktree(&tmp, &repo, "two");
        for (wt, text) in [(&one, "one\n"), (&two, "two\n")] {
            write(&wt.join("sub/dir/z.txt"), text);
            write(&wt.join("naïve name.txt"), text);
            commit_file(wt, "a.txt", text);
        }
        commit_file(&two, "b.txt", "changed\n");
        let merged = worktree(&tmp, &repo, "merged");
        assert_eq!(
            repo.unmerged_paths(&merged).unwrap(),
            Vec::<String>::new(),
            "no merge, no conflict"
        );
        run(&merged, &["merge", "-q", "one"]);
        // Deleted here, changed on `two`: a conflict without our side.
        run(&merged, &["rm", "-q", "b.txt"]);
        run(&merged, &["commit", "-qm", "rm"]);
        let failed = Command::new("git")
            .arg("-C")
            .arg(&merged)
            .args(["merge", "-q", "two"])
            .output()
            .unwrap();
        assert!(!failed.status.success(), "the merge conflicts");
        let by_git = run(&merged, &["diff", "-z", "--name-only", "--diff-filter=U"]);
        let by_git: Vec<String> = by_git.split_terminator('\0').map(str::to_string).collect();
        assert_eq!(by_git, ["a.txt", "b.txt", "naïve name.txt", "sub/dir/z.txt"]);
        assert_eq!(repo.unmerged_paths(&merged).unwrap(), by_git);
    }

    #[test]
    fn merge_conflict_names_files_and_aborts() {
        let (tmp, repo) = fixture();
        let one = worktree(&tmp, &repo, "one");
        let two = worktree(&tmp, &repo, "two");
        for (wt, text) in [(&one, "one\n"), (&two, "two\n")] {
            write(&wt.join("naïve name.txt"), text);
            commit_file(wt, "a.txt", text);
        }
        commit_file(&two, "b.txt", "two\n");
        let merged = worktree(&tmp, &repo, "merged");
        let err = repo.merge_branches(&merged, &["one".into(), "two".into()]).unwrap_err();
        match &err {
            MergeError::Conflict { branch, files } => {
                assert_eq!(branch, "two");
                assert_eq!(files, &["a.txt", "naïve name.txt"]);
            }
            MergeError::Other(e) => panic!("expected a conflict, got {e:#}"),
        }
        assert_eq!(err.to_string(), "merging two conflicts in: a.txt, naïve name.txt");
        assert!(!repo.is_dirty(&merged).unwrap());
        assert_eq!(fs::read_to_string(merged.join("a.txt")).unwrap(), "one\n");
        let one_tip = repo.branch_head("one").unwrap().unwrap();
        assert_eq!(run(&merged, &["rev-parse", "HEAD^2"]).trim(), one_tip);

        let err = repo.merge_branches(&merged, &["nope".into()]).unwrap_err();
        assert!(matches!(err, MergeError::Other(_)), "{err}");
    }

    #[test]
    fn commit_all_commits_every_kind_of_change() {
        let (tmp, repo) = fixture();
        let wt = worktree(&tmp, &repo, "task");
        assert_eq!(repo.commit_all(&wt, "nothing").unwrap(), None);

        write(&wt.join("a.txt"), "changed\n");
        fs::remove_file(wt.join("b.txt")).unwrap();
        write(&wt.join("e/new.txt"), "new\n");
        write(&wt.join(".gitignore"), "*.log\n");
        write(&wt.join("x.log"), "ignored\n");
        assert!(repo.is_dirty(&wt).unwrap());
        let id = repo.commit_all(&wt, "task: done").unwrap().unwrap();
        assert_eq!(repo.branch_head("task").unwrap(), Some(id.clone()));
        assert_eq!(
            repo.tracked_files(&id).unwrap(),
            [".gitignore", "a.txt", "d/c.txt", "e/new.txt"]
        );
        assert_eq!(run(&wt, &["log", "-1", "--format=%s %an"]), "task: done Test\n");
        assert!(!repo.is_dirty(&wt).unwrap());
        assert!(wt.join("x.log").exists());
        assert_eq!(repo.commit_all(&wt, "again").unwrap(), None);
    }

    /// Configuration that makes `git status` hide changes does not hide them from
    /// `is_dirty` (nor from the leftover commit that follows it): untracked files with
    /// `status.showUntrackedFiles = no`, a changed submodule with `diff.ignoreSubmodules`.
    #[test]
    fn is_dirty_sees_what_the_configuration_hides_from_git_status() {
        let (tmp, repo) = fixture();
        let wt = worktree(&tmp, &repo, "task");
        run(repo.root(), &["config", "status.showUntrackedFiles", "no"]);
        run(repo.root(), &["config", "diff.ignoreSubmodules", "all"]);
        assert!(!repo.is_dirty(&wt).unwrap());
        write(&wt.join("new.txt"), "the agent's\n");
        assert_eq!(run(&wt, &["status", "--porcelain"]), "", "git status hides it");
        assert!(repo.is_dirty(&wt).unwrap(), "an untracked file");
        let id = repo.commit_all(&wt, "leftovers").unwrap().expect("committed");
        assert!(repo.tracked_files(&id).unwrap().contains(&"new.txt".to_string()));
        assert!(!repo.is_dirty(&wt).unwrap());

        // A submodule whose files the agent changed.
        let sub = tmp.path().join("sub");
        fs::create_dir(&sub).unwrap();
        run(&sub, &["init", "-q", "-b", "main"]);
        write(&sub.join("s.txt"), "s\n");
        run(&sub, &["add", "-A"]);
        run(
            &sub,
            &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "s"],
        );
        let url = sub.display().to_string();
        run(
            &wt,
            &[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "add",
                "-q",
                &url,
                "sub",
            ],
        );
        run(&wt, &["commit", "-qm", "the submodule"]);
        assert!(!repo.is_dirty(&wt).unwrap());
        write(&wt.join("sub/s.txt"), "changed\n");
        assert_eq!(run(&wt, &["status", "--porcelain"]), "", "git status hides it");
        assert!(repo.is_dirty(&wt).unwrap(), "a changed submodule");
    }

    #[test]
    fn commit_and_merge_work_without_a_user_identity() {
        let (tmp, mut repo) = fixture();
        run(repo.root(), &["config", "--unset", "user.name"]);
        run(repo.root(), &["config", "--unset", "user.email"]);
        let home = TempDir::new().unwrap();
        repo.env = vec![
            ("HOME".into(), home.path().into()),
            ("XDG_CONFIG_HOME".into(), home.path().into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ];
        let wt = worktree(&tmp, &repo, "task");
        assert!(
            repo.git(&wt, &["config", "user.name"]).is_err(),
            "identity still configured"
        );
        write(&wt.join("a.txt"), "changed\n");
        repo.commit_all(&wt, "task: done").unwrap().unwrap();
        assert_eq!(
            run(&wt, &["log", "-1", "--format=%an <%ae>"]),
            "Gadugi <gadugi@localhost>\n"
        );

        let merged = worktree(&tmp, &repo, "merged");
        repo.merge_branches(&merged, &["task".into()]).unwrap();
        assert_eq!(
            run(&merged, &["log", "-1", "--format=%cn %s"]),
            "Gadugi gadugi: merge task\n"
        );
    }

    #[test]
    fn commits_ahead_and_files_changed() {
        let (tmp, repo) = fixture();
        let base = repo.head_commit().unwrap();
        let wt = worktree(&tmp, &repo, "task");
        assert_eq!(repo.commits_ahead("task", &base).unwrap(), 0);
        assert!(repo.files_changed("task", &base).unwrap().is_empty());
        commit_file(&wt, "z.txt", "z\n");
        fs::remove_file(wt.join("b.txt")).unwrap();
        write(&wt.join("d/c.txt"), "c2\n");
        repo.commit_all(&wt, "more").unwrap();
        assert_eq!(repo.commits_ahead("task", &base).unwrap(), 2);
        assert_eq!(repo.commits_ahead(&base, "task").unwrap(), 0);
        assert_eq!(
            repo.files_changed("task", &base).unwrap(),
            ["b.txt", "d/c.txt", "z.txt"]
        );
    }

    #[test]
    fn branch_containment_and_deletion() {
        let (tmp, repo) = fixture();
        let wt = worktree(&tmp, &repo, "task");
        assert!(repo.branch_is_contained_elsewhere("task").unwrap());
        commit_file(&wt, "z.txt", "z\n");
        assert!(!repo.branch_is_contained_elsewhere("task").unwrap());

        let merged = worktree(&tmp, &repo, "merged");
        repo.merge_branches(&merged, &["task".into()]).unwrap();
        assert!(repo.branch_is_contained_elsewhere("task").unwrap());
        assert!(!repo.branch_is_contained_elsewhere("merged").unwrap());

        // A detached HEAD in the main checkout holds commits too.
        run(repo.root(), &["checkout", "-q", "--detach", "merged"]);
        assert!(repo.branch_is_contained_elsewhere("merged").unwrap());
        run(repo.root(), &["checkout", "-q", "main"]);

        assert!(repo.delete_branch("task").is_err(), "task is checked out in a worktree");
        repo.remove_worktree(&wt).unwrap();
        repo.delete_branch("task").unwrap();
        assert!(!repo.branch_exists("task").unwrap());
    }

    #[test]
    fn ensure_excluded_is_idempotent() {
        let (_tmp, repo) = fixture();
        let info = repo.common_dir().join("info");
        fs::remove_dir_all(&info).ok();
        repo.ensure_excluded(".gadugi/").unwrap();
        repo.ensure_excluded(".gadugi/").unwrap();
        assert_eq!(fs::read_to_string(info.join("exclude")).unwrap(), ".gadugi/\n");

        fs::write(info.join("exclude"), "# mine\n*.tmp").unwrap();
        repo.ensure_excluded(".gadugi/").unwrap();
        repo.ensure_excluded(".gadugi/").unwrap();
        assert_eq!(
            fs::read_to_string(info.join("exclude")).unwrap(),
            "# mine\n*.tmp\n.gadugi/\n"
        );
        assert!(!repo.root().join(".gitignore").exists());

        write(&repo.root().join(".gadugi/state.json"), "{}");
        assert!(!repo.is_dirty(repo.root()).unwrap());
    }

    #[test]
    fn remove_worktree_refuses_dirty_and_list_worktrees() {
        let (tmp, repo) = fixture();
        assert!(repo.list_worktrees().unwrap().is_empty());
        let one = worktree(&tmp, &repo, "one");
        let two = worktree(&tmp, &repo, "two");
        run(&two, &["checkout", "-q", "--detach"]);
        let listed = repo.list_worktrees().unwrap();
        let expected = [(&one, Some("one".to_string()), false), (&two, None, false)].map(|(path, branch, prunable)| {
            WorktreeInfo {
                path: path.clone(),
                branch,
                prunable,
            }
        });
        assert_eq!(listed, expected);

        write(&one.join("untracked.txt"), "work\n");
        let err = repo.remove_worktree(&one).unwrap_err();
        assert!(err.to_string().contains("git -C"), "{err}");
        assert!(one.join("untracked.txt").exists());
        fs::remove_file(one.join("untracked.txt")).unwrap();
        repo.remove_worktree(&one).unwrap();
        assert!(!one.exists());
        assert!(repo.branch_exists("one").unwrap(), "the branch stays");

        fs::remove_dir_all(&two).unwrap();
        let listed = repo.list_worktrees().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].prunable);
        repo.prune_worktrees().unwrap();
        assert!(repo.list_worktrees().unwrap().is_empty());
    }

    #[test]
    fn main_checkout_is_never_touched() {
        let (tmp, repo) = fixture();
        let root = repo.root().to_path_buf();
        // The user has work in progress: staged, modified and untracked.
        write(&root.join("a.txt"), "staged\n");
        run(&root, &["add", "a.txt"]);
        write(&root.join("b.txt"), "modified\n");
        write(&root.join("scratch.txt"), "untracked\n");
        let snapshot = || {
            let files: Vec<_> = ["a.txt", "b.txt", "d/c.txt", "scratch.txt"]
                .map(|f| fs::read_to_string(root.join(f)).unwrap())
                .into();
            let head = run(&root, &["rev-parse", "HEAD"]);
            let branch = run(&root, &["symbolic-ref", "HEAD"]);
            let status = run(&root, &["--no-optional-locks", "status", "--porcelain"]);
            let index = fs::read(repo.common_dir().join("index")).unwrap();
            (files, head, branch, status, index)
        };
        let before = snapshot();

        let one = worktree(&tmp, &repo, "one");
        write(&one.join("a.txt"), "one\n");
        write(&one.join("new.txt"), "new\n");
        repo.commit_all(&one, "one").unwrap().unwrap();
        let merged = worktree(&tmp, &repo, "merged");
        repo.merge_branches(&merged, &["one".into()]).unwrap();
        repo.ensure_excluded(".gadugi/").unwrap();
        repo.remove_worktree(&one).unwrap();

        assert_eq!(snapshot(), before);
        assert!(!root.join("new.txt").exists());
    }
}
