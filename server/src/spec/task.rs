//! Tasks from prompt files: markdown with optional YAML front matter.
//!
//! See `load_task` for the accepted format. Parsing never panics: every problem becomes an
//! [`InputError`] naming the file and line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::error::InputError;

/// A reference to another task, as written in a prompt file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DependencyRef {
    /// The text as written: a task id (`setup-db`) or a path relative to the prompt file
    /// (`setup-db.md`, `../other/x.md`).
    pub raw: String,
    /// 1-based line of the prompt file where it was written.
    pub line: usize,
}

/// One task, parsed from one prompt file. Validated for shape, not yet against other tasks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskSpec {
    /// Unique id: front matter `id`, else a slug of the file stem. Always matches
    /// `[a-z0-9][a-z0-9._-]*`, never contains `..`, is at most 64 bytes, and so is safe in
    /// a branch name and a directory name.
    pub id: String,
    /// 1-based line of `id:` in the front matter, when given there.
    pub id_line: Option<usize>,
    /// Text of the first `# ` heading of the body; the id when there is none.
    pub title: String,
    /// Absolute, canonical path of the prompt file.
    pub prompt_file: PathBuf,
    /// The markdown body without the front matter.
    pub body: String,
    /// Front matter `depends_on` entries plus every `Depends on: x` line of the body.
    pub depends_on: Vec<DependencyRef>,
    /// Front matter `files`: repository paths or globs the task expects to touch.
    pub files: Vec<String>,
    /// Repository paths the body names (backticked or bare tokens that exist in the
    /// repository's tracked files at the base commit are kept by the planner).
    pub mentioned_paths: Vec<String>,
    /// Front matter `agent`: name of an agent profile.
    pub agent: Option<String>,
    /// Front matter `timeout` (`90s`, `15m`, `2h`, or a number of seconds).
    pub timeout: Option<Duration>,
    /// Front matter `retries`.
    pub retries: Option<u32>,
    /// Front matter `verify`: a command run in the worktree after the agent.
    pub verify: Option<String>,
    /// Front matter `setup`: commands run in the new worktree before the agent, after the
    /// `[worktree] setup` commands of gadugi.toml.
    pub setup: Vec<String>,
}

/// Longest task id, in bytes.
const MAX_ID_LEN: usize = 64;
/// Largest `retries` value accepted.
const MAX_RETRIES: u64 = 100;
/// The front matter's first line in the file (line 1 is the opening `---`).
const FRONT_MATTER_LINE: usize = 2;

/// A front-matter key: its name, what it sets, what its value must be, and an example line
/// (for error messages and the editor's completion and hover).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontMatterKey {
    pub name: &'static str,
    /// What the key sets, in one or two sentences.
    pub doc: &'static str,
    /// What its value must be.
    pub expected: &'static str,
    /// A line that sets it.
    pub example: &'static str,
}

/// Every front-matter key a prompt file may have.
pub const FRONT_MATTER_KEYS: [FrontMatterKey; 9] = [
    FrontMatterKey {
        name: "id",
        doc: "The task's id: its branch and worktree are named after it, and other prompt files depend on it by this name. Default: a slug of the file name.",
        expected: "a string",
        example: "id: api-client",
    },
    FrontMatterKey {
        name: "title",
        doc: "The task's title in progress, trees and reports. Default: the first `# ` heading, else the id.",
        expected: "a non-empty string",
        example: "title: Write the API client",
    },
    FrontMatterKey {
        name: "depends_on",
        doc: "Tasks that must succeed before this one starts (it starts from their branches): task ids or prompt files relative to this one. `Depends on: a, b` lines of the text add more.",
        expected: "a string or a list of strings",
        example: "depends_on: [schema.md, setup-db]",
    },
    FrontMatterKey {
        name: "files",
        doc: "Repository paths or globs the task expects to touch: tasks that may touch the same files are serialized (or warned about, with `conflicts = \"warn\"`).",
        expected: "a string or a list of strings",
        example: "files: [src/api/**, src/lib.rs]",
    },
    FrontMatterKey {
        name: "agent",
        doc: "The agent profile that runs this task: `claude`, `codex`, `gemini`, `aider`, `opencode`, `simulated`, `command`, or a `[profiles.NAME]` of gadugi.toml. Default: `[agent] profile` of gadugi.toml, else `claude`.",
        expected: "a non-empty string",
        example: "agent: claude",
    },
    FrontMatterKey {
        name: "timeout",
        doc: "How long one attempt of the agent may run before it is stopped. Default: `timeout` of gadugi.toml (1 hour).",
        expected: "a positive whole number of seconds or a duration like 90s, 15m, 2h or 1h30m (at most a year)",
        example: "timeout: 30m",
    },
    FrontMatterKey {
        name: "retries",
        doc: "How many more attempts a failed task gets. Default: `retries` of gadugi.toml (0).",
        expected: "an integer from 0 to 100",
        example: "retries: 1",
    },
    FrontMatterKey {
        name: "verify",
        doc: "A command run in the task's worktree after the agent; the task fails when it fails. Default: `verify` of gadugi.toml.",
        expected: "a non-empty command",
        example: "verify: cargo test",
    },
    FrontMatterKey {
        name: "setup",
        doc: "Commands run in the new worktree before the agent starts, after the `[worktree] setup` commands of gadugi.toml.",
        expected: "a non-empty command or a list of non-empty commands",
        example: "setup: npm ci --prefer-offline",
    },
];

