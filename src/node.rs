//! The running node: what every core's handlers and the housekeeping thread share — the
//! registry, the configuration, this node's identity and its start-up protection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::instance::{Registration, STATUS_UP};
use crate::registry::waiters::Hub;
use crate::registry::Registry;

/// The appid every discovery node registers itself under.
pub const SELF_APPID: &str = "infra.discovery";

/// Status of a node in `nodes`: reachable.
pub const NODE_UP: u8 = 0;
/// Status of a node in `nodes`: the last call to it failed (or none was made yet).
pub const NODE_LOST: u8 = 1;

/// State shared by all cores.
#[derive(Debug)]
pub struct Node {
    pub config: Config,
    pub registry: Registry,
    pub hub: Arc<Hub>,
    /// The address this node really listens on (the configured one, or the port picked for 0).
    pub addr: SocketAddr,
    pub metrics: Metrics,
    pub cluster: Cluster,
    protected: AtomicBool,
}

/// One row of the `nodes` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub addr: String,
    pub status: u8,
    pub zone: String,
}

impl Node {
    /// A node for `config`, listening on `addr`, with `inboxes` runtimes (the cores and the
    /// cluster thread) to notify of changes.
    pub fn new(config: Config, addr: SocketAddr, inboxes: usize) -> Node {
        let hub = Arc::new(Hub::new(inboxes));
        Node {
            protected: AtomicBool::new(config.enable_protect),
            registry: Registry::new(hub.clone()),
            hub,
            addr,
            metrics: Metrics::default(),
            cluster: Cluster::default(),
            config,
        }
    }

    /// True while start-up protection refuses reads.
    pub fn protected(&self) -> bool {
        self.protected.load(Ordering::Relaxed)
    }

    /// Ends start-up protection (a peer sync succeeded, or its time ran out).
    pub fn end_protection(&self) {
        if self.protected.swap(false, Ordering::Relaxed) {
            tracing::info!("start-up protection ended: reads are served");
        }
    }

    /// This node's own `infra.discovery` registration.
    pub fn self_registration(&self) -> Registration {
        let env = &self.config.env;
        Registration {
            region: env.region.clone(),
            zone: env.zone.clone(),
            env: env.deploy_env.clone(),
            appid: SELF_APPID.into(),
            hostname: env.host.clone(),
            addrs: vec![format!("http://{}", self.addr)],
            status: STATUS_UP,
            ..Default::default()
        }
    }

    /// Nodes of this zone: this node first and up, then its peers with their status.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let zone = &self.config.env.zone;
        let mut list = vec![NodeInfo {
            addr: self.addr.to_string(),
            status: NODE_UP,
            zone: zone.clone(),
        }];
        list.extend(self.cluster.peers().own.iter().map(|p| NodeInfo {
            addr: p.addr.clone(),
            status: p.status(),
            zone: p.zone.clone(),
        }));
        list
    }

    /// True when `addr` is this node's configured or actual address.
    pub fn is_me(&self, addr: &str) -> bool {
        addr == self.addr.to_string() || addr == self.config.http_server.addr.to_string()
    }
}
