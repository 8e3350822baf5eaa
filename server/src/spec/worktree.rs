//! The `[worktree]` table of gadugi.toml and the `.worktreeinclude` file: which local files
//! reach each worktree, its setup and teardown commands, its ports and its cache folders.
//! Checked when the configuration loads; `run/workspace.rs` carries them out.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::layout::STATE_DIR;
use crate::spec::toml_text::{duration_value, find_key_line_in};

/// Ports per task unless `[worktree] ports` says otherwise.
pub const DEFAULT_PORT_BLOCK: u16 = 10;
/// Most ports one task may ask for.
pub const MAX_PORT_BLOCK: u16 = 1000;
/// Port blocks come from this range unless `[worktree] port_range` says otherwise: below the
/// kernel's ephemeral ports (32768 and up on Linux), which outgoing connections use.
pub const DEFAULT_PORT_RANGE: (u16, u16) = (20000, 32767);
/// File at the repository root listing local files to copy into each worktree, in
/// gitignore syntax (the convention Claude Code and Roo Code use).
pub const INCLUDE_FILE: &str = ".worktreeinclude";
/// Default time limit of all setup commands of one task together.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default time limit of the teardown commands of one worktree.
pub const DEFAULT_TEARDOWN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How a cache folder reaches a worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// A symlink to the main checkout's folder: instant, no disk, but shared (writes land in
    /// the main checkout's folder).
    Symlink,
    /// A copy: copy-on-write clones (reflink) where the file system supports them (Btrfs,
    /// XFS, APFS...), a plain copy otherwise. Private to the task.
    Copy,
}

/// One `[worktree] cache` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDir {
    /// Folder relative to the repository root, `/`-separated.
    pub path: String,
    /// How it reaches each worktree.
    pub mode: CacheMode,
}

/// One include pattern and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncludePattern {
    /// `.worktreeinclude` or `gadugi.toml`.
    pub file: PathBuf,
    /// 1-based line in `file`, when known.
    pub line: Option<usize>,
    /// The pattern, in gitignore syntax.
    pub pattern: String,
}

/// The `[worktree]` table of gadugi.toml plus the `.worktreeinclude` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorktreeConfig {
    /// Patterns of local files to copy: `.worktreeinclude` first, then `include`.
    pub include: Vec<IncludePattern>,
    /// Commands run (through `sh -c`) in each new worktree before the agent.
    pub setup: Vec<String>,
    /// Time limit of all setup commands of one task together.
    pub setup_timeout: Duration,
    /// Commands run in a worktree before `gadugi cleanup` removes it.
    pub teardown: Vec<String>,
    /// Time limit of the teardown commands.
    pub teardown_timeout: Duration,
    /// Ports per task (`GADUGI_PORT_COUNT`); 0 gives no ports.
    pub ports: u16,
    /// Range (inclusive) port blocks are taken from.
    pub port_range: (u16, u16),
    /// Folders made cheap per worktree.
    pub cache: Vec<CacheDir>,
}

impl Default for WorktreeConfig {
    fn default() -> Self {
        WorktreeConfig {
            include: vec![],
            setup: vec![],
            setup_timeout: DEFAULT_SETUP_TIMEOUT,
            teardown: vec![],
            teardown_timeout: DEFAULT_TEARDOWN_TIMEOUT,
            ports: DEFAULT_PORT_BLOCK,
            port_range: DEFAULT_PORT_RANGE,
            cache: vec![],
        }
    }
}

/// The `[worktree]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorktreeSection {
    #[serde(default)]
    include: Vec<String>,
    setup: Option<toml::Value>,
    setup_timeout: Option<toml::Value>,
    teardown: Option<toml::Value>,
    teardown_timeout: Option<toml::Value>,
    ports: Option<u16>,
    port_range: Option<String>,
    #[serde(default)]
    cache: Vec<CacheSection>,
}

/// One `cache` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheSection {
    path: String,
    mode: CacheMode,
}

