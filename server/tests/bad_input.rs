//! Bad input: every kind of mistake in prompt files, `gadugi.toml`, flags, the repository or
//! the environment makes `gadugi` exit 2 with a message that names the problem, the file at
//! fault (with `file:line:` where the input has lines) and a fix, never panics, and creates
//! nothing: no `.gadugi/`, no edit of `.git/info/exclude`, no branch, no worktree, no file.
//!
//! Every refusal goes through [`expect_bad_input`], which snapshots the whole scratch
//! directory before and after the command and reports every difference.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::git;

const GADUGI: &str = env!("CARGO_BIN_EXE_gadugi");

/// Runs git and records whatever happens (snapshots also cover non-repositories).
fn git_outcome(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("git runs");
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Makes a repository at `root` with one commit on `main` (or none when `commit` is false).
fn init_repo(root: &Path, commit: bool) {
    std::fs::create_dir_all(root).unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Test"]);
    git(root, &["config", "user.email", "test@example.com"]);
    if commit {
        std::fs::write(root.join("README.md"), "hello\n").unwrap();
        git(root, &["add", "-A"]);
        git(root, &["commit", "-qm", "init"]);
    }
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

/// Where a command runs and what it must leave alone.
struct Target {
    /// Current directory of the command.
    cwd: PathBuf,
    /// The repository (working tree root, or the bare repository) whose state is watched.
    repo: PathBuf,
    /// Everything under this directory is compared byte for byte.
    scope: PathBuf,
    /// `PATH` for the command; the test's own when `None`.
    path_env: Option<OsString>,
}

fn gadugi(t: &Target, args: &[&str]) -> Output {
    let mut cmd = Command::new(GADUGI);
    cmd.args(args)
        .current_dir(&t.cwd)
        .stdin(Stdio::null())
        .env_remove("GADUGI_LOG")
        .env_remove("RUST_BACKTRACE");
    if let Some(p) = &t.path_env {
        cmd.env("PATH", p);
    }
    cmd.output().expect("gadugi runs")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
    /// A FIFO, socket or device (compared by kind only).
    Special,
}

/// Everything a refused command must leave as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    state_dir: bool,
    exclude: Option<Vec<u8>>,
    branches: String,
    worktrees_dir: bool,
    worktree_list: String,
    status: String,
    tree: BTreeMap<PathBuf, Entry>,
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        // git refreshes its index's stat cache on `git status`; that is not our doing.
        if p.file_name().is_some_and(|n| n == "index" || n == "index.lock") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            out.insert(p.clone(), Entry::Link(std::fs::read_link(&p).unwrap()));
        } else if meta.is_dir() {
            out.insert(p.clone(), Entry::Dir);
            walk(&p, out);
        } else if meta.is_file() {
            out.insert(p.clone(), Entry::File(std::fs::read(&p).unwrap()));
        } else {
            // A FIFO or socket: reading it would block the snapshot.
            out.insert(p.clone(), Entry::Special);
        }
    }
}

impl Snapshot {
    fn take(repo: &Path, scope: &Path) -> Snapshot {
        let git_dir = if repo.join(".git").exists() {
            repo.join(".git")
        } else {
            repo.to_path_buf()
        };
        let name = repo.file_name().unwrap().to_string_lossy().into_owned();
        let mut tree = BTreeMap::new();
        walk(scope, &mut tree);
        Snapshot {
            state_dir: repo.join(".gadugi").exists(),
            exclude: std::fs::read(git_dir.join("info/exclude")).ok(),
            branches: git_outcome(repo, &["branch", "--list"]),
            worktrees_dir: repo.parent().unwrap().join(format!("{name}.gadugi-worktrees")).exists(),
            worktree_list: git_outcome(repo, &["worktree", "list", "--porcelain"]),
            status: git_outcome(repo, &["status", "--porcelain", "--untracked-files=all", "--ignored"]),
            tree,
        }
    }

