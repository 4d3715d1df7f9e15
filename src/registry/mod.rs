//! The registry: every `(env, appid)` with its published [`Snapshot`], the writes that replace
//! snapshots, the renew that does not, eviction and self-preservation. It is pure: no I/O, no
//! async, no HTTP; the api layer calls it, the cluster layer feeds it, and every function takes
//! `now` so tests drive time.
//!
//! Writers of one app are serialised by that app's mutex (held only while building the next
//! snapshot, never across an await); readers `load` the snapshot without any lock. A published
//! change is announced through the [`Hub`], which wakes the parked polls of that app.

pub mod encode;
pub mod instance;
#[cfg(test)]
mod model_tests;
pub mod self_preservation;
pub mod snapshot;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::Bytes;
use dashmap::DashMap;

use crate::error::{Error, Kind, Result};
use crate::park::{Hub, WakeKey};
use instance::{Instance, Metadata, MetadataLimit, Place, Registration};
use self_preservation::SelfPreservation;
use snapshot::{bump, Snapshot};

/// Identity of an app: the protocol's `(env, appid)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKey {
    pub env: Box<str>,
    pub appid: Box<str>,
}

impl AppKey {
    pub fn new(env: &str, appid: &str) -> AppKey {
        AppKey {
            env: env.into(),
            appid: appid.into(),
        }
    }
}

/// Borrowed form of [`AppKey`], so lookups need no allocation.
pub trait KeyRef {
    fn env(&self) -> &str;
    fn appid(&self) -> &str;
}

impl KeyRef for AppKey {
    fn env(&self) -> &str {
        &self.env
    }
    fn appid(&self) -> &str {
        &self.appid
    }
}

impl KeyRef for (&str, &str) {
    fn env(&self) -> &str {
        self.0
    }
    fn appid(&self) -> &str {
        self.1
    }
}

impl<'a> Borrow<dyn KeyRef + 'a> for AppKey {
    fn borrow(&self) -> &(dyn KeyRef + 'a) {
        self
    }
}

impl Hash for dyn KeyRef + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.env().hash(h);
        self.appid().hash(h);
    }
}

impl PartialEq for dyn KeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.env() == other.env() && self.appid() == other.appid()
    }
}

impl Eq for dyn KeyRef + '_ {}

impl Hash for AppKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self as &dyn KeyRef).hash(h)
    }
}

/// One instance's identity: the protocol's `(env, appid, zone, hostname)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceKey<'a> {
    pub env: &'a str,
    pub appid: &'a str,
    pub zone: &'a str,
    pub hostname: &'a str,
}

impl<'a> InstanceKey<'a> {
    /// The key of a stored instance.
    pub fn of(inst: &'a Instance) -> InstanceKey<'a> {
        InstanceKey {
            env: inst.env(),
            appid: inst.appid(),
            zone: inst.zone(),
            hostname: &inst.hostname,
        }
    }
}

/// One zone of one app: where a `set` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppZone<'a> {
    pub env: &'a str,
    pub appid: &'a str,
    pub zone: &'a str,
}

/// Whether an [`App`] is still the one the index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Listed,
    /// The app lost its last instance and left the index: a writer that found this `App` just
    /// before must start over, or its write would land in an orphan.
    Removed,
}

/// One app: its writer lock and its published snapshot.
#[derive(Debug)]
struct App {
    /// Held by a writer while it builds and publishes the next snapshot.
    writer: Mutex<Listing>,
    snapshot: ArcSwap<Snapshot>,
}

/// What a register does with a copy of the same version as the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tie {
    Replace,
    Keep,
}

/// The version a `set` gives the instances it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetVersion {
    /// A client's set: `max(set time, replaced + 1)`.
    Next,
    /// A peer's set: its `set_timestamp` as sent.
    AsSent,
}

/// One host's part of a `set`.
#[derive(Debug, Clone)]
pub struct HostChange {
    pub hostname: String,
    pub status: Option<u32>,
    pub metadata: Option<Metadata>,
}

/// What an eviction round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvictionReport {
    pub registry_size: usize,
    pub expired: usize,
    pub evicted: usize,
    pub protected: bool,
}

/// Thresholds of eviction, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct EvictionRules {
    pub after_ns: i64,
    pub after_protected_ns: i64,
}

impl EvictionRules {
    /// Rules under which nothing expires: a round still closes the guard's window.
    pub const NONE: EvictionRules = EvictionRules {
        after_ns: i64::MAX,
        after_protected_ns: i64::MAX,
    };
}

/// At most this share of the registry may stay after a round: eviction never removes more
/// than `size - floor(size * 0.85)` instances at once.
const KEEP_SHARE: f64 = 0.85;

