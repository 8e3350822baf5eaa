//! The `[approvals]` table: whether an agent's permission requests and questions reach the
//! person, how long they wait, and the rules (Claude Code rule syntax) that answer without
//! asking. Checked when the configuration loads; the broker that carries it out is
//! `agent/approve.rs`.
//!
//! Trust: a repository's `gadugi.toml` is written by whoever committed it, so its `allow`
//! rules and `default = "allow"` would let a repository grant its own agent anything. They
//! count only when the person trusted exactly that configuration with `gadugi trust`
//! (`spec/trust.rs`); otherwise, or once it changed, repository rules may only deny. Allow
//! rules and `default = "allow"` always count when they come from the user's own file,
//! `$XDG_CONFIG_HOME/gadugi/approvals.toml` (else `~/.config/gadugi/approvals.toml`), which
//! holds the same keys at the top level.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::spec::toml_text::{duration_value, explain_parse_error, find_key_line_in, line_of_offset, read_config_text};
use crate::spec::trust::{status_of_config, TrustStatus};

/// How long a question waits for the person before `default` answers it.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    #[default]
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// One rule in Claude Code's syntax: `Tool` (every use) or `Tool(specifier)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The rule as written.
    pub text: String,
    /// Tool name (`Bash`, `Edit`, `mcp__server__tool`, ...).
    pub tool: String,
    /// What is inside the parentheses, when given.
    pub specifier: Option<String>,
}

impl Rule {
    /// Parses `Tool` or `Tool(specifier)`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let t = text.trim();
        let (tool, specifier) = match t.find('(') {
            Some(open) => {
                if !t.ends_with(')') {
                    return Err(format!(
                        "rule `{text}` opens a parenthesis it does not close at its end"
                    ));
                }
                let inner = &t[open + 1..t.len() - 1];
                if inner.trim().is_empty() {
                    return Err(format!("rule `{text}` has empty parentheses"));
                }
                (&t[..open], Some(inner.to_string()))
            }
            None => (t, None),
        };
        if tool.is_empty() || !tool.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("rule `{text}` does not start with a tool name"));
        }
        Ok(Rule {
            text: t.to_string(),
            tool: tool.to_string(),
            specifier,
        })
    }

    /// Whether this rule covers a use of `tool` with `input`, for an agent working in `cwd`.
    ///
    /// `Bash(cmd)` is the exact command, `Bash(prefix:*)` a command starting with `prefix`
    /// (then a space or the end), and `*` anywhere else is a wildcard. An allow rule never
    /// covers a compound command (`;`, `&&`, `|`, `$(...)`, redirections, several lines): each
    /// part would need its own rule, so such a command is asked; a deny rule covers it when
    /// it covers any part. File tools (`Read`, `Edit`, `Write`, `MultiEdit`, `NotebookEdit`,
    /// `Glob`, `Grep`) match their path against a glob: `//abs/**` from the root, `~/x` from
    /// the home folder, anything else from `cwd`. `WebFetch(domain:host)` matches the URL's host.
    pub fn matches(&self, tool: &str, input: &serde_json::Value, cwd: &Path, for_allow: bool) -> bool {
        if self.tool != tool {
            return false;
        }
        let Some(spec) = &self.specifier else { return true };
        match tool {
            "Bash" => {
                let command = input["command"].as_str().unwrap_or("").trim();
                let parts = command_parts(command);
                if for_allow {
                    parts.len() == 1 && command_matches(spec, &parts[0])
                } else {
                    parts.iter().any(|p| command_matches(spec, p)) || command_matches(spec, command)
                }
            }
            "Read" | "Edit" | "Write" | "MultiEdit" | "NotebookEdit" | "Glob" | "Grep" => {
                let path = ["file_path", "notebook_path", "path"]
                    .iter()
                    .find_map(|k| input[*k].as_str())
                    .map(|p| crate::fsutil::join_normalized(cwd, Path::new(p)))
                    .unwrap_or_else(|| cwd.to_path_buf());
                path_matches(spec, &path, cwd)
            }
            "WebFetch" => {
                let url = input["url"].as_str().unwrap_or("");
                let host = url
                    .split("://")
                    .nth(1)
                    .unwrap_or("")
                    .split(['/', ':', '?', '#'])
                    .next()
                    .unwrap_or("");
                match spec.strip_prefix("domain:") {
                    Some(domain) => wildcard(domain, host),
                    None => wildcard(spec, url),
                }
            }
            _ => {
                let target = input
                    .as_object()
                    .and_then(|o| o.values().find_map(|v| v.as_str()))
                    .unwrap_or("");
                wildcard(spec, target)
            }
        }
    }
}

