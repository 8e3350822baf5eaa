//! How many agents may start now, and why fewer than asked: the circuit breaker's streak of
//! systemic failures and the machine's resource pressure. The decisions are pure
//! ([`Limiter::decide`], [`Limiter::attempt_ended`]); [`ResourceProbe`] samples the machine.

use std::time::{Duration, Instant};

use crate::agent::report::FailureClass;

/// The decisions about parallelism and the circuit breaker.
#[derive(Debug)]
pub struct Limiter {
    /// Agents at once when nothing holds the run back.
    max: usize,
    /// Causes of the systemic failures in a row, oldest first (all the same cause).
    systemic_streak: Vec<String>,
    /// Systemic failures in a row that open the breaker.
    breaker: u32,
    /// The limit last announced (to emit `ParallelismLimited` only on change).
    pub current: Option<(usize, Option<String>)>,
}

impl Limiter {
    pub fn new(max: usize, breaker: u32) -> Limiter {
        Limiter {
            max: max.max(1),
            systemic_streak: vec![],
            breaker: breaker.max(1),
            current: None,
        }
    }

    /// The limit now, given the machine's resource `pressure` (a reason, when there is
    /// some), with the reason when it is below the maximum.
    pub fn decide(&self, pressure: Option<String>) -> (usize, Option<String>) {
        if let Some(cause) = self.systemic_streak.last() {
            return (
                1,
                Some(format!(
                    "an attempt failed ({cause}); starting one task at a time until one succeeds"
                )),
            );
        }
        match pressure {
            Some(reason) => (1, Some(format!("{reason}; starting one task at a time"))),
            None => (self.max, None),
        }
    }

    /// Records an attempt's end (`class` None: it succeeded); returns the cause when the
    /// circuit breaker trips.
    pub fn attempt_ended(&mut self, class: Option<FailureClass>, cause: String) -> Option<String> {
        match class {
            None => self.systemic_streak.clear(),
            Some(FailureClass::Systemic) => {
                if self.systemic_streak.last().is_some_and(|c| *c != cause) {
                    self.systemic_streak.clear();
                }
                self.systemic_streak.push(cause.clone());
                if self.systemic_streak.len() >= self.breaker as usize {
                    return Some(cause);
                }
            }
            Some(_) => {}
        }
        None
    }

    /// Systemic failures in a row so far.
    pub fn streak(&self) -> u32 {
        self.systemic_streak.len() as u32
    }
}

/// Samples available memory and the load average, at most once a second.
pub struct ResourceProbe {
    min_memory_mb: u64,
    max_load: f64,
    system: sysinfo::System,
    sampled: Option<(Instant, Option<String>)>,
}

impl ResourceProbe {
    pub fn new(min_memory_mb: u64, max_load: f64) -> ResourceProbe {
        ResourceProbe {
            min_memory_mb,
            max_load,
            system: sysinfo::System::new(),
            sampled: None,
        }
    }

    /// Why the machine is under pressure, if it is.
    pub fn pressure(&mut self) -> Option<String> {
        if let Some((at, reason)) = &self.sampled {
            if at.elapsed() < Duration::from_secs(1) {
                return reason.clone();
            }
        }
        self.system.refresh_memory();
        let available = self.system.available_memory() / (1024 * 1024);
        let load = sysinfo::System::load_average().one;
        let reason = pressure_reason(available, load, self.min_memory_mb, self.max_load);
        self.sampled = Some((Instant::now(), reason.clone()));
        reason
    }
}

/// The pressure reason for `available` MiB of memory and a one-minute `load`.
pub fn pressure_reason(available: u64, load: f64, min_memory_mb: u64, max_load: f64) -> Option<String> {
    if available < min_memory_mb {
        Some(format!(
            "available memory {available} MiB is under min_available_memory_mb = {min_memory_mb}"
        ))
    } else if load > max_load {
        Some(format!("load average {load:.1} is over max_load = {max_load:.1}"))
    } else {
        None
    }
}
