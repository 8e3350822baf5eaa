//! Helpers shared by the integration tests.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `git -C dir args...` (stdin closed), asserts it succeeded, returns its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether a process is gone (or a zombie nobody reaped yet).
#[allow(dead_code)] // not every test file looks at processes
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// A process's exit code, stdout and stderr, for an assertion message.
#[allow(dead_code)] // not every test file runs processes it shows
pub fn show(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A new repository at `root` on branch `main` with a committer, and its `prompts/` folder;
/// nothing committed yet.
#[allow(dead_code)] // not every test file makes its repositories this way
pub fn init_repo(root: &Path) {
    std::fs::create_dir_all(root.join("prompts")).unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Test"]);
    git(root, &["config", "user.email", "test@example.com"]);
}
