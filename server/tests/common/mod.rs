//! Helpers shared by the integration tests.

use std::path::Path;
use std::process::{Command, Stdio};

/// A real two-node Slurm cluster for a test (`scripts/slurm-cluster.sh`).
pub mod slurm;

/// A Kubernetes API emulator for a test (kmock, `scripts/install-kmock.sh`).
pub mod kmock;

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

/// A new repository at `root` on `main` (identity set) whose first commit holds `files`
/// (relative path, text; folders are created).
#[allow(dead_code)] // not every test file makes its repository this way
pub fn init_repo(root: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(root).expect("repository folder");
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Test"]);
    git(root, &["config", "user.email", "test@example.com"]);
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in the repository")).expect("folder");
        std::fs::write(path, text).expect("file written");
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "init"]);
}

/// Runs the `gadugi` binary in `dir` (stdin closed) to its end.
#[allow(dead_code)] // not every test file runs it this way
pub fn gadugi_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gadugi"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("gadugi runs")
}

/// A process's exit code, stdout and stderr, for assertion messages.
#[allow(dead_code)] // not every test file shows outputs
pub fn show_output(out: &std::process::Output) -> String {
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
pub fn init_empty_repo(root: &Path) {
    std::fs::create_dir_all(root.join("prompts")).unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Test"]);
    git(root, &["config", "user.email", "test@example.com"]);
}

/// Reads one HTTP/1.1 request from `reader` (a fake API's connection): its request line and
/// its body (`content-length` or chunked). `None` when the peer closed the connection.
#[allow(dead_code)] // only the test files with a fake API read requests
pub fn read_http_request(reader: &mut impl std::io::BufRead) -> Option<(String, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some((request_line, body))
}

/// Every file under `dir`, recursively (folders themselves left out).
#[allow(dead_code)] // not every test file walks folders
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Polls `cond` every 20 ms until it holds; fails the test naming `what` after `limit`.
#[allow(dead_code)] // not every test file waits
pub fn wait_for(what: &str, limit: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Task `id` of a `--json` run summary (its `tasks` array); fails the test naming it.
#[allow(dead_code)] // not every test file reads summaries
pub fn summary_task<'a>(summary: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    summary["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["id"] == id))
        .unwrap_or_else(|| panic!("no task {id} in {summary}"))
}

/// The newest run's folder under `<root>/.gadugi/runs`, once there is one.
#[allow(dead_code)] // not every test file looks for runs this way
pub fn newest_run(root: &Path) -> Option<std::path::PathBuf> {
    let mut ids: Vec<_> = std::fs::read_dir(root.join(".gadugi/runs"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    ids.sort();
    ids.pop()
}

/// The newest run's `state.json` (`Null` before there is one).
#[allow(dead_code)] // not every test file reads states this way
pub fn newest_state(root: &Path) -> serde_json::Value {
    let text = newest_run(root)
        .and_then(|d| std::fs::read_to_string(d.join("state.json")).ok())
        .unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// The commit of `reference` (`refs/heads/x`, `refs/gadugi/...`) in the repository at
/// `dir` (bare or not), if it exists.
#[allow(dead_code)] // not every test file reads references
pub fn reference(dir: &Path, reference: &str) -> Option<String> {
    let out = git(dir, &["for-each-ref", "--format=%(objectname)", reference]);
    (!out.is_empty()).then_some(out)
}

/// Writes the prompt file `<root>/prompts/<name>.md`: front matter `front` (none when
/// empty), the title `Task <name>`, and `body`.
#[allow(dead_code)] // not every test file writes its prompts this way
pub fn write_prompt(root: &Path, name: &str, front: &str, body: &str) {
    let fm = if front.is_empty() {
        String::new()
    } else {
        format!("---\n{front}\n---\n")
    };
    std::fs::write(
        root.join("prompts").join(format!("{name}.md")),
        format!("{fm}# Task {name}\n\n{body}\n"),
    )
    .unwrap();
}
