//! Reading `gadugi.toml` as text, for error messages that name a line: where a key is
//! written, which line a byte offset is on, and durations as the file may write them.

use std::time::Duration;

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

/// A positive duration from a TOML value: seconds (integer or float) or a string like "15m".
pub fn duration_value(v: &toml::Value) -> Option<Duration> {
    match v {
        toml::Value::Integer(n) if *n > 0 => Some(Duration::from_secs(*n as u64)),
        toml::Value::Float(f) if *f > 0.0 => Duration::try_from_secs_f64(*f).ok(),
        toml::Value::String(s) => crate::spec::task::parse_duration(s),
        _ => None,
    }
}

/// 1-based line of a byte offset.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|&&b| b == b'\n').count() + 1
}