    /// Every difference from `self` to `after`, in words.
    fn differences(&self, after: &Snapshot) -> Vec<String> {
        let mut d = vec![];
        if !self.state_dir && after.state_dir {
            d.push("a .gadugi directory was created in the repository".to_string());
        }
        if self.exclude != after.exclude {
            d.push(format!(
                ".git/info/exclude changed:\n--- before\n{}\n--- after\n{}",
                self.exclude.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
                after
                    .exclude
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
            ));
        }
        if self.branches != after.branches {
            d.push(format!(
                "branches changed:\n--- before\n{}\n--- after\n{}",
                self.branches, after.branches
            ));
        }
        if !self.worktrees_dir && after.worktrees_dir {
            d.push("the <repo>.gadugi-worktrees directory was created".to_string());
        }
        if self.worktree_list != after.worktree_list {
            d.push(format!(
                "git worktree list changed:\n--- before\n{}\n--- after\n{}",
                self.worktree_list, after.worktree_list
            ));
        }
        if self.status != after.status {
            d.push(format!(
                "git status changed:\n--- before\n{}\n--- after\n{}",
                self.status, after.status
            ));
        }
        for (path, entry) in &after.tree {
            match self.tree.get(path) {
                None => d.push(format!("created: {}", path.display())),
                Some(old) if old != entry => d.push(format!("modified: {}", path.display())),
                Some(_) => {}
            }
        }
        for path in self.tree.keys().filter(|p| !after.tree.contains_key(*p)) {
            d.push(format!("removed: {}", path.display()));
        }
        d
    }
}

/// Runs `gadugi args` and checks everything a refusal must be: exit 2, every `expect`ed
/// phrase in stderr, a `fix:`, no panic, nothing created or changed. Returns stderr.
fn expect_bad_input(t: &Target, args: &[&str], expect: &[&str]) -> String {
    let before = Snapshot::take(&t.repo, &t.scope);
    let out = gadugi(t, args);
    let after = Snapshot::take(&t.repo, &t.scope);
    let code = out.status.code();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut problems = vec![];
    if code != Some(2) {
        problems.push(format!("exit code {code:?}, expected Some(2)"));
    }
    for phrase in expect {
        if !stderr.contains(phrase) {
            problems.push(format!("stderr lacks {phrase:?}"));
        }
    }
    if !stderr.contains("fix:") {
        problems.push("stderr lacks \"fix:\"".to_string());
    }
    for bad in ["panicked", "RUST_BACKTRACE"] {
        if stderr.contains(bad) {
            problems.push(format!("stderr contains {bad:?}"));
        }
    }
    problems.extend(before.differences(&after));
    assert!(
        problems.is_empty(),
        "gadugi {args:?} (in {}):\n- {}\n== exit: {code:?}\n== stderr:\n{stderr}\n== stdout:\n{}",
        t.cwd.display(),
        problems.join("\n- "),
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// A scratch directory holding `repo/`, a git repository with one commit on `main`.
struct Fx {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        Fx::with_commit(true)
    }

    fn with_commit(commit: bool) -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        init_repo(&root, commit);
        Fx { tmp, root }
    }

    fn top(&self) -> &Path {
        self.tmp.path()
    }

    /// Writes a file relative to the repository root.
    fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        write(&self.root.join(rel), bytes)
    }

    fn target(&self) -> Target {
        Target {
            cwd: self.root.clone(),
            repo: self.root.clone(),
            scope: self.top().to_path_buf(),
            path_env: None,
        }
    }

    /// `gadugi run --agent-command true FILES...` is refused.
    fn refuse_run(&self, files: &[&str], expect: &[&str]) -> String {
        let mut args = vec!["run", "--agent-command", "true"];
        args.extend_from_slice(files);
        expect_bad_input(&self.target(), &args, expect)
    }

    /// Both `gadugi run` and `gadugi plan` refuse FILES (problems found while planning).
    fn refuse_run_and_plan(&self, files: &[&str], expect: &[&str]) -> String {
        let stderr = self.refuse_run(files, expect);
        let mut args = vec!["plan"];
        args.extend_from_slice(files);
        expect_bad_input(&self.target(), &args, expect);
        stderr
    }
}

