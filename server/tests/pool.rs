//! The warm worktree pool (`[pool]` of gadugi.toml) on real repositories with the real
//! binary and scripted agents: a pooled worktree given to a new task holds exactly the start
//! commit (plus the kept, ignored build outputs) in the same folder (slot) the earlier task
//! built in, dirty worktrees are never pooled, branches never move, the pool off is today's
//! behaviour, `gadugi cleanup` removes a pooled task's slot, and `gadugi pool status/prune`.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

mod common;
use common::{gadugi_in, git, init_repo};

/// Records what the task finds (status with ignored files, files, the build marker), then
/// "builds" (appends to target/marker, writes an ignored build.log) and commits its file.
const AGENT: &str = r#"#!/bin/sh
seen="$OUT/seen-$GADUGI_TASK_ID"
{
  echo "status:"; git status --porcelain --ignored --untracked-files=all
  echo "files:"; ls -A | grep -v '^\.git$'
  echo "marker:"; cat target/marker 2>/dev/null
  echo "staged:"; git diff --cached --name-only
  echo "cwd:"; pwd -P
} > "$seen"
mkdir -p target && echo "$GADUGI_TASK_ID" >> target/marker
echo log > build.log
echo "$GADUGI_TASK_ID" > "out-$GADUGI_TASK_ID.txt"
git add "out-$GADUGI_TASK_ID.txt" && git -c user.name=agent -c user.email=agent@test commit -qm "$GADUGI_TASK_ID"
git rev-parse HEAD > "$OUT/tip-$GADUGI_TASK_ID"
if [ "$GADUGI_TASK_ID" = bad ]; then exit 3; fi
"#;

struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
    agent: PathBuf,
}

impl Repo {
    fn new(config: &str) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let (root, out) = (tmp.path().join("repo"), tmp.path().join("out"));
        let config = format!("kill_grace = \"1s\"\n{config}");
        init_repo(
            &root,
            &[
                ("README.md", "hello\n"),
                ("gone.txt", "to be deleted\n"),
                (".gitignore", "target/\n*.log\n/prompts/\n"),
                ("gadugi.toml", &config),
            ],
        );
        std::fs::create_dir_all(root.join("prompts")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let agent = tmp.path().join("agent.sh");
        let script = AGENT.replacen('\n', &format!("\nOUT='{}'\n", out.display()), 1);
        std::fs::write(&agent, script).unwrap();
        Repo {
            _tmp: tmp,
            root,
            out,
            agent,
        }
    }

    fn prompt(&self, name: &str) -> String {
        let path = self.root.join("prompts").join(format!("{name}.md"));
        std::fs::write(&path, format!("# Task {name}\n\nDo the {name} thing.\n")).unwrap();
        format!("prompts/{name}.md")
    }

    fn gadugi(&self, args: &[&str]) -> Output {
        gadugi_in(&self.root, args)
    }

