//! The cluster: this node's peers and the replication of writes to them, the start-up sync, and
//! self-discovery (peers follow the `infra.discovery` instances in the registry; the config's
//! `nodes` and `zones` are seeds). It runs on a thread of its own with its own monoio runtime,
//! so no peer call ever waits on a serving core; cores only queue ops.

pub mod op;
pub mod peer;
pub mod sync;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::node::{Node, NODE_UP, SELF_APPID};
use crate::registry::waiters::CoreWaiters;
use crate::registry::wake_key;
use op::Op;
use peer::{Peer, LANES};

/// The peers known now.
#[derive(Default)]
pub struct PeerSet {
    /// Other nodes of this zone.
    pub own: Vec<Arc<Peer>>,
    /// Nodes of other zones, by zone.
    pub zones: BTreeMap<String, Vec<Arc<Peer>>>,
}

/// Peers and replication, shared by all cores.
#[derive(Default)]
pub struct Cluster {
    peers: ArcSwap<PeerSet>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.peers.load();
        f.debug_struct("Cluster")
            .field("own", &set.own.len())
            .field("zones", &set.zones.len())
            .finish()
    }
}

impl Cluster {
    /// Forwards a client's write: to every other node of the zone and, unless it came from
    /// another zone, to one random node of each other zone. Never waits.
    pub fn replicate(&self, op: Op, from_zone: bool) {
        let set = self.peers.load();
        for p in &set.own {
            p.submit(op.clone());
        }
        if !from_zone {
            for nodes in set.zones.values() {
                if let Some(p) = pick(nodes) {
                    p.submit(op.clone());
                }
            }
        }
    }

    /// The current peers.
    pub fn peers(&self) -> Arc<PeerSet> {
        self.peers.load_full()
    }
}

/// A random node of a zone, among those up if any is.
fn pick(nodes: &[Arc<Peer>]) -> Option<&Arc<Peer>> {
    let up: Vec<&Arc<Peer>> = nodes.iter().filter(|p| p.status() == NODE_UP).collect();
    let from: Vec<&Arc<Peer>> = if up.is_empty() {
        nodes.iter().collect()
    } else {
        up
    };
    if from.is_empty() {
        return None;
    }
    Some(from[monoio::utils::thread_rng_n(from.len() as u32) as usize])
}

/// The addresses the cluster should have: seeds plus discovered `infra.discovery` nodes.
fn wanted(node: &Node) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let my_zone = &node.config.env.zone;
    let mut own: Vec<String> = Vec::new();
    let mut zones: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |zone: &str, addr: String| {
        if zone == my_zone {
            if !node.is_me(&addr) && !own.contains(&addr) {
                own.push(addr);
            }
        } else {
            let list = zones.entry(zone.to_owned()).or_default();
            if !list.contains(&addr) {
                list.push(addr);
            }
        }
    };
    for a in &node.config.nodes {
        add(my_zone, a.clone());
    }
    for (zone, addrs) in &node.config.zones {
        for a in addrs {
            add(zone, a.clone());
        }
    }
    if let Some(snap) = node
        .registry
        .snapshot(&node.config.env.deploy_env, SELF_APPID)
    {
        for inst in snap.instances() {
            for a in inst.addrs.iter() {
                if let Some(hostport) = a.strip_prefix("http://") {
                    add(&inst.zone, hostport.to_owned());
                }
            }
        }
    }
    (own, zones)
}

