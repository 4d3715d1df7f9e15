//! GET `/discovery/poll` and `/discovery/polls`: long-polls. Answer at once when a watched app
//! is newer than the client's timestamp; otherwise the request becomes a [`Parked`] poll — a
//! small owned record on this core, with no buffers — until a change of one of its apps, the
//! hold deadline (-304), the client leaving (dropped), or shutdown (-304 and close).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::envelope::{self, Envelope};
use super::params::Params;
use crate::error::{Error, Kind, Result};
use crate::http::response::Framing;
use crate::metrics;
use crate::node::Node;
use crate::registry::instance::STATUS_UP;
use crate::registry::json;
use crate::registry::waiters::{CoreWaiters, Ticket};
use crate::registry::wake_key;

/// A validated poll request, owning its values so it outlives the request buffer.
struct Poll {
    env: Box<str>,
    zone: Option<Box<str>>,
    /// Each watched app with the client's latest_timestamp for it.
    apps: Vec<(Box<str>, i64)>,
    /// `poll` answers one app's InstanceInfo; `polls` a map of them.
    single: bool,
}

/// What the registry has for a poll right now.
struct Found<'a> {
    newer: Vec<(&'a str, Bytes)>,
    missing: Vec<&'a str>,
}

impl Poll {
    fn parse(p: &Params, single: bool) -> Result<Poll> {
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
        Ok(Poll {
            env: env.into(),
            zone: p.get("zone").map(Into::into),
            apps: unique
                .into_iter()
                .map(|(i, a)| (a.into(), all_since[i]))
                .collect(),
            single,
        })
    }

    /// Polls only ever see UP instances, of the requested zone if any.
    fn look(&self, node: &Node) -> Found<'_> {
        let mut found = Found {
            newer: Vec::new(),
            missing: Vec::new(),
        };
        for (appid, since) in &self.apps {
            let snap = node.registry.snapshot(&self.env, appid);
            let zone = self.zone.as_deref();
            match snap.and_then(|s| Some((s.latest_ts, s.info(zone, STATUS_UP)?))) {
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
        let size: usize = found.newer.iter().map(|(a, i)| a.len() + i.len() + 4).sum();
        out.reserve(size + 512);
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

/// A poll waiting for a change: what the connection holds while parked.
pub struct Parked {
    poll: Poll,
    /// Registration in this core's waiter list; dropping it unparks.
    ticket: Ticket,
    deadline: Instant,
    /// For the parked-polls gauge, which must go down however the poll ends.
    node: Arc<Node>,
}

impl Drop for Parked {
    fn drop(&mut self) {
        metrics::add(&self.node.metrics.polls_parked, -1);
    }
}

/// What a poll request came to.
pub enum Started {
    /// The answer is written.
    Answered,
    Parked(Box<Parked>),
}

/// Starts poll (`single`) or polls: answers at once, or parks.
pub fn start(
    node: &Arc<Node>,
    waiters: &Rc<CoreWaiters>,
    p: &Params,
    single: bool,
    out: &mut Vec<u8>,
    framing: Framing,
) -> Result<Started> {
    let poll = Poll::parse(p, single)?;
    let found = poll.look(node);
    if single && !found.missing.is_empty() {
        return Err(Error::not_found(format!("{} not found", poll.apps[0].0)));
    }
    if !found.newer.is_empty() {
        poll.answer(&found, out, framing);
        metrics::inc(&node.metrics.polls_answered);
        return Ok(Started::Answered);
    }
    drop(found);
    let keys: Vec<u64> = poll
        .apps
        .iter()
        .map(|(a, _)| wake_key(&poll.env, a))
        .collect();
    // Park, then look again: a change published between the first look and parking would
    // otherwise go unnoticed until the deadline.
    let ticket = waiters.park(&keys);
    metrics::add(&node.metrics.polls_parked, 1);
    let parked = Parked {
        poll,
        ticket,
        deadline: Instant::now() + node.config.registry.poll_hold,
        node: node.clone(),
    };
    if parked.resume(waiters, out, framing).is_some() {
        return Ok(Started::Answered);
    }
    Ok(Started::Parked(Box::new(parked)))
}

impl Parked {
    /// Resolves at the next change of a watched app, at the deadline, or at shutdown.
    pub async fn wake(&self) {
        monoio::select! {
            _ = self.ticket.changed() => {},
            _ = monoio::time::sleep_until(monoio::time::Instant::from_std(self.deadline)) => {},
        }
    }

    /// Writes the answer if there is one now — newer data, or -304 at the deadline or at
    /// shutdown — and says whether the connection stays open; `None` keeps waiting.
    pub fn resume(
        &self,
        waiters: &CoreWaiters,
        out: &mut Vec<u8>,
        framing: Framing,
    ) -> Option<bool> {
        let node = &self.node;
        let found = self.poll.look(node);
        let stopping = waiters.shutting_down();
        let framing = Framing {
            keep_alive: framing.keep_alive && !stopping,
            ..framing
        };
        if !found.newer.is_empty() {
            self.poll.answer(&found, out, framing);
            metrics::inc(&node.metrics.polls_answered);
        } else if stopping || Instant::now() >= self.deadline {
            metrics::inc(&node.metrics.poll_timeouts);
            envelope::error(out, framing, &Error::new(Kind::NotModified, "-304"));
        } else {
            return None;
        }
        Some(framing.keep_alive)
    }
}
