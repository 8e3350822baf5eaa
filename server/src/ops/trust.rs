//! `gadugi trust`: what a repository's configuration can grant, whether the person trusts
//! it, and storing or removing that trust (`spec/trust.rs` defines what is trusted and reads
//! it back when a run loads its configuration).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::error::InputError;
use crate::layout::trust_dir;
use crate::spec::config::Config;
use crate::spec::config::CONFIG_FILE;
use crate::spec::toml_text::read_config_text;
use crate::spec::trust::{
    canonical_form, canonical_root, read_record, sha256_hex, status, trust_file, TrustRecord, TrustStatus,
};

/// A repository's configuration as `gadugi trust` sees it.
#[derive(Debug, Clone)]
pub struct TrustTarget {
    /// The repository root, canonical: the key of its trust record.
    pub root: PathBuf,
    /// Its `gadugi.toml`.
    pub config_file: PathBuf,
    /// The canonical form of the keys that can grant (what trusting trusts).
    pub canonical: String,
    /// Whether that form is trusted now.
    pub status: TrustStatus,
}

/// The repository `gadugi trust` is about, its error saying what trust is for.
fn open(repo: Option<PathBuf>) -> Result<PathBuf, InputError> {
    let repo = crate::ops::open_repo(repo).map_err(|mut e| {
        e.problem = format!(
            "gadugi trust trusts the gadugi.toml of a git repository, and {}",
            e.problem
        );
        e.fix = "cd into the repository whose gadugi.toml you want to trust, or pass --repo DIR".into();
        e
    })?;
    Ok(canonical_root(repo.root()))
}

/// Reads the repository's `gadugi.toml` (checked in full, like a run would) and its trust
/// status. Exit 2 (an [`InputError`]) when it has no `[approvals]` table to trust.
pub fn target(repo: Option<PathBuf>) -> Result<TrustTarget> {
    let root = open(repo)?;
    let config_file = root.join(CONFIG_FILE);
    // The whole file must load: trusting a configuration a run would refuse makes no sense.
    Config::load(&root)?;
    let Some(text) = read_config_text(&config_file)? else {
        return Err(InputError::at(
            &config_file,
            None,
            "does not exist: there is no [approvals] configuration to trust",
            "write gadugi.toml with an [approvals] table (see the README, \"Agents that ask\"), then run `gadugi trust`",
        )
        .into());
    };
    let Some(canonical) = canonical_form(&text) else {
        return Err(InputError::at(
            &config_file,
            None,
            "has no [approvals] table: there is nothing to trust",
            "add one (for example `[approvals]` with `enabled = true` and `allow = [\"Bash(npm test:*)\"]`), then run `gadugi trust` again; rules you want everywhere go in your own ~/.config/gadugi/approvals.toml instead",
        )
        .into());
    };
    let status = status(&root, &canonical);
    Ok(TrustTarget {
        root,
        config_file,
        canonical,
        status,
    })
}

/// Stores trust in `target`'s current configuration: the trust file (mode 0600, in a folder
/// of mode 0700), written atomically. Returns its path.
pub fn trust(target: &TrustTarget) -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let path = trust_file(&target.root).context("no HOME or XDG_STATE_HOME: nowhere to keep the trust record")?;
    let dir = trust_dir().context("no HOME or XDG_STATE_HOME: nowhere to keep the trust record")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    // The folder may predate this (made by hand, or by an older umask): only the person reads it.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("protecting {}", dir.display()))?;
    let record = TrustRecord {
        root: target.root.clone(),
        sha256: sha256_hex(&target.canonical),
        trusted_at: crate::core::state::rfc3339(chrono::Utc::now()),
        sections: target.canonical.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&record)?;
    bytes.push(b'\n');
    crate::fsutil::write_atomic(&path, &bytes)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("protecting {}", path.display()))?;
    Ok(path)
}

/// Removes the trust record of the repository (any version of its configuration). Returns
/// whether there was one. Works without a gadugi.toml: trust is revoked whatever the file holds.
pub fn revoke(repo: Option<PathBuf>) -> Result<bool> {
    let root = open(repo)?;
    let Some(path) = trust_file(&root) else {
        return Ok(false);
    };
    let had = read_record(&root).is_some() || path.exists();
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(had),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}
