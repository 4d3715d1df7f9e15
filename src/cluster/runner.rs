//! The cluster thread: its own monoio runtime running the start-up sync, one task per lane of
//! every peer, and the self-discovery loop that rebuilds the peer set whenever the
//! `infra.discovery` instances change, until its stop switch triggers; then the lanes get one
//! call's time to deliver what is queued.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::handle::Cluster;
use super::peer::{pick, DropReason, Peer, LANES};
use super::{lane, membership, sync};
use crate::identity::SELF_APPID;
use crate::park::{CoreWaiters, Hub, Inbox, WakeKey};
use crate::shutdown::ShutdownWatch;

impl Cluster {
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
        let driver = self.settings.driver;
        std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || {
                let rt = crate::runtime::build(driver);
                match rt {
                    Ok(mut rt) => rt.block_on(cluster.run(inbox, stop, initial)),
                    Err(e) => tracing::error!(error = %e, "cannot start the cluster runtime"),
                }
            })
    }

    async fn run(self: Arc<Self>, inbox: Arc<Inbox>, stop: ShutdownWatch, initial: Vec<Arc<Peer>>) {
        let waiters = Rc::new(CoreWaiters::default());
        monoio::spawn(waiters.clone().dispatch(inbox, stop.clone()));
        let mut lanes = Vec::new();
        self.start_lanes(initial, &mut lanes);
        // Sync from every node of the zone and one of each other zone, all at once.
        let set = self.peers();
        let mut sources: Vec<Arc<Peer>> = set.own.clone();
        sources.extend(set.zones.values().filter_map(|n| pick(n)).cloned());
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
                break;
            }
        }
        // What did not get out in time is counted, not silently lost.
        for p in self.peers().all() {
            let left = p.clear();
            if left > 0 {
                tracing::warn!(peer = %p.addr, ops = left, "replication queue not flushed before shutdown");
                p.drop_ops(left as u64, DropReason::Shutdown);
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
