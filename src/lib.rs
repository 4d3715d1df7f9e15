//! discovery-rs: a wire-compatible, thread-per-core replacement for bilibili's `discovery`
//! service registry.
//!
//! # Layout
//! The modules follow the pipeline of a request; each imports only the ones below it:
//!
//! ```text
//!  main ─▶ node (life cycle, housekeeping, scheduler files)
//!            │
//!            ├─▶ net (listeners, one runtime per core)
//!            │     └─▶ http (framing, responses, connection loop; client for peers)
//!            │     └─▶ api (routes; one handler per endpoint: typed request → typed answer)
//!            │           ├─▶ wire (one file per message: form in/out, peer JSON in, rules)
//!            │           ├─▶ park (hub, per-core waiters of parked polls)
//!            │           └─▶ cluster (peers, lanes, protocol, sync, membership)
//!            │                 └─▶ wire, http::client
//!            └─▶ registry (apps, snapshots, instances, self-preservation: pure)
//!  leaves: config, identity, metrics, shutdown, json, clock, error, logging, cli
//! ```
//!
//! - [`net`] — `SO_REUSEPORT` listeners, one monoio runtime per core, accept loops.
//! - [`http`] — request framing, responses, the per-connection loop, the peers' client.
//! - [`api`] — routes and handlers; [`wire`] — the messages they read and peers exchange.
//! - [`registry`] — apps, snapshots, instances, eviction, self-preservation.
//! - [`park`] — parked long-polls and the hub that wakes them, one notification per core.
//! - [`cluster`] — peers, replication, start-up sync and protection, self-discovery.
//! - [`node`] — the node's life cycle: start, housekeeping chores, scheduler files, stop.
//! - [`config`], [`cli`], [`logging`], [`shutdown`]; crate-internal: `identity`, `metrics`,
//!   `json`, `clock`, `error`.
//! - `fuzzing` (feature `fuzzing` only) — a node's handler state for the cargo-fuzz targets in
//!   `fuzz/`.

pub mod api;
pub mod cli;
mod clock;
mod cluster;
pub mod config;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
mod identity;
mod json;
pub mod logging;
mod metrics;
pub mod net;
pub mod node;
pub mod park;
pub mod registry;
mod runtime;
pub mod shutdown;
pub mod wire;
