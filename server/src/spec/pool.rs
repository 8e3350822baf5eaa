//! The `[pool]` table of gadugi.toml: the warm worktree pool (how many finished worktrees
//! are kept, how much disk they may use, which ignored build outputs survive recycling).
//! Checked when the configuration loads; `run/pool.rs` carries it out.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::spec::toml_text::find_key_line_in;

/// One `keep` entry and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepPath {
    /// Relative, `/`-separated, without `..`; ends in `/` when written so (a folder).
    pub path: String,
    /// 1-based line in gadugi.toml, when known.
    pub line: Option<usize>,
}

impl KeepPath {
    /// The `git clean -e` pattern that keeps exactly this path: anchored at the worktree's
    /// top (`/target/`), so a `target/` deeper down is not kept.
    pub fn clean_exclusion(&self) -> String {
        format!("/{}", self.path)
    }

    /// The path without its trailing `/`.
    pub fn trimmed(&self) -> &str {
        self.path.trim_end_matches('/')
    }
}

/// The `[pool]` table. `max_worktrees = 0` (the default) turns the pool off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolConfig {
    /// Most pooled worktrees per repository; 0: no pool.
    pub max_worktrees: usize,
    /// Most bytes the pooled worktrees may use together, when set.
    pub max_disk: Option<u64>,
    /// Ignored paths that survive recycling (build outputs, caches).
    pub keep: Vec<KeepPath>,
}

/// The `[pool]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    max_worktrees: Option<usize>,
    max_disk: Option<toml::Value>,
    #[serde(default)]
    keep: Vec<String>,
}

/// Most pooled worktrees accepted.
pub const MAX_POOLED: usize = 1024;

impl PoolConfig {
    /// Whether finished worktrees are pooled at all.
    pub fn enabled(&self) -> bool {
        self.max_worktrees > 0
    }

    /// Checks the `[pool]` table of gadugi.toml at `path` (text `text`). Whether each keep
    /// path is ignored and untracked needs the repository: [`PoolConfig::check_keep_ignored`].
    pub fn from_section(path: &Path, text: &str, section: PoolSection) -> Result<PoolConfig, InputError> {
        let at_key = |key: &str, problem: String, fix: &str| {
            InputError::at(path, find_key_line_in(text, Some("pool"), key), problem, fix)
        };
        let mut config = PoolConfig::default();
        if let Some(n) = section.max_worktrees {
            if n > MAX_POOLED {
                return Err(at_key(
                    "max_worktrees",
                    format!("max_worktrees = {n} is more than {MAX_POOLED}"),
                    "keep a few finished worktrees, e.g. max_worktrees = 16 (0 turns the pool off)",
                ));
            }
            config.max_worktrees = n;
        }
        if let Some(v) = section.max_disk {
            config.max_disk = Some(parse_size(&v).ok_or_else(|| {
                at_key(
                    "max_disk",
                    format!("max_disk `{v}` is not a size like \"500M\" or \"20G\""),
                    "write a number of bytes or a number with K, M, G or T, e.g. max_disk = \"20G\"",
                )
            })?);
        }
        for written in section.keep {
            let line = text
                .lines()
                .position(|l| l.contains(&format!("\"{written}\"")))
                .map(|i| i + 1)
                .or_else(|| find_key_line_in(text, Some("pool"), "keep"));
            let keep = clean_keep(&written).ok_or_else(|| {
                InputError::at(
                    path,
                    line,
                    format!("keep path `{written}` must be a relative path inside the worktree, without `..`, globs, .git or .gadugi"),
                    "name an ignored build output folder, e.g. keep = [\"target/\"]",
                )
            })?;
            config.keep.push(KeepPath { path: keep, line });
        }
        Ok(config)
    }

