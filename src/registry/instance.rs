//! One registered instance. Everything but the renew time is immutable once built: a change
//! (re-register, set) builds a new `Instance` and a new snapshot, while a renew only stores a new
//! time in the atomic, so the hottest write never rebuilds anything.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Instance status: takes traffic.
pub const STATUS_UP: u32 = 1;
/// Instance status: registered but not taking traffic.
pub const STATUS_WAITING: u32 = 2;

/// Metadata pairs sorted by key (the original encodes a Go map, whose keys come out sorted).
pub type Metadata = Vec<(Box<str>, Box<str>)>;

/// Bounds on an instance's metadata, checked on register and after a `set` merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataLimit {
    /// Keys and values together, in bytes.
    pub bytes: usize,
    pub keys: usize,
}

impl MetadataLimit {
    /// Refuses metadata over the bounds, naming the config key.
    pub fn check(&self, m: &Metadata) -> crate::error::Result<()> {
        if m.len() > self.keys {
            return Err(crate::error::Error::limit(format!(
                "metadata has {} keys, above limits.maxMetadataKeys ({})",
                m.len(),
                self.keys
            )));
        }
        let bytes: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > self.bytes {
            return Err(crate::error::Error::limit(format!(
                "metadata holds {bytes} bytes, above limits.maxMetadataBytes ({})",
                self.bytes
            )));
        }
        Ok(())
    }
}

/// `changes` merged into `old`, both sorted by key: a key in both takes the change's value,
/// as the original's unmarshal into the existing map does. Linear in both sizes.
pub fn merge_metadata(old: &Metadata, changes: &Metadata) -> Metadata {
    let mut out = Vec::with_capacity(old.len() + changes.len());
    let (mut a, mut b) = (old.iter().peekable(), changes.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 < y.0 => a.next(),
            (Some(x), Some(y)) if x.0 == y.0 => {
                a.next();
                b.next()
            }
            (_, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => break,
        };
        if let Some((k, v)) = next {
            // Repeated keys within the changes: the last one wins.
            match out.last_mut() {
                Some((lk, lv)) if lk == k => *lv = v.clone(),
                _ => out.push((k.clone(), v.clone())),
            }
        }
    }
    out
}

/// Where an instance is registered. The instances of one app in one zone share one (a million
/// instances would otherwise hold a million copies of a few short strings).
#[derive(Debug, PartialEq, Eq)]
pub struct Place {
    pub region: Box<str>,
    pub zone: Box<str>,
    pub env: Box<str>,
    pub appid: Box<str>,
}

impl Place {
    /// The place `reg` names: `near`'s when it is the same, else a new one.
    pub fn of(reg: &Registration, near: Option<&Arc<Place>>) -> Arc<Place> {
        match near {
            Some(p)
                if (&*p.region, &*p.zone, &*p.env, &*p.appid)
                    == (&reg.region, &reg.zone, &reg.env, &reg.appid) =>
            {
                p.clone()
            }
            _ => Arc::new(Place {
                region: reg.region.as_str().into(),
                zone: reg.zone.as_str().into(),
                env: reg.env.as_str().into(),
                appid: reg.appid.as_str().into(),
            }),
        }
    }
}

/// A registered instance, field for field the original's JSON object.
#[derive(Debug)]
pub struct Instance {
    pub place: Arc<Place>,
    pub hostname: Box<str>,
    pub addrs: Box<[Box<str>]>,
    pub version: Box<str>,
    /// `None` encodes as `null`, as the original does for an instance registered without metadata.
    pub metadata: Option<Metadata>,
    pub status: u32,
    pub reg_ts: i64,
    pub up_ts: i64,
    pub dirty_ts: i64,
    pub latest_ts: i64,
    /// Written by every renew without any lock; read when an answer is rendered.
    renew_ts: AtomicI64,
}

/// The fields a register carries (from a client, a peer or the start-up sync).
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub region: String,
    pub zone: String,
    pub env: String,
    pub appid: String,
    pub hostname: String,
    pub addrs: Vec<String>,
    pub version: String,
    pub metadata: Option<Metadata>,
    pub status: u32,
    /// Timestamps a peer or the start-up sync sends along; `None` means "now".
    pub reg_ts: Option<i64>,
    pub dirty_ts: Option<i64>,
    pub latest_ts: Option<i64>,
    pub renew_ts: Option<i64>,
    /// Only a peer's copy of an instance (start-up sync, conflict adoption) carries it.
    pub up_ts: Option<i64>,
}

