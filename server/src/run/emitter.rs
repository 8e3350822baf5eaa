//! The one writer of a run's events: [`Emitter`] applies each event to the run state,
//! persists it (event log, snapshot) and hands it to the views, in that order.

use anyhow::Result;
use chrono::Utc;

use crate::core::events::{Event, EventRecord};
use crate::core::state::{RunState, StateWriter};

/// A view of the event stream (terminal progress, the language server, ...).
pub trait EventSink: Send {
    /// Called after `rec` has been applied to `state` and persisted.
    fn on_event(&mut self, rec: &EventRecord, state: &RunState);
}

/// Applies events to the run state, persists them and hands them to the views, in that
/// order. The only place events are published.
pub(crate) struct Emitter {
    pub state: RunState,
    writer: StateWriter,
    sinks: Vec<Box<dyn EventSink>>,
    /// Frequent events (activity, heartbeats) are logged at once but snapshotted lazily.
    unsaved: bool,
}

impl Emitter {
    pub fn new(state: RunState, writer: StateWriter, sinks: Vec<Box<dyn EventSink>>) -> Emitter {
        Emitter {
            state,
            writer,
            sinks,
            unsaved: false,
        }
    }

    /// Hands an event that is already applied and persisted (the run's start) to the views.
    pub fn show(&mut self, rec: &EventRecord) {
        for s in &mut self.sinks {
            s.on_event(rec, &self.state);
        }
    }

    pub fn emit(&mut self, event: Event) -> Result<()> {
        let rec = EventRecord { ts: Utc::now(), event };
        self.state.apply(&rec);
        let snapshot = self.writer.record(&rec, &self.state)?;
        self.unsaved = !snapshot;
        self.show(&rec);
        Ok(())
    }

    pub fn save_if_needed(&mut self) -> Result<()> {
        if self.unsaved {
            self.writer.snapshot(&self.state)?;
            self.unsaved = false;
        }
        Ok(())
    }
}
