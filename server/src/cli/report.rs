//! `gadugi report [RUN] [--json]`: writes a run's report (`ops::report`, as the editor's
//! "Show Report" does) and prints it.

use anyhow::Result;

use crate::error::EXIT_OK;
use crate::views::report::{report_json, report_markdown};

/// `gadugi report`.
pub fn report(run: Option<String>, json: bool) -> Result<i32> {
    let loaded = crate::ops::load_run(None, run)?;
    let files = crate::ops::report::write(&loaded)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report_json(&loaded.state))?);
    } else {
        print!("{}", report_markdown(&loaded.state));
        eprintln!(
            "Report: {} (timeline: {})",
            files.markdown.display(),
            files.timeline.display()
        );
    }
    Ok(EXIT_OK)
}
