//! Property tests: the registry against a plain map model, under random sequences of register,
//! renew, cancel, set and eviction with extreme timestamps. The model is the protocol's rules
//! written the obvious way; the registry must agree with it after every step.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::instance::{MetadataLimit, Registration};
use super::{AppZone, EvictionRules, HostChange, InstanceKey, Registry};
use crate::park::Hub;

const SEC: i64 = 1_000_000_000;
const LIMIT: MetadataLimit = MetadataLimit {
    bytes: 1 << 20,
    keys: 1 << 10,
};

/// What the model keeps of an instance.
#[derive(Debug, Clone, PartialEq)]
struct Model {
    version: String,
    status: u32,
    dirty: i64,
    meta: BTreeMap<String, String>,
    renewed: i64,
}

#[derive(Debug, Clone)]
enum Step {
    Register {
        app: u8,
        host: u8,
        version: u8,
        dirty: Option<i64>,
    },
    Renew {
        app: u8,
        host: u8,
    },
    Cancel {
        app: u8,
        host: u8,
    },
    Set {
        app: u8,
        host: u8,
        status: Option<u32>,
        key: u8,
    },
    /// Time passes; then an eviction round.
    Evict {
        after_s: i64,
    },
}

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MAX),
        Just(i64::MIN),
        Just(0),
        Just(-1),
        Just(1),
        (0i64..1_000).prop_map(|s| s * SEC),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..3, 0u8..4, 0u8..3, proptest::option::of(timestamp()))
            .prop_map(|(app, host, version, dirty)| Step::Register { app, host, version, dirty }),
        3 => (0u8..3, 0u8..4).prop_map(|(app, host)| Step::Renew { app, host }),
        2 => (0u8..3, 0u8..4).prop_map(|(app, host)| Step::Cancel { app, host }),
        2 => (0u8..3, 0u8..4, proptest::option::of(1u32..=2), 0u8..3)
            .prop_map(|(app, host, status, key)| Step::Set { app, host, status, key }),
        1 => (0i64..200).prop_map(|after_s| Step::Evict { after_s }),
    ]
}

fn names(app: u8, host: u8) -> (String, String) {
    (format!("app{app}"), format!("h{host}"))
}

fn key<'a>(app: &'a str, host: &'a str) -> InstanceKey<'a> {
    InstanceKey {
        env: "dev",
        appid: app,
        zone: "z1",
        hostname: host,
    }
}

/// Checks that the registry holds exactly the model, and that no app's clock went back.
fn agree(
    r: &Registry,
    model: &BTreeMap<(String, String), Model>,
    clocks: &mut BTreeMap<String, i64>,
) {
    for app in 0..3u8 {
        let appid = format!("app{app}");
        let want: Vec<(&String, &Model)> = model
            .iter()
            .filter(|((a, _), _)| *a == appid)
            .map(|((_, h), m)| (h, m))
            .collect();
        let Some(snap) = r.snapshot("dev", &appid) else {
            assert!(want.is_empty(), "{appid} missing, model has {want:?}");
            continue;
        };
        let got: Vec<String> = snap.instances().map(|i| i.hostname.to_string()).collect();
        let hosts: Vec<String> = want.iter().map(|(h, _)| (*h).clone()).collect();
        assert_eq!(got, hosts, "{appid}");
        for (host, m) in want {
            let i = snap.find("z1", host).expect("listed");
            assert_eq!(&*i.version, m.version, "{appid} {host}");
            assert_eq!(i.status, m.status, "{appid} {host}");
            assert_eq!(i.dirty_ts, m.dirty, "{appid} {host}");
            let meta: BTreeMap<String, String> = i
                .metadata
                .iter()
                .flatten()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(meta, m.meta, "{appid} {host}");
        }
        let before = clocks
            .insert(appid.clone(), snap.latest_ts)
            .unwrap_or(i64::MIN);
        assert!(
            snap.latest_ts >= before,
            "{appid}: latest_timestamp went back"
        );
        // The prepared answer is valid JSON listing exactly these instances.
        let info = snap.info(None, 3).expect("an answer");
        let v: serde_json::Value = serde_json::from_slice(&info).expect("valid JSON");
        assert_eq!(
            v["instances"]["z1"].as_array().map(Vec::len),
            Some(got.len())
        );
    }
}