fn plan_ids(json: &Value) -> Vec<String> {
    json["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("plan JSON has no tasks array: {json}"))
        .iter()
        .map(|t| {
            t["id"]
                .as_str()
                .unwrap_or_else(|| panic!("task without id: {t}"))
                .to_string()
        })
        .collect()
}

/// The promise of `TaskSpec::id`: safe in a branch name and a directory name.
fn is_safe_slug(id: &str) -> bool {
    let mut chars = id.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && !id.contains("..")
        && id.len() <= 64
}

// ---------------------------------------------------------------------------------------------
// Positive controls: the helpers can see success, and the snapshot sees what a run creates.

#[test]
fn control_a_valid_plan_succeeds_and_creates_nothing() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n\nDo a.\n");
    fx.write("prompts/b.md", "---\ndepends_on: [a.md]\n---\n# B\n\nDo b.\n");
    let t = fx.target();
    let before = Snapshot::take(&t.repo, &t.scope);
    let out = gadugi(&t, &["plan", "--json", "prompts/a.md", "prompts/b.md"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    let ids = plan_ids(&json);
    assert!(
        ids.contains(&"a".to_string()) && ids.contains(&"b".to_string()),
        "{json}"
    );
    assert_eq!(
        before.differences(&Snapshot::take(&t.repo, &t.scope)),
        Vec::<String>::new(),
        "plan created something"
    );
}

#[test]
fn control_the_snapshot_sees_what_a_run_creates() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n\nDo a.\n");
    let t = fx.target();
    let before = Snapshot::take(&t.repo, &t.scope);
    // A failing agent: its worktree stays for inspection (succeeded ones are removed at the end).
    let out = gadugi(&t, &["run", "--agent-command", "false", "prompts/a.md"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(1)), "{:?} {stderr}", out.status.code());
    let diff = before.differences(&Snapshot::take(&t.repo, &t.scope)).join("\n");
    for seen in [
        ".gadugi directory",
        "exclude changed",
        "branches changed",
        "gadugi-worktrees directory",
        "worktree list changed",
    ] {
        assert!(diff.contains(seen), "the snapshot missed: {seen}\n{diff}");
    }
}

// ---------------------------------------------------------------------------------------------
// Dependencies.

#[test]
fn two_task_cycle() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\ndepends_on: [b]\n---\n# A\n");
    fx.write("prompts/b.md", "---\ndepends_on: [a]\n---\n# B\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md", "prompts/b.md"],
        &["a.md:2:", "dependency cycle: a → b → a"],
    );
}

#[test]
fn self_dependency() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\ntitle: A\ndepends_on: [a]\n---\n# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:3:", "dependency cycle: a → a"]);
}

#[test]
fn three_task_cycle() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\ndepends_on: [b]\n---\n# A\n");
    fx.write("prompts/b.md", "---\ndepends_on: [c.md]\n---\n# B\n");
    fx.write("prompts/c.md", "# C\n\nDepends on: a\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md", "prompts/b.md", "prompts/c.md"],
        &["a.md:2:", "dependency cycle: a → b → c → a"],
    );
}

#[test]
fn unknown_dependency_names_file_and_line() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\nid: a\ndepends_on: [ghost]\n---\n# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:3:", "unknown dependency `ghost`"]);
}

#[test]
fn unknown_dependency_in_a_depends_on_line_of_the_body() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n\nSome text.\n\nDepends on: ghost.md\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:5:", "unknown dependency `ghost.md`"]);
}

#[test]
fn dependency_on_a_prompt_file_not_given() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\ndepends_on: [b.md]\n---\n# A\n");
    fx.write("prompts/b.md", "# B\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md"],
        &["a.md:2:", "b.md, which is not among the prompt files"],
    );
}

#[test]
fn dependency_path_escaping_the_repository() {
    let fx = Fx::new();
    write(&fx.top().join("outside.md"), "# Outside\n");
    fx.write("prompts/a.md", "---\nid: a\ndepends_on: [../../outside.md]\n---\n# A\n");
    // Saying "add it to the command line" would be wrong: that file can never be a task here.
    fx.refuse_run_and_plan(
        &["prompts/a.md"],
        &["a.md:3:", "../../outside.md", "outside the repository"],
    );
}

// ---------------------------------------------------------------------------------------------
// The set of prompt files.

#[test]
fn duplicate_ids() {
    let fx = Fx::new();
    fx.write("prompts/x.md", "---\nid: same\n---\n# X\n");
    fx.write("prompts/y.md", "---\nid: same\n---\n# Y\n");
    fx.refuse_run_and_plan(
        &["prompts/x.md", "prompts/y.md"],
        &["y.md:2:", "task id `same` is also the id of", "x.md"],
    );
}

#[test]
fn duplicate_ids_from_file_names() {
    let fx = Fx::new();
    fx.write("prompts/My Task.md", "# One\n");
    fx.write("prompts/my-task.md", "# Two\n");
    fx.refuse_run_and_plan(
        &["prompts/My Task.md", "prompts/my-task.md"],
        &["task id `my-task` is also the id of", "My Task.md", "my-task.md"],
    );
}

#[test]
fn same_file_given_twice() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md", "prompts/a.md"], &["a.md", "prompt file given twice"]);
    fx.refuse_run_and_plan(
        &["prompts/a.md", "prompts/../prompts/a.md"],
        &["a.md", "prompt file given twice"],
    );
}

#[test]
fn missing_prompt_file() {
    let fx = Fx::new();
    fx.refuse_run_and_plan(&["prompts/nope.md"], &["prompts/nope.md", "prompt file not found"]);
}

