//! A guard around the protocol's byte streams. tower-lsp-server reads stdin through
//! tokio-util's `FramedRead`, which ends the stream after the first decoding error: one
//! malformed message (bad `Content-Length`, invalid JSON, JSON that is not a JSON-RPC
//! message) would stop the server. The guard frames stdin itself, answers a malformed
//! message with a JSON-RPC error (-32700 parse error, -32600 invalid request), skips to the
//! next `Content-Length`, and passes only well-formed messages to the server. One writer owns
//! stdout, so its own error responses never interleave with the server's messages.

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc::{Request, Response};

/// Bodies larger than this are refused (and skipped) instead of buffered.
const MAX_BODY: usize = 64 << 20;
const HEADER: &[u8] = b"Content-Length";

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn error_frame(id: Value, code: i64, message: String) -> Vec<u8> {
    frame(
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            .to_string()
            .as_bytes(),
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What to do with one message body.
fn check(body: &[u8]) -> Result<(), Vec<u8>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        error_frame(
            Value::Null,
            -32700,
            format!("Parse error: the message is not JSON ({e})"),
        )
    })?;
    // Checked through a reference: a clone of a large message's value costs its size again.
    use serde::Deserialize;
    if Request::deserialize(&value).is_ok() || Response::deserialize(&value).is_ok() {
        return Ok(());
    }
    let id = value
        .get("id")
        .filter(|i| i.is_number() || i.is_string())
        .cloned()
        .unwrap_or(Value::Null);
    Err(error_frame(
        id,
        -32600,
        "Invalid request: not a JSON-RPC 2.0 request, notification or response".into(),
    ))
}

/// Reads framed messages from `input`, forwards the well-formed ones to `server`, and sends an
/// error response to `out` for each malformed one. Ends at end of input.
pub async fn guard_input(
    mut input: impl AsyncRead + Unpin,
    mut server: impl AsyncWrite + Unpin,
    out: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut eof = false;
    loop {
        // Garbage before the next header (the rest of a message whose length was wrong).
        if let Some(p) = find(&buf, HEADER) {
            let before = &buf[..p];
            let is_header = before.starts_with(b"Content-Type") || before.iter().all(u8::is_ascii_whitespace);
            if !is_header {
                let _ = out.send(error_frame(
                    Value::Null,
                    -32700,
                    "Parse error: bytes outside any message".into(),
                ));
                buf.drain(..p);
            }
        }
        let parsed = find(&buf, b"\r\n\r\n").map(|end| {
            let headers = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len = headers.split("\r\n").find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            (end + 4, len)
        });
        match parsed {
            Some((start, Some(len))) if len <= MAX_BODY && buf.len() >= start + len => {
                let body: Vec<u8> = buf.drain(..start + len).skip(start).collect();
                // A large message grew the buffer: give the room back instead of keeping it.
                if buf.capacity() > 4 * chunk.len() && buf.len() < chunk.len() {
                    buf.shrink_to(chunk.len());
                }
                match check(&body) {
                    Ok(()) => {
                        if server.write_all(&frame(&body)).await.is_err() || server.flush().await.is_err() {
                            return;
                        }
                    }
                    Err(reply) => {
                        tracing::warn!("malformed message from the client: {}", String::from_utf8_lossy(&body));
                        let _ = out.send(reply);
                    }
                }
                continue;
            }
            // The body is still arriving.
            Some((_, Some(len))) if len <= MAX_BODY => {}
            Some((start, len)) => {
                let why = match len {
                    Some(n) => format!("Content-Length {n} is larger than {MAX_BODY} bytes"),
                    None => "missing or invalid Content-Length header".into(),
                };
                let _ = out.send(error_frame(Value::Null, -32700, format!("Parse error: {why}")));
                buf.drain(..start);
                // Skip to the next header.
                let next = find(&buf, HEADER).unwrap_or(buf.len());
                buf.drain(..next);
                continue;
            }
            None => {}
        }
        if eof {
            return;
        }
        match input.read(&mut chunk).await {
            Ok(0) | Err(_) => eof = true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Splits the server's output into whole messages and queues them for the writer.
pub async fn frames_of(output: impl AsyncRead + Unpin, out: mpsc::UnboundedSender<Vec<u8>>) {
    let mut r = BufReader::new(output);
    loop {
        let mut len = None;
        loop {
            let mut line = String::new();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
        }
        let Some(len) = len else { continue };
        let mut body = vec![0; len];
        if r.read_exact(&mut body).await.is_err() {
            return;
        }
        if out.send(frame(&body)).is_err() {
            return;
        }
    }
}

/// Writes queued messages to `stdout`, each whole. Ends at an empty message (sent once the
/// server's output ended) or when every sender is gone.
pub async fn write_output(mut stdout: impl AsyncWrite + Unpin, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(msg) = rx.recv().await {
        if msg.is_empty() {
            return;
        }
        if stdout.write_all(&msg).await.is_err() || stdout.flush().await.is_err() {
            return;
        }
    }
}
