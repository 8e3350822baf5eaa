//! User-facing errors.
//!
//! Every problem caused by the user's input (prompt files, configuration, the repository
//! they point us at, command-line flags) is an [`InputError`]: it names the file and line,
//! says what is wrong and how to fix it, and makes the process exit with
//! [`EXIT_BAD_INPUT`]. Anything else is an internal failure reported through `anyhow`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit code: every task succeeded (or the command did what it was asked).
pub const EXIT_OK: i32 = 0;
/// Exit code: the run finished but at least one task failed, was skipped or cancelled.
pub const EXIT_TASKS_FAILED: i32 = 1;
/// Exit code: bad input or usage; nothing was created.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code: an internal error (a bug or an environment failure such as a full disk).
pub const EXIT_INTERNAL: i32 = 3;

/// A problem with the user's input, reported as `file:line: problem` plus a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file at fault, when there is one.
    pub file: Option<PathBuf>,
    /// 1-based line in `file`, when known.
    pub line: Option<usize>,
    /// What is wrong, as one sentence without a trailing period.
    pub problem: String,
    /// What the user can do about it.
    pub fix: String,
}

impl InputError {
    /// An error not tied to a file (a flag, the repository as a whole).
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        InputError {
            file: None,
            line: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// An error in `file`, optionally at a 1-based `line`.
    pub fn at(file: &Path, line: Option<usize>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        InputError {
            file: Some(file.to_path_buf()),
            line,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{}: ", file.display(), line)?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            _ => {}
        }
        write!(f, "{}", self.problem)?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// Several input errors found in one pass (all prompt files are checked before reporting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

impl From<InputError> for InputErrors {
    fn from(e: InputError) -> Self {
        InputErrors(vec![e])
    }
}
