//! GET `/ui/api/overview`: this node at a glance, for the dashboard's overview page.

use super::super::answer::Answer;
use super::super::context::Api;
use super::Obj;
use crate::error::Result;
use crate::metrics::{count, gauge, LATENCY_BOUNDS_NS};
use crate::registry::instance::{STATUS_UP, STATUS_WAITING};

/// Handles the overview: identity, uptime, load, registry size, guard and protection state,
/// and whether status changes may be offered (an admin token is configured).
pub(crate) fn handle<'a>(api: &Api, _: ()) -> Result<Answer<'a>> {
    let m = &*api.metrics;
    let me = &api.identity;
    let apps = api.registry.apps();
    let (mut up, mut waiting, mut instances) = (0u64, 0u64, 0u64);
    for (_, snap) in &apps {
        for inst in snap.instances() {
            instances += 1;
            match inst.status {
                STATUS_UP => up += 1,
                STATUS_WAITING => waiting += 1,
                _ => {}
            }
        }
    }
    let guard = api.registry.self_preservation();
    let (expected, threshold) = guard.expected();
    let peers = api.cluster.peers();
    let wake = m.merged(|c| &c.poll_wake);
    let mut out = Vec::with_capacity(1024);
    let mut o = Obj::new(&mut out);
    o.str("version", env!("CARGO_PKG_VERSION"))
        .str("region", &me.region)
        .str("zone", &me.zone)
        .str("env", &me.env)
        .str("host", &me.host)
        .str("addr", &me.addr.to_string())
        .int("uptime_s", m.started.elapsed().as_secs())
        .str("driver", m.driver.get().copied().unwrap_or("unknown"))
        // Slot 0 of the per-core counters belongs to the threads that are not cores.
        .int("cores", m.cores.iter().count() - 1)
        .int("apps", apps.len())
        .int("instances", instances)
        .int("up", up)
        .int("waiting", waiting)
        .int("parked_polls", m.sum(|c| gauge(&c.polls_parked)))
        .int("connections", m.sum(|c| gauge(&c.connections_open)))
        .int("requests", m.sum(|c| count(&c.requests) as i64))
        .bool("self_preservation", gauge(&m.self_preservation) != 0)
        .bool("protected", api.cluster.protected())
        .int("renews_expected", expected)
        .int("renews_threshold", threshold)
        .int("renews_last_window", guard.renews_last_window())
        .int("evicted", count(&m.evicted))
        .int("peers", peers.all().count())
        .int(
            "peers_up",
            peers
                .all()
                .filter(|p| p.status() == crate::cluster::peer::PeerStatus::Up)
                .count(),
        )
        .int(
            "poll_wake_p99_us",
            wake.quantile(&LATENCY_BOUNDS_NS, 0.99)
                .map_or(-1, |ns| (ns / 1000) as i64),
        )
        .bool("admin", api.admin_configured());
    o.end();
    Ok(Answer::Data(out))
}
