//! `gadugi report [RUN] [--json]`: writes and prints a run's report.

use anyhow::Result;

use crate::error::EXIT_OK;
use crate::views::report::{report_json, report_markdown, write_reports};

/// `gadugi report`.
pub fn report(run: Option<String>, json: bool) -> Result<i32> {
    let loaded = crate::ops::load_run(None, run)?;
    write_reports(&loaded.layout, &loaded.state)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report_json(&loaded.state))?);
    } else {
        print!("{}", report_markdown(&loaded.state));
    }
    Ok(EXIT_OK)
}
