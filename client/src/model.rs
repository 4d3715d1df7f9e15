//! What the registry holds, as the client sees it: [`Instance`]s grouped by zone in an
//! [`InstanceInfo`], the [`Status`] of an instance, and the [`Service`] a provider registers.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// Whether an instance takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "i64")]
pub enum Status {
    /// 1: takes traffic; the only status long-polls (and so [`crate::Watch`]) return.
    Up,
    /// 2: registered but not taking traffic (starting, draining).
    Waiting,
    /// Any other value a server sent.
    Other(i64),
}

impl Status {
    /// The number on the wire.
    pub fn code(self) -> i64 {
        match self {
            Status::Up => 1,
            Status::Waiting => 2,
            Status::Other(n) => n,
        }
    }
}

impl From<i64> for Status {
    fn from(n: i64) -> Status {
        match n {
            1 => Status::Up,
            2 => Status::Waiting,
            n => Status::Other(n),
        }
    }
}

/// One registered instance of an app, as a node answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Instance {
    /// Region of the instance.
    #[serde(default)]
    pub region: String,
    /// Zone (data centre) of the instance.
    #[serde(default)]
    pub zone: String,
    /// Deployment environment (`dev`, `prod`...).
    #[serde(default)]
    pub env: String,
    /// The app this instance belongs to.
    pub appid: String,
    /// The instance's unique name within its app and zone.
    pub hostname: String,
    /// Where it serves, `scheme://host:port` (`grpc://10.0.0.1:9000`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub addrs: Vec<String>,
    /// Release version.
    #[serde(default)]
    pub version: String,
    /// Free-form string pairs (weight, colour...); empty when none was registered.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, String>,
    /// Up or waiting.
    pub status: Status,
    /// When it was first registered (Unix ns).
    #[serde(default)]
    pub reg_timestamp: i64,
    /// When it last went up (Unix ns).
    #[serde(default)]
    pub up_timestamp: i64,
    /// Its last renew (Unix ns) as the answering node shows it.
    #[serde(default)]
    pub renew_timestamp: i64,
    /// Its last change by its owner (Unix ns).
    #[serde(default)]
    pub dirty_timestamp: i64,
    /// Its last change (Unix ns).
    #[serde(default)]
    pub latest_timestamp: i64,
}

impl Instance {
    /// True when `other` describes the same service endpoint the same way: everything but the
    /// timestamps, which differ between nodes and move with renews.
    pub fn same_as(&self, other: &Instance) -> bool {
        self.region == other.region
            && self.zone == other.zone
            && self.env == other.env
            && self.appid == other.appid
            && self.hostname == other.hostname
            && self.addrs == other.addrs
            && self.version == other.version
            && self.metadata == other.metadata
            && self.status == other.status
    }
}

/// The instances of one app, by zone, as `fetch` and the long-polls answer them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstanceInfo {
    /// Zone → instances of that zone.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instances: BTreeMap<String, Vec<Instance>>,
    /// Cross-zone traffic weights, when the registry has a scheduler file for the app.
    #[serde(default)]
    pub scheduler: Option<serde_json::Value>,
    /// The app's version on the answering node (Unix ns); rises with every change there.
    pub latest_timestamp: i64,
}

impl InstanceInfo {
    /// Every instance, zone by zone.
    pub fn iter(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values().flatten()
    }

    /// How many instances there are in all zones.
    pub fn len(&self) -> usize {
        self.instances.values().map(Vec::len).sum()
    }

    /// True when no zone has an instance.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The instances of `zone` if it has any, else those of every zone: what a caller in
    /// `zone` should send traffic to.
    pub fn preferred(&self, zone: &str) -> Vec<&Instance> {
        match self.instances.get(zone) {
            Some(list) if !list.is_empty() => list.iter().collect(),
            _ => self.iter().collect(),
        }
    }

    /// True when both hold the same instances described the same way (timestamps aside,
    /// order within a zone aside).
    pub fn same_instances(&self, other: &InstanceInfo) -> bool {
        let nonempty = |i: &InstanceInfo| i.instances.values().filter(|l| !l.is_empty()).count();
        if nonempty(self) != nonempty(other) {
            return false;
        }
        self.instances.iter().all(|(zone, mine)| {
            let theirs = other.instances.get(zone).map_or(&[][..], Vec::as_slice);
            mine.len() == theirs.len()
                && mine.iter().all(|a| {
                    theirs
                        .iter()
                        .any(|b| b.hostname == a.hostname && a.same_as(b))
                })
        })
    }
}

