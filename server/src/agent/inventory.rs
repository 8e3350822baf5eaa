//! Every agent profile a configuration offers, with the program it runs, where that program
//! was found and its version: what `gadugi agents` shows.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::builtins::{builtin, BUILTINS};
use crate::agent::profile::AgentProfile;
use crate::fsutil::find_on_path;
use crate::spec::config::Config;

/// The version of each built-in profile's program that `server/tests/agent_clis.rs` and
/// `server/tests/claude_cli.rs` ran against (the versions `scripts/install-agent-clis.sh` and
/// `scripts/install-claude-cli.sh` pin): the one place to update with them.
pub const TESTED_VERSIONS: &[(&str, &str)] = &[
    ("claude", "2.1.329"),
    ("codex", "0.171.0"),
    ("gemini", "0.61.0"),
    ("opencode", "1.18.33"),
    ("aider", "0.86.2"),
];

/// The version of `profile`'s program the tests covered, if any.
pub fn tested_version(profile: &str) -> Option<&'static str> {
    TESTED_VERSIONS.iter().find(|(p, _)| *p == profile).map(|(_, v)| *v)
}

/// Whether a `--version` line (`codex-cli 0.171.0`, `2.1.329 (Claude Code)`) names `version`
/// as a word of its own (`0.171.0` is not `10.171.0` nor `0.171.01`).
pub fn names_version(line: &str, version: &str) -> bool {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .any(|w| w.trim_start_matches('v') == version || w.rsplit('-').next() == Some(version))
}

/// One line of `gadugi agents`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentInfo {
    /// Profile name.
    pub profile: String,
    /// The program it runs.
    pub program: String,
    /// Where the program was found, if it was.
    pub path: Option<PathBuf>,
    /// First line of `program --version`.
    pub version: Option<String>,
    /// Whether that version is the one the tests covered (`tested_version`); None when the
    /// profile has no tested version or the version is unknown.
    pub tested: Option<bool>,
    /// The version the tests covered, for the profiles that have one.
    pub tested_version: Option<String>,
    /// The command line with placeholders.
    pub command: String,
    /// How to install it (built-ins only).
    pub install: Option<String>,
    /// What the profile lets the agent do without asking (built-ins only).
    pub permissions: Option<String>,
}

/// Every profile: the built-ins and the `[profiles]` of the configuration.
pub fn list_agents(config: &Config) -> Vec<AgentInfo> {
    let mut names: Vec<String> = ["claude"]
        .into_iter()
        .chain(BUILTINS.iter().map(|b| b.name))
        .chain(["simulated"])
        .map(str::to_string)
        .collect();
    if config.agent.command.is_some() {
        names.push("command".into());
    }
    names.extend(config.profiles.keys().cloned());
    names
        .into_iter()
        .filter_map(|name| {
            let profile = AgentProfile::resolve(Some(&name), config, None).ok()?;
            let program = profile.argv.first().cloned().unwrap_or_default();
            let path = find_on_path(&program);
            let version = match (&path, name.as_str()) {
                (_, "simulated") => Some(env!("CARGO_PKG_VERSION").to_string()),
                (Some(p), _) => program_version(p),
                (None, _) => None,
            };
            let (install, permissions) = if name == "claude" {
                let permissions = if config.claude.skip_permissions {
                    "--dangerously-skip-permissions with IS_SANDBOX=1: every tool call is allowed".to_string()
                } else {
                    format!(
                        "--permission-mode={}: edits accepted, the --allowedTools run, anything else is denied and reported",
                        config.claude.permission_mode
                    )
                };
                (Some("npm install -g @anthropic-ai/claude-code".to_string()), Some(permissions))
            } else {
                let b = builtin(&name);
                (b.map(|b| b.install.to_string()), b.map(|b| b.permissions.to_string()))
            };
            let tested_version = tested_version(&name);
            let tested = tested_version.zip(version.as_deref()).map(|(t, v)| names_version(v, t));
            Some(AgentInfo {
                command: shell_words::join(&profile.argv),
                profile: name,
                program,
                path,
                version,
                tested,
                tested_version: tested_version.map(str::to_string),
                install,
                permissions,
            })
        })
        .collect()
}

/// First non-empty line of `program --version` (stdin closed, 15 s at most).
pub fn program_version(program: &Path) -> Option<String> {
    let mut child = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    out.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_resolves_with_its_prompt_last() {
        let config = Config::defaults(Path::new("/r/repo"));
        for b in BUILTINS {
            let p = AgentProfile::resolve(Some(b.name), &config, None).unwrap();
            assert_eq!(p.protocol, b.protocol);
            assert!(p.argv.last().unwrap().contains("{prompt"), "{:?}", p.argv);
            let opt = &p.argv[b.options_at];
            assert!(
                opt == "--" || opt.starts_with("--prompt") || opt == "--message-file",
                "{:?}",
                p.argv
            );
        }
        let agents = list_agents(&config);
        assert_eq!(
            agents.iter().map(|a| a.profile.as_str()).collect::<Vec<_>>(),
            ["claude", "codex", "gemini", "aider", "opencode", "simulated"]
        );
        let sim = agents.iter().find(|a| a.profile == "simulated").unwrap();
        assert!(sim.path.is_some() && sim.version.is_some());
    }

    #[test]
    fn tested_versions_are_matched_as_words() {
        let cases: &[(&str, &str, bool)] = &[
            ("codex-cli 0.171.0", "0.171.0", true),
            ("2.1.329 (Claude Code)", "2.1.329", true),
            ("aider 0.86.2", "0.86.2", true),
            ("v1.18.33", "1.18.33", true),
            ("0.61.0", "0.61.0", true),
            ("codex-cli 0.180.0", "0.171.0", false),
            ("10.61.0", "0.61.0", false),
            ("0.61.01", "0.61.0", false),
            ("2.1.3290", "2.1.329", false),
        ];
        crate::testing::check_table(cases, |&(line, version, want)| {
            (format!("{line:?} {version}"), want, names_version(line, version))
        });
        for b in BUILTINS {
            assert!(tested_version(b.name).is_some(), "{} has no tested version", b.name);
        }
        assert!(tested_version("claude").is_some());
    }

    #[test]
    fn version_of_a_real_program() {
        let git = find_on_path("git").unwrap();
        assert!(program_version(&git).unwrap().starts_with("git version"));
    }
}
