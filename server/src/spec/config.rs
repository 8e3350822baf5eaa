//! `gadugi.toml`: the committed, repository-wide configuration. Command-line flags override it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::spec::plan::ConflictPolicy;
use crate::spec::toml_text::{duration_value, explain_parse_error, find_key_line_in, line_of_offset, read_config_text};

/// File name of the configuration, at the repository root.
pub const CONFIG_FILE: &str = "gadugi.toml";
/// Default number of agents running at once. Agents mostly wait on a model API, so this is
/// not tied to the core count; four keeps API rate limits and review load manageable.
pub const DEFAULT_MAX_PARALLEL: usize = 4;
/// Most agents at once (the command line's `-j` has the same bound).
pub const MAX_PARALLEL: usize = 256;
/// Default per-task timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Default grace period between SIGTERM and SIGKILL when a task is stopped.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);
/// Longest grace period accepted: a stopped agent must really stop.
pub const MAX_KILL_GRACE: Duration = Duration::from_secs(600);
/// Default branch prefix.
pub const DEFAULT_BRANCH_PREFIX: &str = "gadugi/";

/// The `[agent]` table: which profile runs tasks by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// Profile name: `claude`, `command`, or a name from `[profiles]`.
    pub profile: Option<String>,
    /// Command line for the `command` profile, split like a shell would (no shell runs it).
    pub command: Option<String>,
    /// Extra arguments appended to the profile's command line.
    #[serde(default)]
    pub args: Vec<String>,
}

/// A user-defined profile in `[profiles.NAME]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    /// Command line with placeholders, split like a shell would (no shell runs it).
    pub command: String,
}

/// Raw file shape. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    max_parallel: Option<usize>,
    worktree_dir: Option<String>,
    branch_prefix: Option<String>,
    conflicts: Option<ConflictPolicy>,
    timeout: Option<toml::Value>,
    kill_grace: Option<toml::Value>,
    retries: Option<u32>,
    verify: Option<String>,
    stall_after: Option<toml::Value>,
    circuit_breaker: Option<u32>,
    min_available_memory_mb: Option<u64>,
    max_load: Option<f64>,
    retry_exit_codes: Option<Vec<i32>>,
    retry_patterns: Option<Vec<String>>,
    keep_worktrees: Option<bool>,
    #[serde(default)]
    agent: AgentSection,
    #[serde(default)]
    profiles: BTreeMap<String, ProfileSection>,
    #[serde(default)]
    claude: crate::spec::claude_settings::ClaudeSettings,
    worktree: Option<crate::spec::worktree::WorktreeSection>,
    pool: Option<crate::spec::pool::PoolSection>,
    approvals: Option<crate::spec::approvals::ApprovalsSection>,
    executor: Option<crate::spec::executor::ExecutorSection>,
}