#[test]
fn folder_without_md_files() {
    let fx = Fx::new();
    fx.write("notes/readme.txt", "not a prompt\n");
    fx.refuse_run_and_plan(&["notes"], &["notes", "folder holds no .md prompt files"]);
}

#[test]
fn prompt_file_outside_the_repository() {
    let fx = Fx::new();
    write(&fx.top().join("outside.md"), "# Outside\n");
    fx.refuse_run_and_plan(&["../outside.md"], &["outside.md", "is outside the repository"]);
    // Also through a symbolic link inside the repository.
    std::fs::create_dir_all(fx.root.join("prompts")).unwrap();
    std::os::unix::fs::symlink("../../outside.md", fx.root.join("prompts/link.md")).unwrap();
    fx.refuse_run_and_plan(&["prompts/link.md"], &["link.md", "is outside the repository"]);
}

#[test]
fn prompt_file_inside_git_dir() {
    let fx = Fx::new();
    fx.write(".git/sneaky.md", "# Sneaky\n");
    fx.refuse_run_and_plan(&[".git/sneaky.md"], &["sneaky.md", "is inside .git"]);
}

#[test]
fn every_bad_file_is_reported_at_once() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\nidd: a\n---\n# A\n");
    fx.write("prompts/b.md", "---\nretries: many\n---\n# B\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md", "prompts/b.md"],
        &["a.md:2: unknown front-matter key `idd`", "b.md:2: `retries`"],
    );
}

// ---------------------------------------------------------------------------------------------
// One prompt file.

#[test]
fn bad_yaml_in_front_matter_has_the_file_line() {
    let fx = Fx::new();
    // Line 3 of the file (line 2 of the YAML) is not valid YAML.
    fx.write("prompts/a.md", "---\nid: a\ntitle: x: y\n---\n# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:3:", "invalid YAML in the front matter"]);
}

#[test]
fn duplicate_front_matter_key() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\nid: a\nid: b\n---\n# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:", "duplicate entry with key \"id\""]);
}

#[test]
fn front_matter_that_is_not_a_mapping() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\n- a\n- b\n---\n# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:2:", "not a list"]);
}

#[test]
fn unterminated_front_matter() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\nid: a\n# A\n\nDo a.\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md"],
        &["a.md:1:", "front matter starting here is not closed"],
    );
}

#[test]
fn unknown_front_matter_key() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\nid: a\ndepend_on: [b]\n---\n# A\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md"],
        &["a.md:3:", "unknown front-matter key `depend_on`", "`depends_on`"],
    );
}

#[test]
fn wrong_type_in_front_matter() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\nid: a\nretries: \"lots\"\n---\n# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:3:", "`retries` must be an integer", "lots"]);
}

#[test]
fn bad_timeout_in_front_matter() {
    let fx = Fx::new();
    for value in ["forever", "0", "-5m"] {
        fx.write("prompts/a.md", format!("---\ntimeout: {value}\n---\n# A\n"));
        fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:2:", "`timeout` must be", value]);
    }
}

#[test]
fn bad_files_pattern_in_front_matter() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\nid: a\nfiles: [\"src/[\"]\n---\n# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:3:", "invalid `files` pattern"]);
}

#[test]
fn invalid_id_in_front_matter() {
    let fx = Fx::new();
    let long = "x".repeat(65);
    for id in ["../../etc", "has spaces", "a.lock", long.as_str()] {
        fx.write("prompts/a.md", format!("---\ntitle: A\nid: \"{id}\"\n---\n# A\n"));
        fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:3:", &format!("invalid id `{id}`")]);
    }
}

#[test]
fn non_utf8_prompt_file() {
    let fx = Fx::new();
    fx.write("prompts/a.md", b"# A\n\nDo \xff\xfe this.\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["a.md:3:", "not valid UTF-8"]);
}

#[test]
fn empty_prompt_file() {
    let fx = Fx::new();
    let cases = [
        ("", "a.md: prompt file is empty"),
        ("\n  \n\n", "a.md: prompt file is empty"),
        ("---\nid: a\n---\n", "a.md:4: prompt file has no task text"),
        ("---\nid: a\n---\n\n   \n", "a.md:4: prompt file has no task text"),
    ];
    for (text, phrase) in cases {
        fx.write("prompts/a.md", text);
        fx.refuse_run_and_plan(&["prompts/a.md"], &[phrase]);
    }
}

// ---------------------------------------------------------------------------------------------
// The repository.

#[test]
fn not_a_git_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    write(&plain.join("a.md"), "# A\n");
    let t = Target {
        cwd: plain.clone(),
        repo: plain.clone(),
        scope: tmp.path().to_path_buf(),
        path_env: None,
    };
    let expect = [plain.to_str().unwrap(), "is not inside a git repository"];
    expect_bad_input(&t, &["run", "--agent-command", "true", "a.md"], &expect);
    expect_bad_input(&t, &["plan", "a.md"], &expect);
}