/// The parts of a shell command joined by `;`, `&&`, `||`, `|`, newlines; a command with a
/// substitution (`$(`, backquote) or a redirection is one part that no prefix rule names
/// exactly, so an allow rule never covers it.
fn command_parts(command: &str) -> Vec<String> {
    if command.contains("$(") || command.contains('`') || command.contains('>') || command.contains('<') {
        // Two parts: the whole and a marker no rule matches, so `parts.len() == 1` fails.
        return vec![command.to_string(), String::new()];
    }
    command
        .split(['\n', ';', '|', '&'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn command_matches(spec: &str, command: &str) -> bool {
    match spec.strip_suffix(":*") {
        Some(prefix) => {
            command == prefix
                || (command.starts_with(prefix) && command[prefix.len()..].starts_with(char::is_whitespace))
        }
        None => wildcard(spec, command),
    }
}

/// `*` matches any run of characters; everything else is literal.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn path_matches(spec: &str, path: &Path, cwd: &Path) -> bool {
    let pattern: PathBuf = if let Some(abs) = spec.strip_prefix("//") {
        PathBuf::from("/").join(abs)
    } else if let Some(home) = spec.strip_prefix("~/") {
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(home),
            None => return false,
        }
    } else {
        cwd.join(spec.trim_start_matches("./"))
    };
    globset::GlobBuilder::new(&pattern.to_string_lossy())
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher().is_match(path))
        .unwrap_or(false)
}

/// The `[approvals]` table as written (also the shape of the user's approvals file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    enabled: Option<bool>,
    timeout: Option<toml::Value>,
    default: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

/// The effective approvals settings of a run, trust already applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalsConfig {
    /// Route permission requests and questions to the person (default false: today's behaviour,
    /// anything outside the pre-approved tools is denied and reported).
    pub enabled: bool,
    /// How long a question waits before `default` answers it.
    pub timeout: Duration,
    /// The answer when nobody answered in time.
    pub default: Decision,
    /// Rules answered "allow" without asking (only trusted ones).
    pub allow: Vec<Rule>,
    /// Rules answered "deny" without asking (checked before `allow`).
    pub deny: Vec<Rule>,
    /// What the repository asked for that did not count because it is not trusted.
    pub untrusted: Vec<String>,
}

impl Default for ApprovalsConfig {
    fn default() -> ApprovalsConfig {
        ApprovalsConfig {
            enabled: false,
            timeout: DEFAULT_APPROVAL_TIMEOUT,
            default: Decision::Deny,
            allow: vec![],
            deny: vec![],
            untrusted: vec![],
        }
    }
}

/// Who wrote a section: the repository (untrusted) or the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `gadugi.toml` of the repository: may only deny.
    Repository,
    /// The user's own approvals file: every key counts.
    User,
}

