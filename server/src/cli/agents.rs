//! `gadugi agents`: the profiles of the repository's configuration with their programs and
//! versions.

use std::path::PathBuf;

use crate::agent::inventory::{list_agents, AgentInfo};
use crate::spec::config::Config;

/// `gadugi agents`: the profiles of the repository's configuration (`--repo`, else the
/// current repository when there is one, else the built-ins). Returns the exit code.
pub fn agents(json: bool, repo: Option<PathBuf>) -> anyhow::Result<i32> {
    let explicit = repo.is_some();
    let config = match crate::ops::open_repo(repo) {
        Ok(repo) => Config::load(repo.root())?,
        Err(e) if explicit => return Err(e.into()),
        Err(_) => Config::defaults(&std::env::current_dir()?),
    };
    let agents = list_agents(&config);
    if json {
        println!("{}", serde_json::to_string_pretty(&agents)?);
    } else {
        print!("{}", agents_table(&agents));
    }
    Ok(0)
}

/// The `gadugi agents` table.
pub fn agents_table(agents: &[AgentInfo]) -> String {
    let mut out = String::new();
    for a in agents {
        let state = match (&a.path, &a.version) {
            (Some(_), Some(v)) => match (a.tested, a.tested_version.as_deref()) {
                (Some(true), _) => format!("installed, {v} (tested)"),
                (Some(false), Some(t)) => format!("installed, {v} (not tested; tested: {t})"),
                _ => format!("installed, {v}"),
            },
            (Some(_), None) => "installed, version unknown".to_string(),
            (None, _) => format!(
                "not installed{}",
                a.install.as_deref().map(|i| format!(" ({i})")).unwrap_or_default()
            ),
        };
        out.push_str(&format!("{:<10} {state}\n           {}\n", a.profile, a.command));
        if let Some(p) = &a.permissions {
            out.push_str(&format!("           permissions: {p}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_says_whether_the_version_was_tested() {
        let info = |version: &str, tested: Option<bool>| AgentInfo {
            profile: "codex".into(),
            program: "codex".into(),
            path: Some("/bin/codex".into()),
            version: Some(version.into()),
            tested,
            tested_version: Some("0.171.0".into()),
            command: "codex exec".into(),
            install: None,
            permissions: None,
        };
        let cases: &[(&str, Option<bool>, &str)] = &[
            ("codex-cli 0.171.0", Some(true), "installed, codex-cli 0.171.0 (tested)"),
            (
                "codex-cli 0.180.0",
                Some(false),
                "installed, codex-cli 0.180.0 (not tested; tested: 0.171.0)",
            ),
            ("codex-cli 0.180.0", None, "installed, codex-cli 0.180.0"),
        ];
        crate::testing::check_table(cases, |&(version, tested, want)| {
            let table = agents_table(&[info(version, tested)]);
            (
                version.to_string(),
                want.to_string(),
                table.lines().next().unwrap()[11..].to_string(),
            )
        });
    }
}
