//! An async (tokio) client for the discovery service registry — this repository's server or
//! bilibili's Go original. Providers register and stay registered; consumers read and watch.
//!
//! ```no_run
//! # async fn run() -> Result<(), discovery_client::Error> {
//! use discovery_client::{Client, Config, Service};
//! let client = Client::new(Config::new(["127.0.0.1:7171"]).zone("sh001").env("dev").hostname("host-1"))?;
//! let registration = client.register(Service::new("demo.service", ["grpc://10.0.0.1:9000"])).await?;
//! let mut watch = client.watch(["demo.service"])?;
//! while let Some(apps) = watch.next().await {
//!     println!("{} instances", apps["demo.service"].len());
//! }
//! registration.cancel().await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`config`](Config): seeds, identity, token, intervals and timeouts.
//! - `client`: the [`Client`], the failover loop of every call, node learning, shutdown.
//! - `nodes`: which node to call (own zone first, failed nodes set aside, spread per client).
//! - `transport`: one HTTP request to one node, with its timeout and the bearer token.
//! - `answer`: decoding of the answer envelope.
//! - `provider`: [`Client::register`] and the [`Registration`] renew loop.
//! - `consumer`: [`Client::fetch`], [`Client::fetchs`] and the [`Watch`] long-poll loop.
//! - `model`: [`Instance`], [`InstanceInfo`], [`Service`], [`Status`]; `backoff`: [`Backoff`].

#![deny(missing_docs)]

mod answer;
mod backoff;
mod client;
mod config;
mod consumer;
mod error;
mod model;
mod nodes;
mod provider;
mod transport;

pub use backoff::Backoff;
pub use client::Client;
pub use config::Config;
pub use consumer::Watch;
pub use error::{Error, Result};
pub use model::{Apps, Instance, InstanceInfo, Service, Status};
pub use provider::Registration;