impl ApprovalsConfig {
    /// Folds one section in. `text` is the file's text (for line numbers) and `table` the
    /// table the keys are in (`Some("approvals")` in gadugi.toml, `None` in the user's file).
    pub fn add_section(
        &mut self,
        section: ApprovalsSection,
        source: Source,
        path: &Path,
        text: &str,
        table: Option<&str>,
    ) -> Result<(), InputError> {
        let line = |key: &str| find_key_line_in(text, table, key);
        // What grants counts from the user's file, or from a repository whose configuration
        // the person trusted as it is now.
        let grants = section.default.as_deref() == Some("allow") || !section.allow.is_empty();
        let mut trust_note = None;
        let grants_count = match source {
            Source::User => true,
            Source::Repository if !grants => false,
            Source::Repository => match status_of_config(path, text) {
                TrustStatus::Trusted(_) => true,
                TrustStatus::Changed(record) => {
                    trust_note = Some(format!(
                        " (gadugi.toml changed since you trusted it on {}: run `gadugi trust` again)",
                        record.date()
                    ));
                    false
                }
                TrustStatus::NotTrusted => {
                    trust_note = Some(" (not trusted: `gadugi trust` lets it count)".to_string());
                    false
                }
            },
        };
        if let Some(e) = section.enabled {
            self.enabled = e;
        }
        if let Some(v) = section.timeout {
            self.timeout = duration_value(&v).ok_or_else(|| {
                InputError::at(
                    path,
                    line("timeout"),
                    "[approvals] timeout must be a positive duration, at most a year",
                    "for example: timeout = \"10m\"",
                )
            })?;
        }
        if let Some(d) = section.default {
            let decision = match d.as_str() {
                "allow" => Decision::Allow,
                "deny" => Decision::Deny,
                other => {
                    return Err(InputError::at(
                        path,
                        line("default"),
                        format!("[approvals] default `{other}` is neither \"allow\" nor \"deny\""),
                        "write default = \"deny\" (or \"allow\" in your own approvals file)",
                    ))
                }
            };
            if decision == Decision::Allow && !grants_count {
                self.untrusted.push("default = \"allow\"".into());
            } else {
                self.default = decision;
            }
        }
        for (key, rules) in [("allow", &section.allow), ("deny", &section.deny)] {
            for text_rule in rules {
                let rule = Rule::parse(text_rule).map_err(|problem| {
                    InputError::at(
                        path,
                        line(key),
                        format!("[approvals] {key}: {problem}"),
                        "write rules as Claude Code does: \"Bash(npm test:*)\", \"Edit(src/**)\", \"WebFetch(domain:docs.rs)\"",
                    )
                })?;
                match key {
                    "allow" if !grants_count => self.untrusted.push(format!("allow {}", rule.text)),
                    "allow" => self.allow.push(rule),
                    _ => self.deny.push(rule),
                }
            }
        }
        // The task warning lists `untrusted`: say how to trust it, or why trust given once
        // no longer holds.
        if let (Some(note), Some(last)) = (trust_note, self.untrusted.last_mut()) {
            last.push_str(&note);
        }
        Ok(())
    }

    /// Reads the user's approvals file when it exists.
    pub fn add_user_file(&mut self) -> Result<(), InputError> {
        let Some(path) = user_approvals_file() else {
            return Ok(());
        };
        let Some(text) = read_config_text(&path)? else {
            return Ok(());
        };
        let section: ApprovalsSection = toml::from_str(&text).map_err(|e| {
            InputError::at(
                &path,
                e.span().map(|s| line_of_offset(&text, s.start)),
                explain_parse_error(e.message().trim()),
                "the file takes the keys of [approvals] at its top level: enabled, timeout, default, allow, deny",
            )
        })?;
        self.add_section(section, Source::User, &path, &text, None)
    }

    /// The answer the rules give without asking, with the rule that gave it.
    pub fn decide(&self, tool: &str, input: &serde_json::Value, cwd: &Path) -> Option<(Decision, &Rule)> {
        if let Some(r) = self.deny.iter().find(|r| r.matches(tool, input, cwd, false)) {
            return Some((Decision::Deny, r));
        }
        self.allow
            .iter()
            .find(|r| r.matches(tool, input, cwd, true))
            .map(|r| (Decision::Allow, r))
    }
}

