//! `set`: change status and/or metadata of several hosts of one app and zone at once. Decoded
//! from a client's or peer's form; forwarded to peers as the client sent it ([`SetOp`]).

use super::params::Params;
use super::{int, metadata, parse_status, peer_form, timestamp, Hop, Origin};
use crate::error::{Error, Result};
use crate::registry::{AppZone, HostChange};

/// A set request.
#[derive(Debug, Clone)]
pub struct Set<'a> {
    pub(crate) region: &'a str,
    pub(crate) at: AppZone<'a>,
    pub(crate) hostnames: Vec<&'a str>,
    /// As sent, one per hostname or none.
    pub(crate) statuses: Vec<&'a str>,
    /// As sent (JSON objects), one per hostname or none.
    pub(crate) metadata: Vec<&'a str>,
    /// The decoded changes, one per hostname.
    pub(crate) changes: Vec<HostChange>,
    /// When the sender set it; `None` means now.
    pub(crate) set_ts: Option<i64>,
    pub(crate) origin: Origin,
}

impl<'a> Set<'a> {
    /// Reads a set form.
    pub fn from_params(p: &'a Params) -> Result<Set<'a>> {
        let (zone, env, appid) = (
            p.required("zone")?,
            p.required("env")?,
            p.required("appid")?,
        );
        let hostnames = p.list("hostname");
        if hostnames.is_empty() {
            return Err(Error::bad_param("hostname is required"));
        }
        let statuses = p.list("status");
        // Metadata values are JSON objects full of commas: never split them.
        let metadata: Vec<&str> = p
            .all("metadata")
            .into_iter()
            .filter(|m| !m.is_empty())
            .collect();
        for (name, len) in [("status", statuses.len()), ("metadata", metadata.len())] {
            if len != 0 && len != hostnames.len() {
                return Err(Error::bad_param(format!(
                    "{name} has {len} values for {} hostnames",
                    hostnames.len()
                )));
            }
        }
        let set_ts = timestamp(p, "set_timestamp")?;
        let origin = Origin::from_params(p)?;
        let changes = hostnames
            .iter()
            .enumerate()
            .map(|(i, h)| {
                Ok(HostChange {
                    hostname: (*h).to_owned(),
                    status: statuses.get(i).map(|s| parse_status(s)).transpose()?,
                    metadata: match metadata.get(i) {
                        Some(m) => metadata::from_text(m)?,
                        None => None,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Set {
            region: p.get("region").unwrap_or_default(),
            at: AppZone { env, appid, zone },
            hostnames,
            statuses,
            metadata,
            changes,
            set_ts,
            origin,
        })
    }

    /// The set to forward to peers, applied at `set_ts`.
    pub(crate) fn to_op(&self, set_ts: i64) -> SetOp {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        SetOp {
            region: self.region.to_owned(),
            zone: self.at.zone.to_owned(),
            env: self.at.env.to_owned(),
            appid: self.at.appid.to_owned(),
            hostnames: owned(&self.hostnames),
            statuses: owned(&self.statuses),
            metadata: owned(&self.metadata),
            set_ts,
        }
    }
}

/// A `set` as the client sent it, to forward to peers.
#[derive(Debug, Clone, Default)]
pub(crate) struct SetOp {
    pub(crate) region: String,
    pub(crate) zone: String,
    pub(crate) env: String,
    pub(crate) appid: String,
    pub(crate) hostnames: Vec<String>,
    pub(crate) statuses: Vec<String>,
    pub(crate) metadata: Vec<String>,
    pub(crate) set_ts: i64,
}

impl SetOp {
    /// The form that forwards this set to a peer.
    pub(crate) fn form(&self, hop: Hop) -> String {
        let mut f = peer_form(hop, &self.region, &self.zone, &self.env, &self.appid);
        for h in &self.hostnames {
            f.append_pair("hostname", h);
        }
        for st in &self.statuses {
            f.append_pair("status", st);
        }
        for m in &self.metadata {
            f.append_pair("metadata", m);
        }
        f.append_pair("set_timestamp", &int(self.set_ts));
        f.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_set_decodes_to_the_same_changes() {
        let q = r#"zone=z&env=e&appid=a&hostname=h1,h2&status=1,2&metadata={"k":"1,2"}&metadata={}&set_timestamp=9"#;
        let p = Params::parse(q.as_bytes(), b"");
        let set = Set::from_params(&p).unwrap();
        assert_eq!(set.origin, Origin::Client);
        let text = set.to_op(9).form(Hop::InZone);
        let p2 = Params::parse(b"", text.as_bytes());
        let back = Set::from_params(&p2).unwrap();
        assert_eq!(back.origin, Origin::Peer);
        assert_eq!((back.at, back.set_ts), (set.at, Some(9)));
        assert_eq!(format!("{:?}", back.changes), format!("{:?}", set.changes));
    }

    #[test]
    fn lists_must_match_hostnames() {
        let p = Params::parse(b"zone=z&env=e&appid=a&hostname=h1,h2&status=1", b"");
        assert_eq!(
            Set::from_params(&p).unwrap_err().context,
            "status has 1 values for 2 hostnames"
        );
    }
}
