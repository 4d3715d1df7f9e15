//! GET `/discovery/fetch`, `/discovery/fetchs` and `/discovery/fetch/all`: reads, answered from
//! the apps' prepared snapshot bytes without taking a lock.

use super::answer::Answer;
use super::context::Api;
use crate::error::{Error, Result};
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
    Ok(Answer::All(api.registry.all_instances()))
}