    /// `gadugi run --json` with the scripted agent on `tasks`; asserts every task succeeded.
    fn run(&self, extra: &[&str], tasks: &[&str]) -> Value {
        let cmd = format!("sh {}", self.agent.display());
        let files: Vec<String> = tasks.iter().map(|t| self.prompt(t)).collect();
        let mut args = vec!["run", "--json", "--agent-command", cmd.as_str()];
        args.extend_from_slice(extra);
        args.extend(files.iter().map(String::as_str));
        let out = self.gadugi(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn worktrees(&self) -> PathBuf {
        self.root.parent().unwrap().join("repo.gadugi-worktrees")
    }

    /// The names under `.pool/`: slots (`<n>`) and markers (`<n>.ready`, `<n>.taken.<pid>`).
    fn pool_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.worktrees().join(".pool"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The pooled (free) slots: those with a `.ready` marker.
    fn ready(&self) -> Vec<String> {
        self.pool_entries()
            .iter()
            .filter_map(|n| n.strip_suffix(".ready").map(str::to_string))
            .collect()
    }

    /// Whether anything (a folder, a link, a dangling link) is at the task's usual path.
    fn task_path_exists(&self, task: &str) -> bool {
        self.worktrees().join(task).symlink_metadata().is_ok()
    }

    fn seen(&self, task: &str) -> String {
        std::fs::read_to_string(self.out.join(format!("seen-{task}"))).unwrap()
    }

    fn tip(&self, task: &str) -> String {
        std::fs::read_to_string(self.out.join(format!("tip-{task}")))
            .unwrap()
            .trim()
            .to_string()
    }

    fn checkout(&self) -> (String, String) {
        (
            git(&self.root, &["rev-parse", "HEAD"]),
            git(&self.root, &["status", "--porcelain", "--ignored"]),
        )
    }
}

const POOL: &str = "[pool]\nmax_worktrees = 4\nkeep = [\"target/\"]\n";

/// The section of a `seen-*` file after `name:`.
fn section<'a>(seen: &'a str, name: &str) -> Vec<&'a str> {
    seen.split_once(&format!("{name}:\n"))
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .lines()
        .take_while(|l| !l.ends_with(':'))
        .collect()
}

#[test]
fn a_pooled_worktree_holds_exactly_the_start_commit_and_keeps_build_outputs() {
    let r = Repo::new(POOL);
    let before = r.checkout();
    // One at a time: the second task takes the first one's worktree.
    r.run(&["-j", "1"], &["one", "two"]);
    let (first, second) = if r.seen("one").contains("marker:\none") {
        ("two", "one")
    } else {
        ("one", "two")
    };
    assert_eq!(
        section(&r.seen(first), "marker"),
        Vec::<&str>::new(),
        "{}",
        r.seen(first)
    );
    let seen = r.seen(second);
    // The first task's build output survived; nothing else of it did.
    assert_eq!(section(&seen, "marker"), [first], "{seen}");
    assert_eq!(section(&seen, "status"), ["!! target/marker"], "{seen}");
    assert_eq!(
        section(&seen, "files"),
        [".gitignore", "README.md", "gadugi.toml", "gone.txt", "target"],
        "{seen}"
    );
    assert_eq!(section(&seen, "staged"), Vec::<&str>::new(), "{seen}");
    // Both built in the same folder, which never moved: the slot .pool/1.
    let slot = r.worktrees().join(".pool/1").canonicalize().unwrap();
    for task in [first, second] {
        assert_eq!(
            section(&r.seen(task), "cwd"),
            [slot.to_str().unwrap()],
            "{}",
            r.seen(task)
        );
    }
    // Branches stay where their tasks left them; both worktrees ended in the pool as one,
    // and the tasks' paths (symlinks to the slot) are gone.
    for task in ["one", "two"] {
        assert_eq!(git(&r.root, &["rev-parse", &format!("gadugi/{task}")]), r.tip(task));
    }
    assert_eq!(r.pool_entries(), ["1", "1.ready"]);
    assert!(!r.task_path_exists("one") && !r.task_path_exists("two"));
    let pooled = r.worktrees().join(".pool/1");
    assert_eq!(git(&pooled, &["rev-parse", "--abbrev-ref", "HEAD"]), "HEAD", "detached");
    assert!(
        !pooled.join("build.log").exists(),
        "ignored files not kept are cleaned at release"
    );

    // A later run from a new start commit: the tracked files are exactly that commit's.
    std::fs::write(r.root.join("README.md"), "hello again\n").unwrap();
    std::fs::write(r.root.join("new.txt"), "new\n").unwrap();
    git(&r.root, &["rm", "-q", "gone.txt"]);
    git(&r.root, &["add", "-A"]);
    git(&r.root, &["commit", "-qm", "second"]);
    let before_second = r.checkout();
    r.run(&[], &["three"]);
    let seen = r.seen("three");
    assert_eq!(section(&seen, "cwd"), [slot.to_str().unwrap()], "{seen}");
    assert_eq!(
        section(&seen, "marker"),
        ["one", "two"].map(|t| if t == "one" { first } else { second }),
        "{seen}"
    );
    assert_eq!(section(&seen, "status"), ["!! target/marker"], "{seen}");
    assert_eq!(
        section(&seen, "files"),
        [".gitignore", "README.md", "gadugi.toml", "new.txt", "target"],
        "{seen}"
    );
    let three = git(&r.root, &["rev-parse", "gadugi/three"]);
    assert_eq!(three, r.tip("three"));
    assert_eq!(git(&r.root, &["rev-parse", "gadugi/three~1"]), before_second.0);
    for task in ["one", "two"] {
        assert_eq!(git(&r.root, &["rev-parse", &format!("gadugi/{task}")]), r.tip(task));
    }
    // The user's checkout is untouched (but for the commit this test made).
    assert_eq!(r.checkout(), before_second);
    assert_ne!(before.0, before_second.0);
}

#[test]
fn a_worktree_with_changes_is_never_pooled() {
    // A run commits whatever its agent and verify leave, so a succeeded task's worktree is
    // clean: release a dirty worktree directly.
    use gadugi::run::pool::{release, Released};
    let r = Repo::new(POOL);
    let repo = gadugi::git::Repo::discover(&r.root).unwrap();
    let config = gadugi::spec::config::Config::load(&r.root).unwrap();
    let head = repo.head_commit().unwrap();
    let lock = std::sync::Mutex::new(());
    std::fs::create_dir_all(&config.worktree_dir).unwrap();
    type Change = fn(&std::path::Path);
    let changes: [(&str, Change); 4] = [
        ("untracked", |wt| std::fs::write(wt.join("new.txt"), "work\n").unwrap()),
        ("modified", |wt| std::fs::write(wt.join("README.md"), "work\n").unwrap()),
        ("staged", |wt| {
            std::fs::write(wt.join("staged.txt"), "work\n").unwrap();
            git(wt, &["add", "staged.txt"]);
        }),
        // Ignored, so not dirty; but its commits exist nowhere else.
        ("nested", |wt| {
            std::fs::create_dir_all(wt.join("target/dep")).unwrap();
            git(&wt.join("target/dep"), &["init", "-q"]);
        }),
    ];
    for (name, change) in changes {
        let wt = config.worktree_path(name);
        gadugi::run::pool::create_worktree(&repo, &config, &wt, name, &head, &lock).unwrap();
        assert!(
            gadugi::run::pool::slot_of(&config, &wt).is_some(),
            "{name}: made in a slot"
        );
        change(&wt);
        let before = git(&wt, &["status", "--porcelain"]);
        let released = release(&repo, &config, &wt, name, &lock).unwrap();
        assert!(matches!(released, Released::NotPooled(_)), "{name}: {released:?}");
        assert_eq!(git(&wt, &["status", "--porcelain"]), before, "{name}: untouched");
        assert_eq!(
            git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]),
            name,
            "still on its branch"
        );
        assert_eq!(git(&r.root, &["rev-parse", name]), head);
    }
    assert!(r.ready().is_empty());
    // A clean worktree made before the pool was on (a plain folder) is not pooled either:
    // moving it would cost its build caches their paths.
    let wt = config.worktree_path("plain");
    repo.create_worktree(&wt, "plain", &head).unwrap();
    let released = release(&repo, &config, &wt, "plain", &lock).unwrap();
    assert!(
        matches!(&released, Released::NotPooled(why) if why.contains("before the pool was on")),
        "{released:?}"
    );
    assert!(wt.is_dir() && r.ready().is_empty());
}

