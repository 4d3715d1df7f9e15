//! The immutable picture of one `(env, appid)` that readers load without a lock: instances by
//! zone, the app's latest_timestamp, its scheduler, and the encoded `InstanceInfo` answers, built
//! at most once per snapshot and only when first asked for.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;

use super::encode::write_instances;
use super::instance::Instance;
use crate::json;

/// Instances of one zone, sorted by hostname.
#[derive(Debug, Clone)]
pub struct Zone {
    pub name: Box<str>,
    pub instances: Vec<Arc<Instance>>,
}

/// Status masks 1 (UP), 2 (WAITING) and 3 (both) index the prepared answers as `mask - 1`.
type Answers = [OnceLock<Bytes>; 3];

/// One published state of an app. Never mutated after publication except the lazily filled
/// answer caches (and instances' renew times, which are atomics).
#[derive(Debug)]
pub struct Snapshot {
    pub latest_ts: i64,
    /// When this snapshot was built, just before its publication: polls woken by it measure
    /// their wake latency from here.
    pub published: Instant,
    /// Sorted by zone name: the original's Go maps encode sorted, and lookups stay cheap.
    pub zones: Vec<Zone>,
    /// Encoded `{"clients":...,"remark":""}`, present when a scheduler file names this app.
    pub scheduler: Option<Bytes>,
    all_zones: Answers,
    by_zone: Vec<Answers>,
}

impl Snapshot {
    /// Publishes `zones` (each sorted by hostname, none empty) at `latest_ts`.
    pub fn new(zones: Vec<Zone>, latest_ts: i64, scheduler: Option<Bytes>) -> Snapshot {
        let by_zone = zones.iter().map(|_| Answers::default()).collect();
        Snapshot {
            latest_ts,
            published: Instant::now(),
            zones,
            scheduler,
            all_zones: Answers::default(),
            by_zone,
        }
    }

    /// An instance of `zone`, if the app has one there.
    pub fn any_in(&self, zone: &str) -> Option<&Arc<Instance>> {
        let zi = self
            .zones
            .binary_search_by(|z| z.name.as_ref().cmp(zone))
            .ok()?;
        self.zones[zi].instances.first()
    }

    /// Number of instances over all zones.
    pub fn len(&self) -> usize {
        self.zones.iter().map(|z| z.instances.len()).sum()
    }

    /// True when the app has no instance left.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    fn zone_index(&self, zone: &str) -> Option<usize> {
        self.zones
            .binary_search_by(|z| z.name.as_ref().cmp(zone))
            .ok()
    }

    /// The instance `hostname` of `zone`.
    pub fn find(&self, zone: &str, hostname: &str) -> Option<&Arc<Instance>> {
        let z = &self.zones[self.zone_index(zone)?];
        let i = z
            .instances
            .binary_search_by(|i| i.hostname.as_ref().cmp(hostname))
            .ok()?;
        Some(&z.instances[i])
    }

    /// Every instance of every zone.
    pub fn instances(&self) -> impl Iterator<Item = &Arc<Instance>> {
        self.zones.iter().flat_map(|z| z.instances.iter())
    }

    /// The encoded `InstanceInfo` for `zone` (all zones when `None`) and status `mask`
    /// (1, 2 or 3). `None` when the zone is absent or the mask selects no status.
    pub fn info(&self, zone: Option<&str>, mask: u32) -> Option<Bytes> {
        let slot = (mask & 3).checked_sub(1)? as usize;
        let (cache, only) = match zone {
            None => (&self.all_zones, None),
            Some(z) => {
                let idx = self.zone_index(z)?;
                (&self.by_zone[idx], Some(idx))
            }
        };
        if let Some(b) = cache[slot].get() {
            return Some(b.clone());
        }
        // Two cores may encode the same answer at once; the loser's copy is simply dropped,
        // which is cheaper than making either wait.
        let encoded = Bytes::from(self.encode(only, mask));
        let _ = cache[slot].set(encoded.clone());
        Some(encoded)
    }

    fn encode(&self, only: Option<usize>, mask: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + 320 * self.len());
        out.extend_from_slice(b"{\"instances\":{");
        let zones = self
            .zones
            .iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o == *i));
        for (n, (_, z)) in zones.enumerate() {
            if n > 0 {
                out.push(b',');
            }
            json::write_str(&mut out, &z.name);
            out.push(b':');
            write_instances(
                &mut out,
                z.instances
                    .iter()
                    .filter(|i| i.status & mask != 0)
                    .map(|i| i.as_ref()),
            );
        }
        out.extend_from_slice(b"},");
        if let Some(s) = &self.scheduler {
            out.extend_from_slice(b"\"scheduler\":");
            out.extend_from_slice(s);
            out.push(b',');
        }
        out.extend_from_slice(b"\"latest_timestamp\":");
        json::write_int(&mut out, self.latest_ts);
        out.push(b'}');
        out
    }
}

/// Inserts `inst` into `zones`, replacing the instance of the same zone and hostname.
pub fn upsert(zones: &mut Vec<Zone>, inst: Arc<Instance>) {
    match zones.binary_search_by(|z| z.name.as_ref().cmp(inst.zone())) {
        Ok(zi) => {
            let list = &mut zones[zi].instances;
            match list.binary_search_by(|i| i.hostname.cmp(&inst.hostname)) {
                Ok(ii) => list[ii] = inst,
                Err(ii) => list.insert(ii, inst),
            }
        }
        Err(zi) => zones.insert(
            zi,
            Zone {
                name: inst.zone().into(),
                instances: vec![inst],
            },
        ),
    }
}

/// Removes `hostname` of `zone` from `zones`; an emptied zone disappears.
pub fn remove(zones: &mut Vec<Zone>, zone: &str, hostname: &str) {
    if let Ok(zi) = zones.binary_search_by(|z| z.name.as_ref().cmp(zone)) {
        zones[zi]
            .instances
            .retain(|i| i.hostname.as_ref() != hostname);
        if zones[zi].instances.is_empty() {
            zones.remove(zi);
        }
    }
}

/// The next latest_timestamp: the requested one (or now), but always above the previous one.
pub fn bump(previous: i64, requested: i64) -> i64 {
    requested.max(previous.saturating_add(1))
}
