//! `gadugi report` and the editor's "Show Report": writes a run's report files and says where
//! they are.

use std::path::PathBuf;

use anyhow::Result;

use crate::ops::LoadedRun;
use crate::views::report::write_reports;

/// Where a run's report files are, once written.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// `report.md`: the tables and text, showing the timeline picture.
    pub markdown: PathBuf,
    /// `report.json`: the same for programs.
    pub json: PathBuf,
    /// `timeline.svg`, next to `report.md`.
    pub timeline: PathBuf,
}

/// Writes (again) the report of a loaded run — `report.md`, `report.json`, `timeline.svg` — from
/// its state now, so a report of a run that is still going, or was merged since, is up to date.
pub fn write(loaded: &LoadedRun) -> Result<ReportFiles> {
    write_reports(&loaded.layout, &loaded.state)?;
    let (markdown, json) = loaded.layout.report_files(&loaded.state.run_id);
    Ok(ReportFiles {
        markdown,
        json,
        timeline: loaded.layout.timeline_file(&loaded.state.run_id),
    })
}
