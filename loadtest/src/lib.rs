//! Load generator and ceiling server for the discovery service registry.
//! Everything is bounded in time and targets loopback addresses only.

pub mod args;
pub mod http;
pub mod proto;
pub mod report;
pub mod rt;
pub mod scenario;
pub mod stats;
pub mod sys;
pub mod util;
