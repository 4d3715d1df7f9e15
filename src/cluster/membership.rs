//! Self-discovery: which peers the cluster has. The config's `nodes` and `[zones]` are seeds;
//! the live set follows the `infra.discovery` instances in the registry. A rebuild keeps the
//! peers it already has (their queues and connections) and reports the new ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::handle::{Cluster, PeerSet};
use super::op::Op;
use super::peer::Peer;
use crate::identity::SELF_APPID;
use crate::wire::register::MAX_NODE_ADDRS;

/// The addresses the cluster should have: seeds plus discovered `infra.discovery` nodes.
fn wanted(cluster: &Cluster) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let me = &cluster.identity;
    let mut own: Vec<String> = Vec::new();
    let mut zones: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let max = cluster.settings.max_peers;
    let mut count = 0;
    let mut add = |zone: &str, addr: String| {
        // Seeds come first, so a flood of learnt nodes can never push out a configured one.
        if count >= max {
            return;
        }
        count += 1;
        if zone == me.zone {
            if !me.is_me(&addr) && !own.contains(&addr) {
                own.push(addr);
            }
        } else {
            let list = zones.entry(zone.to_owned()).or_default();
            if !list.contains(&addr) {
                list.push(addr);
            }
        }
    };
    for a in &cluster.settings.nodes {
        add(&me.zone, a.clone());
    }
    for (zone, addrs) in &cluster.settings.zones {
        for a in addrs {
            add(zone, a.clone());
        }
    }
    if let Some(snap) = cluster.registry.snapshot(&me.env, SELF_APPID) {
        for inst in snap.instances() {
            for a in inst.addrs.iter().take(MAX_NODE_ADDRS) {
                if let Some(hostport) = a.strip_prefix("http://") {
                    add(inst.zone(), hostport.to_owned());
                }
            }
        }
    }
    if count >= max {
        tracing::warn!(
            max_peers = max,
            "peer set is full ([cluster] maxPeers); further nodes ignored"
        );
    }
    (own, zones)
}

/// Rebuilds the peer set from [`wanted`], keeping existing peers (their queues and
/// connections); returns the peers that are new, for their lanes to be started.
pub(super) fn refresh(cluster: &Cluster) -> Vec<Arc<Peer>> {
    let (own, zones) = wanted(cluster);
    let old = cluster.peers();
    let existing = |addr: &str, zone: &str| -> Option<Arc<Peer>> {
        old.all()
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
    let my_zone = cluster.identity.zone.clone();
    let mut set = PeerSet {
        own: own.iter().map(|a| get(a, &my_zone, true)).collect(),
        zones: zones
            .iter()
            .map(|(z, addrs)| (z.clone(), addrs.iter().map(|a| get(a, z, false)).collect()))
            .collect(),
        ips: Vec::new(),
    };
    set.ips = set
        .all()
        .filter_map(|p| p.resolve())
        .map(|a| a.ip().to_canonical())
        .collect();
    set.ips.sort_unstable();
    set.ips.dedup();
    for p in old.all() {
        if !set.all().any(|q| Arc::ptr_eq(p, q)) {
            tracing::info!(peer = %p.addr, zone = %p.zone, "peer left the cluster");
            p.close();
        }
    }
    for p in &fresh {
        tracing::info!(peer = %p.addr, zone = %p.zone, "peer joined the cluster");
    }
    cluster.peers.store(Arc::new(set));
    fresh
}

/// Sends this node's own registration to peers that just joined. A node learns about the
/// others through `infra.discovery` registrations, but a registration reaches another zone only
/// through the node that took it — so without this, a node that started before a new zone's
/// node would stay unknown there until its next self-renew.
pub(super) fn announce(cluster: &Cluster, fresh: &[Arc<Peer>]) {
    let key = cluster.identity.key();
    let own = cluster
        .registry
        .snapshot(key.env, key.appid)
        .and_then(|s| s.find(key.zone, key.hostname).cloned());
    if let Some(inst) = own {
        for p in fresh {
            p.submit(Op::Register(inst.clone()));
        }
    }
}
