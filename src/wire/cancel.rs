//! `cancel`: remove an instance. Decoded from a client's or peer's form, encoded as a form for
//! peers.

use super::params::Params;
use super::{int, peer_form, Hop, Origin, Rules};
use crate::error::Result;
use crate::registry::instance::Instance;
use crate::registry::InstanceKey;

/// A cancel request.
#[derive(Debug, Clone, Copy)]
pub struct Cancel<'a> {
    pub(crate) key: InstanceKey<'a>,
    /// When the sender cancelled; `None` means now.
    pub(crate) latest_ts: Option<i64>,
    pub(crate) origin: Origin,
}

impl<'a> Cancel<'a> {
    /// Reads a cancel form; its timestamp must pass `rules`.
    pub fn from_params(p: &'a Params, rules: &Rules) -> Result<Cancel<'a>> {
        let (zone, env) = (p.required("zone")?, p.required("env")?);
        let (appid, hostname) = (p.required("appid")?, p.required("hostname")?);
        let latest_ts = rules.timestamp(p, "latest_timestamp")?;
        Ok(Cancel {
            key: InstanceKey {
                env,
                appid,
                zone,
                hostname,
            },
            latest_ts,
            origin: Origin::from_params(p)?,
        })
    }
}

/// The form that forwards the cancel of `inst` (at `latest_ts`) to a peer.
pub(crate) fn form(inst: &Instance, latest_ts: i64, hop: Hop) -> String {
    let mut f = peer_form(hop, inst.region(), inst.zone(), inst.env(), inst.appid());
    f.append_pair("hostname", &inst.hostname);
    f.append_pair("latest_timestamp", &int(latest_ts));
    f.finish()
}