#[test]
fn bare_repository() {
    let fx = Fx::new();
    let bare = fx.top().join("bare.git");
    git(fx.top(), &["clone", "-q", "--bare", "repo", "bare.git"]);
    let prompt = write(&fx.top().join("a.md"), "# A\n");
    let t = Target {
        cwd: fx.top().to_path_buf(),
        repo: bare.clone(),
        scope: fx.top().to_path_buf(),
        path_env: None,
    };
    let (bare_s, prompt_s) = (bare.to_str().unwrap(), prompt.to_str().unwrap());
    let expect = [bare_s, "is a bare repository"];
    expect_bad_input(
        &t,
        &["run", "--agent-command", "true", "--repo", bare_s, prompt_s],
        &expect,
    );
    expect_bad_input(&t, &["plan", "--repo", bare_s, prompt_s], &expect);
}

#[test]
fn repo_flag_that_is_not_a_directory() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    expect_bad_input(
        &fx.target(),
        &[
            "run",
            "--agent-command",
            "true",
            "--repo",
            "no-such-dir",
            "prompts/a.md",
        ],
        &["no-such-dir", "is not a directory"],
    );
}

#[test]
fn unborn_branch() {
    let fx = Fx::with_commit(false);
    fx.write("prompts/a.md", "# A\n");
    // Which repository: the one found from the current directory, or --repo.
    fx.refuse_run_and_plan(&["prompts/a.md"], &[fx.root.to_str().unwrap(), "has no commits yet"]);
}

#[test]
fn existing_task_branch() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    git(&fx.root, &["branch", "gadugi/a"]);
    fx.refuse_run(&["prompts/a.md"], &["a.md", "branch `gadugi/a` already exists"]);
}

#[test]
fn existing_task_branch_names_the_id_line() {
    let fx = Fx::new();
    fx.write("prompts/x.md", "---\ntitle: X\nid: taken\n---\n# X\n");
    git(&fx.root, &["branch", "gadugi/taken"]);
    fx.refuse_run(&["prompts/x.md"], &["x.md:3:", "branch `gadugi/taken` already exists"]);
}

#[test]
fn branch_named_like_the_prefix_blocks_task_branches() {
    // git cannot create refs/heads/gadugi/a while refs/heads/gadugi exists.
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    git(&fx.root, &["branch", "gadugi"]);
    fx.refuse_run(&["prompts/a.md"], &["a.md", "`gadugi/a`"]);
}

#[test]
fn branch_below_the_task_branch_blocks_it() {
    // git cannot create refs/heads/gadugi/a while refs/heads/gadugi/a/b exists.
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    git(&fx.root, &["branch", "gadugi/a/b"]);
    fx.refuse_run(&["prompts/a.md"], &["a.md", "`gadugi/a`"]);
}

#[test]
fn existing_worktree_folder() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    write(&fx.top().join("repo.gadugi-worktrees/a/keep.txt"), "someone's files\n");
    fx.refuse_run(
        &["prompts/a.md"],
        &["a.md", "worktree folder", "repo.gadugi-worktrees/a already exists"],
    );
}

#[test]
fn worktree_folder_registered_but_missing() {
    // git refuses `worktree add` on a path it still has registered, even when the folder is gone.
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    let wt = fx.top().join("repo.gadugi-worktrees/a");
    git(
        &fx.root,
        &["worktree", "add", "-q", "-b", "elsewhere", wt.to_str().unwrap()],
    );
    std::fs::remove_dir_all(&wt).unwrap();
    fx.refuse_run(&["prompts/a.md"], &["a.md", "repo.gadugi-worktrees/a"]);
}

#[test]
fn worktrees_folder_is_a_file() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    write(&fx.top().join("repo.gadugi-worktrees"), "a file, not a folder\n");
    fx.refuse_run(&["prompts/a.md"], &["repo.gadugi-worktrees"]);
}

// ---------------------------------------------------------------------------------------------
// Agents.

#[test]
fn missing_agent_program() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    expect_bad_input(
        &fx.target(),
        &[
            "run",
            "--agent-command",
            "no-such-agent-xyz {prompt_file}",
            "prompts/a.md",
        ],
        &["agent program `no-such-agent-xyz` (profile `command`) was not found"],
    );
}

