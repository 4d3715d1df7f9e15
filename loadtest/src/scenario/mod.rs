//! The load scenarios.

pub mod capacity;
pub mod closed;
pub mod common;
pub mod fetch;
pub mod fleet;
pub mod park;
pub mod renew;
