//! `set`: change status and/or metadata of several hosts of one app and zone at once, decoded
//! from a client's or a peer's form. Peers are sent the changed instances whole (as registers),
//! so a peer that missed an instance's last register cannot apply the change to an old copy.

use super::params::Params;
use super::{metadata, parse_status, Origin, Rules};
use crate::error::{Error, Result};
use crate::registry::{AppZone, HostChange};

/// A set request.
#[derive(Debug, Clone)]
pub struct Set<'a> {
    pub(crate) at: AppZone<'a>,
    /// The decoded changes, one per hostname.
    pub(crate) changes: Vec<HostChange>,
    /// When the sender set it; `None` means now.
    pub(crate) set_ts: Option<i64>,
    pub(crate) origin: Origin,
}

impl<'a> Set<'a> {
    /// Reads a set form; its timestamp must pass `rules`.
    pub fn from_params(p: &'a Params, rules: &Rules) -> Result<Set<'a>> {
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
        let set_ts = rules.timestamp(p, "set_timestamp")?;
        let origin = Origin::from_params(p)?;
        let changes = hostnames
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let metadata = match metadata.get(i) {
                    Some(m) => metadata::from_text(m)?,
                    None => None,
                };
                if let Some(m) = &metadata {
                    rules.limits.metadata.check(m)?;
                }
                Ok(HostChange {
                    hostname: (*h).to_owned(),
                    status: statuses.get(i).map(|s| parse_status(s)).transpose()?,
                    metadata,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Set {
            at: AppZone { env, appid, zone },
            changes,
            set_ts,
            origin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        now_ns: 1_000_000_000_000,
        max_skew_ns: 300_000_000_000,
        limits: crate::wire::Limits::DEFAULT,
    };

    #[test]
    fn each_host_gets_its_status_and_metadata() {
        let q = r#"zone=z&env=e&appid=a&hostname=h1,h2&status=1,2&metadata={"k":"1,2"}&metadata={}&set_timestamp=9"#;
        let p = Params::parse(q.as_bytes(), b"").unwrap();
        let set = Set::from_params(&p, &RULES).unwrap();
        assert_eq!((set.origin, set.set_ts), (Origin::Client, Some(9)));
        assert_eq!(set.changes.len(), 2);
        assert_eq!(
            (set.changes[0].status, set.changes[1].status),
            (Some(1), Some(2))
        );
        let meta = set.changes[0].metadata.as_ref().unwrap();
        assert_eq!(meta[0].1.as_ref(), "1,2");
    }

    #[test]
    fn lists_must_match_hostnames() {
        let p = Params::parse(b"zone=z&env=e&appid=a&hostname=h1,h2&status=1", b"").unwrap();
        assert_eq!(
            Set::from_params(&p, &RULES).unwrap_err().context,
            "status has 1 values for 2 hostnames"
        );
    }
}
