//! A scripted fake model API on 127.0.0.1 for the real agent programs (tests/agent_clis.rs).
//!
//! One server speaks every protocol the built-in profiles use, chosen by the request path:
//! - OpenAI Responses, server-sent events: `POST /v1/responses` (Codex CLI);
//! - OpenAI Chat Completions: `POST /v1/chat/completions`, as server-sent events when the body
//!   says `"stream": true` (opencode), else one JSON answer (aider `--no-stream`);
//! - the Gemini API: `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` (SSE) and
//!   `:generateContent` (JSON), `:countTokens` (Gemini CLI).
//!
//! Each model turn takes the next [`Reply`] of the test's script (then the `otherwise` reply).
//! Side requests the programs make on their own are answered without using the script and
//! recorded as auxiliary: opencode's title generator (a chat request whose system prompt says
//! "You are a title generator"), and the Gemini CLI's JSON-mode calls (model router, next
//! speaker check: `generationConfig.responseMimeType = "application/json"`), answered with an
//! object filled in from the request's `responseJsonSchema`.
//!
//! Every model answer reports the same usage: 1000 input tokens (200 of them cached) and 50
//! output tokens. Error answers carry `retry-after-ms: 10`, which opencode and the OpenAI SDK
//! honour, so their own retries take milliseconds.

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// Input tokens every model answer reports.
pub const INPUT_TOKENS: u64 = 1000;
/// Of which cached.
pub const CACHED_TOKENS: u64 = 200;
/// Output tokens every model answer reports.
pub const OUTPUT_TOKENS: u64 = 50;

