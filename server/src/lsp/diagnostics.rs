//! Diagnostics on prompt files from two sources, published together: plan problems (found
//! while the user edits, or when a command refuses to start) and run results (failed and
//! skipped tasks of the latest run that included the file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tower_lsp_server::ls_types::*;

use crate::core::events::TaskStatus;
use crate::core::state::RunState;
use crate::error::InputError;
use crate::layout::Layout;

/// Where a diagnostic comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Plan,
    Run,
}

/// The current diagnostics of every file, by source.
#[derive(Debug, Default)]
pub struct Diagnostics {
    files: HashMap<PathBuf, (Vec<Diagnostic>, Vec<Diagnostic>)>,
}

impl Diagnostics {
    /// Sets one source's diagnostics of `path`; returns the file's full list when it changed.
    pub fn set(&mut self, path: &Path, source: Source, list: Vec<Diagnostic>) -> Option<Vec<Diagnostic>> {
        let entry = self.files.entry(path.to_path_buf()).or_default();
        let slot = match source {
            Source::Plan => &mut entry.0,
            Source::Run => &mut entry.1,
        };
        if *slot == list {
            return None;
        }
        *slot = list;
        Some(entry.0.iter().chain(&entry.1).cloned().collect())
    }

    /// Files that have diagnostics of `source` now.
    pub fn files_with(&self, source: Source) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter(|(_, (plan, run))| {
                !match source {
                    Source::Plan => plan,
                    Source::Run => run,
                }
                .is_empty()
            })
            .map(|(p, _)| p.clone())
            .collect()
    }
}

/// A diagnostic for an input error, on its line (the whole line) or the file's first line.
pub fn from_input_error(e: &InputError, text: Option<&str>) -> Diagnostic {
    let line = e.line.map(|l| l.saturating_sub(1)).unwrap_or(0);
    let width = text
        .and_then(|t| t.lines().nth(line))
        .map(|l| l.encode_utf16().count())
        .unwrap_or(0) as u32;
    let message = if e.fix.is_empty() {
        e.problem.clone()
    } else {
        format!("{}\nfix: {}", e.problem, e.fix)
    };
    Diagnostic {
        range: Range::new(Position::new(line as u32, 0), Position::new(line as u32, width)),
        severity: Some(DiagnosticSeverity::ERROR),
        source: Some("gadugi".into()),
        message,
        ..Default::default()
    }
}

/// The range of a prompt file's title line (its first heading after the front matter, else
/// its first non-empty line), where run results are shown; the file's start when unreadable.
fn title_range(prompt: &std::path::Path) -> Range {
    let Ok(text) = std::fs::read_to_string(prompt) else {
        return Range::default();
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0;
    if lines.first().is_some_and(|l| l.trim_end() == "---") {
        if let Some(end) = lines.iter().skip(1).position(|l| l.trim_end() == "---") {
            start = end + 2;
        }
    }
    let pick = (start..lines.len())
        .find(|&i| lines[i].starts_with('#'))
        .or_else(|| (start..lines.len()).find(|&i| !lines[i].trim().is_empty()));
    match pick {
        Some(i) => {
            let width = lines[i].encode_utf16().count() as u32;
            Range::new(Position::new(i as u32, 0), Position::new(i as u32, width))
        }
        None => Range::default(),
    }
}

/// Diagnostics from run results: for every prompt file, the latest of `runs` (oldest first)
/// that included it decides; a failed task gives an error, a skipped one a warning pointing
/// at the dependency that caused the skip.
pub fn from_runs<'a>(runs: impl Iterator<Item = &'a RunState>) -> HashMap<PathBuf, Vec<Diagnostic>> {
    let mut latest: HashMap<PathBuf, Vec<Diagnostic>> = HashMap::new();
    for run in runs {
        for t in &run.tasks {
            let mut list = vec![];
            let first_line = Range::new(Position::new(0, 0), Position::new(0, 0));
            let title = || title_range(&t.prompt_file);
            match t.status {
                TaskStatus::Failed => {
                    let log = Layout::new(&run.repo_root)
                        .attempt_dir(&run.run_id, &t.id, t.attempts.max(1))
                        .join("stdout.log");
                    let mut message = format!(
                        "task `{}` failed in run {}: {}",
                        t.id,
                        run.run_id,
                        t.error.as_deref().unwrap_or("no error reported")
                    );
                    match (t.exit_code, t.signal) {
                        (Some(code), _) => message.push_str(&format!("\nexit status: {code}")),
                        (None, Some(sig)) => message.push_str(&format!("\nkilled by signal {sig}")),
                        _ => {}
                    }
                    message.push_str(&format!("\nlog: {}", log.display()));
                    list.push(Diagnostic {
                        range: title(),
                        severity: Some(DiagnosticSeverity::ERROR),
                        source: Some("gadugi".into()),
                        code: Some(NumberOrString::String("task-failed".into())),
                        message,
                        ..Default::default()
                    });
                }
                TaskStatus::Skipped => {
                    let related: Vec<DiagnosticRelatedInformation> = t
                        .depends_on
                        .iter()
                        .chain(&t.after)
                        .filter_map(|d| run.task(d))
                        .filter(|d| {
                            matches!(
                                d.status,
                                TaskStatus::Failed | TaskStatus::Skipped | TaskStatus::Cancelled
                            )
                        })
                        .filter_map(|d| {
                            Some(DiagnosticRelatedInformation {
                                location: Location::new(Uri::from_file_path(&d.prompt_file)?, first_line),
                                message: format!("dependency `{}` {}", d.id, d.status.as_str()),
                            })
                        })
                        .collect();
                    list.push(Diagnostic {
                        range: title(),
                        severity: Some(DiagnosticSeverity::WARNING),
                        source: Some("gadugi".into()),
                        code: Some(NumberOrString::String("task-skipped".into())),
                        message: format!(
                            "task `{}` was skipped in run {}: {}",
                            t.id,
                            run.run_id,
                            t.error.as_deref().unwrap_or("a dependency did not succeed")
                        ),
                        related_information: (!related.is_empty()).then_some(related),
                        ..Default::default()
                    });
                }
                _ => {}
            }
            latest.insert(t.prompt_file.clone(), list);
        }
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::title_range;
    use tower_lsp_server::ls_types::{Position, Range};

    fn range_of(text: &str) -> Range {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.md");
        std::fs::write(&p, text).unwrap();
        title_range(&p)
    }

    #[test]
    fn run_results_underline_the_title_line() {
        let line = |l: u32, w: u32| Range::new(Position::new(l, 0), Position::new(l, w));
        assert_eq!(range_of("# Bad task\n\nbody\n"), line(0, 10));
        assert_eq!(range_of("---\nid: x\n---\n\n# Tâche ✓\n"), line(4, 9));
        assert_eq!(range_of("\n  plain start\nmore\n"), line(1, 13));
        assert_eq!(range_of(""), Range::default());
        assert_eq!(title_range(std::path::Path::new("/nonexistent/p.md")), Range::default());
    }
}