#[test]
fn the_pool_off_behaves_as_before() {
    let r = Repo::new("");
    r.run(&[], &["one"]);
    assert!(!r.worktrees().join("one").exists(), "a succeeded worktree is deleted");
    assert!(!r.worktrees().join(".pool").exists());
    assert_eq!(git(&r.root, &["rev-parse", "gadugi/one"]), r.tip("one"));
    let out = r.gadugi(&["pool", "status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn the_budget_keeps_the_newest_worktrees() {
    let r = Repo::new("[pool]\nmax_worktrees = 1\n");
    r.run(&["-j", "3"], &["one", "two", "three"]);
    let entries = r.pool_entries();
    assert_eq!(entries.len(), 2, "one slot and its marker: {entries:?}");
    assert_eq!(r.ready().len(), 1, "{entries:?}");
    for task in ["one", "two", "three"] {
        assert_eq!(git(&r.root, &["rev-parse", &format!("gadugi/{task}")]), r.tip(task));
    }
}

#[test]
fn a_worktree_that_cannot_be_made_clean_is_discarded_for_a_fresh_one() {
    let r = Repo::new(POOL);
    r.run(&[], &["one"]);
    assert_eq!(r.pool_entries(), ["1", "1.ready"]);
    // The start commit no longer ignores target/ (the checkout still does, uncommitted):
    // the kept target/ would show as untracked, so the pooled worktree is not used.
    std::fs::write(r.root.join(".gitignore"), "*.log\n/prompts/\n").unwrap();
    git(&r.root, &["commit", "-qam", "target is not ignored"]);
    std::fs::write(r.root.join(".gitignore"), "target/\n*.log\n/prompts/\n").unwrap();
    r.run(&[], &["two"]);
    let seen = r.seen("two");
    assert_eq!(section(&seen, "marker"), Vec::<&str>::new(), "{seen}");
    assert_eq!(section(&seen, "status"), Vec::<&str>::new(), "{seen}");
    assert_eq!(git(&r.root, &["rev-parse", "gadugi/one"]), r.tip("one"));
    // target/ is not ignored there: the agent's marker was committed as a leftover.
    assert_eq!(git(&r.root, &["rev-parse", "gadugi/two~1"]), r.tip("two"));
    // The discarded slot went; the fresh worktree was made in a new slot (its number free
    // again) and pooled.
    assert_eq!(r.pool_entries(), ["1", "1.ready"]);
}

#[test]
fn a_failed_task_keeps_its_slot_until_cleanup_removes_slot_and_link() {
    let r = Repo::new(POOL);
    let cmd = format!("sh {}", r.agent.display());
    let prompt = r.prompt("bad");
    let out = r.gadugi(&["run", "--agent-command", &cmd, &prompt]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    // The failed task's worktree stays, in its slot, reached through its usual path.
    let wt = r.worktrees().join("bad");
    assert!(wt.symlink_metadata().unwrap().file_type().is_symlink());
    let slot = r.worktrees().join(".pool/1");
    assert_eq!(wt.canonicalize().unwrap(), slot.canonicalize().unwrap());
    assert_eq!(git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]), "gadugi/bad");
    assert!(r.ready().is_empty(), "a failed task's worktree is not pooled");
    let out = r.gadugi(&["cleanup"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!r.task_path_exists("bad") && !slot.exists(), "{text}");
    assert_eq!(
        git(&r.root, &["rev-parse", "gadugi/bad"]),
        r.tip("bad"),
        "the branch stays"
    );
    let listed = git(&r.root, &["worktree", "list", "--porcelain"]);
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("worktree ")).count(),
        1,
        "{listed}"
    );
}

