//! The Slurm engine: one batch job per attempt, driven through Slurm's own command-line
//! clients (`sbatch`, `squeue`, `scancel`, `sinfo`), run with argv (never a shell) and the
//! caller's environment, so the user's `SLURM_CONF`, munge socket and PATH apply as they do
//! in their terminal.
//!
//! What Slurm does that this module relies on (checked on Slurm 22.05 with
//! `scripts/slurm-cluster.sh`, and tested in `server/tests/slurm_engine.rs`):
//! - `sbatch --parsable` prints the job id (`ID`, or `ID;CLUSTER` in a federation).
//! - `squeue --states=all` also shows jobs that ended, for `MinJobAge` (300 s by default)
//!   after they end; then Slurm forgets them and a job id it no longer knows is [`JobState::Lost`].
//! - `squeue -O exit_code` is the raw wait status of the batch script (`768` for `exit 3`,
//!   `9` for a script killed by SIGKILL).
//! - Cancel: plain `scancel ID` (no `--signal`) cancels the job; the node's `slurmstepd`
//!   sends SIGCONT and SIGTERM to every process of the job — the batch script, and so the
//!   process a `--wrap 'exec ...'` became, and its children — then SIGKILL `KillWait`
//!   seconds later (30 s by default). Measured: the `exec`'d process gets SIGTERM within
//!   0.1 s of `scancel`, and the job leaves `COMPLETING` as soon as its processes are gone.
//!   (`scancel --signal=TERM` instead only signals, and by default not the batch step; the
//!   job would go on running if the process ignored it.) A job cancelled in the instant its
//!   step is being launched may miss the SIGTERM and only get the SIGKILL.
//! - A job keeps running when its node's `slurmd` dies; it stays `COMPLETING` after its
//!   command ends until that `slurmd` is back (or the node is declared down).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::exec::engine::Engine;
use crate::exec::engine::JobHandle;
use crate::exec::engine::JobRequest;
use crate::exec::engine::JobState;
use crate::fsutil::find_on_path;

/// How long one Slurm command may take. Slurm's clients retry a controller that does not
/// answer for about 10 s (`MessageTimeout`); a command still running long after that is
/// hung, and the run loop must not wait on it for ever.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The `squeue --Format` of [`Slurm::state`]: fields ended by `|` (a "suffix" in squeue's
/// terms), with no width, so nothing is padded or cut.
const STATE_FORMAT: &str = "JobID:|,State:|,BatchHost:|,Reason:|,exit_code:|";

/// Runs attempts as Slurm batch jobs.
#[derive(Debug, Clone, Default)]
pub struct Slurm {
    /// The partition jobs go to (`sbatch -p`); `None`: the cluster's default partition.
    partition: Option<String>,
    /// More `sbatch` options from the configuration (`--mem=4G`, `--time=2:00:00`), given
    /// after Gadugi's own, so they win where they overlap.
    sbatch_args: Vec<String>,
    /// Variables added to the environment of every Slurm command (on top of this process's
    /// own): how the tests point the clients at their cluster (`SLURM_CONF`) without changing
    /// the environment of a process whose other threads run other clusters.
    env: Vec<(String, String)>,
}

/// What one Slurm command printed.
struct Ran {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The first line of stderr (what Slurm's clients say first is what went wrong).
    fn first_error_line(&self) -> &str {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(nothing on stderr)")
    }
}

impl Slurm {
    /// An engine submitting to `partition` (the default partition when `None`) with the
    /// extra `sbatch_args` of the configuration.
    pub fn new(partition: Option<String>, sbatch_args: Vec<String>) -> Slurm {
        Slurm {
            partition,
            sbatch_args,
            env: Vec::new(),
        }
    }

    /// The same engine, its Slurm commands run with `env` added to this process's
    /// environment (`SLURM_CONF`, ...). Programs are still looked up on this process's PATH.
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Slurm {
        self.env = env;
        self
    }

    /// The value `name` has in the Slurm commands' environment.
    fn env_var(&self, name: &str) -> Option<std::ffi::OsString> {
        match self.env.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => Some(v.into()),
            None => std::env::var_os(name),
        }
    }

