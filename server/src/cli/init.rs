//! `gadugi init`: sets a repository up for Claude Code — a `WorkflowManager` custom agent
//! that every `claude` task runs as, and the `/orchestrate` slash command that runs
//! `gadugi run` from inside Claude Code.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::InputError;

/// Where the agent goes, relative to the repository root.
pub const AGENT_FILE: &str = ".claude/agents/WorkflowManager.md";
/// Where the slash command goes, relative to the repository root.
pub const COMMAND_FILE: &str = ".claude/commands/orchestrate.md";

/// The WorkflowManager agent: front matter (name, description, tools) and its system prompt.
pub const WORKFLOW_MANAGER: &str = r#"---
name: WorkflowManager
description: Carries one task from its prompt to a tested, committed change on the current branch. Use it to implement a task end to end without supervision.
tools: Read, Edit, Write, Glob, Grep, Bash, Task
---
You are WorkflowManager. You receive one task and carry it to a finished, committed change.
Nobody answers questions while you work: when something is unclear, choose the most
reasonable reading, say so in your final message and in the commit message, and go on.

1. Understand the task. Read the prompt to the end, then the code it concerns: the files it
   names, their tests, and how the project builds and tests (README, Makefile, Cargo.toml,
   package.json, pyproject.toml, CI scripts).
2. Plan. Write a short todo list of the changes and the tests that will show they work.
3. Implement. Make the smallest change that does the task well, in the style of the code
   around it. Do not leave placeholders or commented-out code.
4. Test. Add or update tests for the behaviour you changed, then run the project's tests and
   fix what fails. If a failure is unrelated to your task, leave it and report it.
5. Commit. Stage your changes and commit them on the current branch with a message that says
   what changed and why. Several small commits are fine.
6. Report. End with a short summary: what you changed, how you tested it, what is left.

Rules:
- Work only inside the current working directory (your task's own git worktree).
- Never switch branches, rebase, reset, push, or touch other worktrees.
- Open a pull request only when the task asks for one.
"#;

/// The `/orchestrate` slash command: `/orchestrate prompts/a.md prompts/b.md` runs Gadugi.
pub const ORCHESTRATE: &str = r#"---
description: Run task prompt files in parallel with Gadugi, one git worktree, branch and agent per task
argument-hint: <prompt files or directories> [gadugi run options]
allowed-tools: Bash(gadugi run:*), Bash(gadugi plan:*), Bash(gadugi status:*), Bash(gadugi logs:*)
---
Run these tasks with Gadugi: $ARGUMENTS

If no prompt files were given above, ask which prompt files to run and stop.

1. Run `gadugi plan $ARGUMENTS` and show the dependency order and any predicted conflicts.
2. Run `gadugi run --json $ARGUMENTS`. It starts one agent per task in its own worktree and
   can take a long time; if your shell times out, check progress with `gadugi status`.
3. Report each task's status, branch, commits and error from the JSON, and the path of the
   run's report. For a failed task, show the last lines of `gadugi logs <task>`.

Do not edit files, switch branches or merge anything yourself: Gadugi never touches this
checkout, and each task's work stays on its own branch for review.
"#;

/// Writes the agent and the slash command into the repository (or `--repo`). Existing
/// files are kept unless `force`. Returns the exit code.
pub fn init(repo: Option<PathBuf>, force: bool) -> Result<i32> {
    let repo = crate::ops::open_repo(repo)?;
    let root = repo.root();
    for (rel, text) in [(AGENT_FILE, WORKFLOW_MANAGER), (COMMAND_FILE, ORCHESTRATE)] {
        let outcome = write_file(root, rel, text, force)?;
        println!("{outcome:>9}  {rel}");
    }
    println!(
        "\nCommit these files: task worktrees start from a commit, and `claude` tasks run as\n\
         WorkflowManager (--agent WorkflowManager) once {AGENT_FILE} is in it.\n\
         Inside Claude Code, `/orchestrate prompts/a.md prompts/b.md` runs `gadugi run`."
    );
    Ok(0)
}

fn write_file(root: &Path, rel: &str, text: &str, force: bool) -> Result<&'static str> {
    let path = root.join(rel);
    let existed = path.exists();
    if existed && !force {
        return Ok(if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
            "unchanged"
        } else {
            "kept"
        });
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            InputError::at(
                dir,
                None,
                format!("cannot be created: {e}"),
                "check the folder's permissions",
            )
        })?;
    }
    crate::fsutil::write_atomic(&path, text.as_bytes()).map_err(|e| {
        InputError::at(
            &path,
            None,
            format!("cannot be written: {e:#}"),
            "check the folder's permissions",
        )
    })?;
    Ok(if existed { "replaced" } else { "created" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_front_matter_names_it_and_lists_tools() {
        let fm: serde_yaml_ng::Value = serde_yaml_ng::from_str(WORKFLOW_MANAGER.split("---").nth(1).unwrap()).unwrap();
        assert_eq!(fm["name"].as_str(), Some("WorkflowManager"));
        assert!(fm["tools"].as_str().unwrap().contains("Bash"));
        let fm: serde_yaml_ng::Value = serde_yaml_ng::from_str(ORCHESTRATE.split("---").nth(1).unwrap()).unwrap();
        assert!(fm["allowed-tools"].as_str().unwrap().contains("Bash(gadugi run:*)"));
        assert!(ORCHESTRATE.contains("gadugi run --json $ARGUMENTS"));
    }

    #[test]
    fn existing_files_are_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write_file(dir.path(), AGENT_FILE, "a", false).unwrap(), "created");
        assert_eq!(write_file(dir.path(), AGENT_FILE, "a", false).unwrap(), "unchanged");
        assert_eq!(write_file(dir.path(), AGENT_FILE, "b", false).unwrap(), "kept");
        assert_eq!(std::fs::read_to_string(dir.path().join(AGENT_FILE)).unwrap(), "a");
        assert_eq!(write_file(dir.path(), AGENT_FILE, "b", true).unwrap(), "replaced");
        assert_eq!(std::fs::read_to_string(dir.path().join(AGENT_FILE)).unwrap(), "b");
    }
}