#[test]
fn a_keep_path_that_is_tracked_or_not_ignored_is_refused() {
    for (keep, why) in [("README.md", "is tracked"), ("src/", "is not ignored")] {
        let r = Repo::new(&format!("[pool]\nmax_worktrees = 2\nkeep = [\n  \"{keep}\",\n]\n"));
        let cmd = format!("sh {}", r.agent.display());
        let prompt = r.prompt("one");
        let out = r.gadugi(&["run", "--agent-command", &cmd, &prompt]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("gadugi.toml") && stderr.contains(":5") && stderr.contains(why),
            "{stderr}"
        );
        assert!(!r.worktrees().exists());
    }
}

#[test]
fn pool_status_and_prune() {
    let r = Repo::new(POOL);
    r.run(&["-j", "2"], &["one", "two"]);
    assert_eq!(r.ready().len(), 2);
    let out = r.gadugi(&["pool", "status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = status.as_array().unwrap();
    assert_eq!(list.len(), 2, "{status}");
    assert!(
        list.iter()
            .all(|e| e["size"].as_u64().unwrap() > 0 && e["age_secs"].is_u64()),
        "{status}"
    );
    let text = String::from_utf8_lossy(&r.gadugi(&["pool", "status"]).stdout).to_string();
    assert!(text.contains("2 pooled worktree(s)"), "{text}");

    // Within the budget: nothing to do. A claim left by a dead process is garbage, with its
    // slot; but a slot a task's path links to is that task's worktree (the process died
    // after giving it to the task), so only the claim goes. A clean slot nothing marks or
    // links to (a crash inside a release) goes; one with changes stays.
    let pool = r.worktrees().join(".pool");
    let dead = pool.join("9.taken.999999999");
    std::fs::create_dir_all(pool.join("9")).unwrap();
    std::fs::write(&dead, "").unwrap();
    let given = pool.join("8.taken.999999998");
    std::fs::create_dir_all(pool.join("8")).unwrap();
    std::fs::write(pool.join("8/work.txt"), "a task's work\n").unwrap();
    std::os::unix::fs::symlink(pool.join("8"), r.worktrees().join("eight")).unwrap();
    std::fs::write(&given, "").unwrap();
    let head = git(&r.root, &["rev-parse", "HEAD"]);
    git(
        &r.root,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            pool.join("7").to_str().unwrap(),
            &head,
        ],
    );
    git(
        &r.root,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            pool.join("6").to_str().unwrap(),
            &head,
        ],
    );
    std::fs::write(pool.join("6/untracked.txt"), "work\n").unwrap();
    let out = r.gadugi(&["pool", "prune"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("left by a process that is gone"), "{text}");
    assert!(!dead.exists() && !pool.join("9").exists(), "{text}");
    assert!(!given.exists() && pool.join("8/work.txt").exists(), "{text}");
    assert!(!pool.join("7").exists(), "{text}");
    assert!(
        pool.join("6/untracked.txt").exists() && text.contains("no task points at it, but it has changes"),
        "{text}"
    );
    assert_eq!(r.ready().len(), 2);
    std::fs::remove_file(r.worktrees().join("eight")).unwrap();
    std::fs::remove_dir_all(pool.join("8")).unwrap();
    std::fs::remove_file(pool.join("6/untracked.txt")).unwrap();

    // A pooled worktree with changes (it should never have any) is refused.
    let first = pool.join(&r.ready()[0]);
    std::fs::write(first.join("README.md"), "changed\n").unwrap();
    let out = r.gadugi(&["pool", "prune", "--all"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("kept") && text.contains("changes"), "{text}");
    assert!(!pool.join("6").exists(), "a clean unlinked slot goes: {text}");
    assert_eq!(r.ready().len(), 1);
    std::fs::write(first.join("README.md"), "hello\n").unwrap();
    r.gadugi(&["pool", "prune", "--all"]);
    assert!(r.pool_entries().is_empty());
    assert!(
        git(&r.root, &["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count()
            == 1
    );
    for task in ["one", "two"] {
        assert_eq!(git(&r.root, &["rev-parse", &format!("gadugi/{task}")]), r.tip(task));
    }
}

/// Takes a pooled worktree and creates a fresh one in a repository of a few thousand files,
/// and prints both times (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn measure_take_versus_create() {
    use gadugi::run::pool;
    let r = Repo::new(POOL);
    for d in 0..40 {
        let dir = r.root.join(format!("src/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f}.rs")), format!("// {d} {f}\n").repeat(40)).unwrap();
        }
    }
    git(&r.root, &["add", "-A"]);
    git(&r.root, &["commit", "-qm", "4000 files"]);
    let repo = gadugi::git::Repo::discover(&r.root).unwrap();
    let config = gadugi::spec::config::Config::load(&r.root).unwrap();
    let head = repo.head_commit().unwrap();
    let lock = std::sync::Mutex::new(());
    let wt = |n: &str| config.worktree_path(n);
    std::fs::create_dir_all(&config.worktree_dir).unwrap();
    let t = std::time::Instant::now();
    pool::create_worktree(&repo, &config, &wt("fresh"), "fresh", &head, &lock).unwrap();
    let create = t.elapsed();
    std::fs::create_dir_all(wt("fresh").join("target")).unwrap();
    let released = pool::release(&repo, &config, &wt("fresh"), "fresh", &lock).unwrap();
    assert!(matches!(released, pool::Released::Pooled(_)), "{released:?}");
    let t = std::time::Instant::now();
    assert!(pool::take(&repo, &config, &wt("warm"), "warm", &head, &lock).unwrap());
    let take = t.elapsed();
    println!("4000 files: create a worktree {create:?}, take a pooled one {take:?}");
}
