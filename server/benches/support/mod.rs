//! Workloads shared by the in-process benchmarks (`benches/core.rs`) and the scheduling
//! simulation (`examples/sched_sim.rs`, which includes this file by `#[path]`): a seeded
//! PRNG, random dependency graphs, and plans built from them through the real prompt parser
//! and planner, so the scheduler sees exactly what `gadugi run` would give it.

#![allow(dead_code)] // each includer uses part of it

use std::path::{Path, PathBuf};

use gadugi::spec::plan::{build_plan, ConflictPolicy, Plan};
use gadugi::spec::task::load_task_from_text;

/// SplitMix64: a tiny, well-mixed PRNG; a fixed seed gives the same graphs on every machine
/// and every version of every crate (no `rand` dependency whose streams could change).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random DAG of `n` tasks: task `i` depends on 0–3 distinct earlier tasks (0 with
/// probability 1/4, so there are several roots), chosen among the previous 20 so that
/// chains stay long and graphs stay wide, as in real task lists.
pub fn random_dag(rng: &mut SplitMix, n: usize) -> Vec<Vec<usize>> {
    (0..n)
        .map(|i| {
            let mut deps: Vec<usize> = vec![];
            if i == 0 {
                return deps;
            }
            let k = rng.below(4) as usize;
            let window = i.min(20);
            for _ in 0..k {
                let d = i - 1 - rng.below(window as u64) as usize;
                if !deps.contains(&d) {
                    deps.push(d);
                }
            }
            deps.sort_unstable();
            deps
        })
        .collect()
}

/// Prompt file path and text of task `i` of a graph (`Depends on:` lines by id, `t<i>`);
/// `extra` is appended to the body (e.g. a scripted agent's instructions).
pub fn prompt(dir: &Path, i: usize, deps: &[usize], extra: &str) -> (PathBuf, String) {
    let mut text = format!("# Task {i}\n\nDo step {i} of the benchmark.\n");
    if !deps.is_empty() {
        let ids: Vec<String> = deps.iter().map(|d| format!("t{d}")).collect();
        text.push_str(&format!("\nDepends on: {}\n", ids.join(", ")));
    }
    text.push_str(extra);
    (dir.join(format!("t{i}.md")), text)
}

/// The plan `gadugi run` makes of these prompts: parsed and planned by the real code.
pub fn plan_of(prompts: &[(PathBuf, String)]) -> Plan {
    let specs = prompts
        .iter()
        .map(|(p, t)| load_task_from_text(p, t).expect("generated prompt parses"))
        .collect();
    build_plan(Path::new("/bench"), specs, &[], ConflictPolicy::Serialize).expect("generated graph plans")
}

/// The plan of a random graph.
pub fn random_plan(seed: u64, n: usize) -> Plan {
    let deps = random_dag(&mut SplitMix(seed), n);
    let prompts: Vec<_> = deps
        .iter()
        .enumerate()
        .map(|(i, d)| prompt(Path::new("/bench/prompts"), i, d, ""))
        .collect();
    plan_of(&prompts)
}
