//! discovery-rs: a wire-compatible, thread-per-core replacement for bilibili's `discovery`
//! service registry.
//!
//! # Layout
//! The modules follow the pipeline of a request, each importing only downward:
//!
//! - [`server`] — `net`: `SO_REUSEPORT` listeners, one monoio runtime per core, shutdown.
//! - [`http`] — request framing, responses, the per-connection loop.
//! - [`api`] — routes, parameters, one handler per endpoint.
//! - [`registry`] — apps, snapshots, instances, parked-poll waiters, eviction, guard, schedulers.
//! - [`cluster`] — peers, replication, start-up sync, self-discovery; [`client`] — its HTTP client.
//! - [`node`] — the state all cores share; [`housekeeping`] — timed chores on their own thread.
//! - [`config`], [`cli`], [`logging`], [`metrics`], [`clock`], [`error`], [`shutdown`].

pub mod api;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod housekeeping;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod registry;
pub mod server;
pub mod shutdown;