/// One scripted answer to a model turn.
#[derive(Clone, Debug)]
pub enum Reply {
    /// An HTTP error status with the error body the real API sends for it (401 bad key,
    /// 429 rate limit / quota, 503 overloaded, 529 overloaded, others a generic error).
    Status(u16),
    /// The model calls the tool `name` with these arguments (a function call).
    Tool(&'static str, Value),
    /// The model answers with this text and ends its turn.
    Text(String),
    /// The answer starts (a few words of text) and the connection is closed mid-way: a cut
    /// stream for the streaming protocols, a truncated body for a JSON answer.
    Cut,
}

impl Reply {
    /// `Reply::Text` from a `&str`.
    pub fn text(s: &str) -> Reply {
        Reply::Text(s.to_string())
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Request {
    /// Path with the query string.
    pub path: String,
    /// The JSON body (a string when it was not JSON).
    pub body: Value,
    /// A side request answered outside the script.
    pub auxiliary: bool,
    /// The status the fake answered with.
    pub status: u16,
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    otherwise: Reply,
    requests: Mutex<Vec<Request>>,
    counter: Mutex<u64>,
}

/// The fake model API: a listener on 127.0.0.1 and a thread per connection.
pub struct FakeModelApi {
    pub port: u16,
    shared: Arc<Shared>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Protocol {
    Responses,
    Chat { stream: bool },
    Gemini { stream: bool },
}

impl FakeModelApi {
    /// Answers the model turns with `script`, then with `Text("Done.")`.
    pub fn start(script: Vec<Reply>) -> FakeModelApi {
        FakeModelApi::start_with(script, Reply::text("Done."))
    }

    /// Answers the model turns with `script`, then always with `otherwise`.
    pub fn start_with(script: Vec<Reply>, otherwise: Reply) -> FakeModelApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            otherwise,
            requests: Mutex::new(Vec::new()),
            counter: Mutex::new(0),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        FakeModelApi { port, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The model turns so far (the requests that took a scripted reply).
    pub fn turns(&self) -> Vec<Request> {
        self.all().into_iter().filter(|r| !r.auxiliary).collect()
    }

    /// Every request so far, side requests included.
    pub fn all(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// One line per request: path, answer status, `(aux)` for side requests.
    pub fn summary(&self) -> String {
        self.all()
            .iter()
            .map(|r| format!("{} -> {}{}", r.path, r.status, if r.auxiliary { " (aux)" } else { "" }))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Scripted replies not used yet.
    pub fn unused(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut out = stream;
    loop {
        let Some((request_line, body)) = crate::common::read_http_request(&mut reader) else {
            return;
        };
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let body: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        match answer(shared, &method, &path, body) {
            Answer::Full(bytes) => {
                if out.write_all(&bytes).is_err() {
                    return;
                }
                let _ = out.flush();
            }
            Answer::Close(bytes) => {
                let _ = out.write_all(&bytes);
                let _ = out.flush();
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

enum Answer {
    /// A complete response; the connection stays open.
    Full(Vec<u8>),
    /// Write this, then close the connection (event streams, cuts).
    Close(Vec<u8>),
}

fn answer(shared: &Shared, method: &str, path: &str, body: Value) -> Answer {
    let base = path.split('?').next().unwrap_or("");
    if method == "GET" {
        record(shared, path, body, true, 200);
        return Answer::Full(http(
            200,
            "application/json",
            &json!({"object": "list", "data": []}).to_string(),
        ));
    }
    let protocol = if base.ends_with("/responses") {
        Protocol::Responses
    } else if base.ends_with("/chat/completions") {
        Protocol::Chat {
            stream: body["stream"] == true,
        }
    } else if base.ends_with(":streamGenerateContent") {
        Protocol::Gemini { stream: true }
    } else if base.ends_with(":generateContent") {
        Protocol::Gemini { stream: false }
    } else if base.ends_with(":countTokens") {
        record(shared, path, body, true, 200);
        return Answer::Full(http(200, "application/json", r#"{"totalTokens":10}"#));
    } else {
        record(shared, path, body, true, 404);
        return Answer::Full(http(
            404,
            "application/json",
            r#"{"error":{"message":"not found","type":"invalid_request_error","code":null}}"#,
        ));
    };
    let n = {
        let mut c = shared.counter.lock().unwrap();
        *c += 1;
        *c
    };
    let model = body["model"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            base.rsplit('/')
                .next()
                .and_then(|m| m.split(':').next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "fake-model".into());
    // Side requests: answered without the script.
    if let Protocol::Chat { stream } = protocol {
        let system = body["messages"][0]["content"].to_string();
        if system.contains("You are a title generator") {
            record(shared, path, body, true, 200);
            return chat(Reply::text("Greeting file"), stream, &model, n);
        }
    }
    if let Protocol::Gemini { stream } = protocol {
        if body["generationConfig"]["responseMimeType"] == "application/json" {
            let schema = body["generationConfig"]["responseJsonSchema"].clone();
            let schema = if schema.is_null() {
                body["generationConfig"]["responseSchema"].clone()
            } else {
                schema
            };
            record(shared, path, body, true, 200);
            return gemini_text(&fill_schema(&schema).to_string(), stream);
        }
    }
    let reply = {
        let mut script = shared.script.lock().unwrap();
        script.pop_front().unwrap_or_else(|| shared.otherwise.clone())
    };
    let status = match reply {
        Reply::Status(code) => code,
        _ => 200,
    };
    record(shared, path, body, false, status);
    match protocol {
        Protocol::Responses => responses(reply, &model, n),
        Protocol::Chat { stream } => chat(reply, stream, &model, n),
        Protocol::Gemini { stream } => gemini(reply, stream, n),
    }
}

fn record(shared: &Shared, path: &str, body: Value, auxiliary: bool, status: u16) {
    shared.requests.lock().unwrap().push(Request {
        path: path.to_string(),
        body,
        auxiliary,
        status,
    });
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Site is overloaded",
        _ => "Error",
    }
}

fn http(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let retry = if status >= 400 { "retry-after-ms: 10\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{retry}x-request-id: req_fake\r\n\r\n{body}",
        reason(status),
        body.len()
    )
    .into_bytes()
}

/// The head of an event stream: no length, the connection closes at its end.
fn sse_head() -> String {
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
        .to_string()
}

/// The OpenAI error body for `status`.
fn openai_error(status: u16) -> Value {
    let (message, kind, code) = match status {
        401 => (
            "Incorrect API key provided: dummy. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        429 => (
            "Rate limit reached for fake-model in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
            "requests",
            json!("rate_limit_exceeded"),
        ),
        503 => ("The server is overloaded or not ready yet.", "server_error", Value::Null),
        529 => ("Overloaded", "overloaded_error", Value::Null),
        _ => ("The server had an error while processing your request.", "server_error", Value::Null),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// The Gemini API error body for `status`.
fn gemini_error(status: u16) -> Value {
    match status {
        400 | 401 => json!({"error": {"code": status, "message": "API key not valid. Please pass a valid API key.",
            "status": if status == 401 { "UNAUTHENTICATED" } else { "INVALID_ARGUMENT" },
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]}}),
        429 => json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED"}}),
        503 | 529 => json!({"error": {"code": status, "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE"}}),
        _ => json!({"error": {"code": status, "message": "An internal error has occurred.", "status": "INTERNAL"}}),
    }
}

fn responses_usage() -> Value {
    json!({"input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
        "output_tokens": OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS})
}

/// OpenAI Responses API, as server-sent events.
fn responses(reply: Reply, model: &str, n: u64) -> Answer {
    let id = format!("resp_{n}");
    let event = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or(""));
    let mut out = sse_head();
    out.push_str(&event(json!({"type": "response.created", "sequence_number": 0,
        "response": {"id": id, "object": "response", "status": "in_progress", "model": model, "output": []}})));
    let item = match reply {
        Reply::Status(code) => {
            return Answer::Full(http(code, "application/json", &openai_error(code).to_string()));
        }
        Reply::Cut => {
            out.push_str(&event(json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "id": format!("msg_{n}"), "role": "assistant", "status": "in_progress", "content": []}})));
            out.push_str(&event(
                json!({"type": "response.output_text.delta", "item_id": format!("msg_{n}"),
                "output_index": 0, "content_index": 0, "delta": "I will wri"}),
            ));
            return Answer::Close(out.into_bytes());
        }
        Reply::Tool(name, args) => {
            json!({"type": "function_call", "id": format!("fc_{n}"), "call_id": format!("call_{n}"),
            "name": name, "arguments": args.to_string(), "status": "completed"})
        }
        Reply::Text(text) => {
            out.push_str(&event(json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "id": format!("msg_{n}"), "role": "assistant", "status": "in_progress", "content": []}})));
            out.push_str(&event(
                json!({"type": "response.output_text.delta", "item_id": format!("msg_{n}"),
                "output_index": 0, "content_index": 0, "delta": text}),
            ));
            json!({"type": "message", "id": format!("msg_{n}"), "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]})
        }
    };
    out.push_str(&event(
        json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
    ));
    out.push_str(&event(json!({"type": "response.completed",
        "response": {"id": id, "object": "response", "status": "completed", "model": model, "output": [item],
            "usage": responses_usage()}})));
    Answer::Close(out.into_bytes())
}

/// OpenAI Chat Completions: server-sent events or one JSON answer.
fn chat(reply: Reply, stream: bool, model: &str, n: u64) -> Answer {
    let usage = json!({"prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS, "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS}});
    let id = format!("chatcmpl-{n}");
    let (message, finish) = match &reply {
        Reply::Status(code) => {
            return Answer::Full(http(*code, "application/json", &openai_error(*code).to_string()));
        }
        Reply::Tool(name, args) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": format!("call_{n}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]}),
            "tool_calls",
        ),
        Reply::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Reply::Cut => (json!({"role": "assistant", "content": "I will write the fi"}), "stop"),
    };
    if !stream {
        let body = json!({"id": id, "object": "chat.completion", "created": 1_700_000_000u64, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})
        .to_string();
        let mut bytes = http(200, "application/json", &body);
        if matches!(reply, Reply::Cut) {
            // The announced length, half the body, then the connection closes.
            bytes.truncate(bytes.len() - body.len() / 2);
            return Answer::Close(bytes);
        }
        return Answer::Full(bytes);
    }
    let chunk = |choices: Value, usage: Value| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": model,
            "choices": choices});
        if !usage.is_null() {
            c["usage"] = usage;
        }
        format!("data: {c}\n\n")
    };
    let mut out = sse_head();
    out.push_str(&chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
        Value::Null,
    ));
    match &reply {
        Reply::Tool(..) => {
            let mut call = message["tool_calls"][0].clone();
            call["index"] = json!(0);
            out.push_str(&chunk(
                json!([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]),
                Value::Null,
            ));
        }
        _ => out.push_str(&chunk(
            json!([{"index": 0, "delta": {"content": message["content"]}, "finish_reason": null}]),
            Value::Null,
        )),
    }
    if matches!(reply, Reply::Cut) {
        return Answer::Close(out.into_bytes());
    }
    out.push_str(&chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
        Value::Null,
    ));
    out.push_str(&chunk(json!([]), usage));
    out.push_str("data: [DONE]\n\n");
    Answer::Close(out.into_bytes())
}

