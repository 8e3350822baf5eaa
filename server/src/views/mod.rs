//! Views of a run for people: terminal progress (live or plain) and the end-of-run reports.

pub mod progress;
pub mod report;
