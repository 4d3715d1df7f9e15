//! Who this node is: its region, zone, env and host name from the config, and the address it
//! really listens on. The api layer answers `nodes` with it, the cluster tells itself apart from
//! its peers with it, and the node registers itself under [`SELF_APPID`] with it.

use std::net::SocketAddr;

use crate::config::Config;
use crate::registry::instance::{Registration, STATUS_UP};
use crate::registry::InstanceKey;

/// The appid every discovery node registers itself under.
pub(crate) const SELF_APPID: &str = "infra.discovery";

/// This node's identity.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) region: String,
    pub(crate) zone: String,
    /// The deploy env (`[env] DeployEnv`), the `env` of its own registration.
    pub(crate) env: String,
    pub(crate) host: String,
    /// The address this node really listens on (the configured one, or the port picked for 0).
    pub(crate) addr: SocketAddr,
    /// The address the config names, which peers' configs may use.
    pub(crate) configured_addr: SocketAddr,
}

impl Identity {
    /// The identity `config` gives a node listening on `addr`.
    pub(crate) fn new(config: &Config, addr: SocketAddr) -> Identity {
        Identity {
            region: config.env.region.clone(),
            zone: config.env.zone.clone(),
            env: config.env.deploy_env.clone(),
            host: config.env.host.clone(),
            addr,
            configured_addr: config.http_server.addr,
        }
    }

    /// This node's own `infra.discovery` registration.
    pub(crate) fn registration(&self) -> Registration {
        Registration {
            region: self.region.clone(),
            zone: self.zone.clone(),
            env: self.env.clone(),
            appid: SELF_APPID.into(),
            hostname: self.host.clone(),
            addrs: vec![format!("http://{}", self.addr)],
            status: STATUS_UP,
            ..Default::default()
        }
    }

    /// The key of this node's own registration.
    pub(crate) fn key(&self) -> InstanceKey<'_> {
        InstanceKey {
            env: &self.env,
            appid: SELF_APPID,
            zone: &self.zone,
            hostname: &self.host,
        }
    }

    /// True when `addr` (`host:port`) is this node's configured or actual address.
    pub(crate) fn is_me(&self, addr: &str) -> bool {
        addr == self.addr.to_string() || addr == self.configured_addr.to_string()
    }
}