/// Rebuilds the peer set from [`wanted`], keeping existing peers (their queues and
/// connections); returns the peers that are new, for their lanes to be started.
pub fn refresh(node: &Node) -> Vec<Arc<Peer>> {
    let (own, zones) = wanted(node);
    let old = node.cluster.peers.load_full();
    let existing = |addr: &str, zone: &str| -> Option<Arc<Peer>> {
        old.own
            .iter()
            .chain(old.zones.values().flatten())
            .find(|p| p.addr == addr && p.zone == zone)
            .cloned()
    };
    let mut fresh = Vec::new();
    let mut get = |addr: &str, zone: &str, own_zone: bool| {
        existing(addr, zone).unwrap_or_else(|| {
            let p = Arc::new(Peer::new(addr.to_owned(), zone.to_owned(), own_zone));
            fresh.push(p.clone());
            p
        })
    };
    let my_zone = node.config.env.zone.clone();
    let set = PeerSet {
        own: own.iter().map(|a| get(a, &my_zone, true)).collect(),
        zones: zones
            .iter()
            .map(|(z, addrs)| (z.clone(), addrs.iter().map(|a| get(a, z, false)).collect()))
            .collect(),
    };
    for p in old.own.iter().chain(old.zones.values().flatten()) {
        let kept = set
            .own
            .iter()
            .chain(set.zones.values().flatten())
            .any(|q| Arc::ptr_eq(p, q));
        if !kept {
            tracing::info!(peer = %p.addr, zone = %p.zone, "peer left the cluster");
            p.close();
        }
    }
    for p in &fresh {
        tracing::info!(peer = %p.addr, zone = %p.zone, "peer joined the cluster");
    }
    node.cluster.peers.store(Arc::new(set));
    fresh
}

/// Sends this node's own registration to peers that just joined. A node learns about the
/// others through `infra.discovery` registrations, but a registration reaches another zone only
/// through the node that took it — so without this, a node that started before a new zone's
/// node would stay unknown there until its next self-renew.
fn announce(node: &Node, fresh: &[Arc<Peer>]) {
    let me = node.self_registration();
    let own = node
        .registry
        .snapshot(&me.env, &me.appid)
        .and_then(|s| s.find(&me.zone, &me.hostname).cloned());
    if let Some(inst) = own {
        for p in fresh {
            p.submit(Op::Register(inst.clone()));
        }
    }
}

/// Starts the cluster thread: start-up sync, then replication until shutdown. The peer set is
/// built before it returns, so writes replicated from now on find their peers.
pub fn spawn(node: Arc<Node>, inbox: usize) -> std::io::Result<std::thread::JoinHandle<()>> {
    let initial = refresh(&node);
    std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || {
            let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                .enable_timer()
                .build();
            match rt {
                Ok(mut rt) => rt.block_on(run(node, inbox, initial)),
                Err(e) => tracing::error!(error = %e, "cannot start the cluster runtime"),
            }
        })
}

async fn run(node: Arc<Node>, inbox: usize, initial: Vec<Arc<Peer>>) {
    let waiters = Rc::new(CoreWaiters::default());
    let mut dispatcher = monoio::spawn(waiters.clone().dispatch(node.hub.clone(), inbox));
    let mut lanes = Vec::new();
    let start_lanes = |peers: Vec<Arc<Peer>>, lanes: &mut Vec<monoio::task::JoinHandle<()>>| {
        for p in peers {
            monoio::spawn(p.clone().probe(node.clone()));
            for lane in 0..LANES {
                lanes.push(monoio::spawn(p.clone().run_lane(lane, node.clone())));
            }
        }
    };
    start_lanes(initial, &mut lanes);
    // Sync from every node of the zone and one of each other zone, all at once.
    let set = node.cluster.peers();
    let mut sources: Vec<Arc<Peer>> = set.own.clone();
    sources.extend(set.zones.values().filter_map(|nodes| pick(nodes)).cloned());
    for p in sources {
        monoio::spawn(sync::sync_from(p, node.clone()));
    }
    let key = wake_key(&node.config.env.deploy_env, SELF_APPID);
    loop {
        // Park before refreshing, so a change during the refresh wakes the next round.
        let ticket = waiters.park(&[key]);
        let fresh = refresh(&node);
        announce(&node, &fresh);
        start_lanes(fresh, &mut lanes);
        monoio::select! {
            _ = ticket.changed() => {}
            _ = &mut dispatcher => break,
        }
    }
    // Shutdown: let the lanes deliver what is queued (this node's own cancel among it),
    // within one call's time.
    let set = node.cluster.peers();
    for p in set.own.iter().chain(set.zones.values().flatten()) {
        p.close();
    }
    let cfg = &node.config.http_client;
    let until = Instant::now() + cfg.dial + cfg.timeout;
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