/// Loads and checks one prompt file.
///
/// The file is markdown, optionally starting with YAML front matter between a `---` line
/// and the next `---` (or `...`) line; a UTF-8 BOM and trailing whitespace on those lines
/// are allowed. The front matter is a mapping with the keys of [`TaskSpec`] (`id`, `title`,
/// `depends_on`, `files`, `agent`, `timeout`, `retries`, `verify`, `setup`); `depends_on`,
/// `files` and `setup` take a string or a list of strings, and a `depends_on` string may list several
/// references separated by commas. Errors point at the line of the offending key, found by
/// looking for an unindented `key:` line (a quoted key falls back to the front matter's
/// first line); list entries of `depends_on` get their own `- item` lines when written as a
/// block list, the key's line otherwise.
///
/// The body (everything after the front matter) must hold some text. Outside fenced code
/// blocks, its first `# ` heading is the title unless the front matter gives one, every
/// `Depends on: a, b` line adds dependencies, and backticked text or bare tokens that look
/// like relative paths are recorded in `mentioned_paths`.
pub fn load_task(path: &Path) -> Result<TaskSpec, InputError> {
    let text = read_text(path)?;
    let prompt_file = path.canonicalize().map_err(|e| {
        InputError::at(
            path,
            None,
            format!("cannot resolve the prompt file's path: {e}"),
            "check that every directory on the path is readable",
        )
    })?;
    parse_task(path, prompt_file, &text)
}

/// Like [`load_task`], but from `text` (an editor's unsaved buffer) instead of the file on
/// disk. `path` names the file in errors and resolves relative dependencies.
pub fn load_task_from_text(path: &Path, text: &str) -> Result<TaskSpec, InputError> {
    let text = check_text(path, text.to_string())?;
    let prompt_file = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    parse_task(path, prompt_file, &text)
}

/// Prompt text (already read and checked) → task.
fn parse_task(path: &Path, prompt_file: PathBuf, text: &str) -> Result<TaskSpec, InputError> {
    let (front, body, body_line) = split_front_matter(path, text)?;
    let front = match front {
        Some(yaml) => parse_front_matter(path, yaml)?,
        None => FrontMatter::default(),
    };
    if body.trim().is_empty() {
        return Err(InputError::at(
            path,
            Some(body_line),
            "prompt file has no task text",
            "write the task's instructions below the front matter",
        ));
    }
    let scan = scan_body(body, body_line);
    let (id, id_line) = match front.id {
        Some((id, line)) => (id, Some(line)),
        None => (slugify(&path.file_stem().unwrap_or_default().to_string_lossy()), None),
    };
    let mut depends_on = front.depends_on;
    depends_on.extend(scan.depends_on);
    Ok(TaskSpec {
        title: front.title.or(scan.heading).unwrap_or_else(|| id.clone()),
        id,
        id_line,
        prompt_file,
        body: body.to_string(),
        depends_on,
        files: front.files,
        mentioned_paths: scan.mentioned_paths,
        agent: front.agent,
        timeout: front.timeout,
        retries: front.retries,
        verify: front.verify,
        setup: front.setup,
    })
}

/// Reads the file as UTF-8 without its BOM, refusing directories, invalid UTF-8 and files
/// without any text.
fn read_text(path: &Path) -> Result<String, InputError> {
    if path.is_dir() {
        return Err(InputError::at(
            path,
            None,
            "is a directory, not a prompt file",
            "pass the markdown files inside it, e.g. prompts/*.md",
        ));
    }
    let bytes = read_regular_file(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InputError::at(
            path,
            None,
            "prompt file not found",
            "check the path; prompt files are markdown files such as prompts/task.md",
        ),
        std::io::ErrorKind::InvalidInput => InputError::at(
            path,
            None,
            "is not a regular file (a FIFO, socket or device), so it cannot be a prompt file",
            "name a markdown file such as prompts/task.md",
        ),
        _ => InputError::at(
            path,
            None,
            format!("cannot read the prompt file: {e}"),
            "check the file's permissions",
        ),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes().iter().take(valid).filter(|&&b| b == b'\n').count();
        InputError::at(
            path,
            Some(line),
            format!("prompt file is not valid UTF-8 at line {line}"),
            "save the file as UTF-8",
        )
    })?;
    check_text(path, text)
}

/// Reads a regular file. Anything else (a FIFO, a socket, a device) is refused without
/// blocking on it: it is opened non-blocking and checked before a byte is read.
fn read_regular_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file (a FIFO, socket or device)",
        ));
    }
    let mut bytes = vec![];
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Strips a BOM and refuses a prompt without any text, or with a NUL byte (no program can
/// take it as an argument, and it is no text).
fn check_text(path: &Path, text: String) -> Result<String, InputError> {
    let text = text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text);
    if let Some(at) = text.find('\0') {
        let line = 1 + text[..at].matches('\n').count();
        return Err(InputError::at(
            path,
            Some(line),
            "prompt file contains a NUL byte",
            "remove it (a prompt is text; binary data cannot be passed to an agent)",
        ));
    }
    if text.trim().is_empty() {
        return Err(InputError::at(
            path,
            None,
            "prompt file is empty",
            "write the task's instructions in it",
        ));
    }
    Ok(text)
}

/// Splits off the front matter: returns its YAML text (when there is front matter), the
/// body, and the body's first line in the file.
fn split_front_matter<'a>(path: &Path, text: &'a str) -> Result<(Option<&'a str>, &'a str, usize), InputError> {
    let mut lines = text.split_inclusive('\n');
    let opening = lines.next().unwrap_or_default();
    if opening.trim_end() != "---" {
        return Ok((None, text, 1));
    }
    let mut offset = opening.len();
    for (i, line) in lines.enumerate() {
        if matches!(line.trim_end(), "---" | "...") {
            let yaml = text.get(opening.len()..offset).unwrap_or_default();
            let body = text.get(offset + line.len()..).unwrap_or_default();
            return Ok((Some(yaml), body, i + FRONT_MATTER_LINE + 1));
        }
        offset += line.len();
    }
    Err(InputError::at(
        path,
        Some(1),
        "the front matter starting here is not closed",
        "add a line `---` after the front matter, before the task text",
    ))
}

/// The front matter's values, checked.
#[derive(Default)]
struct FrontMatter {
    id: Option<(String, usize)>,
    title: Option<String>,
    depends_on: Vec<DependencyRef>,
    files: Vec<String>,
    agent: Option<String>,
    timeout: Option<Duration>,
    retries: Option<u32>,
    verify: Option<String>,
    setup: Vec<String>,
}

