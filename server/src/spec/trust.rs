//! Trust in a repository's approvals configuration. A repository's `gadugi.toml` is written
//! by whoever committed it, so what in it grants (the `[approvals]` table's `allow` rules and
//! `default = "allow"`) counts only once the person has trusted that exact text with
//! `gadugi trust`. What is trusted is the *canonical form* of the keys that can grant (see
//! [`GRANTING_KEYS`]): their values, re-serialized in sorted order, so whitespace, comments
//! and the rest of the file do not matter, and any change to a granting value does. The
//! record (SHA-256 of that form, when, and the form itself, to show what changed) lives in
//! the user's state folder, one file per repository root; `ops/trust.rs` writes it, this
//! module only reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout::trust_dir;

/// The keys of `gadugi.toml` whose values can grant an agent something without asking,
/// as (table, key); `*` is the whole table. All of them are part of what is trusted: trust
/// given to `[approvals]` is trust in what the agent may do, and `[claude]`'s tool list,
/// permission mode and arguments, `[agent]`'s command and arguments and `[profiles]` decide
/// what is pre-approved before a question is ever asked.
pub const GRANTING_KEYS: &[(&str, &str)] = &[
    ("approvals", "*"),
    ("claude", "allowed_tools"),
    ("claude", "permission_mode"),
    ("claude", "skip_permissions"),
    ("claude", "extra_args"),
    ("agent", "command"),
    ("agent", "args"),
    ("profiles", "*"),
];

/// The canonical form of the granting keys of a `gadugi.toml` text: a TOML document of those
/// keys only, every table's keys sorted. `None` when the text has no `[approvals]` table
/// (nothing to trust) or does not parse (the configuration loader reports that).
pub fn canonical_form(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    table.get("approvals")?.as_table()?;
    let mut picked = toml::Table::new();
    for (section, key) in GRANTING_KEYS {
        let Some(value) = table.get(*section) else { continue };
        let value = if *key == "*" {
            value.clone()
        } else {
            match value.as_table().and_then(|t| t.get(*key)) {
                Some(v) => toml::Value::Table(toml::Table::from_iter([(key.to_string(), v.clone())])),
                None => continue,
            }
        };
        match picked.get_mut(*section).and_then(toml::Value::as_table_mut) {
            Some(existing) => {
                if let toml::Value::Table(t) = value {
                    existing.extend(t);
                }
            }
            None => {
                picked.insert(section.to_string(), value);
            }
        }
    }
    toml::to_string(&sorted(toml::Value::Table(picked)).as_table()?.clone()).ok()
}

