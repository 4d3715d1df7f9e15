//! GET `/metrics`: the node's counters in Prometheus text, plus what is counted at scrape time
//! (registry size, self-preservation, peers and replication).

use std::sync::atomic::Ordering;

use super::answer::Answer;
use super::context::Api;
use crate::cluster::peer::{DropReason, Peer, PeerStatus};
use crate::error::Result;

/// Handles `/metrics`.
pub(crate) fn handle<'a>(api: &Api, _: ()) -> Result<Answer<'a>> {
    let (apps, instances) = api.registry.size();
    let guard = api.registry.self_preservation();
    let peers = api.cluster.peers();
    let all: Vec<&std::sync::Arc<Peer>> = peers.all().collect();
    let count = |f: &dyn Fn(&Peer) -> i64| all.iter().map(|p| f(p)).sum::<i64>();
    let text = api.metrics.render(&[
        (
            "discovery_apps",
            "gauge",
            "Apps (env, appid) with at least one instance.",
            apps as i64,
        ),
        (
            "discovery_instances",
            "gauge",
            "Registered instances.",
            instances as i64,
        ),
        (
            "discovery_renews_last_window",
            "gauge",
            "Renews counted in the last guard window.",
            guard.renews_last_window(),
        ),
        (
            "discovery_renews_expected",
            "gauge",
            "Renews expected per guard window.",
            guard.expected().0,
        ),
        (
            "discovery_peers",
            "gauge",
            "Peer nodes known (all zones).",
            all.len() as i64,
        ),
        (
            "discovery_peers_up",
            "gauge",
            "Peer nodes whose last call succeeded.",
            count(&|p| i64::from(p.status() == PeerStatus::Up)),
        ),
        (
            "discovery_replication_queued",
            "gauge",
            "Replicated writes waiting to be sent.",
            count(&|p| p.queued() as i64),
        ),
        (
            "discovery_replication_ops_total",
            "counter",
            "Replicated writes delivered to peers.",
            count(&|p| p.ops_sent.load(Ordering::Relaxed) as i64),
        ),
        (
            "discovery_replication_requests_total",
            "counter",
            "Requests that carried them (fewer when batched).",
            count(&|p| p.requests_sent.load(Ordering::Relaxed) as i64),
        ),
        (
            "discovery_replication_dropped_total",
            "counter",
            "Replicated writes dropped (peer unreachable or queue full).",
            count(&|p| p.dropped_total() as i64),
        ),
        (
            "discovery_replication_retried_total",
            "counter",
            "Replicated writes sent again after a failed attempt.",
            count(&|p| p.retried.load(Ordering::Relaxed) as i64),
        ),
    ]);
    Ok(Answer::Metrics(per_peer(text, &all)))
}

/// Appends the per-peer series: status, queue depth, and ops sent, retried and dropped by
/// reason, each labelled with the peer's address and zone.
fn per_peer(mut text: String, peers: &[&std::sync::Arc<Peer>]) -> String {
    use std::fmt::Write;
    type Series = (&'static str, &'static str, &'static str, fn(&Peer) -> u64);
    let series: [Series; 4] = [
        (
            "discovery_peer_up",
            "gauge",
            "1 while the peer's last call succeeded.",
            |p| u64::from(p.status() == PeerStatus::Up),
        ),
        (
            "discovery_peer_replication_queued",
            "gauge",
            "Writes waiting for the peer.",
            |p| p.queued() as u64,
        ),
        (
            "discovery_peer_replication_sent_total",
            "counter",
            "Writes delivered to the peer.",
            |p| p.ops_sent.load(Ordering::Relaxed),
        ),
        (
            "discovery_peer_replication_retried_total",
            "counter",
            "Writes sent to the peer again after a failed attempt.",
            |p| p.retried.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for p in peers {
            let _ = writeln!(
                text,
                "{name}{{peer=\"{}\",zone=\"{}\"}} {}",
                p.addr,
                p.zone,
                value(p)
            );
        }
    }
    let name = "discovery_peer_replication_dropped_total";
    let _ = writeln!(
        text,
        "# HELP {name} Writes for the peer dropped, by reason.\n# TYPE {name} counter"
    );
    for p in peers {
        for (reason, count) in DropReason::ALL.iter().zip(&p.dropped) {
            let _ = writeln!(
                text,
                "{name}{{peer=\"{}\",zone=\"{}\",reason=\"{}\"}} {}",
                p.addr,
                p.zone,
                reason.label(),
                count.load(Ordering::Relaxed)
            );
        }
    }
    text
}