/// All apps, the self-preservation guard and the notification hub.
#[derive(Debug)]
pub struct Registry {
    apps: DashMap<AppKey, Arc<App>>,
    schedulers: DashMap<AppKey, Bytes>,
    self_preservation: SelfPreservation,
    hub: Arc<Hub>,
    /// Bumped by every published change (not by renews), so a whole-registry answer can be
    /// cached until the next one.
    generation: AtomicU64,
    /// The highest `dirty_timestamp` stored here so far, whoever wrote it (see [`Self::stamp`]):
    /// every path that stores an instance stamps or notes its version, so no stored version is
    /// above it.
    latest_version: AtomicI64,
    /// The highest app `latest_timestamp` published here so far. An app removed (its last
    /// instance gone) and created again starts above it, so its `latest_timestamp` never goes
    /// back on this node, whatever the version a peer's register carries: a poll that saw the
    /// old app at a later time would otherwise never be answered with the new one.
    latest_published: AtomicI64,
}

impl Registry {
    /// An empty registry that announces changes through `hub`, renewed by `cores` threads.
    pub fn new(hub: Arc<Hub>, cores: usize) -> Registry {
        Registry {
            apps: DashMap::new(),
            schedulers: DashMap::new(),
            self_preservation: SelfPreservation::new(cores),
            hub,
            generation: AtomicU64::new(0),
            latest_version: AtomicI64::new(i64::MIN),
            latest_published: AtomicI64::new(0),
        }
    }