/// Largest front matter accepted: it holds a few keys, and the YAML parser's time grows
/// faster than its size on pathological input.
const MAX_FRONT_MATTER_BYTES: usize = 64 * 1024;
/// Deepest nesting accepted in the front matter (flow `[`/`{` or block levels).
const MAX_FRONT_MATTER_DEPTH: usize = 32;

/// Refuses front matter too large or too deeply nested before the YAML parser sees it
/// (deep nesting parses in quadratic time: 160 KB took 48 s).
fn check_front_matter_bounds(path: &Path, yaml: &str) -> Result<(), InputError> {
    if yaml.len() > MAX_FRONT_MATTER_BYTES {
        return Err(InputError::at(
            path,
            Some(FRONT_MATTER_LINE),
            format!(
                "the front matter is {} KiB; at most {} KiB is accepted",
                yaml.len() / 1024,
                MAX_FRONT_MATTER_BYTES / 1024
            ),
            "keep only the task's settings in the front matter and move long text into the task text below it",
        ));
    }
    let mut flow = 0usize;
    for (i, line) in yaml.lines().enumerate() {
        // Block nesting: indentation (2 columns a level) plus compact `- ` / `? ` markers.
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let mut rest = line.trim_start();
        let mut markers = 0;
        while let Some(r) = rest.strip_prefix("- ").or_else(|| rest.strip_prefix("? ")) {
            markers += 1;
            rest = r.trim_start();
        }
        let mut deepest = indent / 2 + markers;
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    flow += 1;
                    deepest = deepest.max(flow);
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        if deepest > MAX_FRONT_MATTER_DEPTH {
            return Err(InputError::at(
                path,
                Some(i + FRONT_MATTER_LINE),
                format!("the front matter is nested more than {MAX_FRONT_MATTER_DEPTH} levels deep"),
                "front matter values are strings and lists of strings, e.g. `depends_on: [schema.md]`",
            ));
        }
    }
    Ok(())
}

/// Parses and checks the front matter's YAML text (which starts at line 2 of the file).
fn parse_front_matter(path: &Path, yaml: &str) -> Result<FrontMatter, InputError> {
    check_front_matter_bounds(path, yaml)?;
    let value: Value = serde_yaml_ng::from_str(yaml).map_err(|e| {
        let line = e
            .location()
            .map_or(FRONT_MATTER_LINE, |l| l.line() + FRONT_MATTER_LINE - 1);
        let message = e.to_string();
        let problem = message.split_once(" at line ").map_or(message.as_str(), |(p, _)| p);
        let problem = match problem.find("invalid type: integer") {
            Some(i) => format!(
                "{}{}",
                &problem[..i],
                crate::spec::toml_text::explain_parse_error(&problem[i..])
            ),
            None => problem.to_string(),
        };
        InputError::at(
            path,
            Some(line),
            format!("invalid YAML in the front matter: {problem}"),
            "write the front matter as `key: value` lines, e.g. `depends_on: [schema.md]`",
        )
    })?;
    let mapping = match value {
        Value::Null => return Ok(FrontMatter::default()),
        Value::Mapping(m) => m,
        other => {
            return Err(InputError::at(
                path,
                Some(FRONT_MATTER_LINE),
                format!("the front matter must be `key: value` lines, not {}", describe(&other)),
                "write it like `id: api-client`, one key per line",
            ))
        }
    };
    let mut front = FrontMatter::default();
    for (key, value) in &mapping {
        let key_index = key.as_str().and_then(|k| key_index(yaml, k));
        let line = key_index.map_or(FRONT_MATTER_LINE, |i| i + FRONT_MATTER_LINE);
        let known = FRONT_MATTER_KEYS.iter().find(|k| key.as_str() == Some(k.name));
        let Some(&FrontMatterKey {
            name: key,
            expected,
            example,
            ..
        }) = known
        else {
            return Err(unknown_key(path, line, key));
        };
        let wrong = || {
            InputError::at(
                path,
                Some(line),
                format!("`{key}` must be {expected}, not {}", describe(value)),
                format!("write it like `{example}`"),
            )
        };
        let text = || scalar(value).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        match key {
            "id" => {
                let id = scalar(value).ok_or_else(wrong)?;
                if let Some(reason) = id_problem(&id) {
                    let slug = slugify(&id);
                    return Err(InputError::at(
                        path,
                        Some(line),
                        format!("invalid id `{id}`: it {reason}"),
                        format!("use lowercase letters, digits, `.`, `_` and `-`, e.g. `id: {slug}`"),
                    ));
                }
                front.id = Some((id, line));
            }
            "title" => front.title = Some(text().ok_or_else(wrong)?),
            "agent" => front.agent = Some(text().ok_or_else(wrong)?),
            "verify" => front.verify = Some(text().filter(|v| !v.contains('\0')).ok_or_else(wrong)?),
            "setup" => {
                let commands = string_list(value).ok_or_else(wrong)?;
                let commands: Vec<String> = commands.iter().map(|c| c.trim().to_string()).collect();
                if commands.is_empty() || commands.iter().any(|c| c.is_empty() || c.contains('\0')) {
                    return Err(wrong());
                }
                front.setup = commands;
            }
            "depends_on" => {
                let entries = string_list(value).ok_or_else(wrong)?;
                let item_lines = key_index.map(|i| item_lines(yaml, i)).unwrap_or_default();
                let lines = if item_lines.len() == entries.len() && value.is_sequence() {
                    item_lines
                } else {
                    vec![line; entries.len()]
                };
                for (entry, line) in entries.iter().zip(lines) {
                    front.depends_on.extend(reference_list(entry, line));
                }
            }
            "files" => {
                for entry in string_list(value).ok_or_else(wrong)? {
                    let entry = entry.trim();
                    if let Err(e) = globset::Glob::new(entry) {
                        return Err(InputError::at(
                            path,
                            Some(line),
                            format!("invalid `files` pattern: {e}"),
                            "write a repository path or a glob such as `src/api/**`",
                        ));
                    }
                    if !entry.is_empty() {
                        front.files.push(entry.to_string());
                    }
                }
            }
            "timeout" => {
                let timeout = match value {
                    Value::Number(n) => n
                        .as_u64()
                        .filter(|&s| s > 0)
                        .map(Duration::from_secs)
                        .filter(|d| *d <= crate::spec::toml_text::MAX_DURATION),
                    Value::String(s) => crate::spec::toml_text::parse_duration(s),
                    _ => None,
                };
                front.timeout = Some(timeout.ok_or_else(wrong)?);
            }
            _ /* retries */ => {
                let retries = value.as_u64().filter(|&n| n <= MAX_RETRIES);
                front.retries = Some(
                    retries
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(wrong)?,
                );
            }
        }
    }
    Ok(front)
}

