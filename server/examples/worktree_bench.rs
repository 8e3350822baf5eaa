//! Measures creating worktrees on new branches: the git CLI (`git worktree add -b`) against
//! libgit2 (`Repository::worktree` after creating the branch), one at a time; and a batch of
//! N worktrees made the way Gadugi did before (one `git worktree add` after the other: they
//! cannot run at once) against the way it does now (`Repo::register_worktree` one at a time,
//! `Repo::populate_worktree` in parallel on min(cores, N) threads).
//!
//! Run with `cargo run --release --example worktree_bench` (part of `bash scripts/bench.sh`).
//! Builds a 10-file and a LARGE_FILES-file repository (default 20,000 in 200 directories, one
//! commit, made with `git fast-import`) in a temporary directory, creates N worktrees (default
//! 8) with each method (interleaved, so both see the same cache state, with a `sync` before
//! each) and prints `worktree.<method>.<files> ms ms …` lines: milliseconds per worktree, one
//! per sample, and `worktree.batch_serial.<files>` / `worktree.batch_parallel.<files>`:
//! milliseconds for the whole batch (the suite's figure format).

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
    // A batch of n: the old way against the new way, alternated, each on fresh branch names.
    let gadugi_repo = std::sync::Arc::new(gadugi::git::Repo::discover(&repo).map_err(|e| anyhow::anyhow!("{e}"))?);
    let (mut serial, mut parallel) = (Vec::new(), Vec::new());
    for round in 0..3 {
        Command::new("sync").status()?;
        let t = Instant::now();
        for i in 0..n {
            let branch = format!("serial-{round}-{i}");
            add_cli(&repo, &tmp.join(&branch), &branch, &commit)?;
        }
        serial.push(ms(t));
        Command::new("sync").status()?;
        let t = Instant::now();
        let names: Vec<String> = (0..n).map(|i| format!("parallel-{round}-{i}")).collect();
        for name in &names {
            gadugi_repo.register_worktree(&tmp.join(name), name, &commit)?;
        }
        let threads = std::thread::available_parallelism()
            .map_or(2, |c| c.get())
            .min(n)
            .max(1);
        let chunks: Vec<Vec<String>> = (0..threads)
            .map(|k| names.iter().skip(k).step_by(threads).cloned().collect())
            .collect();
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (repo, tmp) = (gadugi_repo.clone(), tmp.clone());
                std::thread::spawn(move || -> anyhow::Result<()> {
                    for name in chunk {
                        repo.populate_worktree(&tmp.join(&name), &name)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a populate thread panicked"))??;
        }
        parallel.push(ms(t));
        for name in &names {
            let dirty = git(&tmp.join(name), &["status", "--porcelain"])?;
            anyhow::ensure!(dirty.is_empty(), "{name} worktree not clean:\n{dirty}");
        }
    }
    for (name, samples) in [("batch_serial", serial), ("batch_parallel", parallel)] {
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
    println!("worktree.n {n}");
    eprintln!("{}", git(Path::new("."), &["--version"])?.trim());
    bench(10, n)?;
    bench(env("LARGE_FILES", 20_000), n)?;
    Ok(())
}
