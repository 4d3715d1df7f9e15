//! GET `/ui/api/cluster`: this node and each peer with its replication counters, for the
//! dashboard's cluster page.

use super::super::answer::Answer;
use super::super::context::Api;
use super::{array, Obj};
use crate::clock;
use crate::cluster::peer::{DropReason, PeerStatus};
use crate::error::Result;
use crate::metrics::count;

/// Handles the cluster view: peers sorted by zone and address.
pub(crate) fn handle<'a>(api: &Api, _: ()) -> Result<Answer<'a>> {
    let set = api.cluster.peers();
    let mut peers: Vec<_> = set.all().collect();
    peers.sort_unstable_by(|a, b| (&a.zone, &a.addr).cmp(&(&b.zone, &b.addr)));
    let mut out = Vec::with_capacity(peers.len() * 300 + 256);
    let mut o = Obj::new(&mut out);
    o.str("addr", &api.identity.addr.to_string())
        .str("zone", &api.identity.zone)
        .int("now", clock::now_ns());
    array(o.field("peers"), peers, |out, p| {
        let mut e = Obj::new(out);
        e.str("addr", &p.addr)
            .str("zone", &p.zone)
            .bool("own_zone", p.own_zone)
            .str("kind", p.kind())
            .str(
                "status",
                match p.status() {
                    PeerStatus::Up => "up",
                    PeerStatus::Lost => "lost",
                },
            )
            .int("last_ok_ns", p.last_ok_ns())
            .int("queued", p.queued())
            .int("sent", count(&p.ops_sent))
            .int("requests", count(&p.requests_sent))
            .int("retried", count(&p.retried))
            .int("dropped_queue_full", p.dropped(DropReason::QueueFull))
            .int("dropped_unreachable", p.dropped(DropReason::Unreachable));
        e.end();
    });
    o.end();
    Ok(Answer::Data(out))
}