/// The error for an unknown front-matter key, suggesting the closest known key.
fn unknown_key(path: &Path, line: usize, key: &Value) -> InputError {
    let known = FRONT_MATTER_KEYS.map(|k| k.name).join(", ");
    let (problem, closest) = match key.as_str() {
        Some(key) => (
            format!("unknown front-matter key `{key}`"),
            FRONT_MATTER_KEYS
                .iter()
                .map(|k| (edit_distance(k.name, key), k.name))
                .filter(|&(d, _)| d <= 2)
                .min(),
        ),
        None => (format!("front-matter keys must be words, not {}", describe(key)), None),
    };
    let fix = match closest {
        Some((_, k)) => format!("did you mean `{k}`? Known keys: {known}"),
        None => format!("known keys: {known}"),
    };
    InputError::at(path, Some(line), problem, fix)
}

/// 1-based file line of a top-level front-matter key of `path`, for problems found after
/// parsing (an unknown agent profile, say).
pub fn front_matter_line(path: &Path, key: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let (yaml, _, _) = split_front_matter(path, text).ok()?;
    key_index(yaml?, key).map(|i| i + FRONT_MATTER_LINE)
}

/// 0-based index of the front-matter line that starts with `key:` (optionally with spaces
/// before the colon).
fn key_index(yaml: &str, key: &str) -> Option<usize> {
    yaml.lines().position(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    })
}

/// File lines of the `- item` lines of a block list following the key at `key_index`.
fn item_lines(yaml: &str, key_index: usize) -> Vec<usize> {
    yaml.lines()
        .enumerate()
        .skip(key_index + 1)
        .take_while(|(_, l)| l.trim().is_empty() || l.starts_with([' ', '\t', '-']))
        .filter(|(_, l)| l.trim_start().starts_with('-'))
        .map(|(i, _)| i + FRONT_MATTER_LINE)
        .collect()
}

/// A string or number as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A string or a list of strings (or numbers).
fn string_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Sequence(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|s| vec![s]),
    }
}

/// How a YAML value reads in an error message.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "empty".to_string(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("`{s}`"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(_) => "a tagged value".to_string(),
    }
}

/// Number of single-character insertions, deletions and substitutions turning `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Why `id` is not a valid task id, if it is not.
fn id_problem(id: &str) -> Option<&'static str> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !id.starts_with(valid_char) {
        Some("must start with a lowercase letter or a digit")
    } else if !id.chars().all(|c| valid_char(c) || matches!(c, '.' | '_' | '-')) {
        Some("may contain only lowercase letters, digits, `.`, `_` and `-`")
    } else if id.len() > MAX_ID_LEN {
        Some("is longer than 64 bytes")
    } else if id.contains("..") {
        Some("must not contain `..`")
    } else if id.ends_with(".lock") || id.ends_with('.') {
        Some("must not end in `.lock` or `.`")
    } else {
        None
    }
}

/// A task id made from a file stem: lowercase ASCII letters and digits, with every run of
/// other characters (spaces, dots, punctuation, shell metacharacters and non-ASCII letters,
/// which are not transliterated) turned into one `-`, trimmed of `-` and cut to 64 bytes.
/// A stem without any ASCII letter or digit gives `task-` and 8 hex digits of its FNV-1a
/// hash, so the id is stable.
pub fn slugify(stem: &str) -> String {
    let mut slug = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(MAX_ID_LEN);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        let hash = stem.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        format!("task-{:08x}", hash >> 32)
    } else {
        slug.to_string()
    }
}

/// What the body says besides its text.
#[derive(Default)]
struct BodyScan {
    heading: Option<String>,
    depends_on: Vec<DependencyRef>,
    mentioned_paths: Vec<String>,
}

/// Finds the title, `Depends on:` lines and mentioned paths of a body whose first line is
/// line `first_line` of the file, skipping fenced code blocks.
fn scan_body(body: &str, first_line: usize) -> BodyScan {
    let mut scan = BodyScan::default();
    for (i, line) in unfenced_lines(body.lines()) {
        if let Some(heading) = line.trim_start().strip_prefix("# ").map(str::trim) {
            if scan.heading.is_none() && !heading.is_empty() {
                scan.heading = Some(heading.to_string());
            }
        }
        match depends_on_list(line) {
            Some(list) => scan.depends_on.extend(reference_list(list, first_line + i)),
            None => collect_paths(line, &mut scan.mentioned_paths),
        }
    }
    scan
}

/// The lines of a body outside fenced code blocks (```` ``` ```` or `~~~`), with their
/// 0-based index among `lines`.
fn unfenced_lines<'a>(lines: impl Iterator<Item = &'a str>) -> impl Iterator<Item = (usize, &'a str)> {
    let mut fence: Option<&str> = None;
    lines.enumerate().filter(move |(_, line)| {
        let trimmed = line.trim_start();
        if let Some(open) = fence {
            if trimmed.starts_with(open) {
                fence = None;
            }
            return false;
        }
        if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            fence = Some(marker);
            return false;
        }
        true
    })
}

