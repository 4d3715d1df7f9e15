//! Load generator (`loadgen`) and ceiling server (`ceiling`) for the
//! discovery service registry. Everything is bounded in time and targets
//! loopback addresses only.
//!
//! # Layout
//!
//! - `scenario`: the load scenarios (`fetch`, `renew`, `fleet`, `park`,
//!   `capacity`) and what they share (`common`: flags, bulk requests;
//!   `closed`: back-to-back requests).
//! - `http`: the one HTTP/1.1 parser (`http::parse`), the receive buffer,
//!   keep-alive and blocking client connections.
//! - `proto`: the bytes of each discovery request, and sample answers.
//! - `jscan`: the timestamps picked out of poll and fetch answers.
//! - `rt`: one monoio runtime per thread, the driver, the target address.
//! - `task`: `race` and `LocalStop` for tasks on one runtime.
//! - `stats`: latency histograms and outcome counters.
//! - `sys`: machine facts, and the server's CPU and RSS from /proc.
//! - `args`: `--flag value` parsing.
//! - `report`: summary.md and the chart of a results directory.

pub mod args;
pub mod http;
pub mod jscan;
pub mod proto;
pub mod report;
pub mod rt;
pub mod scenario;
pub mod stats;
pub mod sys;
pub mod task;
