//! The language server's view of its own runs: every event's resulting state goes into the
//! tree, and the publisher is woken (it debounces; the run loop never waits on the client).

use std::sync::Arc;

use crate::core::events::EventRecord;
use crate::core::state::RunState;
use crate::lsp::session::Shared;
use crate::run::emitter::EventSink;

/// Feeds one run's states into the shared tree.
pub struct TreeSink {
    pub shared: Arc<Shared>,
}

impl EventSink for TreeSink {
    fn on_event(&mut self, _rec: &EventRecord, state: &RunState) {
        // Cloned before the tree is locked: the lock is held only to swap the state in.
        let state = state.clone();
        if self.shared.change_tree(|tree| tree.update(state, true)) {
            self.shared.touch();
        }
    }
}