/// The effective configuration of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Agents running at once.
    pub max_parallel: usize,
    /// Directory that holds one worktree per task. Default: `<repo>.gadugi-worktrees` next to
    /// the repository, outside its working tree (nested worktrees upset file watchers, search
    /// and build tools).
    pub worktree_dir: PathBuf,
    /// Prefix of task branch names.
    pub branch_prefix: String,
    /// What to do with tasks that may touch the same files.
    pub conflicts: ConflictPolicy,
    /// Default timeout of one agent attempt.
    pub timeout: Duration,
    /// Grace period between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Default number of retries after a failed attempt.
    pub retries: u32,
    /// A running task silent for longer than this is reported as stalled (never killed).
    pub stall_after: Duration,
    /// After this many attempts in a row fail with the same systemic cause (authentication,
    /// a missing program), no more tasks start; the rest are skipped with that cause.
    pub circuit_breaker: u32,
    /// No agent starts while less memory than this is available (MiB); the run goes one at
    /// a time until it clears.
    pub min_available_memory_mb: u64,
    /// No agent starts while the 1-minute load average is above this; the run goes one at
    /// a time until it clears. Default: 8 × the number of cores (a machine that busy is
    /// overloaded; agents that merely wait on a model API add little load).
    pub max_load: f64,
    /// Exit codes that mean "try again" for this repository's agents.
    pub retry_exit_codes: Vec<i32>,
    /// Output substrings (stdout or stderr) that mean "try again".
    pub retry_patterns: Vec<String>,
    /// Keep the worktrees of succeeded tasks after a run (default: removed; branches stay).
    pub keep_worktrees: bool,
    /// Default verify command.
    pub verify: Option<String>,
    /// The `[agent]` table.
    pub agent: AgentSection,
    /// User-defined profiles.
    pub profiles: BTreeMap<String, ProfileSection>,
    /// The `[claude]` table: options of the `claude` profile.
    pub claude: crate::spec::claude_settings::ClaudeSettings,
    /// The `[worktree]` table and `.worktreeinclude`: local files, setup, caches, ports.
    pub worktree: crate::spec::worktree::WorktreeConfig,
    /// The `[pool]` table: the warm worktree pool (off by default).
    #[serde(default)]
    pub pool: crate::spec::pool::PoolConfig,
    /// The `[approvals]` table (with the user's approvals file): agents that ask the person.
    #[serde(default)]
    pub approvals: crate::spec::approvals::ApprovalsConfig,
    /// The `[executor]` table: where attempts run (this machine, or a cluster).
    #[serde(default)]
    pub executor: crate::spec::executor::ExecutorConfig,
    /// Path and text of the file this came from, to point errors at their line.
    #[serde(skip)]
    source: Option<(PathBuf, String)>,
}

impl Config {
    /// Branch name of a task.
    pub fn branch_name(&self, task_id: &str) -> String {
        format!("{}{task_id}", self.branch_prefix)
    }

    /// Worktree path of a task.
    pub fn worktree_path(&self, task_id: &str) -> PathBuf {
        self.worktree_dir.join(task_id)
    }
}

