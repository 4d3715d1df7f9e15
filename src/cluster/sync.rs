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
    let answer = match reply.map_err(|e| e.to_string()).and_then(|a| {
        if a.status == 200 {
            Ok(a.body)
        } else {
            Err(format!("HTTP {}", a.status))
        }
    }) {
        Ok(body) => body,
        Err(e) => return sync_failed(&peer, &e),
    };
    // The answer is checked whole before anything in it is registered; then each instance is
    // read and registered in turn, so the answer's bytes are the only copy of it held.
    let rules = cluster.rules();
    let instances = match decode_fetch_all(&answer, &rules) {
        Ok(list) => list,
        Err(e) => return sync_failed(&peer, &e),
    };
    peer.mark(PeerStatus::Up, &"synced");
    let now = clock::now_ns();
    let (mut count, mut skipped, mut first_error) = (0, 0, None);
    for reg in instances {
        let registered = reg.and_then(|reg| {
            cluster
                .registry
                .register_synced(&reg, now)
                .map_err(|e| e.to_string())
        });
        match registered {
            Ok(_) => count += 1,
            Err(e) => {
                skipped += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        // One line for them all: a peer's answer can hold a million.
        tracing::warn!(peer = %peer.addr, skipped, first = %e, "start-up sync: skipped instances that fail the checks");
    }
    tracing::info!(peer = %peer.addr, instances = count, "start-up sync done");
    cluster.end_protection();
    true
}

fn sync_failed(peer: &Peer, e: &str) -> bool {
    peer.mark(PeerStatus::Lost, &e);
    tracing::warn!(peer = %peer.addr, error = %e, "start-up sync failed");
    false
}
