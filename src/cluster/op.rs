//! A replicated write and its form encoding in the original's per-op protocol, which both Go
//! nodes and ours accept.

use std::sync::Arc;

use crate::registry::instance::Instance;
use crate::registry::json;

/// A write to forward to peers.
#[derive(Debug, Clone)]
pub enum Op {
    Register(Arc<Instance>),
    Renew(Arc<Instance>),
    Cancel { inst: Arc<Instance>, latest_ts: i64 },
    Set(Arc<SetOp>),
}

/// A `set` as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct SetOp {
    pub region: String,
    pub zone: String,
    pub env: String,
    pub appid: String,
    pub hostnames: Vec<String>,
    pub statuses: Vec<String>,
    pub metadata: Vec<String>,
    pub set_ts: i64,
}

impl Op {
    /// The endpoint the op is sent to.
    pub fn path(&self) -> &'static str {
        match self {
            Op::Register(_) => "/discovery/register",
            Op::Renew(_) => "/discovery/renew",
            Op::Cancel { .. } => "/discovery/cancel",
            Op::Set(_) => "/discovery/set",
        }
    }

    /// The op's name in a `/discovery/replicate` batch line.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Register(_) => "register",
            Op::Renew(_) => "renew",
            Op::Cancel { .. } => "cancel",
            Op::Set(_) => "set",
        }
    }

    /// Which queue of a peer the op goes to: ops on one instance keep their order.
    pub fn lane(&self, lanes: usize) -> usize {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        match self {
            Op::Register(i) | Op::Renew(i) | Op::Cancel { inst: i, .. } => {
                (&i.env, &i.appid, &i.hostname).hash(&mut h)
            }
            Op::Set(s) => (&s.env, &s.appid).hash(&mut h),
        }
        (h.finish() % lanes.max(1) as u64) as usize
    }

    /// The form body. Inside the zone a forwarded write says `replication=true` (apply, don't
    /// forward); to another zone `replication=false` (apply and forward inside that zone), and
    /// always `from_zone=true` (never forward to further zones).
    pub fn form(&self, other_zone: bool) -> String {
        let mut f = form_urlencoded::Serializer::new(String::with_capacity(256));
        f.append_pair("replication", if other_zone { "false" } else { "true" });
        f.append_pair("from_zone", "true");
        let ts = |n: i64| itoa::Buffer::new().format(n).to_owned();
        match self {
            Op::Register(i) | Op::Renew(i) | Op::Cancel { inst: i, .. } => {
                f.append_pair("region", &i.region);
                f.append_pair("zone", &i.zone);
                f.append_pair("env", &i.env);
                f.append_pair("appid", &i.appid);
                f.append_pair("hostname", &i.hostname);
            }
            Op::Set(s) => {
                f.append_pair("region", &s.region);
                f.append_pair("zone", &s.zone);
                f.append_pair("env", &s.env);
                f.append_pair("appid", &s.appid);
            }
        }
        match self {
            Op::Register(i) => {
                // Repeated keys: a Go peer stores a comma-joined list as one address.
                for a in i.addrs.iter() {
                    f.append_pair("addrs", a);
                }
                f.append_pair("status", &ts(i64::from(i.status)));
                f.append_pair("version", &i.version);
                let mut meta = Vec::new();
                json::write_metadata(&mut meta, i.metadata.as_ref());
                f.append_pair("metadata", &String::from_utf8_lossy(&meta));
                f.append_pair("reg_timestamp", &ts(i.reg_ts));
                f.append_pair("dirty_timestamp", &ts(i.dirty_ts));
                f.append_pair("latest_timestamp", &ts(i.latest_ts));
            }
            Op::Renew(i) => {
                f.append_pair("dirty_timestamp", &ts(i.dirty_ts));
            }
            Op::Cancel { latest_ts, .. } => {
                f.append_pair("latest_timestamp", &ts(*latest_ts));
            }
            Op::Set(s) => {
                for h in &s.hostnames {
                    f.append_pair("hostname", h);
                }
                for st in &s.statuses {
                    f.append_pair("status", st);
                }
                for m in &s.metadata {
                    f.append_pair("metadata", m);
                }
                f.append_pair("set_timestamp", &ts(s.set_ts));
            }
        }
        f.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params::Params;
    use crate::registry::instance::Registration;

    #[test]
    fn register_form_round_trips_through_our_parser() {
        let reg = Registration {
            region: "sh".into(),
            zone: "sh001".into(),
            env: "dev".into(),
            appid: "demo".into(),
            hostname: "h1".into(),
            addrs: vec!["http://1.2.3.4:80".into(), "grpc://1.2.3.4:90".into()],
            version: "v1".into(),
            metadata: Some(vec![("k".into(), "a,b".into())]),
            status: 1,
            ..Default::default()
        };
        let inst = Arc::new(Instance::new(&reg, 42, None));
        let form = Op::Register(inst).form(false);
        let p = Params::parse(b"", form.as_bytes());
        assert_eq!(p.list("addrs"), ["http://1.2.3.4:80", "grpc://1.2.3.4:90"]);
        assert_eq!(p.get("metadata"), Some(r#"{"k":"a,b"}"#));
        assert_eq!(p.get("replication"), Some("true"));
        assert_eq!(p.get("dirty_timestamp"), Some("42"));
        let parsed = crate::api::register::parse(&p).unwrap();
        assert_eq!((parsed.appid.as_str(), parsed.status), ("demo", 1));
    }
}
