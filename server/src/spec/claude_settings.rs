//! The `[claude]` table of gadugi.toml: the settings of the Claude Code profile, checked
//! when the configuration loads. The command line they produce is the agent layer's
//! (`agent/claude.rs`).

use serde::Deserialize;

use crate::error::InputError;

/// Model turns allowed per attempt unless `[claude] max_turns` says otherwise. High enough
/// for real implementation work, low enough that a looping agent stops by itself.
pub const DEFAULT_MAX_TURNS: u32 = 100;
/// Tools allowed without asking under the default `acceptEdits` permission mode.
pub const DEFAULT_ALLOWED_TOOLS: &[&str] = &["Read", "Edit", "Write", "Glob", "Grep", "Bash", "Task"];
/// Default permission mode: file edits are accepted, the tools of `allowed_tools` run
/// without a prompt, anything else is denied (and reported) instead of waiting for an answer.
pub const DEFAULT_PERMISSION_MODE: &str = "acceptEdits";
/// Permission modes Claude Code's `--permission-mode` accepts.
pub const PERMISSION_MODES: &[&str] = &[
    "acceptEdits",
    "auto",
    "bypassPermissions",
    "default",
    "dontAsk",
    "manual",
    "plan",
];
/// The custom agent a task runs as when `.claude/agents/<name>.md` exists in its worktree.
pub const DEFAULT_WORKFLOW_AGENT: &str = "WorkflowManager";

/// The `[claude]` table of gadugi.toml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaudeSettings {
    /// `--model`; Claude Code's own default when unset.
    pub model: Option<String>,
    /// `--max-turns`.
    pub max_turns: u32,
    /// `--permission-mode`.
    pub permission_mode: String,
    /// `--allowedTools`, joined with commas.
    pub allowed_tools: Vec<String>,
    /// Run with `--dangerously-skip-permissions` (and `IS_SANDBOX=1`, without which Claude
    /// Code refuses it as root) instead of the permission mode and tool list.
    pub skip_permissions: bool,
    /// Custom agent to run every task as (`--agent NAME`). Unset: `WorkflowManager` when
    /// `.claude/agents/WorkflowManager.md` exists in the task's worktree. Empty: never.
    pub agent: Option<String>,
    /// More arguments, placed before the prompt.
    pub extra_args: Vec<String>,
}

impl Default for ClaudeSettings {
    fn default() -> ClaudeSettings {
        ClaudeSettings {
            model: None,
            max_turns: DEFAULT_MAX_TURNS,
            permission_mode: DEFAULT_PERMISSION_MODE.into(),
            allowed_tools: DEFAULT_ALLOWED_TOOLS.iter().map(|s| s.to_string()).collect(),
            skip_permissions: false,
            agent: None,
            extra_args: vec![],
        }
    }
}

impl ClaudeSettings {
    /// Checks values Claude Code would refuse, naming the key in `[claude]`.
    pub fn validate(&self) -> Result<(), (&'static str, InputError)> {
        if self.max_turns == 0 {
            return Err((
                "max_turns",
                InputError::new("[claude] max_turns must be at least 1", "for example: max_turns = 50"),
            ));
        }
        if !PERMISSION_MODES.contains(&self.permission_mode.as_str()) {
            return Err((
                "permission_mode",
                InputError::new(
                    format!(
                        "[claude] permission_mode `{}` is not one Claude Code knows",
                        self.permission_mode
                    ),
                    format!("use one of: {}", PERMISSION_MODES.join(", ")),
                ),
            ));
        }
        if let Some(bad) = self
            .allowed_tools
            .iter()
            .find(|t| t.trim().is_empty() || t.contains(','))
        {
            return Err((
                "allowed_tools",
                InputError::new(
                    format!("[claude] allowed_tools has the entry `{bad}`"),
                    "give one tool per entry, for example: allowed_tools = [\"Read\", \"Edit\", \"Bash(cargo test:*)\"]",
                ),
            ));
        }
        if let Some(name) = &self.agent {
            if !name.is_empty() && !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err((
                    "agent",
                    InputError::new(
                        format!("[claude] agent `{name}` is not a valid agent name"),
                        "use the file name of .claude/agents/NAME.md without .md (letters, digits, - and _)",
                    ),
                ));
            }
        }
        Ok(())
    }
}