impl Config {
    /// Defaults for a repository at `root`.
    pub fn defaults(root: &Path) -> Config {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repo".into());
        let parent = root.parent().unwrap_or(root);
        Config {
            max_parallel: DEFAULT_MAX_PARALLEL,
            worktree_dir: parent.join(format!("{name}.gadugi-worktrees")),
            branch_prefix: DEFAULT_BRANCH_PREFIX.into(),
            conflicts: ConflictPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            kill_grace: DEFAULT_KILL_GRACE,
            retries: 0,
            stall_after: Duration::from_secs(600),
            circuit_breaker: 3,
            min_available_memory_mb: 512,
            max_load: 8.0 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) as f64,
            retry_exit_codes: vec![],
            retry_patterns: vec![],
            keep_worktrees: false,
            verify: None,
            agent: AgentSection::default(),
            profiles: BTreeMap::new(),
            claude: crate::spec::claude_settings::ClaudeSettings::default(),
            worktree: Default::default(),
            pool: Default::default(),
            approvals: Default::default(),
            executor: crate::spec::executor::ExecutorConfig::local(),
            source: None,
        }
    }

    /// Reads `gadugi.toml` at `root` when it exists (defaults otherwise), and the
    /// `.worktreeinclude` file next to it.
    pub fn load(root: &Path) -> Result<Config, InputError> {
        let mut config = Config::load_file(root)?;
        config.worktree.read_include_file(root)?;
        config.pool.check_keep_ignored(root, &root.join(CONFIG_FILE))?;
        // The user's own rules count in full; the repository's may only deny (spec/approvals.rs).
        config.approvals.add_user_file()?;
        Ok(config)
    }

    fn load_file(root: &Path) -> Result<Config, InputError> {
        let path = root.join(CONFIG_FILE);
        match read_config_text(&path)? {
            Some(text) => Config::parse(root, &path, &text),
            None => Ok(Config::defaults(root)),
        }
    }

    /// Parses the text of a configuration file located at `path`.
    pub fn parse(root: &Path, path: &Path, text: &str) -> Result<Config, InputError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(text, s.start));
            InputError::at(
                path,
                line,
                explain_parse_error(e.message().trim()),
                "see the configuration section of the README for the keys and their types",
            )
        })?;
        let line_of = |key: &str| find_key_line_in(text, None, key);
        let mut config = Config::defaults(root);
        if let Some(n) = raw.max_parallel {
            if n == 0 || n > MAX_PARALLEL {
                return Err(InputError::at(
                    path,
                    line_of("max_parallel"),
                    format!("max_parallel must be at least 1 and at most {MAX_PARALLEL}, not {n}"),
                    "set the agents to run at once, e.g. max_parallel = 8",
                ));
            }
            config.max_parallel = n;
        }
        if let Some(dir) = raw.worktree_dir {
            config.worktree_dir = crate::fsutil::join_normalized(root, &PathBuf::from(dir));
        }
        if let Some(prefix) = raw.branch_prefix {
            if prefix.starts_with("refs/") {
                return Err(InputError::at(
                    path,
                    line_of("branch_prefix"),
                    format!("branch_prefix `{prefix}` starts with refs/; branch names are already under refs/heads/"),
                    "give the part after refs/heads/, for example branch_prefix = \"gadugi/\"",
                ));
            }
            if !crate::git::Repo::is_valid_branch_name(&format!("{prefix}x")) {
                return Err(InputError::at(
                    path,
                    line_of("branch_prefix"),
                    format!("branch_prefix `{prefix}` does not make valid branch names"),
                    "use letters, digits, `-`, `_` and `/`, for example \"gadugi/\"",
                ));
            }
            config.branch_prefix = prefix;
        }
        if let Some(c) = raw.conflicts {
            config.conflicts = c;
        }
        if let Some(v) = raw.timeout {
            config.timeout = duration_value(&v).ok_or_else(|| {
                InputError::at(
                    path,
                    line_of("timeout"),
                    "timeout must be a positive number of seconds or a string like \"30m\", at most a year",
                    "for example: timeout = \"45m\"",
                )
            })?;
        }
        if let Some(v) = raw.kill_grace {
            config.kill_grace = duration_value(&v).filter(|d| *d <= MAX_KILL_GRACE).ok_or_else(|| {
                InputError::at(
                    path,
                    line_of("kill_grace"),
                    "kill_grace must be a positive number of seconds up to 600, or a string like \"5s\"",
                    "for example: kill_grace = \"5s\"",
                )
            })?;
        }
        if let Some(v) = raw.stall_after {
            config.stall_after = duration_value(&v).ok_or_else(|| {
                InputError::at(
                    path,
                    line_of("stall_after"),
                    "stall_after must be a positive duration, at most a year",
                    "for example: stall_after = \"10m\"",
                )
            })?;
        }
        if let Some(k) = raw.circuit_breaker {
            if k == 0 {
                return Err(InputError::at(
                    path,
                    line_of("circuit_breaker"),
                    "circuit_breaker must be at least 1",
                    "for example: circuit_breaker = 3",
                ));
            }
            config.circuit_breaker = k;
        }
        if let Some(m) = raw.min_available_memory_mb {
            config.min_available_memory_mb = m;
        }
        if let Some(l) = raw.max_load {
            if !(l > 0.0 && l.is_finite()) {
                return Err(InputError::at(
                    path,
                    line_of("max_load"),
                    "max_load must be a positive number",
                    "for example: max_load = 8.0",
                ));
            }
            config.max_load = l;
        }
        if let Some(codes) = raw.retry_exit_codes {
            if let Some(bad) = codes.iter().find(|c| !(1..=255).contains(*c)) {
                return Err(InputError::at(
                    path,
                    line_of("retry_exit_codes"),
                    format!("retry_exit_codes has {bad}; a failing exit code is from 1 to 255"),
                    "list the codes your agent exits with on a temporary failure, e.g. retry_exit_codes = [75]",
                ));
            }
            config.retry_exit_codes = codes;
        }
        if let Some(p) = raw.retry_patterns {
            config.retry_patterns = p.into_iter().filter(|p| !p.is_empty()).collect();
        }
        if let Some(k) = raw.keep_worktrees {
            config.keep_worktrees = k;
        }
        if let Some(r) = raw.retries {
            config.retries = r;
        }
        config.verify = raw.verify.filter(|v| !v.trim().is_empty());
        let commands = config
            .verify
            .iter()
            .map(|v| ("verify", None, v))
            .chain(raw.agent.command.iter().map(|c| ("command", Some("agent"), c)))
            .chain(raw.agent.args.iter().map(|a| ("args", Some("agent"), a)));
        for (key, section, value) in commands {
            if value.contains('\0') {
                return Err(InputError::at(
                    path,
                    find_key_line_in(text, section, key),
                    format!("`{key}` contains a NUL character, which no command line can hold"),
                    "remove the \\u0000 from it",
                ));
            }
        }
        config.agent = raw.agent;
        config.profiles = raw.profiles;
        if let Err((key, e)) = raw.claude.validate() {
            return Err(InputError::at(
                path,
                find_key_line_in(text, Some("claude"), key),
                e.problem,
                e.fix,
            ));
        }
        config.claude = raw.claude;
        if let Some(section) = raw.worktree {
            config.worktree = crate::spec::worktree::WorktreeConfig::from_section(root, path, text, section)?;
        }
        if let Some(section) = raw.pool {
            config.pool = crate::spec::pool::PoolConfig::from_section(path, text, section)?;
        }
        if let Some(section) = raw.approvals {
            config.approvals.add_section(
                section,
                crate::spec::approvals::Source::Repository,
                path,
                text,
                Some("approvals"),
            )?;
        }
        if let Some(section) = raw.executor {
            config.executor = crate::spec::executor::ExecutorConfig::from_section(path, text, section)?;
        }
        config.source = Some((path.to_path_buf(), text.to_string()));
        Ok(config)
    }
}

