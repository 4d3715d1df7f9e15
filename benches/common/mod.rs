//! Fixtures shared by the benches: realistic registrations, and the naive registry and
//! `serde` types the baselines use. Each bench uses a different part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use criterion::Criterion;
use discovery::registry::instance::Registration;
use serde::Serialize;

/// The server's allocator, so that allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const ENV: &str = "prod";
pub const APPID: &str = "main.account.account-service";
pub const ZONE: &str = "sh001";
/// A fixed "now" in nanoseconds, so every run encodes the same bytes.
pub const NOW: i64 = 1_764_000_000_000_000_000;

/// Short runs: the whole suite should finish in minutes on a small machine.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

pub fn hostname(n: usize) -> String {
    format!("account-service-7d9f8b6c4-{n:05}")
}

/// Instance `n` of the bench app: two addresses, three metadata keys, status UP.
pub fn registration(n: usize) -> Registration {
    let ip = format!("10.0.{}.{}", n / 250, n % 250 + 1);
    Registration {
        region: "sh".into(),
        zone: ZONE.into(),
        env: ENV.into(),
        appid: APPID.into(),
        hostname: hostname(n),
        addrs: vec![format!("http://{ip}:8000"), format!("grpc://{ip}:9000")],
        version: "v1.4.2-20261120".into(),
        metadata: Some(vec![
            ("cluster".into(), "c1".into()),
            ("color".into(), "blue".into()),
            ("weight".into(), "10".into()),
        ]),
        status: 1,
        ..Default::default()
    }
}

/// The instance as a naive implementation stores it: owned fields, in the wire's field order,
/// encoded by `#[derive(Serialize)]`.
#[derive(Debug, Clone, Serialize)]
pub struct NaiveInstance {
    pub region: String,
    pub zone: String,
    pub env: String,
    pub appid: String,
    pub hostname: String,
    pub addrs: Vec<String>,
    pub version: String,
    pub metadata: Option<BTreeMap<String, String>>,
    pub status: u32,
    pub reg_timestamp: i64,
    pub up_timestamp: i64,
    pub renew_timestamp: i64,
    pub dirty_timestamp: i64,
    pub latest_timestamp: i64,
}

impl NaiveInstance {
    pub fn new(reg: &Registration, now: i64, previous_up_ts: Option<i64>) -> NaiveInstance {
        NaiveInstance {
            region: reg.region.clone(),
            zone: reg.zone.clone(),
            env: reg.env.clone(),
            appid: reg.appid.clone(),
            hostname: reg.hostname.clone(),
            addrs: reg.addrs.clone(),
            version: reg.version.clone(),
            metadata: reg.metadata.as_ref().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            status: reg.status,
            reg_timestamp: reg.reg_ts.unwrap_or(now),
            up_timestamp: reg.up_ts.or(previous_up_ts).unwrap_or(now),
            renew_timestamp: reg.renew_ts.unwrap_or(now),
            dirty_timestamp: reg.dirty_ts.unwrap_or(now),
            latest_timestamp: reg.latest_ts.unwrap_or(now),
        }
    }
}

/// `InstanceInfo` the naive way (no scheduler in these fixtures; ours omits it too then).
#[derive(Debug, Serialize)]
pub struct NaiveInfo {
    pub instances: BTreeMap<String, Vec<NaiveInstance>>,
    pub latest_timestamp: i64,
}

/// The `{"code","message","ttl","data"}` envelope the naive way.
#[derive(Debug, Serialize)]
pub struct NaiveEnvelope<T> {
    pub code: i32,
    pub message: &'static str,
    pub ttl: i32,
    pub data: T,
}

#[derive(Debug, Default)]
struct NaiveApp {
    instances: HashMap<String, NaiveInstance>,
    latest_ts: i64,
}

/// The obvious registry: one lock over a map of apps, instances stored by value and cloned out
/// for reads. Lookups build an owned `(env, appid)` key, as a plain tuple-keyed map needs.
#[derive(Debug, Default)]
pub struct NaiveRegistry {
    apps: Mutex<HashMap<(String, String), NaiveApp>>,
}

impl NaiveRegistry {
    pub fn register(&self, reg: &Registration, now: i64) -> NaiveInstance {
        let mut apps = self.apps.lock().unwrap();
        let app = apps
            .entry((reg.env.clone(), reg.appid.clone()))
            .or_default();
        let up_ts = app.instances.get(&reg.hostname).map(|o| o.up_timestamp);
        let inst = NaiveInstance::new(reg, now, up_ts);
        app.instances.insert(reg.hostname.clone(), inst.clone());
        app.latest_ts = now.max(app.latest_ts + 1);
        inst
    }

    /// Returns a copy of the renewed instance: the renew answer renders it.
    pub fn renew(&self, env: &str, appid: &str, hostname: &str, now: i64) -> Option<NaiveInstance> {
        let mut apps = self.apps.lock().unwrap();
        let app = apps.get_mut(&(env.to_owned(), appid.to_owned()))?;
        let inst = app.instances.get_mut(hostname)?;
        inst.renew_timestamp = now;
        Some(inst.clone())
    }

    pub fn cancel(
        &self,
        env: &str,
        appid: &str,
        hostname: &str,
        now: i64,
    ) -> Option<NaiveInstance> {
        let mut apps = self.apps.lock().unwrap();
        let key = (env.to_owned(), appid.to_owned());
        let app = apps.get_mut(&key)?;
        let inst = app.instances.remove(hostname)?;
        app.latest_ts = now.max(app.latest_ts + 1);
        if app.instances.is_empty() {
            apps.remove(&key);
        }
        Some(inst)
    }

    /// Clones the matching instances out under the lock, grouped by zone.
    pub fn info(&self, env: &str, appid: &str, zone: Option<&str>, mask: u32) -> Option<NaiveInfo> {
        let apps = self.apps.lock().unwrap();
        let app = apps.get(&(env.to_owned(), appid.to_owned()))?;
        let mut instances: BTreeMap<String, Vec<NaiveInstance>> = BTreeMap::new();
        for inst in app.instances.values() {
            if inst.status & mask != 0 && zone.is_none_or(|z| z == inst.zone) {
                instances
                    .entry(inst.zone.clone())
                    .or_default()
                    .push(inst.clone());
            }
        }
        Some(NaiveInfo {
            instances,
            latest_timestamp: app.latest_ts,
        })
    }
}

/// Parses JSON text, with every array of instances put in hostname order, so that answers
/// built from hash-ordered and from sorted instances compare equal.
pub fn normalized_json(bytes: &[u8]) -> serde_json::Value {
    fn sort(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(sort);
                items.sort_by(|a, b| a["hostname"].as_str().cmp(&b["hostname"].as_str()));
            }
            serde_json::Value::Object(map) => map.values_mut().for_each(sort),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(bytes).expect("valid JSON");
    sort(&mut v);
    v
}
