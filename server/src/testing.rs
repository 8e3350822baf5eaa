//! What the unit tests share (compiled only for them): the checker of a table of cases.

use std::fmt::Debug;

/// Runs every case of a table through `run`, which gives the case's name, what it expects
/// and what it got; fails listing every case that got something else, not only the first.
pub(crate) fn check_table<C, T: PartialEq + Debug>(cases: &[C], run: impl Fn(&C) -> (String, T, T)) {
    let failures: Vec<String> = cases
        .iter()
        .map(run)
        .filter(|(_, expected, got)| expected != got)
        .map(|(case, expected, got)| format!("{case}\n  expected: {expected:?}\n  got:      {got:?}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
