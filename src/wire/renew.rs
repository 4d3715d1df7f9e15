//! `renew`: the heartbeat. Decoded from a client's or peer's form, encoded as a form for peers.

use super::params::Params;
use super::{int, peer_form, Hop, Origin, Rules};
use crate::error::Result;
use crate::registry::instance::Instance;
use crate::registry::InstanceKey;

/// A renew request.
#[derive(Debug, Clone, Copy)]
pub struct Renew<'a> {
    pub(crate) key: InstanceKey<'a>,
    /// The sender's version of the instance (peers only); 0 when not sent.
    pub(crate) dirty_ts: i64,
    pub(crate) origin: Origin,
}

impl<'a> Renew<'a> {
    /// Reads a renew form; its timestamp must pass `rules`.
    pub fn from_params(p: &'a Params, rules: &Rules) -> Result<Renew<'a>> {
        let (zone, env) = (p.required("zone")?, p.required("env")?);
        let (appid, hostname) = (p.required("appid")?, p.required("hostname")?);
        let origin = Origin::from_params(p)?;
        Ok(Renew {
            key: InstanceKey {
                env,
                appid,
                zone,
                hostname,
            },
            dirty_ts: rules.timestamp(p, "dirty_timestamp")?.unwrap_or(0),
            origin,
        })
    }
}

/// The form that forwards a renew of `inst` to a peer.
pub(crate) fn form(inst: &Instance, hop: Hop) -> String {
    let mut f = peer_form(hop, inst.region(), inst.zone(), inst.env(), inst.appid());
    f.append_pair("hostname", &inst.hostname);
    f.append_pair("dirty_timestamp", &int(inst.dirty_ts));
    f.finish()
}
