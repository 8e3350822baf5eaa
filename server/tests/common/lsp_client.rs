//! The test client of `gadugi server --stdio`: the real binary spoken to over its stdin and
//! stdout (Content-Length framing), every message kept. Included by `lsp.rs` and
//! `lsp_language.rs` (`#[path]`), so other test files do not compile it.
#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Generous: only reached when something is broken (never a timing assertion).
pub const WAIT: Duration = Duration::from_secs(90);

pub fn uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// A language-server client over the real binary's stdio.
pub struct Client {
    pub child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    /// Every message received, in order.
    pub seen: Vec<Value>,
    next_id: i64,
}

pub fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).ok()?;
    Some(serde_json::from_slice(&body).unwrap_or_else(|e| panic!("server sent invalid JSON ({e})")))
}

impl Client {
    pub fn start(root: &Path) -> Client {
        Client::start_with_env(root, vec![])
    }

    /// A server with more environment variables (a Slurm cluster's `SLURM_CONF`).
    pub fn start_with_env(root: &Path, env: Vec<(String, String)>) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gadugi"))
            .args(["server", "--stdio"])
            .envs(env)
            .current_dir(root)
            .env("GADUGI_LOG", "gadugi=debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("gadugi server starts");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            while let Some(msg) = read_message(&mut stdout) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            rx,
            seen: vec![],
            next_id: 1,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    pub fn request_async(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a request and waits for its response (the whole response object).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.request_async(method, params);
        self.wait_for(&format!("response to {method}"), |m| {
            m.get("id") == Some(&json!(id)) && m.get("method").is_none()
        })
    }

    /// Waits until a message matching `pred` arrives (answering the server's requests on
    /// the way) and returns it; panics after WAIT with everything seen.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_from(0, what, pred)
    }

    /// Like `wait_for`, among the messages from index `from` of `seen` on.
    pub fn wait_from(&mut self, from: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(m) = self.seen.iter().skip(from).find(|m| pred(m)) {
            return m.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => {
                    if m.get("method").is_some() && m.get("id").is_some() {
                        // A request from the server (window/workDoneProgress/create): accept.
                        let id = m["id"].clone();
                        self.send(json!({"jsonrpc": "2.0", "id": id, "result": null}));
                    }
                    self.seen.push(m.clone());
                    if pred(&m) {
                        return m;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "timed out waiting for {what}; received:\n{}",
                    self.seen.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("\n")
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "server closed stdout while waiting for {what}; received:\n{}",
                    self.seen.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("\n")
                ),
            }
        }
    }

    pub fn initialize(&mut self, root: &Path, progress: bool) -> Value {
        let resp = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uri(root),
                "workspaceFolders": [{"uri": uri(root), "name": "repo"}],
                "capabilities": {"window": {"workDoneProgress": progress}, "workspace": {"codeLens": {"refreshSupport": true}}},
            }),
        );
        self.notify("initialized", json!({}));
        resp
    }

    pub fn command(&mut self, command: &str, args: Value) -> Value {
        self.request(
            "workspace/executeCommand",
            json!({"command": command, "arguments": [args]}),
        )
    }

    /// shutdown, exit; returns the exit code.
    pub fn shutdown(mut self) -> i32 {
        let resp = self.request("shutdown", Value::Null);
        assert!(resp.get("error").is_none(), "{resp}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "server did not exit after `exit`");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn notifications(&self, method: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .filter(|m| m["method"] == method && m.get("id").is_none())
            .collect()
    }
}

/// Runs the Neovim script `tests/nvim/NAME` headless (`--clean`) on the repository `root`,
/// with the gadugi binary under test; returns its exit code and everything it printed.
/// Fails at once, saying how to install it, when Neovim is missing.
pub fn run_nvim(name: &str, root: &Path) -> (Option<i32>, String) {
    let nvim = Command::new("nvim").arg("--version").output();
    assert!(
        nvim.is_ok_and(|o| o.status.success()),
        "Neovim is needed for this test: apt-get install -y neovim (.ci/run installs it)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/nvim").join(name);
    let out = Command::new("nvim")
        .args(["--headless", "--clean", "-c"])
        .arg(format!("luafile {}", script.display()))
        .env("GADUGI_BIN", env!("CARGO_BIN_EXE_gadugi"))
        .env("GADUGI_REPO", root)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), log)
}