impl Instance {
    /// Builds the instance a registration describes. `previous_up_ts` is the replaced
    /// instance's, which a re-register keeps unless the registration brings its own; a new one
    /// is up from the write's version (`dirty_ts`), or from `now` for a client's.
    pub fn new(reg: &Registration, now: i64, previous_up_ts: Option<i64>) -> Instance {
        Instance::new_at(Place::of(reg, None), reg, now, previous_up_ts)
    }

    /// [`Instance::new`] at `place`, which must be the one `reg` names ([`Place::of`]).
    pub fn new_at(
        place: Arc<Place>,
        reg: &Registration,
        now: i64,
        previous_up_ts: Option<i64>,
    ) -> Instance {
        Instance {
            place,
            hostname: reg.hostname.as_str().into(),
            addrs: reg.addrs.iter().map(|a| a.as_str().into()).collect(),
            version: reg.version.as_str().into(),
            metadata: reg.metadata.clone(),
            status: reg.status,
            reg_ts: reg.reg_ts.unwrap_or(now),
            // A peer that sends no up_timestamp (the Go original) sends the write's version: the
            // time it was written, the same on every node that receives it.
            up_ts: reg
                .up_ts
                .or(previous_up_ts)
                .unwrap_or(reg.dirty_ts.unwrap_or(now)),
            dirty_ts: reg.dirty_ts.unwrap_or(now),
            latest_ts: reg.latest_ts.unwrap_or(now),
            renew_ts: AtomicI64::new(reg.renew_ts.unwrap_or(now)),
        }
    }

    /// A copy with the changes of a `set` applied.
    pub fn with_changes(
        &self,
        status: Option<u32>,
        metadata: Option<&Metadata>,
        set_ts: i64,
    ) -> Instance {
        // The original unmarshals into the existing map, so `set` merges keys.
        let merged = match (&self.metadata, metadata) {
            (old, None) => old.clone(),
            (None, Some(changes)) => Some(merge_metadata(&Vec::new(), changes)),
            (Some(old), Some(changes)) => Some(merge_metadata(old, changes)),
        };
        // Setting status UP (again) restarts up_ts, as in the original.
        let up_ts = if status == Some(STATUS_UP) {
            set_ts
        } else {
            self.up_ts
        };
        let status = status.unwrap_or(self.status);
        Instance {
            place: self.place.clone(),
            hostname: self.hostname.clone(),
            addrs: self.addrs.clone(),
            version: self.version.clone(),
            metadata: merged,
            status,
            reg_ts: self.reg_ts,
            up_ts,
            dirty_ts: set_ts,
            latest_ts: set_ts,
            renew_ts: AtomicI64::new(self.renew_ts()),
        }
    }

    pub fn region(&self) -> &str {
        &self.place.region
    }

    pub fn zone(&self) -> &str {
        &self.place.zone
    }

    pub fn env(&self) -> &str {
        &self.place.env
    }

    pub fn appid(&self) -> &str {
        &self.place.appid
    }

    /// The last renew (or register) time.
    pub fn renew_ts(&self) -> i64 {
        self.renew_ts.load(Ordering::Relaxed)
    }

    /// Records a heartbeat.
    pub fn renew(&self, now: i64) {
        self.renew_ts.store(now, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn merge_takes_changes_and_keeps_order() {
        let old = meta(&[("a", "1"), ("c", "3"), ("e", "5")]);
        let changes = meta(&[("b", "x"), ("c", "y"), ("c", "z"), ("f", "w")]);
        assert_eq!(
            merge_metadata(&old, &changes),
            meta(&[("a", "1"), ("b", "x"), ("c", "z"), ("e", "5"), ("f", "w")])
        );
        assert_eq!(merge_metadata(&old, &Vec::new()), old);
    }

    #[test]
    fn limits_name_their_key() {
        let limit = MetadataLimit { bytes: 4, keys: 1 };
        assert!(limit.check(&meta(&[("ab", "cd")])).is_ok());
        let e = limit.check(&meta(&[("a", "1"), ("b", "2")])).unwrap_err();
        assert!(e.context.contains("maxMetadataKeys"), "{}", e.context);
        let e = limit.check(&meta(&[("abc", "de")])).unwrap_err();
        assert!(e.context.contains("maxMetadataBytes"), "{}", e.context);
    }
}