/// `$XDG_CONFIG_HOME/gadugi/approvals.toml`, else `~/.config/gadugi/approvals.toml`.
pub fn user_approvals_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("gadugi").join("approvals.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(t: &str) -> Rule {
        Rule::parse(t).unwrap()
    }

    #[test]
    fn bash_rules_match_like_claude_code() {
        let cwd = Path::new("/w");
        let bash = |c: &str| json!({ "command": c });
        let cases: &[(&str, &str, bool, bool)] = &[
            // rule, command, as allow, as deny
            ("Bash(npm test:*)", "npm test", true, true),
            ("Bash(npm test:*)", "npm test -- --watch", true, true),
            ("Bash(npm test:*)", "npm testing", false, false),
            ("Bash(npm test:*)", "npm test && rm -rf /", false, true),
            ("Bash(npm test:*)", "npm test > /etc/passwd", false, true),
            ("Bash(rm -rf /*)", "rm -rf /home", true, true),
            ("Bash(rm -rf:*)", "ls; rm -rf dist", false, true),
            ("Bash(git status)", "git status", true, true),
            ("Bash(git status)", "git status -s", false, false),
            ("Bash", "anything | at all", true, true),
        ];
        for (r, c, allow, deny) in cases {
            assert_eq!(rule(r).matches("Bash", &bash(c), cwd, true), *allow, "{r} allow {c}");
            assert_eq!(rule(r).matches("Bash", &bash(c), cwd, false), *deny, "{r} deny {c}");
        }
        assert!(!rule("Bash(npm test:*)").matches("Edit", &bash("npm test"), cwd, true));
    }

    #[test]
    fn path_and_domain_rules() {
        let cwd = Path::new("/w");
        let file = |p: &str| json!({ "file_path": p });
        assert!(rule("Edit(src/**)").matches("Edit", &file("src/a/b.rs"), cwd, true));
        assert!(rule("Edit(src/**)").matches("Edit", &file("/w/src/b.rs"), cwd, true));
        assert!(!rule("Edit(src/**)").matches("Edit", &file("/w/tests/b.rs"), cwd, true));
        assert!(!rule("Edit(src/**)").matches("Edit", &file("/w/src/../../etc/x"), cwd, true));
        assert!(rule("Read(//etc/**)").matches("Read", &file("/etc/passwd"), cwd, true));
        let url = json!({ "url": "https://docs.rs/serde/latest" });
        assert!(rule("WebFetch(domain:docs.rs)").matches("WebFetch", &url, cwd, true));
        assert!(!rule("WebFetch(domain:evil.rs)").matches("WebFetch", &url, cwd, true));
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        assert!(Rule::parse("Bash(npm test").unwrap_err().contains("does not close"));
        assert!(Rule::parse("Bash()").unwrap_err().contains("empty"));
        assert!(Rule::parse("(x)").unwrap_err().contains("tool name"));
    }

    #[test]
    fn repository_allow_rules_do_not_count_but_deny_rules_do() {
        let text = "[approvals]\nenabled = true\ndefault = \"allow\"\nallow = [\"Bash(npm test:*)\"]\ndeny = [\"Bash(rm:*)\"]\n";
        let raw: toml::Table = toml::from_str(text).unwrap();
        let section: ApprovalsSection = raw["approvals"].clone().try_into().unwrap();
        let mut c = ApprovalsConfig::default();
        c.add_section(
            section.clone(),
            Source::Repository,
            Path::new("gadugi.toml"),
            text,
            Some("approvals"),
        )
        .unwrap();
        assert!(c.enabled);
        assert_eq!(c.default, Decision::Deny);
        assert!(c.allow.is_empty());
        assert_eq!(c.deny.len(), 1);
        assert_eq!(c.untrusted.len(), 2, "{:?}", c.untrusted);
        let mut user = ApprovalsConfig::default();
        user.add_section(
            section,
            Source::User,
            Path::new("approvals.toml"),
            text,
            Some("approvals"),
        )
        .unwrap();
        assert_eq!(user.default, Decision::Allow);
        assert_eq!(user.allow.len(), 1);
        let cwd = Path::new("/w");
        let (d, r) = user.decide("Bash", &json!({"command": "rm x"}), cwd).unwrap();
        assert_eq!((d, r.text.as_str()), (Decision::Deny, "Bash(rm:*)"));
        let (d, _) = user.decide("Bash", &json!({"command": "npm test"}), cwd).unwrap();
        assert_eq!(d, Decision::Allow);
        assert!(user.decide("Bash", &json!({"command": "make"}), cwd).is_none());
    }

    #[test]
    fn a_bad_rule_names_the_file_and_line() {
        let text = "max_parallel = 2\n[approvals]\nallow = [\"Bash(npm\"]\n";
        let raw: toml::Table = toml::from_str(text).unwrap();
        let section: ApprovalsSection = raw["approvals"].clone().try_into().unwrap();
        let e = ApprovalsConfig::default()
            .add_section(
                section,
                Source::User,
                Path::new("/r/gadugi.toml"),
                text,
                Some("approvals"),
            )
            .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.problem.contains("does not close"), "{}", e.problem);
    }
}