    /// Runs `program args...` (stdin closed) to its end, or kills it after
    /// [`COMMAND_TIMEOUT`]. An error only when it could not run at all or hung; a failing
    /// exit is for the caller to judge.
    fn run(&self, program: &str, args: &[String]) -> Result<Ran> {
        let what = || format!("{program} {}", args.join(" "));
        let mut child = Command::new(program)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run `{}` (is slurm-client installed and on PATH?)", what()))?;
        // Read both pipes on their own threads, so a chatty command never blocks on a full
        // pipe while we wait for it to exit.
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let mut pause = Duration::from_millis(2);
        let status = loop {
            match child.try_wait().with_context(|| format!("waiting for `{}`", what()))? {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    // Already gone if kill fails; wait reaps it either way.
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "`{}` did not answer in {} s (is the Slurm controller reachable? check SLURM_CONF)",
                        what(),
                        COMMAND_TIMEOUT.as_secs()
                    );
                }
                None => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        };
        let joined = |h: std::thread::JoinHandle<String>| h.join().unwrap_or_default();
        Ok(Ran {
            success: status.success(),
            stdout: joined(stdout),
            stderr: joined(stderr),
        })
    }

    /// The `sbatch` arguments that submit `job` (everything but the program name): what
    /// [`Engine::submit`] runs, and what a dry run can show. An error for a job Slurm cannot
    /// take as it is (an empty argv, a name `squeue -n` cannot look up, an export that is not
    /// a variable name).
    pub fn sbatch_argv(&self, job: &JobRequest) -> Result<Vec<String>> {
        check_name(&job.name)?;
        if job.argv.is_empty() {
            bail!("job {}: nothing to run (empty argv)", job.name);
        }
        for name in &job.export {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!(
                    "job {}: cannot export {name:?}: only names of environment variables (letters, digits, _) may be exported",
                    job.name
                );
            }
        }
        let mut args = vec![
            "--parsable".to_string(),
            "-J".to_string(),
            job.name.clone(),
            "-o".to_string(),
            file_pattern(&job.output),
            "-e".to_string(),
            file_pattern(&job.error),
            format!("--chdir={}", job.workdir.display()),
            // Gadugi owns retries (a new attempt, a new job): a job Slurm requeued would run
            // the same attempt again and start its numbered records over.
            "--no-requeue".to_string(),
        ];
        if let Some(limit) = job.time_limit {
            // Slurm counts time limits in whole minutes: round up, at least one.
            args.push(format!("--time={}", limit.as_secs().div_ceil(60).max(1)));
        }
        if let Some(partition) = &self.partition {
            args.push(format!("--partition={partition}"));
        }
        // A list of names exports those (plus SLURM_*) over the user's login environment on
        // the node; NONE exports nothing but SLURM_* (a list cannot be empty).
        args.push(if job.export.is_empty() {
            "--export=NONE".to_string()
        } else {
            format!("--export={}", job.export.join(","))
        });
        args.extend(self.sbatch_args.iter().cloned());
        // `--wrap` makes an `sh` script of its text: `exec` so that the job's command is the
        // batch step's own process (it gets scancel's SIGTERM directly), each argument quoted.
        args.push(format!("--wrap=exec {}", shell_words::join(&job.argv)));
        Ok(args)
    }
}

/// Reads `pipe` to its end on a thread of its own; the text read (a read error leaves what
/// was read: the exit status still tells what happened).
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// A job name must be one argument to `squeue -n` (a comma-separated list) and one line of
/// its output.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(',') || name.chars().any(char::is_control) {
        bail!(
            "job name {name:?} cannot be a Slurm job name: it must be non-empty, without commas or control characters"
        );
    }
    Ok(())
}

/// `path` as `sbatch -o`/`-e` take it: `%` starts a replacement (`%j` is the job id), `%%`
/// is a `%`.
fn file_pattern(path: &Path) -> String {
    path.display().to_string().replace('%', "%%")
}