#[test]
fn claude_profile_without_claude_on_path() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    let real_git = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .expect("git on PATH");
    let bin = fx.top().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&real_git, bin.join("git")).unwrap();
    let t = Target {
        path_env: Some(bin.into_os_string()),
        ..fx.target()
    };
    let expect = [
        "agent program `claude` (profile `claude`) was not found",
        "install Claude Code",
    ];
    expect_bad_input(&t, &["run", "--agent", "claude", "prompts/a.md"], &expect);
    // claude is the default profile.
    expect_bad_input(&t, &["run", "prompts/a.md"], &expect);
}

#[test]
fn unknown_agent_profile() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    expect_bad_input(
        &fx.target(),
        &["run", "--agent", "nope", "prompts/a.md"],
        &["unknown agent profile `nope`", "claude, command, simulated"],
    );
}

#[test]
fn unknown_agent_profile_in_front_matter() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "---\nid: a\nagent: nope\n---\n# A\n");
    fx.refuse_run(&["prompts/a.md"], &["a.md:3:", "unknown agent profile `nope`"]);
}

#[test]
fn unknown_agent_profile_in_gadugi_toml() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write("gadugi.toml", "[agent]\nprofile = \"nope\"\n");
    expect_bad_input(
        &fx.target(),
        &["run", "prompts/a.md"],
        &["gadugi.toml:2:", "unknown agent profile `nope`"],
    );
}

#[test]
fn unknown_placeholder_in_agent_command() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    expect_bad_input(
        &fx.target(),
        &["run", "--agent-command", "my-agent {promptfile}", "prompts/a.md"],
        &["unknown placeholder `{promptfile}`", "{prompt_file}"],
    );
}

#[test]
fn unknown_placeholder_in_gadugi_toml() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write(
        "gadugi.toml",
        "[agent]\nprofile = \"command\"\ncommand = \"true {promptfile}\"\n",
    );
    expect_bad_input(
        &fx.target(),
        &["run", "prompts/a.md"],
        &["gadugi.toml:3:", "unknown placeholder `{promptfile}`"],
    );
}

#[test]
fn command_profile_without_a_command() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    expect_bad_input(
        &fx.target(),
        &["run", "--agent", "command", "prompts/a.md"],
        &["agent profile `command` needs a command line", "--agent-command"],
    );
}

#[test]
fn empty_agent_command() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    expect_bad_input(
        &fx.target(),
        &["run", "--agent-command", "", "prompts/a.md"],
        &["the agent command is empty"],
    );
}

#[test]
fn agent_command_with_unbalanced_quotes() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    expect_bad_input(
        &fx.target(),
        &["run", "--agent-command", "true 'unclosed", "prompts/a.md"],
        &["cannot split agent command `true 'unclosed`", "missing closing quote"],
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration and flags.

#[test]
fn unknown_key_in_gadugi_toml() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write("gadugi.toml", "max_parallel = 2\nmax_paralel = 3\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:2:", "unknown field `max_paralel`"]);
    fx.write("gadugi.toml", "# agents\n[agent]\nprofil = \"command\"\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:3:", "unknown field `profil`"]);
}

#[test]
fn wrong_value_in_gadugi_toml() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write("gadugi.toml", "retries = 1\nconflicts = \"yolo\"\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:2:", "unknown variant `yolo`"]);
    fx.write("gadugi.toml", "retries = 1\n\ntimeout = -5\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md"],
        &["gadugi.toml:3:", "timeout must be a positive number"],
    );
    fx.write("gadugi.toml", "max_parallel = \n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:1:"]);
}

#[test]
fn huge_durations_in_gadugi_toml() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write("gadugi.toml", "timeout = 1e300\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:1:", "timeout"]);
    fx.write("gadugi.toml", "retries = 0\nkill_grace = 1e20\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:2:", "kill_grace"]);
}

#[test]
fn zero_max_parallel_in_gadugi_toml() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write("gadugi.toml", "# parallelism\nmax_parallel = 0\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md"],
        &["gadugi.toml:2:", "max_parallel must be at least 1"],
    );
}

#[test]
fn bad_branch_prefix_in_gadugi_toml() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write("gadugi.toml", "retries = 0\nbranch_prefix = \"bad..prefix~\"\n");
    fx.refuse_run_and_plan(
        &["prompts/a.md"],
        &[
            "gadugi.toml:2:",
            "branch_prefix `bad..prefix~` does not make valid branch names",
        ],
    );
}

