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
            (Some(_), Some(v)) => format!("installed, {v}"),
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