/// The job id in `sbatch --parsable`'s output: `ID` or `ID;CLUSTER`.
fn parse_submitted(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    is_job_id(id).then(|| id.to_string())
}

fn is_job_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// The exit code of a raw wait status as `squeue -O exit_code` prints it: the shell's
/// convention, `128 + signal` for a command killed by a signal.
fn exit_code(raw: i32) -> i32 {
    let signal = raw & 0x7f;
    if signal != 0 {
        128 + signal
    } else {
        (raw >> 8) & 0xff
    }
}

/// What one line of `squeue -O` [`STATE_FORMAT`] says of a job.
fn parse_state(line: &str) -> Result<JobState> {
    let fields: Vec<&str> = line.trim().split('|').collect();
    let [_id, state, host, reason, code, ..] = fields.as_slice() else {
        bail!("squeue printed {line:?}, not the fields asked for ({STATE_FORMAT})");
    };
    let node = || host.trim().to_string();
    let known_node = || Some(node()).filter(|n| !n.is_empty() && n != "n/a" && n != "(null)");
    let failed = |why: &str| JobState::Failed {
        reason: format!("{}: {why}", state.to_lowercase()),
    };
    let exited = || -> Result<JobState> {
        let raw: i32 = code
            .trim()
            .parse()
            .with_context(|| format!("squeue printed exit code {code:?} for a {state} job"))?;
        Ok(JobState::Exited {
            code: exit_code(raw),
            node: known_node(),
        })
    };
    Ok(match state.trim() {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" | "SPECIAL_EXIT" => {
            JobState::Pending {
                reason: reason.trim().to_string(),
            }
        }
        "RUNNING" | "COMPLETING" | "CONFIGURING" | "SIGNALING" | "STAGE_OUT" | "RESIZING" | "SUSPENDED" | "STOPPED" => {
            JobState::Running { node: node() }
        }
        "COMPLETED" => exited()?,
        // FAILED: the command ended with a non-zero code or a signal; a FAILED job whose
        // status is 0 never ran its command (the node could not launch it).
        "FAILED" => match exited()? {
            JobState::Exited { code: 0, .. } => failed(&format!("Slurm could not start it ({})", reason.trim())),
            exited => exited,
        },
        "CANCELLED" => JobState::Cancelled,
        "TIMEOUT" => failed("it ran past its time limit"),
        "OUT_OF_MEMORY" => failed("it used more memory than it was given"),
        "NODE_FAIL" => failed("its node failed"),
        "BOOT_FAIL" => failed("its node could not boot"),
        "DEADLINE" => failed("it could not end before its deadline"),
        "PREEMPTED" => failed("a job of a higher priority took its node"),
        "REVOKED" => failed("a sibling cluster of the federation runs it"),
        other => bail!("squeue says job state {other:?}, which Gadugi does not know"),
    })
}

