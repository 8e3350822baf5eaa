//! Reading configuration files as text, for error messages that name a line: reading the
//! file itself, where a key is written, which line a byte offset is on, durations as the file
//! may write them, and parser messages made readable.

use std::path::Path;
use std::time::Duration;

use crate::error::InputError;

/// Longest duration accepted anywhere (a timeout, a grace period): a year. Larger values are
/// typing mistakes, and would overflow the clock arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Reads a configuration file (`gadugi.toml`, `.worktreeinclude`) as UTF-8 text; `None`
/// when it does not exist. A folder, or anything but a regular file, is refused with a fix.
pub fn read_config_text(path: &Path) -> Result<Option<String>, InputError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Ok(m) if m.is_dir() => {
            return Err(InputError::at(
                path,
                None,
                "is a folder, not a file",
                "remove or rename the folder; the configuration is a text file of that name",
            ))
        }
        Ok(m) if !m.is_file() => {
            return Err(InputError::at(
                path,
                None,
                "is not a regular file (a FIFO, socket or device)",
                "replace it with a text file, or remove it",
            ))
        }
        _ => {}
    }
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::at(path, None, format!("cannot be read: {e}"), "check its permissions"))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| InputError::at(path, None, "is not valid UTF-8", "save it as UTF-8"))
}

/// A parser's message about a number too large for any type (`invalid type: integer
/// `184...` as i128`) in words; other messages as they are.
pub fn explain_parse_error(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: integer `") {
        if let Some((number, _)) = rest.split_once('`') {
            return format!("the number {number} is too large");
        }
    }
    message.to_string()
}

/// 1-based line of `key = ...` inside `[section]` (or before any section when `None`).
pub fn find_key_line_in(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if let Some(header) = l.strip_prefix('[').and_then(|h| h.split(']').next()) {
            current = Some(header.trim().to_string());
            continue;
        }
        let here = current.as_deref() == section;
        if here
            && l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    None
}

/// Parses a positive duration: whole seconds (`30`) or numbers with units `h`, `m` and `s`
/// (`90s`, `15m`, `2h`, `1h30m`). Returns `None` for anything else, including zero.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .map(Duration::from_secs)
            .filter(|d| *d <= MAX_DURATION);
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let mut tail = tail.chars();
        let unit = match tail.next()? {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let seconds = number.parse::<u64>().ok()?.checked_mul(unit)?;
        total = total.checked_add(seconds)?;
        rest = tail.as_str();
    }
    (total > 0)
        .then(|| Duration::from_secs(total))
        .filter(|d| *d <= MAX_DURATION)
}

/// A positive duration from a TOML value: seconds (integer or float) or a string like "15m".
pub fn duration_value(v: &toml::Value) -> Option<Duration> {
    match v {
        toml::Value::Integer(n) if *n > 0 => Some(Duration::from_secs(*n as u64)),
        toml::Value::Float(f) if *f > 0.0 => Duration::try_from_secs_f64(*f).ok(),
        toml::Value::String(s) => parse_duration(s),
        _ => None,
    }
    .filter(|d| *d <= MAX_DURATION)
}

/// 1-based line of a byte offset.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|&&b| b == b'\n').count() + 1
}
