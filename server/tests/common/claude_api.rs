//! The real Claude Code CLI (npm `@anthropic-ai/claude-code`, installed into
//! `target/claude-cli` by `scripts/install-claude-cli.sh`, which [`claude_dir`] runs when it
//! is missing) and a fake Anthropic Messages API on 127.0.0.1 for it: shared by the test files
//! that run the real CLI offline (`claude_cli.rs`, `trust_prompt.rs`), each of which uses a
//! part of it.
#![allow(dead_code)]

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

/// One scripted answer of the fake API to a `/v1/messages` request.
#[derive(Clone)]
pub enum Reply {
    /// An HTTP error status with an Anthropic error body.
    Status(u16, &'static str),
    /// The model calls a tool.
    Tool(&'static str, Value),
    /// The model answers with text and ends its turn.
    Text(&'static str),
}

/// A fake Anthropic Messages API: answers in script order (then `Text("Done.")`), records
/// each request body.
pub struct FakeApi {
    pub port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl FakeApi {
    pub fn start(script: Vec<Reply>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let recorded = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (script, recorded) = (script.clone(), recorded.clone());
                std::thread::spawn(move || serve(stream, &script, &recorded));
            }
        });
        FakeApi { port, requests }
    }

    /// Bodies of the `/v1/messages` requests so far.
    pub fn messages(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

type Script = Mutex<std::vec::IntoIter<Reply>>;

fn serve(stream: TcpStream, script: &Script, recorded: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let Some((request_line, body)) = crate::common::read_http_request(&mut reader) else {
            return;
        };
        let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
        let path = path.split('?').next().unwrap_or("").to_string();
        let response = if path == "/v1/messages" {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            recorded.lock().unwrap().push(body);
            let reply = script.lock().unwrap().next().unwrap_or(Reply::Text("Done."));
            render(reply)
        } else if path == "/v1/messages/count_tokens" {
            http(200, "application/json", r#"{"input_tokens":10}"#.into())
        } else {
            http(
                404,
                "application/json",
                r#"{"type":"error","error":{"type":"not_found_error","message":"not found"}}"#.into(),
            )
        };
        if out.write_all(response.as_bytes()).is_err() {
            return;
        }
        let _ = out.flush();
    }
}

fn http(status: u16, content_type: &str, body: String) -> String {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nretry-after-ms: 10\r\nrequest-id: req_1\r\n\r\n{body}",
        body.len()
    )
}

fn render(reply: Reply) -> String {
    let (block, delta, stop) = match reply {
        Reply::Status(code, kind) => {
            return http(
                code,
                "application/json",
                json!({"type": "error", "error": {"type": kind, "message": kind}}).to_string(),
            )
        }
        Reply::Tool(name, input) => (
            json!({"type": "tool_use", "id": format!("toolu_{}", std::process::id()), "name": name, "input": {}}),
            json!({"type": "input_json_delta", "partial_json": input.to_string()}),
            "tool_use",
        ),
        Reply::Text(text) => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": text}),
            "end_turn",
        ),
    };
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 1000, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": block}),
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 50}}),
        json!({"type": "message_stop"}),
    ];
    let mut body = String::new();
    for e in events {
        body.push_str(&format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()));
    }
    http(200, "text/event-stream", body)
}

/// Directory holding the real `claude` binary, installed on first use.
pub fn claude_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let status = Command::new("bash")
            .arg(root.join("scripts/install-claude-cli.sh"))
            .stdin(Stdio::null())
            .status()
            .expect("bash runs");
        assert!(
            status.success(),
            "installing the Claude Code CLI failed: run scripts/install-claude-cli.sh"
        );
        let bin = root.join("target/claude-cli/node_modules/.bin/claude");
        assert!(bin.exists(), "{} is missing", bin.display());
        bin.parent().unwrap().to_path_buf()
    })
}

/// Sets up `c` for the real CLI offline: a temporary `home`, the real `claude` and `gadugi`
/// first on PATH, no credentials of the machine, at most `max_retries` API retries, and the
/// fake API with a dummy key when given.
pub fn offline_claude_env(c: &mut Command, home: &Path, api: Option<&FakeApi>, max_retries: u32) {
    let gadugi_dir = Path::new(env!("CARGO_BIN_EXE_gadugi")).parent().unwrap();
    let path = std::env::join_paths(
        [claude_dir().to_path_buf(), gadugi_dir.to_path_buf()]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    c.env("PATH", path)
        .env("HOME", home)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_MAX_RETRIES", max_retries.to_string())
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("CLAUDE_CODE_OAUTH_TOKEN")
        .stdin(Stdio::null());
    if let Some(api) = api {
        c.env("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{}", api.port))
            .env("ANTHROPIC_API_KEY", "dummy");
    }
}