impl WorktreeConfig {
    /// Checks the `[worktree]` table of gadugi.toml at `path` (text `text`).
    pub fn from_section(
        root: &Path,
        path: &Path,
        text: &str,
        section: WorktreeSection,
    ) -> Result<WorktreeConfig, InputError> {
        let at_key = |key: &str, problem: String, fix: &str| {
            InputError::at(path, find_key_line_in(text, Some("worktree"), key), problem, fix)
        };
        let mut config = WorktreeConfig::default();
        for pattern in section.include {
            let line = line_containing(text, &pattern).or_else(|| find_key_line_in(text, Some("worktree"), "include"));
            config.include.push(IncludePattern {
                file: path.to_path_buf(),
                line,
                pattern,
            });
        }
        check_patterns(root, &config.include)?;
        let commands = |key: &str, value: Option<toml::Value>| match value {
            None => Ok(vec![]),
            Some(v) => command_list(&v).ok_or_else(|| {
                at_key(
                    key,
                    format!("`{key}` must be a non-empty command or a list of non-empty commands"),
                    &format!("for example: {key} = [\"npm ci --prefer-offline\"]"),
                )
            }),
        };
        config.setup = commands("setup", section.setup)?;
        config.teardown = commands("teardown", section.teardown)?;
        let timeout = |key: &str, value: Option<toml::Value>, default: Duration| match value {
            None => Ok(default),
            Some(v) => duration_value(&v).ok_or_else(|| {
                at_key(
                    key,
                    format!("`{key}` must be a positive number of seconds or a string like \"10m\""),
                    &format!("for example: {key} = \"10m\""),
                )
            }),
        };
        config.setup_timeout = timeout("setup_timeout", section.setup_timeout, DEFAULT_SETUP_TIMEOUT)?;
        config.teardown_timeout = timeout("teardown_timeout", section.teardown_timeout, DEFAULT_TEARDOWN_TIMEOUT)?;
        if let Some(n) = section.ports {
            if n > MAX_PORT_BLOCK {
                return Err(at_key(
                    "ports",
                    format!("ports = {n} is more than {} ports per task", MAX_PORT_BLOCK),
                    "ask for the ports a task needs, e.g. ports = 10 (0 gives none)",
                ));
            }
            config.ports = n;
        }
        if let Some(range) = section.port_range {
            config.port_range = parse_range(&range).ok_or_else(|| {
                at_key(
                    "port_range",
                    format!("port_range `{range}` is not a range like \"20000-32767\" within 1024-65535"),
                    "write it as \"FIRST-LAST\", e.g. port_range = \"20000-32767\"",
                )
            })?;
        }
        let (low, high) = config.port_range;
        if config.ports > 0 && u32::from(high) - u32::from(low) + 1 < u32::from(config.ports) {
            return Err(at_key(
                "port_range",
                format!(
                    "port_range {low}-{high} is smaller than one block of {} ports",
                    config.ports
                ),
                "widen port_range or lower ports",
            ));
        }
        for entry in section.cache {
            let line = line_containing(text, &format!("\"{}\"", entry.path))
                .or_else(|| find_key_line_in(text, Some("worktree"), "cache"));
            let bad = |problem: String| {
                InputError::at(
                    path,
                    line,
                    problem,
                    "name a folder relative to the repository root, e.g. { path = \"node_modules\", mode = \"copy\" }",
                )
            };
            let clean = clean_relative(&entry.path).ok_or_else(|| {
                bad(format!(
                    "cache path `{}` must be a relative folder inside the repository, without `..`",
                    entry.path
                ))
            })?;
            if clean.starts_with(".git/") || clean == ".git" || clean == STATE_DIR || clean.starts_with(".gadugi/") {
                return Err(bad(format!("cache path `{clean}` is inside .git or .gadugi")));
            }
            if let Some(other) = config.cache.iter().find(|c| {
                c.path == clean
                    || clean.starts_with(&format!("{}/", c.path))
                    || c.path.starts_with(&format!("{clean}/"))
            }) {
                return Err(bad(format!("cache path `{clean}` overlaps `{}`", other.path)));
            }
            config.cache.push(CacheDir {
                path: clean,
                mode: entry.mode,
            });
        }
        Ok(config)
    }

    /// Reads `.worktreeinclude` at `root` (when it exists) and puts its patterns before the
    /// ones of gadugi.toml.
    pub fn read_include_file(&mut self, root: &Path) -> Result<(), InputError> {
        let file = root.join(INCLUDE_FILE);
        let Some(text) = crate::spec::toml_text::read_config_text(&file)? else {
            return Ok(());
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let from_file: Vec<IncludePattern> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|(i, l)| IncludePattern {
                file: file.clone(),
                line: Some(i + 1),
                pattern: l.to_string(),
            })
            .collect();
        check_patterns(root, &from_file)?;
        self.include.splice(0..0, from_file);
        Ok(())
    }

    /// The include patterns as one gitignore matcher rooted at `root`.
    pub fn matcher(&self, root: &Path) -> Result<Gitignore, String> {
        let mut builder = GitignoreBuilder::new(root);
        for p in &self.include {
            builder
                .add_line(Some(p.file.clone()), &p.pattern)
                .map_err(|e| format!("{}: {e}", p.file.display()))?;
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// Every pattern must compile; the error names its file and line.
fn check_patterns(root: &Path, patterns: &[IncludePattern]) -> Result<(), InputError> {
    for p in patterns {
        let mut builder = GitignoreBuilder::new(root);
        if let Err(e) = builder.add_line(Some(p.file.clone()), &p.pattern) {
            return Err(InputError::at(
                &p.file,
                p.line,
                format!("invalid include pattern `{}`: {e}", p.pattern),
                "write gitignore patterns, e.g. `.env*`, `config/local/` or `!.env.example`",
            ));
        }
    }
    Ok(())
}

/// First 1-based line of `text` that contains `needle`.
fn line_containing(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// A string or a list of strings, each non-empty after trimming.
fn command_list(v: &toml::Value) -> Option<Vec<String>> {
    let list = match v {
        toml::Value::String(s) => vec![s.trim().to_string()],
        toml::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(|s| s.trim().to_string()))
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    (!list.is_empty() && list.iter().all(|c| !c.is_empty() && !c.contains('\0'))).then_some(list)
}

/// `"20000-32767"` → (20000, 32767), both in 1024..=65535, first ≤ last.
fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a >= 1024 && a <= b).then_some((a, b))
}

/// `a/b/` → `a/b`; `None` for absolute paths, `..`, or nothing at all.
fn clean_relative(p: &str) -> Option<String> {
    let mut parts = vec![];
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}