/// Rebuilds tables with their keys inserted in sorted order, so the form is the same whether
/// the TOML map keeps insertion order or sorts.
fn sorted(value: toml::Value) -> toml::Value {
    match value {
        toml::Value::Table(t) => {
            let mut entries: Vec<(String, toml::Value)> = t.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            toml::Value::Table(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        toml::Value::Array(a) => toml::Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Hex SHA-256 of some text.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `gadugi trust` stored for one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// The repository root, canonical (symlinks resolved).
    pub root: PathBuf,
    /// SHA-256 of the canonical form that was trusted.
    pub sha256: String,
    /// When (RFC 3339, UTC).
    pub trusted_at: String,
    /// The canonical form that was trusted, to show what changed since.
    pub sections: String,
}

impl TrustRecord {
    /// The day it was trusted (`YYYY-MM-DD`).
    pub fn date(&self) -> &str {
        self.trusted_at.get(..10).unwrap_or(&self.trusted_at)
    }
}

/// Whether a repository's granting configuration is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustStatus {
    /// Never trusted (or revoked).
    NotTrusted,
    /// Trusted, and the text is still the one trusted.
    Trusted(TrustRecord),
    /// Trusted once, but the granting keys changed since: they do not count.
    Changed(TrustRecord),
}

/// The canonical root a repository is known by in the trust store (symlinks resolved, so a
/// repository reached through a link is the same repository).
pub fn canonical_root(root: &Path) -> PathBuf {
    std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
}

/// The trust file of a repository root: `<user state>/trust/<sha256 of the root>.json`.
pub fn trust_file(root: &Path) -> Option<PathBuf> {
    let root = canonical_root(root);
    let name = sha256_hex(&root.to_string_lossy());
    trust_dir().map(|d| d.join(format!("{}.json", &name[..32])))
}

/// The stored record of a repository root, when there is one (an unreadable or foreign file
/// counts as none: trust is never assumed).
pub fn read_record(root: &Path) -> Option<TrustRecord> {
    let text = std::fs::read_to_string(trust_file(root)?).ok()?;
    let record: TrustRecord = serde_json::from_str(&text).ok()?;
    (record.root == canonical_root(root)).then_some(record)
}

/// Whether the canonical form `canonical` of the repository at `root` is trusted.
pub fn status(root: &Path, canonical: &str) -> TrustStatus {
    match read_record(root) {
        None => TrustStatus::NotTrusted,
        Some(r) if r.sha256 == sha256_hex(canonical) => TrustStatus::Trusted(r),
        Some(r) => TrustStatus::Changed(r),
    }
}

/// Trust status of a `gadugi.toml` at `path` with text `text` (its repository root is the
/// file's folder).
pub fn status_of_config(path: &Path, text: &str) -> TrustStatus {
    let (Some(root), Some(canonical)) = (path.parent(), canonical_form(text)) else {
        return TrustStatus::NotTrusted;
    };
    status(root, &canonical)
}

/// A line diff of two canonical forms: `-` lines only in `old`, `+` lines only in `new`
/// (the forms are short and their lines unique enough that this reads as a diff).
pub fn line_diff(old: &str, new: &str) -> Vec<String> {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let mut out: Vec<String> = old_lines
        .iter()
        .filter(|l| !new_lines.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    out.extend(
        new_lines
            .iter()
            .filter(|l| !old_lines.contains(l))
            .map(|l| format!("+ {l}")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "max_parallel = 2\n[claude]\nmodel = \"x\"\nallowed_tools = [\"Read\"]\n[approvals]\nenabled = true\nallow = [\"Bash(npm test:*)\"]\n";

    #[test]
    fn whitespace_comments_and_other_keys_do_not_change_the_form() {
        let base = canonical_form(BASE).unwrap();
        let reformatted = "# a comment\nmax_parallel   = 4\n\n[approvals]\nallow = [ \"Bash(npm test:*)\" ]  # why\nenabled=true\n[claude]\nallowed_tools = [\"Read\",]\nmodel = \"other\"\n";
        assert_eq!(canonical_form(reformatted).unwrap(), base);
        assert!(base.contains("[approvals]"), "{base}");
        assert!(!base.contains("model"), "{base}");
        assert!(!base.contains("max_parallel"), "{base}");
    }

    #[test]
    fn any_change_to_a_granting_key_changes_the_hash() {
        let base = sha256_hex(&canonical_form(BASE).unwrap());
        for changed in [
            BASE.replace("npm test:*", "npm test*"),
            BASE.replace("enabled = true", "enabled = false"),
            BASE.replace("enabled = true", "enabled = true\ntimeout = \"1h\""),
            BASE.replace("enabled = true", "enabled = true\ndefault = \"allow\""),
            BASE.replace("[\"Read\"]", "[\"Read\", \"Bash\"]"),
            format!("{BASE}[profiles.x]\ncommand = \"agent --yolo\"\n"),
        ] {
            assert_ne!(sha256_hex(&canonical_form(&changed).unwrap()), base, "{changed}");
        }
    }

    #[test]
    fn nothing_to_trust_without_an_approvals_table() {
        assert_eq!(
            canonical_form("max_parallel = 2\n[claude]\nallowed_tools = [\"Bash\"]\n"),
            None
        );
        assert_eq!(canonical_form("not toml ["), None);
    }

    #[test]
    fn the_diff_names_what_changed() {
        let old = canonical_form(BASE).unwrap();
        let new = canonical_form(&BASE.replace("npm test:*", "rm:*")).unwrap();
        assert_eq!(
            line_diff(&old, &new),
            ["- allow = [\"Bash(npm test:*)\"]", "+ allow = [\"Bash(rm:*)\"]"]
        );
    }
}
