//! Scheduling quality, simulated: random dependency graphs with random task durations from a
//! fixed seed, run on a simulated clock through Gadugi's own scheduler (`Scheduler`: ready
//! queue, longest remaining path first, P slots) and, for comparison, level by level (waves:
//! a level starts when the whole previous level has finished). Each makespan is divided by
//! the lower bound max(critical path, total work / P).
//!
//!   sched_sim                       # prints `key value…` lines (one ratio per graph) for scripts/bench.sh
//!   sched_sim emit DIR N SEED       # writes N prompt files with `SLEEP: s` lines into DIR and
//!                                   # prints the simulated makespan and lower bound (seconds),
//!                                   # for the whole-process check
//!
//! Environment: SIZES (default 50,100,200), GRAPHS per size (default 25), P (default 4).
//! Durations: uniform in [1, 10) time units (emit: [0.2, 1.0) seconds).

#[path = "../benches/support/mod.rs"]
mod support;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use gadugi::core::scheduler::{Scheduler, Slot};
use gadugi::spec::plan::Plan;
use support::{plan_of, prompt, random_dag, SplitMix};

/// One graph: its plan (through the real planner) and each task's duration.
struct Graph {
    plan: Plan,
    dur: Vec<f64>,
}

fn graph(seed: u64, n: usize, lo: f64, hi: f64, dir: &Path) -> (Graph, Vec<(std::path::PathBuf, String)>) {
    let mut rng = SplitMix(seed);
    let deps = random_dag(&mut rng, n);
    let dur: Vec<f64> = (0..n).map(|_| rng.uniform(lo, hi)).collect();
    let prompts: Vec<_> = deps
        .iter()
        .enumerate()
        .map(|(i, d)| prompt(dir, i, d, &format!("\nSLEEP: {:.3}\n", dur[i])))
        .collect();
    // Durations as the agents will really sleep them (rounded as written).
    let dur = dur.iter().map(|d| (d * 1000.0).round() / 1000.0).collect();
    (
        Graph {
            plan: plan_of(&prompts),
            dur,
        },
        prompts,
    )
}

/// Event-driven run through Gadugi's scheduler: at every finish, the freed slots are filled
/// from the ready queue at once.
fn gadugi_makespan(g: &Graph, p: usize) -> f64 {
    let mut s = Scheduler::new(&g.plan);
    // Min-heap of (finish time in ns, task).
    let mut running: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let ns = |t: f64| (t * 1e9).round() as u64;
    let mut now = 0u64;
    loop {
        for t in s.take_ready(p - running.len()) {
            running.push(Reverse((now + ns(g.dur[t]), t)));
        }
        let Some(Reverse((end, t))) = running.pop() else { break };
        now = end;
        s.finish(t, Slot::Succeeded);
    }
    assert!(s.is_done(), "every task ran");
    now as f64 / 1e9
}

/// Level by level: level = 1 + the highest level of its dependencies; within a level the
/// same priority order, each task to the slot that frees first.
fn waves_makespan(g: &Graph, p: usize) -> f64 {
    let tasks = &g.plan.tasks;
    let mut level = vec![0usize; tasks.len()];
    for i in g.plan.topological_order() {
        level[i] = tasks[i]
            .deps
            .iter()
            .chain(&tasks[i].after)
            .map(|&d| level[d] + 1)
            .max()
            .unwrap_or(0);
    }
    let levels = level.iter().max().map_or(0, |m| m + 1);
    let mut total = 0.0;
    for l in 0..levels {
        let mut wave: Vec<usize> = (0..tasks.len()).filter(|&i| level[i] == l).collect();
        wave.sort_by_key(|&i| (Reverse(tasks[i].remaining_path), i));
        let mut slots = vec![0.0f64; p];
        for i in wave {
            let free = slots.iter_mut().min_by(|a, b| a.total_cmp(b)).unwrap();
            *free += g.dur[i];
        }
        total += slots.iter().cloned().fold(0.0, f64::max);
    }
    total
}

/// max(longest chain of durations, total work / P).
fn lower_bound(g: &Graph, p: usize) -> f64 {
    let tasks = &g.plan.tasks;
    let mut finish = vec![0.0f64; tasks.len()];
    for i in g.plan.topological_order() {
        let start = tasks[i]
            .deps
            .iter()
            .chain(&tasks[i].after)
            .map(|&d| finish[d])
            .fold(0.0, f64::max);
        finish[i] = start + g.dur[i];
    }
    let critical = finish.iter().cloned().fold(0.0, f64::max);
    critical.max(g.dur.iter().sum::<f64>() / p as f64)
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() -> anyhow::Result<()> {
    let p: usize = env("P", "4").parse()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("emit") {
        let [_, dir, n, seed] = &args[..] else {
            anyhow::bail!("usage: sched_sim emit DIR N SEED");
        };
        let dir = Path::new(dir);
        let (g, prompts) = graph(seed.parse()?, n.parse()?, 0.2, 1.0, &dir.canonicalize()?);
        for (path, text) in &prompts {
            std::fs::write(path, text)?;
        }
        println!("real.sim_makespan {:.3}", gadugi_makespan(&g, p));
        println!("real.waves_makespan {:.3}", waves_makespan(&g, p));
        println!("real.lower_bound {:.3}", lower_bound(&g, p));
        println!("real.total_work {:.3}", g.dur.iter().sum::<f64>());
        return Ok(());
    }
    let graphs: u64 = env("GRAPHS", "25").parse()?;
    for n in env("SIZES", "50,100,200").split(',') {
        let n: usize = n.trim().parse()?;
        let (mut ours, mut waves) = (vec![], vec![]);
        for k in 0..graphs {
            let (g, _) = graph(1000 * n as u64 + k, n, 1.0, 10.0, Path::new("/bench/prompts"));
            let lb = lower_bound(&g, p);
            ours.push(format!("{:.4}", gadugi_makespan(&g, p) / lb));
            waves.push(format!("{:.4}", waves_makespan(&g, p) / lb));
        }
        println!("sched.gadugi.{n} {}", ours.join(" "));
        println!("sched.waves.{n} {}", waves.join(" "));
    }
    Ok(())
}