impl Config {
    /// Points an error found after parsing at the line of `key` in `[section]` (or at the
    /// top level) of gadugi.toml, when the configuration came from that file and the error
    /// names no file yet.
    pub fn blame(&self, mut error: InputError, section: Option<&str>, key: &str) -> InputError {
        if let (None, Some((path, text))) = (&error.file, &self.source) {
            error.file = Some(path.clone());
            error.line = find_key_line_in(text, section, key);
        }
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_keys() {
        let root = Path::new("/r/repo");
        let c = Config::parse(root, Path::new("/r/repo/gadugi.toml"), "max_parallel = 3\nbranch_prefix = \"ai/\"\ntimeout = \"15m\"\nconflicts = \"warn\"\n[agent]\nprofile = \"command\"\ncommand = \"my-agent --task {prompt_file}\"\n").unwrap();
        assert_eq!(c.max_parallel, 3);
        assert_eq!(c.branch_prefix, "ai/");
        assert_eq!(c.timeout, Duration::from_secs(900));
        assert_eq!(c.conflicts, ConflictPolicy::Warn);
        assert_eq!(c.agent.command.as_deref(), Some("my-agent --task {prompt_file}"));
        assert_eq!(c.worktree_dir, PathBuf::from("/r/repo.gadugi-worktrees"));
    }

    #[test]
    fn unknown_key_names_its_line() {
        let e = Config::parse(
            Path::new("/r"),
            Path::new("/r/gadugi.toml"),
            "max_parallel = 2\nmax_paralel = 3\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.problem.contains("max_paralel"), "{}", e.problem);
    }

    #[test]
    fn zero_parallel_is_refused() {
        let e = Config::parse(Path::new("/r"), Path::new("/r/gadugi.toml"), "\nmax_parallel = 0\n").unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