/// The list after `Depends on:` when `line` is a dependency line: optional indentation, an
/// optional list marker (`-`, `*`, `+`), optional `**`, `Depends on` in any case, optional
/// `**`, then `:` (a `**` right after the colon is skipped too).
fn depends_on_list(line: &str) -> Option<&str> {
    let mut s = line.trim_start();
    if let Some(rest) = s.strip_prefix(['-', '*', '+']) {
        if rest.starts_with(char::is_whitespace) {
            s = rest.trim_start();
        }
    }
    let s = s.strip_prefix("**").unwrap_or(s);
    let (words, rest) = s.split_at_checked("depends on".len())?;
    if !words.eq_ignore_ascii_case("depends on") {
        return None;
    }
    let rest = rest.strip_prefix("**").unwrap_or(rest).strip_prefix(':')?;
    Some(rest.strip_prefix("**").unwrap_or(rest))
}

/// Comma-separated references written at `line`, trimmed of spaces, backticks and quotes.
fn reference_list(list: &str, line: usize) -> impl Iterator<Item = DependencyRef> + '_ {
    reference_spans(list).map(move |(start, end)| DependencyRef {
        raw: list[start..end].to_string(),
        line,
    })
}

/// Byte ranges in `list` of its comma-separated references, trimmed of spaces, backticks and
/// quotes; empty ones left out.
fn reference_spans(list: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    list.split(',').filter_map(move |part| {
        let span = trimmed_span(part).map(|(start, end)| (at + start, at + end));
        at += part.len() + 1;
        span
    })
}

/// The byte range of `text` without surrounding spaces, backticks and quotes, unless nothing
/// is left.
fn trimmed_span(text: &str) -> Option<(usize, usize)> {
    let trim = |c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'');
    let start = text.len() - text.trim_start_matches(trim).len();
    let value = text.trim_matches(trim);
    (!value.is_empty()).then_some((start, start + value.len()))
}

/// Where something is written in a prompt file's text: a 0-based line and the byte columns
/// `start..end` on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextSpan {
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

impl TextSpan {
    /// Whether a cursor at `line`, byte column `column` touches the span (its ends included).
    pub fn touches(&self, line: usize, column: usize) -> bool {
        self.line == line && (self.start..=self.end).contains(&column)
    }
}

/// A value as written in a prompt file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub text: String,
    pub span: TextSpan,
}

/// A top-level front-matter key as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenKey {
    pub name: String,
    /// The key's name on its line.
    pub span: TextSpan,
    /// Byte column of its `:`; none while the key is still being typed.
    pub colon: Option<usize>,
    /// The lines its value may take: its own up to the next key's (0-based, end excluded).
    pub lines: std::ops::Range<usize>,
}

/// Where the parts of a prompt file are written: the front matter and its keys, the
/// dependencies (`depends_on` and `Depends on:` lines, in that order, as [`TaskSpec`] lists
/// them), `files` and `agent`. For editors: it goes line by line with the same rules as
/// [`load_task`] (fences, `Depends on:` lines, reference lists), so it also reads unfinished
/// text (a front matter not closed yet runs to the end) and never fails. For a prompt file
/// that loads, its values are the loaded task's (a test checks this).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    /// Lines of the front matter's YAML (0-based, end excluded), when the text starts with
    /// a `---` line.
    pub front_matter: Option<std::ops::Range<usize>>,
    pub keys: Vec<WrittenKey>,
    /// The `Depends on:` lines of the text: line and the byte column where its list starts.
    pub depends_on_lines: Vec<(usize, usize)>,
    pub depends_on: Vec<Written>,
    pub files: Vec<Written>,
    pub agent: Option<Written>,
}

impl Outline {
    /// The front-matter key whose value may be written on `line`.
    pub fn key_at(&self, line: usize) -> Option<&WrittenKey> {
        self.keys.iter().find(|k| k.lines.contains(&line))
    }
}

/// The [`Outline`] of a prompt file's text (an editor's buffer: a BOM and unfinished text are
/// fine).
pub fn outline(text: &str) -> Outline {
    let lines: Vec<&str> = text.lines().collect();
    let opening = lines
        .first()
        .is_some_and(|l| l.trim_start_matches('\u{feff}').trim_end() == "---");
    let front = opening.then(|| {
        let closing = lines.iter().skip(1).position(|l| matches!(l.trim_end(), "---" | "..."));
        1..closing.map_or(lines.len(), |i| i + 1)
    });
    let mut out = Outline {
        front_matter: front.clone(),
        ..Outline::default()
    };
    if let Some(range) = &front {
        for i in range.clone() {
            let line = lines[i];
            if line.trim().is_empty() || line.starts_with([' ', '\t', '-', '#']) {
                continue;
            }
            let colon = line.find(':');
            let name = line[..colon.unwrap_or(line.len())].trim_end();
            out.keys.push(WrittenKey {
                name: name.to_string(),
                span: TextSpan {
                    line: i,
                    start: 0,
                    end: name.len(),
                },
                colon,
                lines: i..i + 1,
            });
        }
        let ends: Vec<usize> = out
            .keys
            .iter()
            .skip(1)
            .map(|k| k.span.line)
            .chain([range.end])
            .collect();
        for (key, end) in out.keys.iter_mut().zip(ends) {
            key.lines.end = end;
        }
        for key in &out.keys {
            match key.name.as_str() {
                "depends_on" => out.depends_on.extend(value_items(&lines, key, true)),
                "files" => out.files.extend(value_items(&lines, key, false)),
                "agent" => out.agent = value_items(&lines, key, false).into_iter().next(),
                _ => {}
            }
        }
    }
    let body_start = front.map_or(0, |r| (r.end + 1).min(lines.len()));
    for (i, line) in unfenced_lines(lines[body_start..].iter().copied()) {
        if let Some(list) = depends_on_list(line) {
            let (line_index, at) = (body_start + i, line.len() - list.len());
            out.depends_on_lines.push((line_index, at));
            out.depends_on.extend(reference_spans(list).map(|(start, end)| Written {
                text: list[start..end].to_string(),
                span: TextSpan {
                    line: line_index,
                    start: at + start,
                    end: at + end,
                },
            }));
        }
    }
    out
}

