//! Measures creating worktrees on new branches: the git CLI (`git worktree add -b`) against
//! libgit2 (`Repository::worktree` after creating the branch).
//!
//! Run with `cargo run --release --example worktree_bench` (part of `bash scripts/bench.sh`).
//! Builds a 10-file and a LARGE_FILES-file repository (default 20,000 in 200 directories, one
//! commit, made with `git fast-import`) in a temporary directory, creates N worktrees (default
//! 8) with each method (interleaved, so both see the same cache state, with a `sync` before
//! each) and prints `worktree.<method>.<files> ms ms …` lines: milliseconds per worktree, one
//! per sample (the suite's figure format).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A repository at `dir` with one commit holding `files` small files spread over up to 200
/// directories, checked out on `main`.
fn make_repo(dir: &Path, files: usize) -> anyhow::Result<()> {
    git(dir, &["init", "-q", "-b", "main"])?;
    let mut stream = String::from("commit refs/heads/main\ncommitter Bench <bench@localhost> 0 +0000\ndata 5\ninit\n");
    for i in 0..files {
        let body = format!("file {i}\nsome small contents\n");
        stream += &format!(
            "M 100644 inline d{:03}/f{i:05}.txt\ndata {}\n{body}\n",
            i % 200,
            body.len()
        );
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stream.as_bytes())?;
    anyhow::ensure!(child.wait()?.success(), "git fast-import failed");
    git(dir, &["reset", "-q", "--hard", "main"])?;
    Ok(())
}

fn add_cli(repo: &Path, path: &Path, branch: &str, commit: &str) -> anyhow::Result<()> {
    let path = path.to_str().expect("temporary paths are UTF-8");
    git(repo, &["worktree", "add", "-q", "-b", branch, path, commit]).map(drop)
}

fn add_git2(repo: &Path, path: &Path, branch: &str, commit: &str) -> anyhow::Result<()> {
    let repo = git2::Repository::open(repo)?;
    let commit = repo.find_commit(git2::Oid::from_str(commit)?)?;
    let reference = repo.branch(branch, &commit, false)?.into_reference();
    let mut opts = git2::WorktreeAddOptions::new();
    opts.reference(Some(&reference));
    repo.worktree(branch, path, Some(&opts))?;
    Ok(())
}

fn bench(files: usize, n: usize) -> anyhow::Result<()> {
    let tmp = std::env::temp_dir().join(format!("worktree_bench_{}_{files}", std::process::id()));
    let repo = tmp.join("repo");
    std::fs::create_dir_all(&repo)?;
    let t = Instant::now();
    make_repo(&repo, files)?;
    eprintln!("{files} files, repository built in {:.0} ms", ms(t));
    let commit = git(&repo, &["rev-parse", "HEAD"])?.trim().to_string();

    let (mut cli, mut lib) = (Vec::new(), Vec::new());
    for i in 0..n {
        for (name, samples, add) in [
            (
                "cli",
                &mut cli,
                add_cli as fn(&Path, &Path, &str, &str) -> anyhow::Result<()>,
            ),
            ("git2", &mut lib, add_git2),
        ] {
            let branch = format!("{name}-{i}");
            let path = tmp.join(&branch);
            // Flush the previous worktree's files so that writeback does not land on this one.
            Command::new("sync").status()?;
            let t = Instant::now();
            add(&repo, &path, &branch, &commit)?;
            samples.push(ms(t));
            let dirty = git(&path, &["status", "--porcelain"])?;
            anyhow::ensure!(dirty.is_empty(), "{name} worktree not clean:\n{dirty}");
        }
    }
    for (name, samples) in [("cli", cli), ("git2", lib)] {
        let samples: Vec<String> = samples.iter().map(|s| format!("{s:.1}")).collect();
        println!("worktree.{name}.{files} {}", samples.join(" "));
    }
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let n = env("N", 8);
    eprintln!("{}", git(Path::new("."), &["--version"])?.trim());
    bench(10, n)?;
    bench(env("LARGE_FILES", 20_000), n)?;
    Ok(())
}