impl Engine for Slurm {
    fn kind(&self) -> &'static str {
        "slurm"
    }

    fn check(&self) -> Result<(), String> {
        for program in ["sbatch", "squeue", "scancel", "sinfo"] {
            if find_on_path(program).is_none() {
                return Err(format!(
                    "`{program}` is not on PATH: install slurm-client (Debian: apt-get install slurm-client) or set PATH"
                ));
            }
        }
        // A SLURM_CONF naming no file makes every client retry for 60 s before it says so.
        if let Some(conf) = self.env_var("SLURM_CONF").filter(|c| !c.is_empty()) {
            if !Path::new(&conf).is_file() {
                return Err(format!(
                    "SLURM_CONF is {}, which is not a file: point it at the cluster's slurm.conf",
                    Path::new(&conf).display()
                ));
            }
        }
        let ran = self
            .run("sinfo", &["-h".to_string(), "-o".to_string(), "%P".to_string()])
            .map_err(|e| format!("{e:#}"))?;
        if !ran.success {
            return Err(format!(
                "the Slurm controller does not answer: sinfo says `{}` (check SLURM_CONF, now {})",
                ran.first_error_line(),
                self.env_var("SLURM_CONF")
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "unset".to_string())
            ));
        }
        Ok(())
    }

    fn submit(&self, job: &JobRequest) -> Result<JobHandle> {
        if let Some(found) = self.find(&job.name)? {
            return Ok(found);
        }
        let args = self.sbatch_argv(job)?;
        let ran = self.run("sbatch", &args)?;
        if !ran.success {
            bail!("sbatch could not submit job {}: {}", job.name, ran.first_error_line());
        }
        let id = parse_submitted(&ran.stdout).with_context(|| {
            format!(
                "sbatch submitted job {} but printed no job id (stdout: {:?})",
                job.name,
                ran.stdout.trim()
            )
        })?;
        Ok(JobHandle {
            id,
            name: job.name.clone(),
        })
    }

    fn find(&self, name: &str) -> Result<Option<JobHandle>> {
        check_name(name)?;
        let args = ["--me", "-h", "--states=all", "-n", name, "-o", "%i"].map(String::from);
        let ran = self.run("squeue", &args)?;
        if !ran.success {
            bail!("squeue could not look for job {name}: {}", ran.first_error_line());
        }
        // Several jobs of one name (an earlier one cancelled by hand, say): the newest.
        let mut newest: Option<u64> = None;
        for line in ran.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let id: u64 = line
                .parse()
                .with_context(|| format!("squeue printed {line:?} for the id of job {name}"))?;
            newest = newest.max(Some(id));
        }
        Ok(newest.map(|id| JobHandle {
            id: id.to_string(),
            name: name.to_string(),
        }))
    }

    fn state(&self, job: &JobHandle) -> Result<JobState> {
        if !is_job_id(&job.id) {
            bail!("{:?} is not a Slurm job id", job.id);
        }
        let args = ["-h", "--states=all", "-j", &job.id, "-O", STATE_FORMAT].map(String::from);
        let ran = self.run("squeue", &args)?;
        let forgotten = || JobState::Lost {
            reason: format!(
                "Slurm no longer knows job {} ({}): it forgets a job MinJobAge after its end",
                job.id, job.name
            ),
        };
        if !ran.success {
            if ran.stderr.contains("Invalid job id") {
                return Ok(forgotten());
            }
            bail!(
                "squeue could not tell the state of job {}: {}",
                job.id,
                ran.first_error_line()
            );
        }
        match ran.stdout.lines().map(str::trim).find(|l| !l.is_empty()) {
            None => Ok(forgotten()),
            Some(line) => parse_state(line).with_context(|| format!("the state of job {} ({})", job.id, job.name)),
        }
    }

    fn cancel(&self, job: &JobHandle) -> Result<()> {
        if !is_job_id(&job.id) {
            bail!("{:?} is not a Slurm job id", job.id);
        }
        // Plain scancel: SIGTERM to all the job's processes, SIGKILL after KillWait (see the
        // module's documentation). A job that already ended, or that Slurm forgot, is
        // nothing to cancel: scancel then succeeds or says so on stderr.
        let ran = self.run("scancel", std::slice::from_ref(&job.id))?;
        let over = ["Invalid job id", "already completing or completed"];
        if !ran.success && !over.iter().any(|s| ran.stderr.contains(s)) {
            bail!("scancel could not cancel job {}: {}", job.id, ran.first_error_line());
        }
        Ok(())
    }

    fn describe(&self, job: &JobRequest) -> Result<String> {
        let mut argv = vec!["sbatch".to_string()];
        argv.extend(self.sbatch_argv(job)?);
        Ok(shell_words::join(&argv))
    }

    fn read_output(&self, job: &JobHandle, output: &Path, from: u64) -> Result<Vec<u8>> {
        let mut file = match std::fs::File::open(output) {
            Ok(file) => file,
            // The job has not started (Slurm creates the file when it does).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("reading the output of job {}: {}", job.id, output.display()))
            }
        };
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(from))
            .and_then(|_| file.read_to_end(&mut bytes))
            .with_context(|| format!("reading the output of job {}: {}", job.id, output.display()))?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_table;
    use std::path::PathBuf;

    #[test]
    fn squeue_lines_become_states() {
        let running = |n: &str| JobState::Running { node: n.to_string() };
        let failed = |r: &str| JobState::Failed { reason: r.to_string() };
        let exited = |code, node: Option<&str>| JobState::Exited {
            code,
            node: node.map(String::from),
        };
        let cases = [
            (
                "7|PENDING|n/a|Resources|0|",
                JobState::Pending {
                    reason: "Resources".into(),
                },
            ),
            ("7|RUNNING|n1|None|0|", running("n1")),
            ("7|COMPLETING|n2|None|0|", running("n2")),
            ("7|COMPLETED|n1|None|0|", exited(0, Some("n1"))),
            ("7|FAILED|n1|NonZeroExitCode|768|", exited(3, Some("n1"))),
            ("7|FAILED|n2|JobLaunchFailure|9|", exited(137, Some("n2"))),
            (
                "7|FAILED|n1|JobLaunchFailure|0|",
                failed("failed: Slurm could not start it (JobLaunchFailure)"),
            ),
            (
                "7|TIMEOUT|n1|TimeLimit|15|",
                failed("timeout: it ran past its time limit"),
            ),
            ("7|NODE_FAIL|n1|None|0|", failed("node_fail: its node failed")),
            ("7|CANCELLED|n/a|BeginTime|0|", JobState::Cancelled),
        ];
        check_table(&cases, |(line, expected)| {
            let got = parse_state(line).map_err(|e| e.to_string());
            (line.to_string(), Ok(expected.clone()), got)
        });
        assert!(parse_state("7|WHATEVER|n1|None|0|").is_err());
        assert!(parse_state("7|RUNNING").is_err());
    }

    #[test]
    fn sbatch_gets_quoted_argv_exports_and_escaped_paths() {
        let slurm = Slurm::new(Some("agents".into()), vec!["--mem=1G".into()]);
        let job = JobRequest {
            name: "gadugi-r1-t1-1".into(),
            argv: vec!["gadugi".into(), "remote-task".into(), "it's here".into()],
            output: PathBuf::from("/w/100%/out"),
            error: PathBuf::from("/w/err"),
            workdir: PathBuf::from("/w"),
            time_limit: Some(Duration::from_secs(61)),
            export: vec!["PATH".into(), "HOME".into()],
            ..Default::default()
        };
        let args = slurm.sbatch_argv(&job).expect("valid job");
        assert_eq!(
            args,
            [
                "--parsable",
                "-J",
                "gadugi-r1-t1-1",
                "-o",
                "/w/100%%/out",
                "-e",
                "/w/err",
                "--chdir=/w",
                "--no-requeue",
                "--time=2",
                "--partition=agents",
                "--export=PATH,HOME",
                "--mem=1G",
                "--wrap=exec gadugi remote-task 'it'\\''s here'",
            ]
        );
        let none = JobRequest {
            export: vec![],
            time_limit: None,
            ..job.clone()
        };
        let args = Slurm::default().sbatch_argv(&none).expect("valid job");
        assert!(args.contains(&"--export=NONE".to_string()), "{args:?}");
        assert!(!args.iter().any(|a| a.starts_with("--time")), "{args:?}");
        let secret = JobRequest {
            export: vec!["TOKEN=abc".into()],
            ..job.clone()
        };
        assert!(Slurm::default().sbatch_argv(&secret).is_err());
        let comma = JobRequest {
            name: "a,b".into(),
            ..job
        };
        assert!(Slurm::default().sbatch_argv(&comma).is_err());
    }

    #[test]
    fn sbatch_ids_and_wait_statuses() {
        assert_eq!(parse_submitted("42\n"), Some("42".into()));
        assert_eq!(parse_submitted("42;cluster\n"), Some("42".into()));
        assert_eq!(parse_submitted("Submitted batch job 42\n"), None);
        assert_eq!(parse_submitted(""), None);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(768), 3);
        assert_eq!(exit_code(9), 137);
        assert_eq!(exit_code(15), 143);
    }
}
