//! `gadugi demo`: a real run in a scratch repository with a built-in simulated agent, and
//! the simulated agent itself (`gadugi __sim-agent`), which really edits and commits files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::core::events::RunStatus;
use crate::error::{EXIT_OK, EXIT_TASKS_FAILED};
use crate::ops::RunOptions;

/// The demo's prompt files: (file name, text). Six tasks, two with dependencies.
const PROMPTS: &[(&str, &str)] = &[
    (
        "01-parser.md",
        "---\nfiles: [src/parser.txt]\n---\n# Write the config parser\n\nRead `key = value` lines into a map; reject duplicate keys with the line number.\n\n<!-- gadugi-sim: seconds=3 file=src/parser.txt -->\n",
    ),
    (
        "02-validation.md",
        "---\ndepends_on: [01-parser.md]\nfiles: [src/validate.txt]\n---\n# Validate parsed configs\n\nCheck required keys and value types on the parser's output.\n\n<!-- gadugi-sim: seconds=2 file=src/validate.txt -->\n",
    ),
    ("03-cli-help.md", "# Improve the CLI help text\n\nEvery flag gets a one-line description and an example.\n\n<!-- gadugi-sim: seconds=4 file=docs/cli.txt -->\n"),
    ("04-logging.md", "# Add structured logging\n\nLog one line per request with its duration.\n\n<!-- gadugi-sim: seconds=2 file=src/logging.txt -->\n"),
    (
        "05-docs.md",
        "# Document configuration and logging\n\nDepends on: 03-cli-help.md, 04-logging.md\n\nWrite the user guide's configuration and logging chapters.\n\n<!-- gadugi-sim: seconds=3 file=docs/guide.txt -->\n",
    ),
    ("06-ci.md", "# Set up continuous integration\n\nRun the tests on every push.\n\n<!-- gadugi-sim: seconds=2 file=ci/pipeline.txt -->\n"),
];

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Creates the scratch repository with its prompt files, committed.
pub fn create_demo_repo(dir: &Path) -> Result<PathBuf> {
    let repo = dir.join("demo-repo");
    if repo.exists() {
        bail!("{} already exists; pass another --dir", repo.display());
    }
    std::fs::create_dir_all(repo.join("prompts"))?;
    std::fs::create_dir_all(repo.join("src"))?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["config", "user.name", "Gadugi Demo"])?;
    git(&repo, &["config", "user.email", "demo@gadugi.invalid"])?;
    std::fs::write(
        repo.join("README.md"),
        "# Demo project\n\nA scratch repository made by `gadugi demo`.\n",
    )?;
    std::fs::write(repo.join("src/main.txt"), "the program\n")?;
    std::fs::write(
        repo.join("gadugi.toml"),
        "max_parallel = 4\n\n[agent]\nprofile = \"simulated\"\n",
    )?;
    for (name, text) in PROMPTS {
        std::fs::write(repo.join("prompts").join(name), text)?;
    }
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "Demo project with six task prompts"])?;
    Ok(repo)
}

/// `gadugi demo`.
pub fn demo(dir: Option<PathBuf>, max_parallel: Option<u16>, json: bool) -> Result<i32> {
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d.canonicalize()?
        }
        None => {
            let d = std::env::temp_dir().join(format!("gadugi-demo-{}", crate::ops::new_run_id()));
            std::fs::create_dir_all(&d)?;
            d
        }
    };
    let repo = create_demo_repo(&dir)?;
    if !json {
        println!("Demo repository: {}", repo.display());
        println!("Six prompt files in prompts/, two of them with dependencies; a simulated agent edits and commits a file for each.\n");
    }
    let options = RunOptions {
        max_parallel,
        ..Default::default()
    };
    let req = crate::ops::prepare(&options, Some(repo.clone()), &[repo.join("prompts")])?;
    if !json {
        println!("{}", crate::spec::plan::render_text(&req.plan, &repo));
    }
    let state = crate::cli::drive_with_terminal(crate::ops::start(req)?, json)?;
    crate::cli::print_result(&state, json)?;
    if !json {
        // After `cargo run`, gadugi is not on PATH: name the binary that ran.
        let gadugi = match (crate::fsutil::find_on_path("gadugi"), std::env::current_exe()) {
            (Some(_), _) | (None, Err(_)) => "gadugi".to_string(),
            (None, Ok(exe)) => exe.display().to_string(),
        };
        println!(
            "\nLook around:\n  cd {}\n  {gadugi} status\n  {gadugi} report\n  git log --oneline --all --graph\n  {gadugi} logs 05-docs",
            repo.display()
        );
    }
    Ok(if state.status == RunStatus::Succeeded {
        EXIT_OK
    } else {
        EXIT_TASKS_FAILED
    })
}

