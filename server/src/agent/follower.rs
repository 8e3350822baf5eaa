//! The follower that turns an agent's output file into "what it is doing now", whichever
//! protocol the agent speaks.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::agent::report::OutputProtocol;

/// Longest activity line kept, in characters.
const ACTIVITY_CHARS: usize = 160;
/// At most this much of a fast-growing log is read per poll.
const TAIL_BYTES: u64 = 64 * 1024;

/// Follows an agent's stdout file and reports its latest meaningful line. Reads only what
/// was appended since the last poll (at most the last 64 KiB), so a flooding agent costs
/// little.
pub struct OutputFollower {
    path: PathBuf,
    offset: u64,
    partial: String,
    last: Option<String>,
    protocol: OutputProtocol,
}

impl OutputFollower {
    pub fn new(path: PathBuf, protocol: OutputProtocol) -> OutputFollower {
        OutputFollower {
            path,
            offset: 0,
            partial: String::new(),
            last: None,
            protocol,
        }
    }

    /// The newest summarized line, when it changed since the previous call.
    pub fn poll(&mut self) -> Option<String> {
        let mut file = std::fs::File::open(&self.path).ok()?;
        let len = file.metadata().ok()?.len();
        if len <= self.offset {
            return None;
        }
        if len - self.offset > TAIL_BYTES {
            self.offset = len - TAIL_BYTES;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut buf = Vec::new();
        file.take(len - self.offset).read_to_end(&mut buf).ok()?;
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let complete = self.partial.rfind('\n').map(|end| {
            let lines = self.partial[..end].to_string();
            self.partial.drain(..=end);
            lines
        })?;
        let newest = complete.lines().rev().find_map(|l| summarize(self.protocol, l))?;
        if self.last.as_deref() == Some(newest.as_str()) {
            return None;
        }
        self.last = Some(newest.clone());
        Some(newest)
    }
}

/// The last `max` bytes of a file as text (lossy), or "" when it cannot be read.
pub fn read_tail(path: &std::path::Path, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A one-line, human summary of an output line; `None` when it says nothing new.
pub fn summarize(protocol: OutputProtocol, line: &str) -> Option<String> {
    let text = match protocol {
        OutputProtocol::Plain | OutputProtocol::AiderText => line.trim().to_string(),
        OutputProtocol::ClaudeStreamJson => crate::agent::claude::summarize(line)?,
        protocol => crate::agent::builtins::summarize(protocol, line)?,
    };
    let text: String = text.chars().filter(|c| !c.is_control()).take(ACTIVITY_CHARS).collect();
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follower_reports_only_new_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        std::fs::write(&p, "one\ntw").unwrap();
        let mut f = OutputFollower::new(p.clone(), OutputProtocol::Plain);
        assert_eq!(f.poll().as_deref(), Some("one"));
        assert_eq!(f.poll(), None);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"o\n")
            .unwrap();
        assert_eq!(f.poll().as_deref(), Some("two"));
    }

    #[test]
    fn summarizes_claude_tool_use() {
        let line = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Write","input":{"file_path":"src/a.rs"}}]}}"#;
        assert_eq!(
            summarize(OutputProtocol::ClaudeStreamJson, line).as_deref(),
            Some("Write src/a.rs")
        );
        assert_eq!(summarize(OutputProtocol::ClaudeStreamJson, "not json"), None);
    }
}
