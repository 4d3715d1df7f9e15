//! The cluster: this node's peers and the replication of writes to them ([`lane`],
//! [`protocol`]), the start-up sync ([`sync`]) and its protection, and self-discovery
//! ([`membership`]). It runs on a thread of its own with its own monoio runtime, so no peer
//! call ever waits on a serving core; cores only queue ops through [`Cluster::forward`].
//!
//! It is given what it needs as handles — the registry, this node's identity, its settings —
//! and reaches nothing else.

mod lane;
mod membership;
pub(crate) mod op;
pub(crate) mod peer;
mod protocol;
mod sync;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::identity::{Identity, SELF_APPID};
use crate::park::{CoreWaiters, Hub, WakeKey};
use crate::registry::Registry;
use crate::shutdown::ShutdownWatch;
use crate::wire::Origin;
use op::Op;
use peer::{Peer, LANES};

/// The peers known now.
#[derive(Default)]
pub(crate) struct PeerSet {
    /// Other nodes of this zone.
    pub(crate) own: Vec<Arc<Peer>>,
    /// Nodes of other zones, by zone.
    pub(crate) zones: BTreeMap<String, Vec<Arc<Peer>>>,
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
    nodes: Vec<String>,
    /// Seed nodes of other zones.
    zones: BTreeMap<String, Vec<String>>,
    /// Peer connect and per-call timeouts.
    dial: Duration,
    timeout: Duration,
}

impl Settings {
    pub(crate) fn from_config(config: &Config) -> Settings {
        Settings {
            nodes: config.nodes.clone(),
            zones: config.zones.clone(),
            dial: config.http_client.dial,
            timeout: config.http_client.timeout,
        }
    }
}

/// Peers, replication and start-up protection, shared by all cores.
pub(crate) struct Cluster {
    peers: ArcSwap<PeerSet>,
    /// True while start-up protection refuses reads.
    protected: AtomicBool,
    registry: Arc<Registry>,
    identity: Arc<Identity>,
    settings: Settings,
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
                if let Some(p) = membership::pick(nodes) {
                    p.submit(op.clone());
                }
            }
        }
    }

    /// The current peers.
    pub(crate) fn peers(&self) -> Arc<PeerSet> {
        self.peers.load_full()
    }

    /// True while start-up protection refuses reads.
    pub(crate) fn protected(&self) -> bool {
        self.protected.load(Ordering::Relaxed)
    }

    /// Ends start-up protection (a peer sync succeeded, or its time ran out).
    pub(crate) fn end_protection(&self) {
        if self.protected.swap(false, Ordering::Relaxed) {
            tracing::info!("start-up protection ended: reads are served");
        }
    }

    /// Starts the cluster thread: start-up sync, then replication and self-discovery until
    /// `stop`. The peer set is built before it returns, so writes forwarded from now on find
    /// their peers.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        hub: &Hub,
        stop: ShutdownWatch,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        // Subscribed before the first refresh, so a change of `infra.discovery` in between
        // reaches the loop.
        let inbox = hub.subscribe();
        let initial = membership::refresh(self);
        let cluster = self.clone();
        std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || {
                let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                    .enable_timer()
                    .build();
                match rt {
                    Ok(mut rt) => rt.block_on(cluster.run(inbox, stop, initial)),
                    Err(e) => tracing::error!(error = %e, "cannot start the cluster runtime"),
                }
            })
    }

    async fn run(
        self: Arc<Self>,
        inbox: Arc<crate::park::Inbox>,
        stop: ShutdownWatch,
        initial: Vec<Arc<Peer>>,
    ) {
        let waiters = Rc::new(CoreWaiters::default());
        monoio::spawn(waiters.clone().dispatch(inbox, stop.clone()));
        let mut lanes = Vec::new();
        self.start_lanes(initial, &mut lanes);
        // Sync from every node of the zone and one of each other zone, all at once.
        let set = self.peers();
        let mut sources: Vec<Arc<Peer>> = set.own.clone();
        sources.extend(
            set.zones
                .values()
                .filter_map(|n| membership::pick(n))
                .cloned(),
        );
        for p in sources {
            monoio::spawn(sync::sync_from(p, self.clone()));
        }
        let key = WakeKey::of(&self.identity.env, SELF_APPID);
        loop {
            // Park before refreshing, so a change during the refresh wakes the next round.
            let ticket = waiters.park(&[key]);
            let fresh = membership::refresh(&self);
            membership::announce(&self, &fresh);
            self.start_lanes(fresh, &mut lanes);
            monoio::select! {
                _ = ticket.changed() => {}
                _ = stop.stopped() => break,
            }
        }
        // Stopping: let the lanes deliver what is queued (this node's own cancel among it),
        // within one call's time.
        for p in self.peers().all() {
            p.close();
        }
        let until = Instant::now() + self.settings.dial + self.settings.timeout;
        for lane in lanes {
            let left = until.saturating_duration_since(Instant::now());
            if monoio::time::timeout(left.max(Duration::from_millis(1)), lane)
                .await
                .is_err()
            {
                tracing::warn!("replication queue not flushed before shutdown");
                break;
            }
        }
    }

    fn start_lanes(
        self: &Arc<Self>,
        peers: Vec<Arc<Peer>>,
        lanes: &mut Vec<monoio::task::JoinHandle<()>>,
    ) {
        for p in peers {
            monoio::spawn(lane::probe(p.clone(), self.clone()));
            for n in 0..LANES {
                lanes.push(monoio::spawn(lane::run(p.clone(), n, self.clone())));
            }
        }
    }
}