    /// Refuses a keep path that the repository at `root` tracks or does not ignore: only
    /// ignored, untracked paths may survive recycling (anything else would carry one task's
    /// files into another). `config_file` is gadugi.toml, named in the error.
    pub fn check_keep_ignored(&self, root: &Path, config_file: &Path) -> Result<(), InputError> {
        if !self.enabled() || self.keep.is_empty() {
            return Ok(());
        }
        let repo = crate::git::Repo::discover(root)?;
        for k in &self.keep {
            let bad = |problem: String| {
                InputError::at(
                    config_file,
                    k.line,
                    problem,
                    "keep only paths git ignores (list them in .gitignore) and does not track, e.g. target/",
                )
            };
            let tracked = repo
                .tracks(k.trimmed())
                .map_err(|e| bad(format!("cannot check keep path `{}`: {e:#}", k.path)))?;
            if tracked {
                return Err(bad(format!(
                    "keep path `{}` is tracked by git: recycling a worktree may keep only ignored build outputs",
                    k.path
                )));
            }
            let ignored = repo
                .is_ignored(&k.path)
                .map_err(|e| bad(format!("cannot check keep path `{}`: {e:#}", k.path)))?;
            if !ignored {
                return Err(bad(format!(
                    "keep path `{}` is not ignored by git: recycling a worktree may keep only ignored build outputs",
                    k.path
                )));
            }
        }
        Ok(())
    }
}

/// `a//b/` → `a/b/`; `None` for absolute paths, `..`, globs, `.git` or `.gadugi` inside.
fn clean_keep(p: &str) -> Option<String> {
    if p.contains(['*', '?', '[', '\\', '!', '\0']) || p.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if parts.is_empty()
        || parts
            .iter()
            .any(|s| *s == ".." || *s == ".git" || *s == crate::layout::STATE_DIR)
    {
        return None;
    }
    let slash = if p.ends_with('/') { "/" } else { "" };
    Some(format!("{}{slash}", parts.join("/")))
}

/// `"500M"`, `"20G"`, `"1.5T"`, `"4096"` or an integer → bytes (K = 1024).
pub fn parse_size(v: &toml::Value) -> Option<u64> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok().filter(|n| *n > 0),
        toml::Value::String(s) => {
            let s = s.trim();
            let upper = s.to_ascii_uppercase();
            let upper = upper.strip_suffix('B').filter(|u| !u.is_empty()).unwrap_or(&upper);
            let (digits, unit) = match upper.char_indices().last()? {
                (i, c) if c.is_ascii_alphabetic() => (&upper[..i], c),
                _ => (upper, ' '),
            };
            let shift = match unit {
                ' ' => 0,
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            let n: f64 = digits.trim().parse().ok()?;
            let bytes = n * (1u64 << shift) as f64;
            (n.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(s: &str) -> Option<u64> {
        parse_size(&toml::Value::String(s.into()))
    }

    #[test]
    fn sizes() {
        assert_eq!(size("500M"), Some(500 << 20));
        assert_eq!(size("20G"), Some(20 << 30));
        assert_eq!(size("20gb"), Some(20 << 30));
        assert_eq!(size("1.5K"), Some(1536));
        assert_eq!(size("4096"), Some(4096));
        assert_eq!(parse_size(&toml::Value::Integer(7)), Some(7));
        for bad in ["", "G", "-1G", "20X", "lots", "0"] {
            assert_eq!(size(bad), None, "{bad}");
        }
    }

    #[test]
    fn keep_paths_are_plain_relative_paths() {
        assert_eq!(clean_keep("target/").as_deref(), Some("target/"));
        assert_eq!(
            clean_keep("./node_modules//.cache/").as_deref(),
            Some("node_modules/.cache/")
        );
        assert_eq!(clean_keep("dist").as_deref(), Some("dist"));
        for bad in ["/abs", "../up", "a/../b", "*.o", ".git/x", ".gadugi/", "", "!x"] {
            assert_eq!(clean_keep(bad), None, "{bad}");
        }
        let k = KeepPath {
            path: "target/".into(),
            line: None,
        };
        assert_eq!(k.clean_exclusion(), "/target/");
        assert_eq!(k.trimmed(), "target");
    }

    #[test]
    fn bad_keep_names_its_line() {
        let text = "[pool]\nmax_worktrees = 2\nkeep = [\n  \"target/\",\n  \"../x\",\n]\n";
        let section: PoolSection = toml::from_str::<toml::Table>(text).unwrap()["pool"]
            .clone()
            .try_into()
            .unwrap();
        let e = PoolConfig::from_section(Path::new("/r/gadugi.toml"), text, section).unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.problem.contains("../x"), "{}", e.problem);
    }
}
