//! The node's life cycle: build the shared state (registry, hub, cluster, identity, metrics)
//! from the config, load scheduler files, register the node itself, start the cluster thread
//! and the cores, run the housekeeping chores on the calling thread until shutdown, then stop
//! in order: cancel the node's own registration, let the cluster deliver it, join everything.

mod housekeeping;
mod lapses;
mod persist;
mod schedulers;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use crate::api::Access;
use crate::clock;
use crate::cluster::op::Op;
use crate::cluster::{Cluster, Settings};
use crate::config::Config;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::net::{self, Shared};
use crate::park::Hub;
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::wire::{Limits, Origin};
use housekeeping::Housekeeping;
use schedulers::SchedulerDir;

/// Runs a node on already-bound `listeners` (one core each) until `shutdown` triggers, then
/// stops accepting, answers parked polls, cancels this node's own registration and returns.
pub fn run(config: Config, listeners: Vec<TcpListener>, shutdown: Shutdown) -> io::Result<()> {
    let addr = listeners
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listener"))?
        .local_addr()?;
    let cores = listeners.len();
    let identity = Arc::new(Identity::new(&config, addr));
    let hub = Arc::new(Hub::new());
    let registry = Arc::new(Registry::new(hub.clone(), cores));
    let metrics = Arc::new(Metrics::new(cores));
    let cluster = Arc::new(Cluster::new(
        Settings::from_config(&config),
        registry.clone(),
        identity.clone(),
        config.enable_protect,
    ));
    let chores = Housekeeping {
        registry: registry.clone(),
        cluster: cluster.clone(),
        identity: identity.clone(),
        metrics: metrics.clone(),
        timings: config.registry.clone(),
    };
    let limits = Limits::from_config(&config.limits, config.http_server.max_body_bytes);
    if let Some(path) = &config.registry.snapshot {
        let evict_after = i64::try_from(config.registry.evict_after.as_nanos()).unwrap_or(i64::MAX);
        persist::load(path, &registry, evict_after, limits);
    }
    let mut schedulers = config.dir.as_deref().map(SchedulerDir::new);
    if let Some(dir) = schedulers.as_mut() {
        chores.apply_schedulers(dir);
    }
    // The cluster stops after the cores, once this node's own cancel is queued for it.
    let cluster_stop = Shutdown::new();
    let cluster_thread = cluster.spawn(&hub, cluster_stop.watch())?;
    let own = registry
        .register(&identity.registration(), clock::now_ns())
        .map_err(|e| io::Error::other(e.to_string()))?;
    cluster.forward(Op::Register(own), Origin::Client);

    let shared = Shared {
        registry: registry.clone(),
        cluster: cluster.clone(),
        identity: identity.clone(),
        metrics,
        effective_config: config.effective().into(),
        hub,
        http: config.http_server.clone(),
        poll_hold: config.registry.poll_hold,
        access: Arc::new(Access::new(config.auth.clone())),
        max_clock_skew: config.registry.max_clock_skew,
        limits,
        fetch_all: Arc::default(),
        shutdown: shutdown.watch(),
    };
    let core_threads = net::start(listeners, shared)?;
    tracing::info!(
        %addr,
        threads = cores,
        zone = %identity.zone,
        env = %identity.env,
        protected = cluster.protected(),
        "discovery listening"
    );
    if !config.auth.is_configured() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "no [auth] configured on a non-loopback address: any client can register, renew, cancel and set any instance (peer-only actions are limited to the known nodes' addresses); see docs/SECURITY.md"
        );
    }

    chores.run(&shutdown, schedulers);

    tracing::info!("shutting down: cancelling own registration, answering parked polls");
    let now = clock::now_ns();
    match registry.cancel(&identity.key(), None, now) {
        Ok(inst) => cluster.forward(
            Op::Cancel {
                inst,
                latest_ts: now,
            },
            Origin::Client,
        ),
        Err(e) => tracing::warn!(error = %e, "own registration was already gone"),
    }
    // The cores stop taking writes first (they drain for at most 2 s); only then is the
    // cluster told to stop, so every write a core acknowledged is queued before the lanes flush.
    for t in core_threads {
        if t.join().is_err() {
            tracing::error!("a core thread panicked");
        }
    }
    // Every acknowledged write is in: save it for the next start.
    if let Some(path) = &config.registry.snapshot {
        if let Err(e) = persist::save(path, &registry) {
            tracing::error!(path = %path.display(), error = %e, "snapshot not written at stop");
        }
    }
    cluster_stop.trigger();
    if cluster_thread.join().is_err() {
        tracing::error!("the cluster thread panicked");
    }
    tracing::info!("stopped");
    Ok(())
}