/// Several apps' instances by appid, as `fetchs` answers and a [`crate::Watch`] yields them.
pub type Apps = BTreeMap<String, InstanceInfo>;

/// What a provider registers: its app, addresses, version, metadata and status. Region, zone,
/// env and hostname come from the client's [`Config`](crate::Config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The app to register an instance of.
    pub appid: String,
    /// Where this instance serves, `scheme://host:port`; at least one.
    pub addrs: Vec<String>,
    /// Release version (may be empty).
    pub version: String,
    /// Free-form string pairs consumers can read (weight, colour...).
    pub metadata: BTreeMap<String, String>,
    /// [`Status::Up`] (the default) or [`Status::Waiting`].
    pub status: Status,
}

impl Service {
    /// An UP instance of `appid` serving at `addrs`, no version, no metadata.
    pub fn new<A: Into<String>>(appid: &str, addrs: impl IntoIterator<Item = A>) -> Service {
        Service {
            appid: appid.to_string(),
            addrs: addrs.into_iter().map(Into::into).collect(),
            version: String::new(),
            metadata: BTreeMap::new(),
            status: Status::Up,
        }
    }

    /// Sets the version.
    pub fn version(mut self, version: &str) -> Service {
        self.version = version.to_string();
        self
    }

    /// Adds one metadata pair.
    pub fn metadata(mut self, key: &str, value: &str) -> Service {
        self.metadata.insert(key.to_string(), value.to_string());
        self
    }

    /// Sets the status to register with.
    pub fn status(mut self, status: Status) -> Service {
        self.status = status;
        self
    }
}

/// `null` where a list or map is expected reads as empty (the Go original sends `null` for an
/// instance without metadata).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(zone: &str, host: &str) -> Instance {
        Instance {
            region: "sh".into(),
            zone: zone.into(),
            env: "dev".into(),
            appid: "demo".into(),
            hostname: host.into(),
            addrs: vec![format!("http://{host}:80")],
            version: "v1".into(),
            metadata: BTreeMap::new(),
            status: Status::Up,
            reg_timestamp: 1,
            up_timestamp: 1,
            renew_timestamp: 1,
            dirty_timestamp: 1,
            latest_timestamp: 1,
        }
    }

    fn info(list: &[(&str, &str)], latest: i64) -> InstanceInfo {
        let mut instances: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
        for (zone, host) in list {
            instances
                .entry(zone.to_string())
                .or_default()
                .push(instance(zone, host));
        }
        InstanceInfo {
            instances,
            scheduler: None,
            latest_timestamp: latest,
        }
    }

    #[test]
    fn sameness_ignores_timestamps_and_order_but_not_content() {
        let a = info(&[("sh001", "h1"), ("sh001", "h2")], 5);
        let mut b = info(&[("sh001", "h2"), ("sh001", "h1")], 9);
        b.instances.get_mut("sh001").unwrap()[0].renew_timestamp = 77;
        assert!(a.same_instances(&b));
        b.instances.get_mut("sh001").unwrap()[0]
            .metadata
            .insert("weight".into(), "3".into());
        assert!(!a.same_instances(&b));
        assert!(!a.same_instances(&info(&[("sh001", "h1")], 5)));
        assert!(!a.same_instances(&info(&[("sh001", "h1"), ("sh002", "h2")], 5)));
        // An empty zone list is no instance at all.
        let mut c = a.clone();
        c.instances.insert("sh009".into(), Vec::new());
        assert!(a.same_instances(&c) && c.same_instances(&a));
    }

    #[test]
    fn preferred_is_the_own_zone_when_it_has_instances() {
        let i = info(&[("sh001", "h1"), ("sh002", "h2"), ("sh002", "h3")], 1);
        let hosts = |v: Vec<&Instance>| v.iter().map(|i| i.hostname.clone()).collect::<Vec<_>>();
        assert_eq!(hosts(i.preferred("sh002")), ["h2", "h3"]);
        assert_eq!(hosts(i.preferred("sh009")), ["h1", "h2", "h3"]);
        assert_eq!(i.len(), 3);
    }

    #[test]
    fn status_keeps_unknown_values() {
        assert_eq!(Status::from(1), Status::Up);
        assert_eq!(Status::from(2).code(), 2);
        assert_eq!(Status::from(7), Status::Other(7));
    }
}
