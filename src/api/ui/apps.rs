//! GET `/ui/api/apps`: every app with its instances per zone and status, for the dashboard's
//! apps page (which searches, sorts and pages them itself).

use super::super::answer::Answer;
use super::super::context::Api;
use super::{array, Obj};
use crate::error::Result;
use crate::registry::instance::{STATUS_UP, STATUS_WAITING};

/// Handles the app list, sorted by env and appid.
pub(crate) fn handle<'a>(api: &Api, _: ()) -> Result<Answer<'a>> {
    let mut apps = api.registry.apps();
    apps.sort_unstable_by(|(a, _), (b, _)| (&a.env, &a.appid).cmp(&(&b.env, &b.appid)));
    let mut out = Vec::with_capacity(apps.len() * 160 + 16);
    array(&mut out, &apps, |out, (key, snap)| {
        let mut o = Obj::new(out);
        o.str("env", &key.env)
            .str("appid", &key.appid)
            .int("latest_ts", snap.latest_ts)
            .int("total", snap.len());
        array(o.field("zones"), &snap.zones, |out, zone| {
            let count = |s: u32| zone.instances.iter().filter(|i| i.status == s).count();
            let mut z = Obj::new(out);
            z.str("zone", &zone.name)
                .int("up", count(STATUS_UP))
                .int("waiting", count(STATUS_WAITING))
                .int("total", zone.instances.len());
            z.end();
        });
        o.end();
    });
    Ok(Answer::Data(out))
}
