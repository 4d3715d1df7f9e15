//! Start-up sync: fill the registry from a peer's `fetch/all` before (or while) serving. The
//! first sync that succeeds ends start-up protection.

use std::sync::Arc;
use std::time::Duration;

use super::handle::Cluster;
use super::peer::{Peer, PeerStatus};
use crate::clock;
use crate::http::client::Client;
use crate::wire::instance::decode_fetch_all;

/// A `fetch/all` can be large; give it longer than a single write.
const SYNC_TIMEOUT_MIN: Duration = Duration::from_secs(30);

/// Fetches every instance of `peer` and registers it here with its own timestamps. True on
/// success, which also ends start-up protection.
pub(super) async fn sync_from(peer: Arc<Peer>, cluster: Arc<Cluster>) -> bool {
    let Some(addr) = peer.resolve() else {
        tracing::warn!(peer = %peer.addr, "start-up sync: cannot resolve peer");
        return false;
    };
    let s = &cluster.settings;
    let mut client = Client::new(addr, s.peer_token.clone());
    let reply = client
        .call(
            "GET",
            "/discovery/fetch/all",
            "",
            s.dial,
            s.timeout.max(SYNC_TIMEOUT_MIN),
        )
        .await;
    let regs = match reply.map_err(|e| e.to_string()).and_then(|a| {
        if a.status == 200 {
            decode_fetch_all(&a.body, &cluster.rules())
        } else {
            Err(format!("HTTP {}", a.status))
        }
    }) {
        Ok(r) => r,
        Err(e) => {
            peer.mark(PeerStatus::Lost, &e);
            tracing::warn!(peer = %peer.addr, error = %e, "start-up sync failed");
            return false;
        }
    };
    peer.mark(PeerStatus::Up, &"synced");
    let now = clock::now_ns();
    let count = regs.len();
    for reg in &regs {
        if let Err(e) = cluster.registry.register_synced(reg, now) {
            tracing::warn!(error = %e, appid = %reg.appid, "start-up sync: register failed");
        }
    }
    tracing::info!(peer = %peer.addr, instances = count, "start-up sync done");
    cluster.end_protection();
    true
}
