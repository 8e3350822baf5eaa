//! The language server's view of its own runs: every event's resulting state goes into the
//! tree, and the publisher is woken (it debounces; the run loop never waits on the client).

use std::sync::Arc;

use crate::events::EventRecord;
use crate::lsp::backend::{lock, Shared};
use crate::orchestrator::EventSink;
use crate::state::RunState;

/// Feeds one run's states into the shared tree.
pub struct TreeSink {
    pub shared: Arc<Shared>,
}

impl EventSink for TreeSink {
    fn on_event(&mut self, _rec: &EventRecord, state: &RunState) {
        if lock(&self.shared.tree).update(state.clone(), true) {
            self.shared.touch();
        }
    }
}
