//! The cluster's shared handle: the peer set cores read when they forward a write, start-up
//! protection, and what the cluster thread was given (registry, identity, settings).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::op::Op;
use super::peer::{pick, Peer};
use crate::clock;
use crate::config::{Config, Driver};
use crate::identity::Identity;
use crate::registry::Registry;
use crate::wire::{Limits, Origin, Rules};

/// The peers known now.
#[derive(Default)]
pub(crate) struct PeerSet {
    /// Other nodes of this zone.
    pub(crate) own: Vec<Arc<Peer>>,
    /// Nodes of other zones, by zone.
    pub(crate) zones: BTreeMap<String, Vec<Arc<Peer>>>,
    /// The addresses the peers resolved to, for telling a peer's request by its source.
    pub(crate) ips: Vec<IpAddr>,
}

impl PeerSet {
    /// Every peer, this zone's first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Peer>> {
        self.own.iter().chain(self.zones.values().flatten())
    }
}

/// What the cluster takes from the config.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Seed nodes of this zone.
    pub(super) nodes: Vec<String>,
    /// Seed nodes of other zones.
    pub(super) zones: BTreeMap<String, Vec<String>>,
    /// Peer connect and per-call timeouts.
    pub(super) dial: Duration,
    pub(super) timeout: Duration,
    /// Sent to peers as `Authorization: Bearer`.
    pub(super) peer_token: Option<Arc<str>>,
    /// Most peers kept.
    pub(super) max_peers: usize,
    /// How far ahead of this clock a peer's timestamps may be.
    pub(super) max_skew: Duration,
    /// Size limits a peer's instances are held to, as clients' are.
    pub(super) limits: Limits,
    /// The I/O driver the cluster thread runs on, as the cores do.
    pub(super) driver: Driver,
}

impl Settings {
    pub(crate) fn from_config(config: &Config) -> Settings {
        Settings {
            nodes: config.nodes.clone(),
            zones: config.zones.clone(),
            dial: config.http_client.dial,
            timeout: config.http_client.timeout,
            peer_token: config.auth.peer_token.as_deref().map(Arc::from),
            max_peers: config.cluster.max_peers,
            max_skew: config.registry.max_clock_skew,
            limits: Limits::from_config(&config.limits, config.http_server.max_body_bytes),
            driver: config.http_server.driver,
        }
    }
}

/// Peers, replication and start-up protection, shared by all cores.
pub(crate) struct Cluster {
    pub(super) peers: ArcSwap<PeerSet>,
    /// True while start-up protection refuses reads.
    protected: AtomicBool,
    pub(super) registry: Arc<Registry>,
    pub(super) identity: Arc<Identity>,
    pub(super) settings: Settings,
}

impl Cluster {
    /// A cluster with no peers yet (see [`Cluster::spawn`]); `protected` starts start-up
    /// protection.
    pub(crate) fn new(
        settings: Settings,
        registry: Arc<Registry>,
        identity: Arc<Identity>,
        protected: bool,
    ) -> Cluster {
        if protected {
            tracing::info!(
                state = "on",
                "start-up protection on: reads are refused until a peer sync succeeds or it times out"
            );
        }
        Cluster {
            peers: ArcSwap::default(),
            protected: AtomicBool::new(protected),
            registry,
            identity,
            settings,
        }
    }

    /// Forwards a write that came from `origin`: a client's to every other node of the zone
    /// and one random node of each other zone; another zone's only inside this zone; a peer's
    /// nowhere. Never waits.
    pub(crate) fn forward(&self, op: Op, origin: Origin) {
        if origin == Origin::Peer {
            return;
        }
        let set = self.peers.load();
        for p in &set.own {
            p.submit(op.clone());
        }
        if origin == Origin::Client {
            for nodes in set.zones.values() {
                if let Some(p) = pick(nodes) {
                    p.submit(op.clone());
                }
            }
        }
    }

    /// The current peers.
    pub(crate) fn peers(&self) -> Arc<PeerSet> {
        self.peers.load_full()
    }

    /// True when `ip` is an address one of the peers resolved to.
    pub(crate) fn is_peer_addr(&self, ip: IpAddr) -> bool {
        self.peers.load().ips.contains(&ip)
    }

    /// The rules a peer's answers are checked against, now.
    pub(super) fn rules(&self) -> Rules {
        Rules {
            now_ns: clock::now_ns(),
            max_skew_ns: i64::try_from(self.settings.max_skew.as_nanos()).unwrap_or(i64::MAX),
            limits: self.settings.limits,
        }
    }

    /// True while start-up protection refuses reads.
    pub(crate) fn protected(&self) -> bool {
        self.protected.load(Ordering::Relaxed)
    }

    /// Ends start-up protection (a peer sync succeeded, or its time ran out).
    pub(crate) fn end_protection(&self) {
        if self.protected.swap(false, Ordering::Relaxed) {
            tracing::info!(state = "off", "start-up protection ended: reads are served");
        }
    }
}