fn gemini_usage() -> Value {
    json!({"promptTokenCount": INPUT_TOKENS, "candidatesTokenCount": OUTPUT_TOKENS,
        "cachedContentTokenCount": CACHED_TOKENS, "totalTokenCount": INPUT_TOKENS + OUTPUT_TOKENS})
}

fn gemini_response(parts: Value, finish: Option<&str>, usage: bool) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    let mut r = json!({"candidates": [candidate], "modelVersion": "gemini-2.5-pro", "responseId": "fake-response"});
    if usage {
        r["usageMetadata"] = gemini_usage();
    }
    r
}

/// The Gemini API: `streamGenerateContent?alt=sse` or `generateContent`.
fn gemini(reply: Reply, stream: bool, _n: u64) -> Answer {
    let parts = match reply {
        Reply::Status(code) => {
            return Answer::Full(http(code, "application/json", &gemini_error(code).to_string()));
        }
        Reply::Tool(name, args) => json!([{"functionCall": {"name": name, "args": args}}]),
        Reply::Text(text) => json!([{"text": text}]),
        Reply::Cut => {
            let partial = gemini_response(json!([{"text": "I will wri"}]), None, false);
            if stream {
                return Answer::Close(format!("{}data: {partial}\r\n\r\n", sse_head()).into_bytes());
            }
            let body = partial.to_string();
            let mut bytes = http(200, "application/json", &body);
            bytes.truncate(bytes.len() - body.len() / 2);
            return Answer::Close(bytes);
        }
    };
    let response = gemini_response(parts, Some("STOP"), true);
    if stream {
        Answer::Close(format!("{}data: {response}\r\n\r\n", sse_head()).into_bytes())
    } else {
        Answer::Full(http(200, "application/json", &response.to_string()))
    }
}

fn gemini_text(text: &str, stream: bool) -> Answer {
    let response = gemini_response(json!([{"text": text}]), Some("STOP"), true);
    if stream {
        Answer::Close(format!("{}data: {response}\r\n\r\n", sse_head()).into_bytes())
    } else {
        Answer::Full(http(200, "application/json", &response.to_string()))
    }
}

/// A value matching a JSON schema: the first enum value, "fake" strings, 1 for numbers, false,
/// empty arrays, objects with every property.
fn fill_schema(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("object") | None => {
            let mut o = serde_json::Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in props {
                    o.insert(k.clone(), fill_schema(v));
                }
            }
            Value::Object(o)
        }
        Some("string") => json!("fake"),
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        _ => Value::Null,
    }
}
