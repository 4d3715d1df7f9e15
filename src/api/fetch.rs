//! GET `/discovery/fetch`, `/discovery/fetchs` and `/discovery/fetch/all`: reads, answered from
//! the apps' prepared snapshot bytes without taking a lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::answer::Answer;
use super::context::Api;
use crate::error::{Error, Result};
use crate::json;
use crate::registry::encode::write_instances;
use crate::registry::instance::Instance;
use crate::registry::Registry;
use crate::wire::fetch::{Fetch, Fetchs};

/// Handles fetch: one app's InstanceInfo.
pub(crate) fn fetch<'a>(api: &Api, req: Fetch<'a>) -> Result<Answer<'a>> {
    api.registry
        .snapshot(req.env, req.appid)
        .and_then(|s| s.info(req.zone, req.mask))
        .map(Answer::Info)
        .ok_or_else(|| Error::not_found(format!("{} not found", req.appid)))
}

/// Handles fetchs: `{appid: InstanceInfo}` for the apps found.
pub(crate) fn fetchs<'a>(api: &Api, req: Fetchs<'a>) -> Result<Answer<'a>> {
    let found = req
        .appids
        .iter()
        .filter_map(|appid| {
            let snap = api.registry.snapshot(req.env, appid)?;
            Some((*appid, snap.info(req.zone, req.mask)?))
        })
        .collect();
    Ok(Answer::Infos(found))
}

/// Handles fetch/all: every instance, grouped by appid, with current renew times.
pub(crate) fn all<'a>(api: &Api, _: ()) -> Result<Answer<'a>> {
    Ok(Answer::Info(api.fetch_all.get(&api.registry)))
}

/// The encoded `fetch/all` data, shared by every core. Encoding a large registry takes a core
/// for a while and as much memory as the answer, so it is done again only after a change or a
/// renew, and by one core at a time: while one core encodes, the others answer with the
/// latest encoding (so under a steady stream of renews, renew times may be one encoding old).
#[derive(Default)]
pub(crate) struct FetchAllCache {
    latest: Mutex<Option<Encoded>>,
    building: AtomicBool,
}

struct Encoded {
    /// The registry's changes and renews when it was encoded.
    version: (u64, i64),
    data: Bytes,
}

impl FetchAllCache {
    fn get(&self, registry: &Registry) -> Bytes {
        let version = (
            registry.generation(),
            registry.self_preservation().renews_total(),
        );
        let latest = |fresh_only: bool| {
            let cached = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            cached
                .as_ref()
                .filter(|c| !fresh_only || c.version == version)
                .map(|c| c.data.clone())
        };
        if let Some(data) = latest(true) {
            return data;
        }
        if self.building.swap(true, Ordering::AcqRel) {
            if let Some(data) = latest(false) {
                return data;
            }
        }
        let data = encode(&registry.all_instances());
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Encoded {
            version,
            data: data.clone(),
        });
        self.building.store(false, Ordering::Release);
        data
    }
}

/// `{appid: [instance, ...], ...}`.
fn encode(all: &BTreeMap<Box<str>, Vec<Arc<Instance>>>) -> Bytes {
    let size: usize = all.values().map(|l| l.len() * 400).sum();
    let mut data = Vec::with_capacity(size + 2);
    data.push(b'{');
    for (n, (appid, list)) in all.iter().enumerate() {
        if n > 0 {
            data.push(b',');
        }
        json::write_str(&mut data, appid);
        data.push(b':');
        write_instances(&mut data, list.iter().map(|i| i.as_ref()));
    }
    data.push(b'}');
    Bytes::from(data)
}
