//! The file watcher the session holds, and how far each followed run's event log has been
//! read. What to do on a change is `watch.rs`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::core::events::parse_event_log;
use crate::core::state::RunState;

/// The watcher and what it watches.
pub struct Watcher {
    inner: RecommendedWatcher,
    watched: HashSet<PathBuf>,
    /// How far each followed run's event log has been read.
    pub tails: HashMap<PathBuf, Tail>,
}

/// A run's event log read so far: new lines are applied to the state, so following a long
/// run costs what it appends, not its whole log each time.
#[derive(Default)]
pub struct Tail {
    offset: u64,
    partial: Vec<u8>,
    state: Option<RunState>,
}

impl Tail {
    /// Reads what was appended since the last call; returns the state when there is one.
    pub fn advance(&mut self, log: &Path) -> Option<RunState> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(log).ok()?;
        let len = f.metadata().ok()?.len();
        if len < self.offset {
            *self = Tail::default();
        }
        f.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut new = Vec::new();
        f.read_to_end(&mut new).ok()?;
        self.offset += new.len() as u64;
        self.partial.extend_from_slice(&new);
        let complete = self.partial.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let lines: Vec<u8> = self.partial.drain(..complete).collect();
        let records = parse_event_log(&String::from_utf8_lossy(&lines));
        match &mut self.state {
            Some(state) => records.iter().for_each(|r| state.apply(r)),
            None => self.state = RunState::replay(&records),
        }
        self.state.clone()
    }
}

impl Watcher {
    /// Wraps a started `notify` watcher; nothing is watched yet.
    pub fn new(inner: RecommendedWatcher) -> Watcher {
        Watcher {
            inner,
            watched: HashSet::new(),
            tails: HashMap::new(),
        }
    }

    /// Watches `path` (once).
    pub fn watch(&mut self, path: &Path, mode: RecursiveMode) {
        if self.watched.contains(path) {
            return;
        }
        match self.inner.watch(path, mode) {
            Ok(()) => {
                self.watched.insert(path.to_path_buf());
            }
            Err(e) => tracing::warn!("cannot watch {}: {e}", path.display()),
        }
    }
}
