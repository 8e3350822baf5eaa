//! Benchmark of `gadugi server --stdio`: the latency of `gadugi/treeState` while 16 agents
//! stream output, and the server's resident memory with 32 tasks.
//!
//! Run through `bash scripts/bench-lsp.sh` (builds the release binary and passes it in
//! `GADUGI_BIN`). Builds a temporary repository with TASKS prompt files (default 32) whose
//! scripted agent prints a line every 20 ms for AGENT_SECONDS seconds (default 6) and commits;
//! starts the server, orchestrates every prompt with maxParallel PARALLEL (default 16), and
//! while PARALLEL agents run sends `gadugi/treeState` requests one after another, timing
//! each from write to response. Samples VmRSS of the server process every 50 ms and reads
//! its VmHWM (peak) at the end. Prints the figures as `key value` lines (the suite's format).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn send(w: &mut impl Write, msg: &Value) -> anyhow::Result<()> {
    let body = msg.to_string();
    write!(w, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    w.flush()?;
    Ok(())
}

/// Waits for the response with `id`, answering server requests on the way.
fn response(rx: &Receiver<Value>, w: &mut impl Write, id: i64) -> anyhow::Result<Value> {
    loop {
        let m = rx.recv_timeout(Duration::from_secs(120))?;
        if m.get("method").is_some() && m.get("id").is_some() {
            send(w, &json!({"jsonrpc": "2.0", "id": m["id"], "result": null}))?;
        } else if m["id"] == id {
            return Ok(m);
        }
    }
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() -> anyhow::Result<()> {
    let bin = std::env::var("GADUGI_BIN").map_err(|_| anyhow::anyhow!("set GADUGI_BIN to the gadugi binary"))?;
    let tasks = env_or("TASKS", 32);
    let parallel = env_or("PARALLEL", 16);
    let seconds = env_or("AGENT_SECONDS", 6);
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("repo");
    std::fs::create_dir_all(root.join("prompts"))?;
    let root = root.canonicalize()?;
    git(&root, &["init", "-q", "-b", "main"])?;
    std::fs::write(root.join("README.md"), "bench\n")?;
    let agent = tmp.path().join("agent.sh");
    let lines = seconds * 50;
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\ni=0\nwhile [ $i -lt {lines} ]; do echo \"working on step $i of $GADUGI_TASK_ID\"; sleep 0.02; i=$((i+1)); done\n\
             echo $GADUGI_TASK_ID > out.txt; git add -A; git -c user.name=b -c user.email=b@b commit -qm $GADUGI_TASK_ID\n"
        ),
    )?;
    std::fs::write(
        root.join("gadugi.toml"),
        format!("[agent]\nprofile = \"command\"\ncommand = \"sh {}\"\n", agent.display()),
    )?;
    let mut files = vec![];
    for i in 0..tasks {
        let p = root.join("prompts").join(format!("t{i:02}.md"));
        std::fs::write(&p, format!("# Task {i}\n\nStream output and commit.\n"))?;
        files.push(format!("file://{}", p.display()));
    }
    git(&root, &["add", "-A"])?;
    git(
        &root,
        &["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init"],
    )?;

    let mut child = Command::new(&bin)
        .args(["server", "--stdio"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let mut w = child.stdin.take().unwrap();
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        while let Some(m) = read_message(&mut r) {
            if tx.send(m).is_err() {
                break;
            }
        }
    });
    let uri = format!("file://{}", root.display());
    send(
        &mut w,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": null, "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": "bench"}],
            "capabilities": {"window": {"workDoneProgress": true}}}}),
    )?;
    response(&rx, &mut w, 1)?;
    send(
        &mut w,
        &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    )?;
    let rss_idle = status_kb(pid, "VmRSS:").unwrap_or(0);
    send(
        &mut w,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {
            "command": "gadugi.orchestrate", "arguments": [{"files": files, "maxParallel": parallel}]}}),
    )?;
    let started = response(&rx, &mut w, 2)?;
    anyhow::ensure!(started.get("result").is_some(), "orchestrate failed: {started}");

    // Latencies while all `parallel` agents ran (the figure the suite reports), and while any
    // ran: on a loaded machine the agents may never all run at once, and the smoke run checks
    // that the benchmark yields numbers, not how fast the machine is (issue 14, defect 15).
    let mut latencies = vec![];
    let mut any_running = vec![];
    let mut rss_max = 0;
    let mut id = 10;
    let mut full_parallel_samples = 0;
    let mut last_rss = Instant::now();
    let begin = Instant::now();
    loop {
        id += 1;
        let t0 = Instant::now();
        send(
            &mut w,
            &json!({"jsonrpc": "2.0", "id": id, "method": "gadugi/treeState", "params": {}}),
        )?;
        let resp = response(&rx, &mut w, id)?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let run = &resp["result"]["runs"][0];
        let running = run["tasks"]
            .as_array()
            .map(|t| t.iter().filter(|t| t["status"] == "running").count())
            .unwrap_or(0);
        if running as u64 >= parallel {
            latencies.push(ms);
            full_parallel_samples += 1;
        }
        if running > 0 || any_running.is_empty() {
            any_running.push(ms);
        }
        if last_rss.elapsed() >= Duration::from_millis(50) {
            rss_max = rss_max.max(status_kb(pid, "VmRSS:").unwrap_or(0));
            last_rss = Instant::now();
        }
        if run["status"] != "running" && run["status"].is_string() {
            anyhow::ensure!(run["status"] == "succeeded", "the run did not succeed: {run}");
            break;
        }
        anyhow::ensure!(begin.elapsed() < Duration::from_secs(600), "the run took too long");
        std::thread::sleep(Duration::from_millis(5));
    }
    let hwm = status_kb(pid, "VmHWM:").unwrap_or(0);
    send(&mut w, &json!({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}))?;
    response(&rx, &mut w, 3)?;
    send(&mut w, &json!({"jsonrpc": "2.0", "method": "exit"}))?;
    let _ = child.wait();
    if latencies.is_empty() {
        eprintln!("lsp_bench: never saw {parallel} agents running at once; reporting the samples taken while any ran");
        latencies = any_running;
    }
    anyhow::ensure!(!latencies.is_empty(), "no treeState answer at all");
    latencies.sort_by(f64::total_cmp);
    // The suite's figure format: `key value` (see scripts/bench.sh).
    println!("lsp.tasks {tasks}");
    println!("lsp.parallel {parallel}");
    println!("lsp.seconds {seconds}");
    println!("lsp.samples {full_parallel_samples}");
    println!("lsp.p50_ms {:.2}", percentile(&latencies, 0.5));
    println!("lsp.p99_ms {:.2}", percentile(&latencies, 0.99));
    println!("lsp.max_ms {:.2}", latencies[latencies.len() - 1]);
    println!("lsp.rss_idle_mb {:.1}", rss_idle as f64 / 1024.0);
    println!("lsp.rss_max_mb {:.1}", rss_max as f64 / 1024.0);
    println!("lsp.hwm_mb {:.1}", hwm as f64 / 1024.0);
    println!("lsp.wall_s {:.1}", begin.elapsed().as_secs_f64());
    Ok(())
}
