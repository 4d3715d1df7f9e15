//! GET `/ui/api/app?env=&appid=`: every instance of one app, for the dashboard's app page.
//! The page keeps it live by long-polling `/discovery/poll` with the `latest_ts` answered here.

use super::super::answer::Answer;
use super::super::context::Api;
use super::{array, Obj};
use crate::clock;
use crate::error::{Error, Result};
use crate::json;
use crate::wire::params::Params;

/// Which app.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppQuery<'a> {
    pub(crate) env: &'a str,
    pub(crate) appid: &'a str,
}

impl<'a> AppQuery<'a> {
    /// Reads `env` and `appid`, both required.
    pub(crate) fn from_params(p: &'a Params) -> Result<AppQuery<'a>> {
        Ok(AppQuery {
            env: p.required("env")?,
            appid: p.required("appid")?,
        })
    }
}

/// Handles one app: its instances by zone then hostname, with the server's clock so the page
/// shows ages without trusting the browser's.
pub(crate) fn handle<'a>(api: &Api, q: AppQuery<'_>) -> Result<Answer<'a>> {
    let snap = api
        .registry
        .snapshot(q.env, q.appid)
        .ok_or_else(|| Error::not_found(format!("{} not found", q.appid)))?;
    let mut out = Vec::with_capacity(snap.len() * 400 + 128);
    let mut o = Obj::new(&mut out);
    o.str("env", q.env)
        .str("appid", q.appid)
        // A string: a JavaScript number would round it, and the page polls with it.
        .str("latest_ts", &snap.latest_ts.to_string())
        .int("now", clock::now_ns());
    array(o.field("instances"), snap.instances(), |out, inst| {
        let mut i = Obj::new(out);
        i.str("zone", inst.zone())
            .str("hostname", &inst.hostname)
            .str("version", &inst.version)
            .int("status", inst.status)
            .int("reg_ts", inst.reg_ts)
            .int("up_ts", inst.up_ts)
            .int("renew_ts", inst.renew_ts());
        array(i.field("addrs"), inst.addrs.iter(), |out, a| {
            json::write_str(out, a)
        });
        let meta = i.field("metadata");
        let mut m = Obj::new(meta);
        for (k, v) in inst.metadata.iter().flatten() {
            m.str(k, v);
        }
        m.end();
        i.end();
    });
    o.end();
    Ok(Answer::Data(out))
}