/// The values written for `key`: a scalar after its colon (split at commas when
/// `split_commas`, as a `depends_on` string is), a flow list `[a, b]` (over several lines
/// too), or the `- item` lines of a block list.
fn value_items(lines: &[&str], key: &WrittenKey, split_commas: bool) -> Vec<Written> {
    let mut out = vec![];
    let mut add = |line: usize, at: usize, text: &str, split: bool| {
        let spans: Vec<(usize, usize)> = if split {
            reference_spans(text).collect()
        } else {
            trimmed_span(text).into_iter().collect()
        };
        out.extend(spans.into_iter().map(|(start, end)| Written {
            text: text[start..end].to_string(),
            span: TextSpan {
                line,
                start: at + start,
                end: at + end,
            },
        }));
    };
    let Some(colon) = key.colon else { return out };
    let first = key.span.line;
    let value = without_comment(&lines[first][colon + 1..]);
    let Some(flow) = value.trim_start().strip_prefix('[') else {
        add(first, colon + 1, value, split_commas);
        for (i, line) in lines.iter().enumerate().take(key.lines.end).skip(first + 1) {
            let item = line.trim_start().strip_prefix('-');
            if let Some(item) = item.filter(|s| s.is_empty() || s.starts_with(char::is_whitespace)) {
                add(i, line.len() - item.len(), without_comment(item), split_commas);
            }
        }
        return out;
    };
    // A flow list: the items up to its `]`, which may come on a later line.
    let (mut line, mut at, mut rest) = (first, flow.as_ptr() as usize - lines[first].as_ptr() as usize, flow);
    loop {
        let closed = rest.find(']');
        add(line, at, &rest[..closed.unwrap_or(rest.len())], true);
        line += 1;
        if closed.is_some() || line >= key.lines.end {
            return out;
        }
        rest = without_comment(lines[line]);
        at = 0;
    }
}

/// `value` up to a YAML comment (a `#` at its start or after a space, outside quotes).
fn without_comment(value: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in value.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if previous.is_whitespace() => return &value[..i],
            _ => {}
        }
        previous = c;
    }
    value
}

/// Adds the relative paths `line` mentions: backticked text, and bare tokens containing a
/// `/` or ending in an extension. Tokens are split at whitespace and `()[]<>,;'"`, then
/// trimmed of `:` and of sentence-ending `.`, `!` and `?`.
fn collect_paths(line: &str, out: &mut Vec<String>) {
    for (k, part) in line.split('`').enumerate() {
        if k % 2 == 1 {
            push_relative(part.trim(), out);
            continue;
        }
        let tokens = part.split(|c: char| c.is_whitespace() || "()[]<>,;'\"".contains(c));
        for token in tokens {
            let token = token.trim_matches(':').trim_end_matches(['.', '!', '?']);
            let has_extension = token.rsplit_once('.').is_some_and(|(_, ext)| {
                ext.chars().all(|c| c.is_ascii_alphanumeric()) && ext.chars().any(|c| c.is_ascii_alphabetic())
            });
            if token.contains('/') || has_extension {
                push_relative(token, out);
            }
        }
    }
}

