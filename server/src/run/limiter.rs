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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_table;

    /// `(max, breaker, attempts ended, machine pressure, expected)`. An attempt is `ok`,
    /// `sys:<cause>`, `task:<cause>` or `transient:<cause>`. Expected: what each attempt
    /// returned (`.`, or `trip(<cause>)` when the breaker trips), then `| streak N |` and the
    /// decision: the limit, and after `: ` why it is below the maximum.
    const CASES: &[(usize, u32, &str, Option<&str>, &str)] = &[
        (4, 3, "", None, "| streak 0 | 4"),
        (4, 3, "ok ok", None, ". . | streak 0 | 4"),
        (0, 3, "", None, "| streak 0 | 1"),
        // Pressure: one at a time.
        (4, 3, "", Some("low memory"), "| streak 0 | 1: low memory; starting one task at a time"),
        // A systemic failure: one at a time until one succeeds; N in a row trip the breaker.
        (4, 3, "sys:auth", None, ". | streak 1 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        (4, 3, "sys:auth sys:auth sys:auth", None, ". . trip(auth) | streak 3 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        (4, 3, "sys:auth sys:auth sys:auth sys:auth", None, ". . trip(auth) trip(auth) | streak 4 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        (4, 1, "sys:auth", None, "trip(auth) | streak 1 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        (4, 0, "sys:auth", None, "trip(auth) | streak 1 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        // A different cause starts the streak again.
        (4, 3, "sys:auth sys:auth sys:spawn", None, ". . . | streak 1 | 1: an attempt failed (spawn); starting one task at a time until one succeeds"),
        (4, 3, "sys:auth sys:spawn sys:auth sys:auth", None, ". . . . | streak 2 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        // A success clears it.
        (4, 3, "sys:auth sys:auth ok sys:auth", None, ". . . . | streak 1 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        (4, 3, "sys:auth sys:auth ok", None, ". . . | streak 0 | 4"),
        (4, 3, "sys:auth sys:auth sys:auth ok", None, ". . trip(auth) . | streak 0 | 4"),
        // The task's own and transient failures neither count nor break the streak.
        (4, 3, "task:exit1 transient:overloaded", None, ". . | streak 0 | 4"),
        (4, 3, "sys:auth task:exit1 sys:auth transient:overloaded sys:auth", None, ". . . . trip(auth) | streak 3 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        // The streak's reason wins over the machine's.
        (4, 3, "sys:auth", Some("low memory"), ". | streak 1 | 1: an attempt failed (auth); starting one task at a time until one succeeds"),
        (4, 3, "sys:auth ok", Some("load 9"), ". . | streak 0 | 1: load 9; starting one task at a time"),
    ];

    #[test]
    fn the_limiter_decides_from_the_streak_and_the_pressure() {
        check_table(CASES, |&(max, breaker, attempts, pressure, expected)| {
            let mut limiter = Limiter::new(max, breaker);
            let mut got: Vec<String> = attempts
                .split_whitespace()
                .map(|a| {
                    let (kind, cause) = a.split_once(':').unwrap_or((a, ""));
                    let class = match kind {
                        "ok" => None,
                        "sys" => Some(FailureClass::Systemic),
                        "task" => Some(FailureClass::Task),
                        "transient" => Some(FailureClass::Transient),
                        other => panic!("unknown attempt `{other}`"),
                    };
                    match limiter.attempt_ended(class, cause.to_string()) {
                        Some(tripped) => format!("trip({tripped})"),
                        None => ".".into(),
                    }
                })
                .collect();
            let (limit, reason) = limiter.decide(pressure.map(String::from));
            got.push(format!("| streak {} |", limiter.streak()));
            got.push(match reason {
                Some(r) => format!("{limit}: {r}"),
                None => limit.to_string(),
            });
            let case = format!("max {max}, breaker {breaker}, {attempts:?}, pressure {pressure:?}");
            (case, expected.to_string(), got.join(" "))
        });
    }

    /// `(available MiB, load, min_available_memory_mb, max_load, reason)`.
    const PRESSURE: &[(u64, f64, u64, f64, Option<&str>)] = &[
        (4096, 1.0, 512, 8.0, None),
        (512, 8.0, 512, 8.0, None),
        (
            511,
            1.0,
            512,
            8.0,
            Some("available memory 511 MiB is under min_available_memory_mb = 512"),
        ),
        (0, 0.0, 0, 8.0, None),
        (4096, 12.0, 512, 8.0, Some("load average 12.0 is over max_load = 8.0")),
        (4096, 8.5, 512, 8.0, Some("load average 8.5 is over max_load = 8.0")),
        // Memory is named first when both are short.
        (
            100,
            12.0,
            512,
            8.0,
            Some("available memory 100 MiB is under min_available_memory_mb = 512"),
        ),
    ];

    #[test]
    fn pressure_is_low_memory_or_high_load() {
        check_table(PRESSURE, |&(available, load, min, max, expected)| {
            let case = format!("{available} MiB, load {load}, min {min}, max {max}");
            (
                case,
                expected.map(String::from),
                pressure_reason(available, load, min, max),
            )
        });
    }
}