    /// The version (`dirty_timestamp`) of a client's write: `at` (its clock) unless a version
    /// this node has stored is as new, then one past the newest. A node's writes thus never go
    /// behind what it has seen, whichever clock wrote that (hybrid-logical-clock style): a
    /// client's write wins over the versions it replaces, also where the copy it replaces is
    /// gone here (cancelled) and lives on elsewhere with a timestamp from a clock ahead.
    fn stamp(&self, at: i64) -> i64 {
        let mut stamped = at;
        let _ = self
            .latest_version
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |seen| {
                stamped = at.max(seen.saturating_add(1));
                Some(stamped)
            });
        stamped
    }

    /// Notes a version a peer (or the snapshot) wrote.
    fn saw(&self, version: i64) {
        self.latest_version.fetch_max(version, Ordering::AcqRel);
    }

    /// A registry holding this one's snapshots, shared, with a hub of its own: fuzz targets
    /// start each input from one prepared state without encoding it again.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fork(&self, cores: usize) -> Registry {
        let forked = Registry::new(Arc::new(Hub::new()), cores);
        for entry in &self.apps {
            let app = App {
                writer: Mutex::new(Listing::Listed),
                snapshot: ArcSwap::new(entry.value().snapshot.load_full()),
            };
            forked.apps.insert(entry.key().clone(), Arc::new(app));
        }
        for entry in &self.schedulers {
            forked
                .schedulers
                .insert(entry.key().clone(), entry.value().clone());
        }
        forked.latest_version.store(
            self.latest_version.load(Ordering::Acquire),
            Ordering::Release,
        );
        forked.recount();
        forked
    }

    /// Changes published so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The self-preservation state.
    pub fn self_preservation(&self) -> &SelfPreservation {
        &self.self_preservation
    }

    fn app(&self, env: &str, appid: &str) -> Option<Arc<App>> {
        self.apps
            .get(&(env, appid) as &dyn KeyRef)
            .map(|r| r.value().clone())
    }

    /// The current snapshot of an app, if it has instances.
    pub fn snapshot(&self, env: &str, appid: &str) -> Option<Arc<Snapshot>> {
        let s = self.app(env, appid)?.snapshot.load_full();
        (!s.is_empty()).then_some(s)
    }

    /// Runs `write` under the app's writer lock, creating the app when `create`; publishes the
    /// snapshot it returns and wakes the app's polls. `write` returns `None` for "no change".
    fn write<T>(
        &self,
        env: &str,
        appid: &str,
        create: bool,
        mut write: impl FnMut(&Snapshot) -> Result<(Option<Snapshot>, T)>,
    ) -> Result<T> {
        loop {
            let app = match self.app(env, appid) {
                Some(a) => a,
                None if create => self
                    .apps
                    .entry(AppKey::new(env, appid))
                    .or_insert_with(|| {
                        let floor = self.latest_published.load(Ordering::Relaxed);
                        Arc::new(App {
                            writer: Mutex::new(Listing::Listed),
                            snapshot: ArcSwap::from_pointee(Snapshot::new(Vec::new(), floor, None)),
                        })
                    })
                    .value()
                    .clone(),
                None => return Err(Error::not_found(format!("{appid} not found"))),
            };
            let mut listing = app.writer.lock().unwrap_or_else(|e| e.into_inner());
            if *listing == Listing::Removed {
                continue;
            }
            let current = app.snapshot.load_full();
            let (next, out) = write(&current)?;
            let Some(next) = next else {
                if current.is_empty() {
                    self.unlist(env, appid, &app, &mut listing);
                }
                return Ok(out);
            };
            let now_empty = next.is_empty();
            self.latest_published
                .fetch_max(next.latest_ts, Ordering::Relaxed);
            app.snapshot.store(Arc::new(next));
            self.generation.fetch_add(1, Ordering::Release);
            if now_empty {
                self.unlist(env, appid, &app, &mut listing);
            }
            drop(listing);
            self.hub.notify(WakeKey::of(env, appid));
            return Ok(out);
        }
    }

    fn unlist(&self, env: &str, appid: &str, app: &Arc<App>, listing: &mut Listing) {
        *listing = Listing::Removed;
        self.apps
            .remove_if(&(env, appid) as &dyn KeyRef, |_, v| Arc::ptr_eq(v, app));
    }

    fn scheduler_of(&self, env: &str, appid: &str) -> Option<Bytes> {
        self.schedulers
            .get(&(env, appid) as &dyn KeyRef)
            .map(|s| s.value().clone())
    }

    /// Registers (or replaces) an instance. A replicated register older than the stored instance
    /// (by dirty_timestamp) is ignored. Returns the instance now stored.
    ///
    /// A register without a version of its own (a client's) gets `max(now, replaced + 1)`: it
    /// wins over the version it replaces whatever the clock of the node that wrote that one
    /// (hybrid-logical-clock style), so a node whose clock runs behind a peer's cannot lose a
    /// client's re-register to the older copy.
    pub fn register(&self, reg: &Registration, now: i64) -> Result<Arc<Instance>> {
        self.register_with(reg, now, Tie::Replace)
    }

    /// Registers a peer's copy from a start-up sync: only a strictly newer version replaces
    /// what is here, so an equal copy never overwrites this node's own registration.
    pub fn register_synced(&self, reg: &Registration, now: i64) -> Result<Arc<Instance>> {
        self.register_with(reg, now, Tie::Keep)
    }

    fn register_with(&self, reg: &Registration, now: i64, tie: Tie) -> Result<Arc<Instance>> {
        let mut added = false;
        let inst = self.write(&reg.env, &reg.appid, true, |cur| {
            let old = cur.find(&reg.zone, &reg.hostname);
            if let (Some(old), Some(dirty)) = (old, reg.dirty_ts) {
                if dirty < old.dirty_ts || (dirty == old.dirty_ts && tie == Tie::Keep) {
                    return Ok((None, old.clone()));
                }
            }
            added = old.is_none();
            let near = old.or_else(|| cur.any_in(&reg.zone)).map(|i| &i.place);
            let place = Place::of(reg, near);
            let mut inst = Instance::new_at(place, reg, now, old.map(|o| o.up_ts));
            match reg.dirty_ts {
                None => inst.dirty_ts = self.stamp(inst.dirty_ts),
                Some(version) => self.saw(version),
            }
            let inst = Arc::new(inst);
            let latest = bump(cur.latest_ts, reg.latest_ts.unwrap_or(now));
            let mut zones = cur.zones.clone();
            snapshot::upsert(&mut zones, inst.clone());
            let sched = self.scheduler_of(&reg.env, &reg.appid);
            Ok((Some(Snapshot::new(zones, latest, sched)), inst))
        })?;
        if added {
            self.self_preservation.add_instance();
        }
        Ok(inst)
    }

    /// Records a heartbeat; `None` if the instance is unknown.
    pub fn renew(&self, key: &InstanceKey<'_>, now: i64) -> Option<Arc<Instance>> {
        let app = self.app(key.env, key.appid)?;
        let snap = app.snapshot.load();
        let inst = snap.find(key.zone, key.hostname)?;
        inst.renew(now);
        self.self_preservation.count_renew();
        Some(inst.clone())
    }

    /// Removes an instance at the client's (or a peer's) request.
    pub fn cancel(
        &self,
        key: &InstanceKey<'_>,
        latest_ts: Option<i64>,
        now: i64,
    ) -> Result<Arc<Instance>> {
        let inst = self.remove(key, latest_ts.unwrap_or(now))?;
        self.self_preservation.remove_instance();
        Ok(inst)
    }

    fn remove(&self, key: &InstanceKey<'_>, latest_ts: i64) -> Result<Arc<Instance>> {
        let InstanceKey {
            env,
            appid,
            zone,
            hostname,
        } = *key;
        self.write(env, appid, false, |cur| {
            let Some(old) = cur.find(zone, hostname).cloned() else {
                return Err(Error::not_found(format!("{appid} {hostname} not found")));
            };
            let mut zones = cur.zones.clone();
            snapshot::remove(&mut zones, zone, hostname);
            let latest = bump(cur.latest_ts, latest_ts);
            Ok((
                Some(Snapshot::new(zones, latest, cur.scheduler.clone())),
                old,
            ))
        })
    }

    /// Changes status and/or metadata of several hosts of one zone at `set_ts`, all or nothing.
    /// Metadata after the merge must stay within `limit`.
    pub fn set(
        &self,
        at: &AppZone<'_>,
        changes: &[HostChange],
        set_ts: i64,
        version: SetVersion,
        limit: MetadataLimit,
    ) -> Result<Vec<Arc<Instance>>> {
        let AppZone { env, appid, zone } = *at;
        self.write(env, appid, false, |cur| {
            // A client's set wins over the versions it changes, as a client's register does,
            // whatever the clock that wrote them; every host it changes gets one version.
            let stamped = match version {
                SetVersion::Next => Some(self.stamp(set_ts)),
                SetVersion::AsSent => {
                    self.saw(set_ts);
                    None
                }
            };
            let mut zones = cur.zones.clone();
            let mut changed = Vec::with_capacity(changes.len());
            for c in changes {
                let Some(old) = cur.find(zone, &c.hostname) else {
                    return Err(Error::bad_param(format!(
                        "hostname {} not found in {appid} zone {zone}",
                        c.hostname
                    )));
                };
                let mut inst = old.with_changes(c.status, c.metadata.as_ref(), set_ts);
                if let Some(v) = stamped {
                    inst.dirty_ts = v;
                    inst.latest_ts = v;
                }
                if let Some(m) = &inst.metadata {
                    limit.check(m)?;
                }
                let inst = Arc::new(inst);
                changed.push(inst.clone());
                snapshot::upsert(&mut zones, inst);
            }
            let latest = bump(cur.latest_ts, set_ts);
            Ok((
                Some(Snapshot::new(zones, latest, cur.scheduler.clone())),
                changed,
            ))
        })
        .map_err(|e| match e.kind {
            Kind::NotFound => Error::bad_param(e.context),
            _ => e,
        })
    }

    /// Attaches (or with `None` detaches) an app's scheduler; a change for the app's pollers.
    pub fn set_scheduler(&self, key: &AppKey, encoded: Option<Bytes>, now: i64) {
        match &encoded {
            Some(e) => {
                self.schedulers.insert(key.clone(), e.clone());
            }
            None => {
                self.schedulers.remove(key as &dyn KeyRef);
            }
        }
        let _ = self.write(&key.env, &key.appid, false, |cur| {
            if cur.is_empty() {
                return Ok((None, ()));
            }
            let latest = bump(cur.latest_ts, now);
            Ok((
                Some(Snapshot::new(cur.zones.clone(), latest, encoded.clone())),
                (),
            ))
        });
    }

    /// Every instance of every app, grouped by appid (envs and zones merged), as `fetch/all`
    /// answers and peers sync from.
    pub fn all_instances(&self) -> BTreeMap<Box<str>, Vec<Arc<Instance>>> {
        let mut all: BTreeMap<Box<str>, Vec<Arc<Instance>>> = BTreeMap::new();
        for snap in self.snapshots() {
            for inst in snap.instances() {
                all.entry(inst.appid().into())
                    .or_default()
                    .push(inst.clone());
            }
        }
        all
    }

    /// Restores one app as it was saved (see `node::persist`): its instances with every
    /// timestamp they had, and its `latest_timestamp`, in one write. An instance already here
    /// in a newer version is kept. The caller calls [`Registry::recount`] once it has restored
    /// every app (a count walks every instance; once per app made a load quadratic).
    pub fn restore_app(&self, regs: &[Registration], latest_ts: i64, now: i64) -> usize {
        let Some(first) = regs.first() else {
            return 0;
        };
        let (env, appid) = (first.env.as_str(), first.appid.as_str());
        let restored = self.write(env, appid, true, |cur| {
            let mut zones = cur.zones.clone();
            let mut restored = 0;
            let mut near: Option<Arc<Place>> = None;
            for reg in regs
                .iter()
                .filter(|r| (r.env.as_str(), r.appid.as_str()) == (env, appid))
            {
                let old = cur.find(&reg.zone, &reg.hostname);
                if old.is_some_and(|o| reg.dirty_ts.is_some_and(|d| d <= o.dirty_ts)) {
                    continue;
                }
                let place = Place::of(
                    reg,
                    near.as_ref().or(cur.any_in(&reg.zone).map(|i| &i.place)),
                );
                near = Some(place.clone());
                let inst = Instance::new_at(place, reg, now, None);
                self.saw(inst.dirty_ts);
                snapshot::upsert(&mut zones, Arc::new(inst));
                restored += 1;
            }
            if restored == 0 {
                return Ok((None, 0));
            }
            let latest = bump(cur.latest_ts, latest_ts);
            let sched = self.scheduler_of(env, appid);
            Ok((Some(Snapshot::new(zones, latest, sched)), restored))
        });
        restored.unwrap_or(0)
    }

    /// The current snapshot of every app.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        // Collect first: a dashmap iterator holds shard locks that writers would wait on.
        let apps: Vec<Arc<App>> = self.apps.iter().map(|r| r.value().clone()).collect();
        apps.iter().map(|a| a.snapshot.load_full()).collect()
    }

    /// Every app with instances and its current snapshot, in no particular order (for the
    /// dashboard and the scrape; collected like [`Registry::all_instances`]).
    pub fn apps(&self) -> Vec<(AppKey, Arc<Snapshot>)> {
        let apps: Vec<(AppKey, Arc<App>)> = self
            .apps
            .iter()
            .map(|r| (r.key().clone(), r.value().clone()))
            .collect();
        apps.into_iter()
            .map(|(k, a)| (k, a.snapshot.load_full()))
            .filter(|(_, s)| !s.is_empty())
            .collect()
    }

    /// Number of apps and of instances.
    pub fn size(&self) -> (usize, usize) {
        let snaps = self.snapshots();
        let instances = snaps.iter().map(|s| s.len()).sum();
        (snaps.iter().filter(|s| !s.is_empty()).count(), instances)
    }

    /// Resets the guard's expectation from the true instance count.
    pub fn recount(&self) {
        self.self_preservation.set_instances(self.size().1);
    }

    /// Removes those of `victims` that are still the stored instance and still silent, in one
    /// write of the app; returns the ones removed.
    fn evict_from(
        &self,
        env: &str,
        appid: &str,
        victims: &[&Arc<Instance>],
        still_silent: &dyn Fn(&Instance) -> bool,
        now: i64,
    ) -> Vec<Arc<Instance>> {
        let written = self.write(env, appid, false, |cur| {
            let gone: Vec<Arc<Instance>> = victims
                .iter()
                .filter(|v| {
                    cur.find(v.zone(), &v.hostname)
                        .is_some_and(|stored| Arc::ptr_eq(stored, v) && still_silent(stored))
                })
                .map(|v| Arc::clone(v))
                .collect();
            if gone.is_empty() {
                return Ok((None, gone));
            }
            let gone_at: HashSet<*const Instance> = gone.iter().map(Arc::as_ptr).collect();
            let mut zones = cur.zones.clone();
            for z in &mut zones {
                z.instances.retain(|i| !gone_at.contains(&Arc::as_ptr(i)));
            }
            zones.retain(|z| !z.instances.is_empty());
            let latest = bump(cur.latest_ts, now);
            Ok((
                Some(Snapshot::new(zones, latest, cur.scheduler.clone())),
                gone,
            ))
        });
        written.unwrap_or_default()
    }

    /// One eviction round: closes the guard's window, then removes instances silent for longer
    /// than the rules allow, at most 15 % of the registry, picked at random.
    pub fn evict(&self, rules: EvictionRules, now: i64) -> EvictionReport {
        self.self_preservation.roll_window();
        let protected = self.self_preservation.protected();
        let mut expired = Vec::new();
        let mut size = 0;
        for snap in self.snapshots() {
            size += snap.len();
            for inst in snap.instances() {
                let silent = now.saturating_sub(inst.renew_ts());
                if (!protected && silent > rules.after_ns) || silent > rules.after_protected_ns {
                    expired.push(inst.clone());
                }
            }
        }
        let limit = size - (size as f64 * KEEP_SHARE) as usize;
        let count = expired.len().min(limit);
        for i in 0..count {
            // A partial Fisher-Yates shuffle: the first `count` picks are uniformly random, so a
            // capped round does not wipe out whole apps in index order.
            let span = (expired.len() - i) as u32;
            let pick = i + monoio::utils::thread_rng_n(span) as usize;
            expired.swap(i, pick);
        }
        // One new snapshot per app, however many of its instances go.
        let mut by_app: HashMap<(&str, &str), Vec<&Arc<Instance>>> = HashMap::new();
        for inst in &expired[..count] {
            by_app
                .entry((inst.env(), inst.appid()))
                .or_default()
                .push(inst);
        }
        let still_silent = |i: &Instance| {
            let silent = now.saturating_sub(i.renew_ts());
            (!protected && silent > rules.after_ns) || silent > rules.after_protected_ns
        };
        let mut evicted = 0;
        for ((env, appid), victims) in by_app {
            let removed = self.evict_from(env, appid, &victims, &still_silent, now);
            for inst in removed {
                evicted += 1;
                tracing::info!(appid = %inst.appid(), env = %inst.env(), zone = %inst.zone(), hostname = %inst.hostname, "evicted");
            }
        }
        EvictionReport {
            registry_size: size,
            expired: expired.len(),
            evicted,
            protected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;
    const LIMIT: MetadataLimit = MetadataLimit {
        bytes: 1024,
        keys: 16,
    };

    fn reg(appid: &str, zone: &str, host: &str) -> Registration {
        Registration {
            region: "sh".into(),
            zone: zone.into(),
            env: "dev".into(),
            appid: appid.into(),
            hostname: host.into(),
            addrs: vec!["http://127.0.0.1:8000".into()],
            status: 1,
            ..Default::default()
        }
    }

    fn key<'a>(zone: &'a str, hostname: &'a str) -> InstanceKey<'a> {
        InstanceKey {
            env: "dev",
            appid: "a",
            zone,
            hostname,
        }
    }

    fn at_z1() -> AppZone<'static> {
        AppZone {
            env: "dev",
            appid: "a",
            zone: "z1",
        }
    }

    fn registry() -> Registry {
        Registry::new(Arc::new(Hub::new()), 1)
    }

    #[test]
    fn latest_timestamp_rises_strictly() {
        let r = registry();
        r.register(&reg("a", "z1", "h1"), 100).unwrap();
        let t1 = r.snapshot("dev", "a").unwrap().latest_ts;
        r.register(&reg("a", "z1", "h2"), 50).unwrap();
        let t2 = r.snapshot("dev", "a").unwrap().latest_ts;
        r.set(
            &AppZone {
                env: "dev",
                appid: "a",
                zone: "z1",
            },
            &[HostChange {
                hostname: "h1".into(),
                status: Some(2),
                metadata: None,
            }],
            10,
            SetVersion::AsSent,
            LIMIT,
        )
        .unwrap();
        let t3 = r.snapshot("dev", "a").unwrap().latest_ts;
        assert!(t1 == 100 && t2 == 101 && t3 == 102, "{t1} {t2} {t3}");
    }

    #[test]
    fn the_instances_of_an_app_in_a_zone_share_their_place() {
        let r = registry();
        let h1 = r.register(&reg("a", "z1", "h1"), 100).unwrap();
        let h2 = r.register(&reg("a", "z1", "h2"), 100).unwrap();
        let h3 = r.register(&reg("a", "z2", "h3"), 100).unwrap();
        let mut elsewhere = reg("a", "z1", "h4");
        elsewhere.region = "bj".into();
        let h4 = r.register(&elsewhere, 100).unwrap();
        assert!(Arc::ptr_eq(&h1.place, &h2.place));
        assert!(!Arc::ptr_eq(&h1.place, &h3.place));
        assert_eq!((h4.region(), h4.zone(), h4.appid()), ("bj", "z1", "a"));
        let again = r.register(&reg("a", "z1", "h2"), 200).unwrap();
        assert!(Arc::ptr_eq(&again.place, &h1.place));
        let restored = registry();
        let regs = [reg("a", "z1", "h1"), reg("a", "z1", "h2")];
        assert_eq!(restored.restore_app(&regs, 100, 100), 2);
        let snap = restored.snapshot("dev", "a").unwrap();
        let (x, y) = (
            snap.find("z1", "h1").unwrap(),
            snap.find("z1", "h2").unwrap(),
        );
        assert!(Arc::ptr_eq(&x.place, &y.place));
    }

    #[test]
    fn a_peer_register_without_up_timestamp_is_up_from_its_version() {
        // The Go original replicates a register without up_timestamp: every node that receives
        // it must agree on one, whenever it arrives.
        let (a, b) = (registry(), registry());
        let mut relayed = reg("a", "z1", "h1");
        relayed.dirty_ts = Some(50);
        let here = a.register(&relayed, 100).unwrap();
        let there = b.register(&relayed, 107).unwrap();
        assert_eq!((here.up_ts, there.up_ts), (50, 50));
    }

    #[test]
    fn reregister_keeps_up_timestamp_and_older_replica_is_ignored() {
        let r = registry();
        r.register(&reg("a", "z1", "h1"), 100).unwrap();
        let mut again = reg("a", "z1", "h1");
        again.version = "v2".into();
        let i = r.register(&again, 200).unwrap();
        assert_eq!((i.up_ts, i.reg_ts, &*i.version), (100, 200, "v2"));
        let mut stale = reg("a", "z1", "h1");
        stale.dirty_ts = Some(150);
        stale.version = "old".into();
        let kept = r.register(&stale, 300).unwrap();
        assert_eq!(&*kept.version, "v2");
        assert_eq!(r.snapshot("dev", "a").unwrap().latest_ts, 200);
    }

    #[test]
    fn cancel_of_last_instance_removes_zone_then_app() {
        let r = registry();
        r.register(&reg("a", "z1", "h1"), 1).unwrap();
        r.register(&reg("a", "z2", "h2"), 2).unwrap();
        r.cancel(&key("z1", "h1"), None, 3).unwrap();
        let s = r.snapshot("dev", "a").unwrap();
        assert_eq!(s.zones.len(), 1);
        assert!(s.info(Some("z1"), 3).is_none());
        r.cancel(&key("z2", "h2"), None, 4).unwrap();
        assert!(r.snapshot("dev", "a").is_none());
        assert_eq!(
            r.cancel(&key("z2", "h2"), None, 5).unwrap_err().ecode(),
            -404
        );
        r.register(&reg("a", "z1", "h1"), 6).unwrap();
        assert_eq!(r.size(), (1, 1));
    }

    #[test]
    fn an_app_created_again_starts_after_what_it_published() {
        let r = registry();
        r.register(&reg("a", "z1", "h1"), 10).unwrap();
        r.cancel(&key("z1", "h1"), None, 20).unwrap();
        assert!(r.snapshot("dev", "a").is_none());
        // A peer's register carrying an older latest_timestamp creates the app again: its
        // latest_timestamp still goes past the 20 published at the cancel.
        let mut old = reg("a", "z1", "h1");
        old.latest_ts = Some(15);
        old.dirty_ts = Some(15);
        r.register(&old, 30).unwrap();
        assert!(r.snapshot("dev", "a").unwrap().latest_ts > 20);
    }

    #[test]
    fn renew_updates_time_without_a_new_snapshot() {
        let r = registry();
        r.register(&reg("a", "z1", "h1"), 1).unwrap();
        let before = r.snapshot("dev", "a").unwrap();
        let i = r.renew(&key("z1", "h1"), 99).unwrap();
        assert_eq!(i.renew_ts(), 99);
        assert!(Arc::ptr_eq(&before, &r.snapshot("dev", "a").unwrap()));
        assert!(r.renew(&key("z9", "h1"), 99).is_none());
    }

    #[test]
    fn set_is_all_or_nothing_and_checks_hosts() {
        let r = registry();
        r.register(&reg("a", "z1", "h1"), 1).unwrap();
        let bad = [
            HostChange {
                hostname: "h1".into(),
                status: Some(2),
                metadata: None,
            },
            HostChange {
                hostname: "nope".into(),
                status: Some(2),
                metadata: None,
            },
        ];
        assert_eq!(
            r.set(&at_z1(), &bad, 5, SetVersion::AsSent, LIMIT)
                .unwrap_err()
                .ecode(),
            -400
        );
        assert_eq!(
            r.snapshot("dev", "a")
                .unwrap()
                .find("z1", "h1")
                .unwrap()
                .status,
            1
        );
        let meta = Some(vec![("k".into(), "v".into())]);
        r.set(
            &AppZone {
                env: "dev",
                appid: "a",
                zone: "z1",
            },
            &[HostChange {
                hostname: "h1".into(),
                status: None,
                metadata: meta,
            }],
            5,
            SetVersion::AsSent,
            LIMIT,
        )
        .unwrap();
        let i = r
            .snapshot("dev", "a")
            .unwrap()
            .find("z1", "h1")
            .unwrap()
            .clone();
        assert_eq!((i.dirty_ts, i.latest_ts, i.status), (5, 5, 1));
        assert_eq!(i.metadata.as_ref().unwrap()[0].1.as_ref(), "v");
    }

    #[test]
    fn eviction_caps_at_15_percent_and_respects_protection() {
        let r = registry();
        for n in 0..20 {
            r.register(&reg("a", "z1", &format!("h{n}")), 0).unwrap();
        }
        let rules = EvictionRules {
            after_ns: 90 * SEC,
            after_protected_ns: 3600 * SEC,
        };
        // No renews at all: protection is on, nothing silent for an hour yet.
        let report = r.evict(rules, 100 * SEC);
        assert!(report.protected);
        assert_eq!((report.expired, report.evicted), (0, 0));
        // Renews arrive as expected, but only for h0..h9: protection holds for the round after
        // the first window of renews back (nothing silent for an hour yet), then the rest
        // expire, 3 per round.
        let renew_window = || {
            for _ in 0..4 {
                for n in 0..10 {
                    r.renew(&key("z1", &format!("h{n}")), 100 * SEC);
                }
            }
        };
        renew_window();
        let report = r.evict(rules, 100 * SEC);
        assert!(report.protected);
        assert_eq!(report.evicted, 0);
        renew_window();
        let report = r.evict(rules, 100 * SEC);
        assert!(!report.protected);
        assert_eq!(
            (report.registry_size, report.expired, report.evicted),
            (20, 10, 3)
        );
        assert_eq!(r.size().1, 17);
        // Under protection only the hour-long silence counts.
        let report = r.evict(rules, 3700 * SEC);
        assert!(report.protected);
        assert_eq!(report.evicted, 17 - (17.0 * 0.85) as usize);
    }

    #[test]
    fn a_client_register_wins_over_a_version_from_a_clock_ahead() {
        let r = registry();
        // A peer whose clock runs two minutes ahead wrote the version here.
        let mut ahead = reg("a", "z1", "h1");
        ahead.dirty_ts = Some(1_000 * SEC + 120 * SEC);
        ahead.version = "v1".into();
        r.register(&ahead, 1_000 * SEC).unwrap();
        // The owner re-registers through this node, whose clock says 1,001 s.
        let mut again = reg("a", "z1", "h1");
        again.version = "v2".into();
        let stored = r.register(&again, 1_001 * SEC).unwrap();
        assert_eq!(&*stored.version, "v2");
        assert_eq!(stored.dirty_ts, 1_120 * SEC + 1);
        // Replicated to the node ahead, it is newer there too.
        let mut there = reg("a", "z1", "h1");
        there.dirty_ts = Some(stored.dirty_ts);
        assert!(there.dirty_ts > ahead.dirty_ts);
    }

    #[test]
    fn a_client_register_wins_over_a_cancelled_version_from_a_clock_ahead() {
        let r = registry();
        // A version written by a clock two minutes ahead, then cancelled here: the copy may
        // live on at a peer (a renew's -404 repair can bring it back there).
        let mut ahead = reg("a", "z1", "h1");
        ahead.dirty_ts = Some(1_120 * SEC);
        r.register(&ahead, 1_000 * SEC).unwrap();
        r.cancel(&key("z1", "h1"), None, 1_001 * SEC).unwrap();
        // The owner registers again through this node: nothing here to replace, yet its
        // version is newer than the cancelled one.
        let stored = r.register(&reg("a", "z1", "h1"), 1_002 * SEC).unwrap();
        assert_eq!(stored.dirty_ts, 1_120 * SEC + 1);
        // Other apps' writes follow the same clock; it does not hold back a clock ahead of it.
        let other = r.register(&reg("b", "z1", "h1"), 1_003 * SEC).unwrap();
        assert_eq!(other.dirty_ts, 1_120 * SEC + 2);
        let later = r.register(&reg("b", "z1", "h2"), 1_200 * SEC).unwrap();
        assert_eq!(later.dirty_ts, 1_200 * SEC);
    }

    #[test]
    fn a_set_of_several_hosts_gives_them_one_version() {
        let r = registry();
        r.register(&reg("a", "z1", "h1"), 10 * SEC).unwrap();
        r.register(&reg("a", "z1", "h2"), 10 * SEC).unwrap();
        let change = |h: &str| HostChange {
            hostname: h.into(),
            status: Some(2),
            metadata: None,
        };
        let changed = r
            .set(
                &at_z1(),
                &[change("h1"), change("h2")],
                20 * SEC,
                SetVersion::Next,
                LIMIT,
            )
            .unwrap();
        assert_eq!(changed[0].dirty_ts, 20 * SEC);
        assert_eq!(changed[1].dirty_ts, 20 * SEC);
    }

    #[test]
    fn a_client_set_wins_over_a_version_from_a_clock_ahead() {
        let r = registry();
        let mut ahead = reg("a", "z1", "h1");
        ahead.dirty_ts = Some(1_120 * SEC);
        r.register(&ahead, 1_000 * SEC).unwrap();
        let change = [HostChange {
            hostname: "h1".into(),
            status: Some(2),
            metadata: None,
        }];
        let changed = r
            .set(&at_z1(), &change, 1_001 * SEC, SetVersion::Next, LIMIT)
            .unwrap();
        assert_eq!(changed[0].dirty_ts, 1_120 * SEC + 1);
        assert_eq!(changed[0].status, 2);
        // A peer's set keeps the version it was sent with.
        let changed = r
            .set(&at_z1(), &change, 1_005 * SEC, SetVersion::AsSent, LIMIT)
            .unwrap();
        assert_eq!(changed[0].dirty_ts, 1_005 * SEC);
    }

    #[test]
    fn a_synced_copy_of_the_same_version_keeps_what_is_here() {
        let r = registry();
        let mine = r.register(&reg("a", "z1", "h1"), 10 * SEC).unwrap();
        let mut copy = reg("a", "z1", "h1");
        copy.dirty_ts = Some(mine.dirty_ts);
        copy.version = "peer".into();
        copy.up_ts = Some(1);
        let kept = r.register_synced(&copy, 20 * SEC).unwrap();
        assert!(Arc::ptr_eq(&kept, &mine));
        copy.dirty_ts = Some(mine.dirty_ts + 1);
        let newer = r.register_synced(&copy, 20 * SEC).unwrap();
        assert_eq!((&*newer.version, newer.up_ts), ("peer", 1));
    }

    #[test]
    fn an_eviction_round_writes_each_app_once() {
        let r = registry();
        for n in 0..40 {
            r.register(&reg("a", "z1", &format!("h{n}")), 0).unwrap();
        }
        for _ in 0..80 {
            for n in 0..34 {
                r.renew(&key("z1", &format!("h{n}")), 100 * SEC);
            }
        }
        let before = r.snapshot("dev", "a").unwrap().latest_ts;
        let rules = EvictionRules {
            after_ns: 90 * SEC,
            after_protected_ns: 3600 * SEC,
        };
        let report = r.evict(rules, 100 * SEC);
        assert_eq!((report.expired, report.evicted), (6, 6));
        // One write: the app's clock moved once, to `now`, not once per evicted instance.
        let after = r.snapshot("dev", "a").unwrap();
        assert!(before < 100 * SEC);
        assert_eq!(after.latest_ts, 100 * SEC);
        assert_eq!(after.len(), 34);
    }

    #[test]
    fn guard_follows_registers_and_cancels() {
        let r = registry();
        r.register(&reg("a", "z1", "h1"), 0).unwrap();
        r.register(&reg("a", "z1", "h1"), 1).unwrap();
        r.register(&reg("a", "z1", "h2"), 1).unwrap();
        assert_eq!(r.self_preservation().expected().0, 4);
        r.cancel(&key("z1", "h2"), None, 2).unwrap();
        assert_eq!(r.self_preservation().expected().0, 2);
    }
}
