//! From parallel branches to one result: merge-conflict prediction (in memory) and the
//! engine of `gadugi merge`.

pub mod merge;
pub mod predict;