fn run(steps: Vec<Step>) {
    let r = Registry::new(Arc::new(Hub::new()), 1);
    let mut model: BTreeMap<(String, String), Model> = BTreeMap::new();
    let mut clocks = BTreeMap::new();
    let mut now = 1_000 * SEC;
    // The newest version stored so far: a client's write goes past it.
    let mut latest_version = i64::MIN;
    for step in steps {
        now += SEC;
        match step {
            Step::Register {
                app,
                host,
                version,
                dirty,
            } => {
                let (appid, hostname) = names(app, host);
                let reg = Registration {
                    zone: "z1".into(),
                    env: "dev".into(),
                    appid: appid.clone(),
                    hostname: hostname.clone(),
                    addrs: vec!["http://1.2.3.4:1".into()],
                    version: format!("v{version}"),
                    status: 1,
                    dirty_ts: dirty.filter(|d| *d > 0),
                    ..Default::default()
                };
                let stored = r.register(&reg, now).expect("register");
                let k = (appid, hostname);
                let stale = match (model.get(&k), reg.dirty_ts) {
                    (Some(old), Some(d)) => d < old.dirty,
                    _ => false,
                };
                if !stale {
                    let meta = BTreeMap::new();
                    // A client's register (no version of its own) wins over the one it
                    // replaces, and over every version stored before it.
                    let dirty = match reg.dirty_ts {
                        Some(d) => d,
                        None => now.max(latest_version.saturating_add(1)),
                    };
                    latest_version = latest_version.max(dirty);
                    model.insert(
                        k.clone(),
                        Model {
                            version: reg.version.clone(),
                            status: 1,
                            dirty,
                            meta,
                            renewed: now,
                        },
                    );
                }
                assert_eq!(&*stored.version, model[&k].version);
            }
            Step::Renew { app, host } => {
                let (appid, hostname) = names(app, host);
                let renewed = r.renew(&key(&appid, &hostname), now);
                let k = (appid, hostname);
                assert_eq!(renewed.is_some(), model.contains_key(&k));
                if let Some(m) = model.get_mut(&k) {
                    m.renewed = now;
                }
            }
            Step::Cancel { app, host } => {
                let (appid, hostname) = names(app, host);
                let gone = r.cancel(&key(&appid, &hostname), None, now);
                let k = (appid, hostname);
                assert_eq!(gone.is_ok(), model.remove(&k).is_some());
            }
            Step::Set {
                app,
                host,
                status,
                key: mk,
            } => {
                let (appid, hostname) = names(app, host);
                let metadata = Some(vec![(format!("k{mk}").into(), format!("v{now}").into())]);
                let change = HostChange {
                    hostname: hostname.clone(),
                    status,
                    metadata,
                };
                let at = AppZone {
                    env: "dev",
                    appid: &appid,
                    zone: "z1",
                };
                let done = r.set(&at, &[change], now, super::SetVersion::AsSent, LIMIT);
                let k = (appid.clone(), hostname);
                assert_eq!(done.is_ok(), model.contains_key(&k));
                if let Some(m) = model.get_mut(&k) {
                    if let Some(s) = status {
                        m.status = s;
                    }
                    m.dirty = now;
                    latest_version = latest_version.max(now);
                    m.meta.insert(format!("k{mk}"), format!("v{now}"));
                }
            }
            Step::Evict { after_s } => {
                now += after_s * SEC;
                let rules = EvictionRules {
                    after_ns: 90 * SEC,
                    after_protected_ns: 3600 * SEC,
                };
                let report = r.evict(rules, now);
                // Whatever went was silent past the threshold that applied.
                let limit = if report.protected {
                    rules.after_protected_ns
                } else {
                    rules.after_ns
                };
                let size = model.len();
                let before: Vec<_> = model.keys().cloned().collect();
                for k in before {
                    let (appid, hostname) = &k;
                    let present = r
                        .snapshot("dev", appid)
                        .is_some_and(|s| s.find("z1", hostname).is_some());
                    if !present {
                        let m = model.remove(&k).expect("modelled");
                        assert!(now - m.renewed > limit, "{k:?} evicted while fresh");
                    }
                }
                assert_eq!(size - model.len(), report.evicted);
                assert!(report.evicted <= size - (size as f64 * 0.85) as usize);
            }
        }
        agree(&r, &model, &mut clocks);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn registry_agrees_with_a_plain_map(steps in proptest::collection::vec(step(), 1..60)) {
        run(steps);
    }
}