/// Directives of the simulated agent, from `<!-- gadugi-sim: seconds=3 file=src/x -->`.
#[derive(Debug, PartialEq)]
struct SimPlan {
    seconds: f64,
    file: String,
    exit_code: i32,
}

fn parse_sim(prompt: &str) -> SimPlan {
    let mut plan = SimPlan {
        seconds: 2.0,
        file: "SIMULATED.txt".into(),
        exit_code: 0,
    };
    let Some(start) = prompt.find("<!-- gadugi-sim:") else {
        return plan;
    };
    let rest = &prompt[start + "<!-- gadugi-sim:".len()..];
    let body = rest.split("-->").next().unwrap_or("");
    for kv in body.split_whitespace() {
        match kv.split_once('=') {
            Some(("seconds", v)) => plan.seconds = v.parse().unwrap_or(plan.seconds),
            Some(("file", v)) => plan.file = v.to_string(),
            Some(("exit", v)) => plan.exit_code = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    plan
}

/// The simulated agent: reads the generated prompt (`GADUGI_PROMPT_FILE`), narrates, waits
/// the time it asks for, writes the file it names, commits it in its worktree.
pub fn sim_agent() -> Result<i32> {
    let prompt_file =
        std::env::var("GADUGI_PROMPT_FILE").context("GADUGI_PROMPT_FILE is not set (this command is run by gadugi)")?;
    let worktree = PathBuf::from(std::env::var("GADUGI_WORKTREE").context("GADUGI_WORKTREE is not set")?);
    let prompt = std::fs::read_to_string(&prompt_file)?;
    let plan = parse_sim(&prompt);
    let title = prompt
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .unwrap_or("the task")
        .trim()
        .to_string();
    let step = Duration::from_secs_f64(plan.seconds / 4.0);
    println!("Reading the task: {title}");
    std::thread::sleep(step);
    println!("Planning changes to {}", plan.file);
    std::thread::sleep(step);
    println!("Editing {}", plan.file);
    let target = worktree.join(&plan.file);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &target,
        format!(
            "{title}\n\nDone by the simulated agent of task {}.\n",
            std::env::var("GADUGI_TASK_ID").unwrap_or_default()
        ),
    )?;
    std::thread::sleep(step);
    println!("Running the tests");
    std::thread::sleep(step);
    if plan.exit_code != 0 {
        eprintln!("tests failed");
        return Ok(plan.exit_code);
    }
    println!("Committing");
    let identity = [
        ("GIT_AUTHOR_NAME", "Gadugi simulated agent"),
        ("GIT_AUTHOR_EMAIL", "sim@gadugi.invalid"),
        ("GIT_COMMITTER_NAME", "Gadugi simulated agent"),
        ("GIT_COMMITTER_EMAIL", "sim@gadugi.invalid"),
    ];
    for args in [
        vec!["add", "--", plan.file.as_str()],
        vec!["commit", "-q", "-m", title.as_str()],
    ] {
        let status = Command::new("git")
            .arg("-C")
            .arg(&worktree)
            .args(&args)
            .envs(identity)
            .stdin(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("git {} failed", args.join(" "));
        }
    }
    println!("Done: {title}");
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sim_directives() {
        assert_eq!(
            parse_sim("x <!-- gadugi-sim: seconds=0.5 file=a/b.txt exit=3 --> y"),
            SimPlan {
                seconds: 0.5,
                file: "a/b.txt".into(),
                exit_code: 3
            }
        );
        assert_eq!(parse_sim("nothing").seconds, 2.0);
    }
}