#[test]
fn worktree_dir_inside_git_dir() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write("gadugi.toml", "retries = 0\nworktree_dir = \".git/wt\"\n");
    fx.refuse_run(&["prompts/a.md"], &["gadugi.toml:2:", "worktree_dir", "is inside .git"]);
}

#[test]
fn worktree_dir_that_is_the_repository_itself() {
    // Worktrees would land at the top of the user's checkout (and `//` in .git/info/exclude).
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    for value in [".", ""] {
        fx.write("gadugi.toml", format!("worktree_dir = \"{value}\"\n"));
        fx.refuse_run(&["prompts/a.md"], &["gadugi.toml:1:", "worktree_dir"]);
    }
}

#[test]
fn unreadable_gadugi_toml() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    fx.write("gadugi.toml", b"retries = 0\n# caf\xe9\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml: is not valid UTF-8"]);
    std::fs::remove_file(fx.root.join("gadugi.toml")).unwrap();
    std::fs::create_dir(fx.root.join("gadugi.toml")).unwrap();
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml: is a folder, not a file"]);
}

#[test]
fn max_parallel_flag_out_of_range_is_a_usage_error() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    for n in ["0", "300"] {
        expect_bad_input(
            &fx.target(),
            &["run", "--max-parallel", n, "--agent-command", "true", "prompts/a.md"],
            &["--max-parallel", &format!("{n} is not in 1..=256")],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Awkward but valid file names.

#[test]
fn file_names_with_spaces_unicode_and_shell_metacharacters_are_valid() {
    let fx = Fx::new();
    let names = [
        "my task.md",
        "ünïcödé tâsk.md",
        "$(touch pwned).md",
        "a;b.md",
        "`touch pwned2`.md",
        "x && touch pwned3.md",
        "!!!.md",
    ];
    for n in names {
        fx.write(&format!("prompts/{n}"), format!("# Task {n}\n\nDo it.\n"));
    }
    let t = fx.target();
    let before = Snapshot::take(&t.repo, &t.scope);
    let files: Vec<String> = names.iter().map(|n| format!("prompts/{n}")).collect();
    let mut by_name = vec!["plan", "--json"];
    by_name.extend(files.iter().map(String::as_str));
    for args in [by_name, vec!["plan", "--json", "prompts"]] {
        let out = gadugi(&t, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        let mut ids = plan_ids(&json);
        assert_eq!(ids.len(), names.len(), "{json}");
        assert!(ids.iter().all(|id| is_safe_slug(id)), "unsafe ids: {ids:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), names.len(), "ids collide: {ids:?}");
    }
    assert_eq!(
        before.differences(&Snapshot::take(&t.repo, &t.scope)),
        Vec::<String>::new(),
        "plan created something"
    );
    let mut everything = BTreeMap::new();
    walk(fx.top(), &mut everything);
    let cwd = std::env::current_dir().unwrap();
    for p in ["pwned", "pwned2", "pwned3"] {
        assert!(
            !everything.keys().any(|k| k.file_name().is_some_and(|n| n == p)),
            "a shell ran a file name: {p} exists"
        );
        assert!(
            !cwd.join(p).exists() && !fx.root.join(p).exists(),
            "a shell ran a file name: {p} exists"
        );
    }
}

// Issue 14 ("trust at the edges"): the defects found by a hostile tester that are bad input.
// Named after the defect's number in that issue.

/// Defect 5: deeply nested or huge front matter is refused before the YAML parser (which
/// took 48 s on 160 KB of nesting), naming the file and line.
#[test]
fn d05_deeply_nested_or_huge_front_matter_is_refused_at_once() {
    let fx = Fx::new();
    let nested = format!("---\nfiles: {}{}\n---\n# A\n", "[".repeat(80_000), "]".repeat(80_000));
    fx.write("prompts/a.md", nested);
    let started = std::time::Instant::now();
    fx.refuse_run_and_plan(&["prompts/a.md"], &["prompts/a.md:2:", "at most 64 KiB"]);
    let nested = format!("---\nfiles: {}{}\n---\n# A\n", "[".repeat(5_000), "]".repeat(5_000));
    fx.write("prompts/a.md", nested);
    fx.refuse_run_and_plan(&["prompts/a.md"], &["prompts/a.md:2:", "nested more than 32 levels"]);
    // Generous: the refusal takes milliseconds; the parser took 48 s on this input.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let blocks: String = (0..40).map(|i| format!("{}- x\n", "  ".repeat(i))).collect();
    fx.write("prompts/a.md", format!("---\nfiles:\n{blocks}---\n# A\n"));
    fx.refuse_run_and_plan(&["prompts/a.md"], &["prompts/a.md:", "nested more than 32 levels"]);
    let huge = format!("---\nfiles: [{}]\n---\n# A\n", vec!["\"a.txt\""; 20_000].join(", "));
    fx.write("prompts/a.md", huge);
    fx.refuse_run_and_plan(&["prompts/a.md"], &["prompts/a.md:2:", "at most 64 KiB"]);
}

/// Defect 6 (the part that is bad input): a NUL byte in a prompt is refused before anything
/// is created, not when the agent is spawned.
#[test]
fn d06_a_nul_byte_in_a_prompt_is_refused_before_anything_is_created() {
    let fx = Fx::new();
    fx.write("prompts/a.md", b"# A\n\nline two\nbad \0 byte\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["prompts/a.md:4:", "NUL byte"]);
    fx.write("prompts/a.md", "---\nverify: \"make\\0test\"\n---\n# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["prompts/a.md:2:", "`verify` must be"]);
}

/// Defect 8: a FIFO named `*.md` is refused without blocking on it.
#[test]
fn d08_a_fifo_prompt_is_refused_without_blocking() {
    let fx = Fx::new();
    let fifo = fx.root.join("prompts/pipe.md");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    fx.refuse_run_and_plan(&["prompts/pipe.md"], &["prompts/pipe.md", "not a regular file"]);
}

/// Defect 12: validation gaps in gadugi.toml.
#[test]
fn d12_gadugi_toml_values_out_of_range_are_refused() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    let cases: &[(&str, &str)] = &[
        ("max_parallel = 1000000000\n", "at most 256"),
        ("branch_prefix = \"refs/heads/\"\n", "starts with refs/"),
        ("retry_exit_codes = [300, -1]\n", "retry_exit_codes has 300"),
        ("verify = \"make\\u0000test\"\n", "NUL character"),
        ("[agent]\nargs = [\"--x\\u0000\"]\n", "NUL character"),
        ("[worktree]\nsetup = [\"npm ci\\u0000\"]\n", "`setup` must be"),
    ];
    for (toml, expect) in cases {
        fx.write("gadugi.toml", toml);
        fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:", expect]);
    }
}

/// Defect 13: unclear messages made clear.
#[test]
fn d13_messages_say_what_is_wrong() {
    let fx = Fx::new();
    fx.write("prompts/a.md", "# A\n");
    // A timeout too large for any type is "too large", not "invalid type … as u128".
    fx.write("gadugi.toml", "timeout = 18446744073709551616\n");
    let err = fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:1:", "is too large"]);
    assert!(!err.contains("i128") && !err.contains("u128"), "{err}");
    fx.write("gadugi.toml", "timeout = \"9999999h\"\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["gadugi.toml:1:", "at most a year"]);
    std::fs::remove_file(fx.root.join("gadugi.toml")).unwrap();
    fx.write("prompts/a.md", "---\ntimeout: 99999999999999999999\n---\n# A\n");
    let err = fx.refuse_run_and_plan(&["prompts/a.md"], &["prompts/a.md:2:", "is too large"]);
    assert!(!err.contains("u128"), "{err}");
    fx.write("prompts/a.md", "# A\n");
    // A .worktreeinclude that is a folder.
    std::fs::create_dir(fx.root.join(".worktreeinclude")).unwrap();
    fx.refuse_run_and_plan(&["prompts/a.md"], &[".worktreeinclude: is a folder, not a file"]);
    std::fs::remove_dir(fx.root.join(".worktreeinclude")).unwrap();
    // An agent program that exists but is not executable is not "not found".
    let program = fx.write("tools/agent", "#!/bin/sh\n");
    let cmd = program.display().to_string();
    expect_bad_input(
        &fx.target(),
        &["run", "--agent-command", &cmd, "prompts/a.md"],
        &["exists but is not executable", "chmod +x"],
    );
}

/// Defect 13: a SHA-256 repository gets a message that says libgit2 cannot read it.
#[test]
fn d13_a_sha256_repository_is_named_as_such() {
    let fx = Fx::with_commit(false);
    let repo = fx.root.clone();
    std::fs::remove_dir_all(repo.join(".git")).unwrap();
    git(&repo, &["init", "-q", "--object-format=sha256", "-b", "main"]);
    fx.write("prompts/a.md", "# A\n");
    fx.refuse_run_and_plan(&["prompts/a.md"], &["SHA-1 repositories only", "SHA-256"]);
}