/// Adds `path` without a leading `./` unless it is empty, absolute, a URL, goes up with
/// `..`, or is already there.
fn push_relative(path: &str, out: &mut Vec<String>) {
    let path = path.strip_prefix("./").unwrap_or(path);
    let keep = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains("://")
        && !path.split('/').any(|c| c == "..")
        && !out.iter().any(|p| p == path);
    if keep {
        out.push(path.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `content` to `name` in a new temporary directory and loads it.
    fn load(name: &str, content: &[u8]) -> Result<TaskSpec, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        load_task(&path)
    }

    fn refs(spec: &TaskSpec) -> Vec<(&str, usize)> {
        spec.depends_on.iter().map(|d| (d.raw.as_str(), d.line)).collect()
    }

    #[test]
    fn front_matter_happy_path() {
        let text = "\u{feff}---  \nid: api-client   # comment\ntitle: The client\ndepends_on:\n  - schema.md\n  - setup-db\nfiles: src/api/**\nagent: claude\ntimeout: 1h30m\nretries: 2\nverify: cargo test\n---\n# Heading\n\nDepends on: `other`\nWrite it.\n";
        let spec = load("x.md", text.as_bytes()).unwrap();
        assert_eq!(spec.id, "api-client");
        assert_eq!(spec.id_line, Some(2));
        assert_eq!(spec.title, "The client");
        assert_eq!(refs(&spec), [("schema.md", 5), ("setup-db", 6), ("other", 15)]);
        assert_eq!(spec.files, ["src/api/**"]);
        assert_eq!(spec.agent.as_deref(), Some("claude"));
        assert_eq!(spec.timeout, Some(Duration::from_secs(5400)));
        assert_eq!(spec.retries, Some(2));
        assert_eq!(spec.verify.as_deref(), Some("cargo test"));
        assert!(spec.prompt_file.is_absolute());
        assert!(spec.body.starts_with("# Heading"));
    }

    #[test]
    fn list_and_string_forms() {
        let a = load(
            "a.md",
            b"---\ndepends_on: x, y\nfiles: [a.rs, b/*.rs]\ntimeout: 90\n---\ntext\n",
        )
        .unwrap();
        assert_eq!(refs(&a), [("x", 2), ("y", 2)]);
        assert_eq!(a.files, ["a.rs", "b/*.rs"]);
        assert_eq!(a.timeout, Some(Duration::from_secs(90)));
        let b = load("b.md", b"---\ndepends_on: [x]\nfiles: a.rs\n---\n\ntext\n").unwrap();
        assert_eq!(refs(&b), [("x", 2)]);
        assert_eq!(b.files, ["a.rs"]);
        let empty = load("c.md", b"---\n---\n# T\ntext\n").unwrap();
        assert_eq!((empty.id.as_str(), empty.title.as_str()), ("c", "T"));
    }

    #[test]
    fn bad_yaml_points_at_the_file_line() {
        let e = load("x.md", b"---\nid: a\ntitle: [unclosed\nagent: x\n---\ntext\n").unwrap_err();
        assert!(e.problem.starts_with("invalid YAML"), "{e}");
        assert!(!e.problem.contains("at line"), "{e}");
        let e = load("x.md", b"---\nid: a\n  bad: indent\n---\ntext\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = load("x.md", b"---\n- a\n---\ntext\n").unwrap_err();
        assert!(e.problem.contains("must be `key: value` lines"), "{e}");
    }

    #[test]
    fn unknown_key_suggests_the_closest() {
        let e = load("x.md", b"---\nid: a\ndependson: [b]\n---\ntext\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.problem, "unknown front-matter key `dependson`");
        assert!(e.fix.starts_with("did you mean `depends_on`?"), "{}", e.fix);
        let e = load("x.md", b"---\ncolour: red\n---\ntext\n").unwrap_err();
        assert!(e.fix.starts_with("known keys: id, title"), "{}", e.fix);
    }

    #[test]
    fn wrong_types_name_the_expected_type() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"---\nid: a\nretries: -1\n---\nt\n",
                "`retries` must be an integer from 0 to 100, not `-1`",
            ),
            (
                b"---\nretries: 101\n---\nt\n",
                "`retries` must be an integer from 0 to 100, not `101`",
            ),
            (b"---\ntimeout: 0\n---\nt\n", "`timeout` must be a positive"),
            (b"---\ntimeout: soon\n---\nt\n", "`timeout` must be a positive"),
            (b"---\nverify: ''\n---\nt\n", "`verify` must be a non-empty command"),
            (
                b"---\nfiles: {a: b}\n---\nt\n",
                "`files` must be a string or a list of strings, not a mapping",
            ),
        ];
        for (text, problem) in cases {
            let e = load("x.md", text).unwrap_err();
            assert!(e.problem.starts_with(problem), "{e}");
            assert_eq!(e.line, Some(if text.starts_with(b"---\nid") { 3 } else { 2 }));
        }
        let e = load("x.md", b"---\nfiles: ['src/[x']\n---\nt\n").unwrap_err();
        assert!(e.problem.starts_with("invalid `files` pattern"), "{e}");
    }

    #[test]
    fn invalid_id_suggests_a_slug() {
        for (id, reason) in [
            ("my Task", "may contain only"),
            ("Upper", "must start"),
            ("-a", "must start"),
            ("a..b", "`..`"),
            ("a.lock", "`.lock`"),
            ("a.", "`.lock` or `.`"),
        ] {
            let e = load("x.md", format!("---\n\nid: \"{id}\"\n---\nt\n").as_bytes()).unwrap_err();
            assert_eq!(e.line, Some(3));
            assert!(e.problem.contains(reason), "{e}");
            assert!(e.fix.ends_with(&format!("`id: {}`", slugify(id))), "{e}");
        }
        let long = "a".repeat(65);
        let e = load("x.md", format!("---\nid: {long}\n---\nt\n").as_bytes()).unwrap_err();
        assert!(e.problem.contains("longer than 64"), "{e}");
    }

    #[test]
    fn non_utf8_names_the_line() {
        let e = load("x.md", b"# T\nok\nbad \xff here\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.problem, "prompt file is not valid UTF-8 at line 3");
        assert_eq!(e.fix, "save the file as UTF-8");
    }

    #[test]
    fn missing_file_directory_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_task(&dir.path().join("nope.md")).unwrap_err();
        assert_eq!(e.problem, "prompt file not found");
        assert_eq!(e.file.as_deref(), Some(dir.path().join("nope.md").as_path()));
        let e = load_task(dir.path()).unwrap_err();
        assert!(e.problem.contains("directory"), "{e}");
        assert_eq!(load("x.md", b" \n\n").unwrap_err().problem, "prompt file is empty");
        let e = load("x.md", b"---\nid: a\n---\n  \n").unwrap_err();
        assert_eq!((e.problem.as_str(), e.line), ("prompt file has no task text", Some(4)));
    }

    #[test]
    fn unterminated_front_matter_is_reported_at_line_one() {
        let e = load("x.md", b"---\nid: a\n# Title\ntext\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.problem.contains("not closed"), "{e}");
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("My Task"), "my-task");
        assert_eq!(slugify("My Task.md"), "my-task-md");
        assert_eq!(slugify("  spaced   out  "), "spaced-out");
        assert_eq!(slugify("café au lait"), "caf-au-lait");
        assert_eq!(slugify("$(rm -rf /); echo `x` | 'y' & \"z\""), "rm-rf-echo-x-y-z");
        assert_eq!(slugify("a..b"), "a-b");
        assert_eq!(slugify(".."), slugify(".."));
        assert!(slugify("..").starts_with("task-"));
        let hashed = slugify("日本語");
        assert_eq!(hashed.len(), "task-".len() + 8);
        assert_eq!(hashed, slugify("日本語"));
        assert_ne!(hashed, slugify("中文"));
        let long = slugify(&format!("{}-{}", "a".repeat(63), "b".repeat(10)));
        assert_eq!(long, "a".repeat(63));
        assert_eq!(slugify(&"x".repeat(200)).len(), 64);
        for s in ["My Task", "日本語", "a.lock", "..", "$(rm -rf)"] {
            assert_eq!(id_problem(&slugify(s)), None, "{s}");
        }
    }

    #[test]
    fn depends_on_lines_match_exactly() {
        let text = "# T\nDepends on: a, `b.md`, 'c' ,, \"d\"\n- **Depends on:** e\n* depends ON: f\n  + **Depends on**: g\nThis depends on edit-shared-a\nDepends on the weather.\nXDepends on: h\n";
        let spec = load("x.md", text.as_bytes()).unwrap();
        let expected = [("a", 2), ("b.md", 2), ("c", 2), ("d", 2), ("e", 3), ("f", 4), ("g", 5)];
        assert_eq!(refs(&spec), expected);
    }

    #[test]
    fn fenced_code_is_ignored() {
        let text = "```md\n# Not the title\nDepends on: x\nsrc/hidden.rs\n```\n~~~\nDepends on: y\n~~~\n# Real title\nDepends on: z\n";
        let spec = load("x.md", text.as_bytes()).unwrap();
        assert_eq!(spec.title, "Real title");
        assert_eq!(refs(&spec), [("z", 10)]);
        assert!(spec.mentioned_paths.is_empty(), "{:?}", spec.mentioned_paths);
    }

    #[test]
    fn mentioned_paths_are_relative_and_deduped() {
        let text = "# T\nEdit `src/lib.rs` and (src/api.rs), see [doc](docs/x.md), Cargo.toml.\n`./src/lib.rs` `Makefile` /etc/passwd ../up.rs https://x.io/a.rs `a/../b` src/main.rs:\n";
        let spec = load("no-title.md", text.as_bytes()).unwrap();
        let expected = [
            "src/lib.rs",
            "src/api.rs",
            "docs/x.md",
            "Cargo.toml",
            "Makefile",
            "src/main.rs",
        ];
        assert_eq!(spec.mentioned_paths, expected);
    }

    #[test]
    fn title_falls_back_to_the_id() {
        let spec = load("Fix the Bug.md", b"just text, #not a heading\n").unwrap();
        assert_eq!((spec.id.as_str(), spec.title.as_str()), ("fix-the-bug", "fix-the-bug"));
    }

    /// The outline's values of a prompt file that loads are the loaded task's, and each span
    /// covers exactly the value's text.
    #[test]
    fn the_outline_agrees_with_the_loaded_task() {
        let texts = [
            "\u{feff}---  \nid: api-client   # comment\ntitle: The client\ndepends_on:\n  - schema.md\n  - setup-db  # why\nfiles: src/api/**\nagent: claude\n---\n# Heading\n\nDepends on: `other`\nWrite it.\n",
            "---\ndepends_on: x, y\nfiles: [a.rs, 'b/*.rs']\nagent: \"codex\" # c\n---\ntext\n",
            "---\ndepends_on: [x]\nfiles:\n- a.rs\n-   \"b c.rs\"\n...\n\ntext\n",
            "# T\nDepends on: a, `b.md`, 'c' ,, \"d\"\n- **Depends on:** e\n* depends ON: f\n  + **Depends on**: g\nThis depends on edit-shared-a\n",
            "```md\nDepends on: x\n```\n~~~\nDepends on: y\n~~~\n# Real title\nDepends on: z\n",
            "---\ntitle: 'x: y'\ndepends_on:\n  - a, b\n  - c\n---\nDepends on: d\n",
        ];
        for text in texts {
            let spec = load("x.md", text.as_bytes()).unwrap();
            let o = outline(text);
            let deps: Vec<(&str, usize)> = o
                .depends_on
                .iter()
                .map(|w| (w.text.as_str(), w.span.line + 1))
                .collect();
            assert_eq!(deps, refs(&spec), "{text}");
            let files: Vec<&str> = o.files.iter().map(|w| w.text.as_str()).collect();
            assert_eq!(files, spec.files, "{text}");
            assert_eq!(
                o.agent.as_ref().map(|w| w.text.as_str()),
                spec.agent.as_deref(),
                "{text}"
            );
            for w in o.depends_on.iter().chain(&o.files).chain(&o.agent) {
                let line = text.lines().nth(w.span.line).unwrap();
                assert_eq!(&line[w.span.start..w.span.end], w.text, "{text}");
            }
        }
        // A flow list over several lines: the same values, each on its own line.
        let text = "---\ndepends_on: [a,\n  b, # c\n  d]\nagent: x\n---\nt\n";
        let spec = load("x.md", text.as_bytes()).unwrap();
        let o = outline(text);
        let deps: Vec<(&str, usize)> = o.depends_on.iter().map(|w| (w.text.as_str(), w.span.line)).collect();
        assert_eq!(deps, [("a", 1), ("b", 2), ("d", 3)]);
        assert_eq!(
            spec.depends_on.iter().map(|d| d.raw.as_str()).collect::<Vec<_>>(),
            ["a", "b", "d"]
        );
    }

    #[test]
    fn the_outline_reads_unfinished_text() {
        let o = outline("---\nid: x\ndepends_on: [a, \n  b\nage");
        assert_eq!(o.front_matter, Some(1..5));
        let keys: Vec<(&str, Option<usize>, std::ops::Range<usize>)> = o
            .keys
            .iter()
            .map(|k| (k.name.as_str(), k.colon, k.lines.clone()))
            .collect();
        assert_eq!(
            keys,
            [
                ("id", Some(2), 1..2),
                ("depends_on", Some(10), 2..4),
                ("age", None, 4..5)
            ]
        );
        assert_eq!(
            o.depends_on.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(o.key_at(3).map(|k| k.name.as_str()), Some("depends_on"));
        assert_eq!(o.key_at(0), None);
        let o = outline("# T\n\nDepends on: a,\n");
        assert_eq!((o.front_matter, o.depends_on_lines), (None, vec![(2, 11)]));
    }

    #[test]
    fn durations() {
        let secs = |s| crate::spec::toml_text::parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("30"), Some(30));
        assert_eq!(secs("90s"), Some(90));
        assert_eq!(secs("15m"), Some(900));
        assert_eq!(secs("2h"), Some(7200));
        assert_eq!(secs(" 1h30m "), Some(5400));
        assert_eq!(secs("1m30s"), Some(90));
        for bad in [
            "",
            "0",
            "0s",
            "m",
            "1x",
            "1.5h",
            "-1",
            "1 h",
            "99999999999999999999h",
            "1hh",
            "ß",
        ] {
            assert_eq!(secs(bad), None, "{bad}");
        }
    }
}
