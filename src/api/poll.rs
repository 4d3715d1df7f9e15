//! GET `/discovery/poll` and `/discovery/polls`: long-polls. Answer at once when a watched app
//! is newer than the client's timestamp; otherwise park on this core until a change of one of
//! the apps, the hold deadline (-304), the client leaving, or shutdown.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use super::envelope::{self, Envelope};
use super::params::Params;
use crate::error::{Error, Kind, Result};
use crate::http::conn::Watch;
use crate::http::response::Framing;
use crate::metrics;
use crate::node::Node;
use crate::registry::instance::STATUS_UP;
use crate::registry::json;
use crate::registry::waiters::CoreWaiters;
use crate::registry::wake_key;

/// A validated poll request.
struct Poll<'a> {
    env: &'a str,
    zone: Option<&'a str>,
    appids: Vec<&'a str>,
    since: Vec<i64>,
    /// `poll` answers one app's InstanceInfo; `polls` a map of them.
    single: bool,
}

/// What the registry has for a poll right now.
struct Found<'a> {
    newer: Vec<(&'a str, Bytes)>,
    missing: Vec<&'a str>,
}

impl<'a> Poll<'a> {
    fn parse(p: &'a Params, single: bool) -> Result<Poll<'a>> {
        let listed = p.list("appid").len();
        if listed == 0 {
            return Err(Error::bad_param("appid is required"));
        }
        let env = p.required("env")?;
        p.required("hostname")?;
        let mut all_since = p.i64_list("latest_timestamp")?;
        if single {
            all_since.resize(1, 0);
        } else if all_since.len() != listed {
            return Err(Error::bad_param(format!(
                "latest_timestamp has {} values for {listed} appids",
                all_since.len()
            )));
        }
        // An app named twice is watched (and answered) once, with its first timestamp.
        let mut unique = p.unique_list("appid");
        if single {
            unique.truncate(1);
        }
        let since = unique.iter().map(|(i, _)| all_since[*i]).collect();
        let appids = unique.into_iter().map(|(_, a)| a).collect();
        Ok(Poll {
            env,
            zone: p.get("zone"),
            appids,
            since,
            single,
        })
    }

    /// Polls only ever see UP instances, of the requested zone if any.
    fn look(&self, node: &Node) -> Found<'a> {
        let mut found = Found {
            newer: Vec::new(),
            missing: Vec::new(),
        };
        for (appid, since) in self.appids.iter().zip(&self.since) {
            let snap = node.registry.snapshot(self.env, appid);
            match snap.and_then(|s| Some((s.latest_ts, s.info(self.zone, STATUS_UP)?))) {
                Some((latest, info)) if latest > *since => found.newer.push((appid, info)),
                Some(_) => {}
                None => found.missing.push(appid),
            }
        }
        found
    }

    fn answer(&self, found: &Found<'_>, out: &mut Vec<u8>, framing: Framing) {
        if self.single {
            if let Some((_, info)) = found.newer.first() {
                envelope::ok_data(out, framing, info);
            }
            return;
        }
        let mut e = Envelope::begin(out, framing, 200, 0, "0");
        let data = e.field("data");
        data.push(b'{');
        for (n, (appid, info)) in found.newer.iter().enumerate() {
            if n > 0 {
                data.push(b',');
            }
            json::write_str(data, appid);
            data.push(b':');
            data.extend_from_slice(info);
        }
        data.push(b'}');
        let errors = e.field("error");
        errors.extend_from_slice(b"{\"-404\":[");
        for (n, appid) in found.missing.iter().enumerate() {
            if n > 0 {
                errors.push(b',');
            }
            json::write_str(errors, appid);
        }
        errors.extend_from_slice(b"]}");
        e.end();
    }
}

/// How a parked wait ended.
enum Wake {
    Changed,
    Deadline,
}

/// Handles poll (`single`) or polls. Returns false when the connection must close.
pub async fn handle(
    node: &Node,
    waiters: &Rc<CoreWaiters>,
    p: &Params,
    single: bool,
    out: &mut Vec<u8>,
    framing: Framing,
    watch: &mut Watch<'_>,
) -> Result<bool> {
    let poll = Poll::parse(p, single)?;
    let found = poll.look(node);
    if single && !found.missing.is_empty() {
        return Err(Error::not_found(format!("{} not found", poll.appids[0])));
    }
    if !found.newer.is_empty() {
        poll.answer(&found, out, framing);
        metrics::inc(&node.metrics.polls_answered);
        return Ok(true);
    }
    let keys: Vec<u64> = poll.appids.iter().map(|a| wake_key(poll.env, a)).collect();
    // Park before looking again: a change published between the first look and parking would
    // otherwise go unnoticed until the deadline.
    let ticket = waiters.park(&keys);
    let deadline = Instant::now() + node.config.registry.poll_hold;
    if !watch.flush(out).await {
        return Ok(false);
    }
    metrics::add(&node.metrics.polls_parked, 1);
    let outcome = loop {
        let found = poll.look(node);
        if !found.newer.is_empty() {
            break Some(found);
        }
        if waiters.shutting_down() {
            break None;
        }
        let wait = async {
            monoio::select! {
                _ = ticket.changed() => Wake::Changed,
                _ = monoio::time::sleep_until(monoio::time::Instant::from_std(deadline)) => Wake::Deadline,
            }
        };
        match watch.until_gone(wait).await {
            Some(Wake::Changed) => continue,
            Some(Wake::Deadline) => break None,
            None => {
                metrics::add(&node.metrics.polls_parked, -1);
                return Ok(false);
            }
        }
    };
    drop(ticket);
    metrics::add(&node.metrics.polls_parked, -1);
    let framing = Framing {
        keep_alive: framing.keep_alive && !waiters.shutting_down(),
        ..framing
    };
    match outcome {
        Some(found) => {
            poll.answer(&found, out, framing);
            metrics::inc(&node.metrics.polls_answered);
        }
        None => {
            metrics::inc(&node.metrics.poll_timeouts);
            envelope::error(out, framing, &Error::new(Kind::NotModified, "-304"));
        }
    }
    Ok(framing.keep_alive)
}
