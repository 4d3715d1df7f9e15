//! GET `/discovery/poll` and `/discovery/polls`: long-polls. Answer at once when a watched app
//! is newer than the client's timestamp; otherwise the request becomes a [`ParkedPoll`] — a
//! small owned record on this core, with no buffers — until a change of one of its apps, the
//! hold deadline (-304), the client leaving (dropped), or shutdown (-304 and close).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::answer::Answer;
use super::context::Api;
use crate::error::{Error, Kind, Result};
use crate::http::response::{Framing, Keep};
use crate::metrics::{self, Metrics};
use crate::park::{Ticket, WakeKey};
use crate::registry::instance::STATUS_UP;
use crate::registry::Registry;
use crate::wire::poll::{Poll, PollKind};

/// What a poll request came to.
pub(crate) enum Polled<'a> {
    /// Answer now.
    Now(Answer<'a>),
    /// Nothing newer yet: wait with this record.
    Parked(Box<ParkedPoll>),
}

/// A poll waiting for a change: what the connection holds while parked.
pub(crate) struct ParkedPoll {
    poll: Poll,
    /// Registration in this core's waiter list; dropping it unparks.
    ticket: Ticket,
    deadline: Instant,
    /// For the parked-polls gauge, which must go down however the poll ends.
    metrics: Arc<Metrics>,
}

impl Drop for ParkedPoll {
    fn drop(&mut self) {
        metrics::add(&self.metrics.core().polls_parked, -1);
    }
}

/// What the registry has for a poll right now. Polls only ever see UP instances, of the
/// requested zone if any.
struct Found {
    newer: Vec<(Box<str>, Bytes)>,
    missing: Vec<Box<str>>,
}

impl Found {
    fn look(registry: &Registry, poll: &Poll) -> Found {
        let mut found = Found {
            newer: Vec::new(),
            missing: Vec::new(),
        };
        for (appid, since) in &poll.apps {
            let snap = registry.snapshot(&poll.env, appid);
            let zone = poll.zone.as_deref();
            match snap.and_then(|s| Some((s.latest_ts, s.info(zone, STATUS_UP)?))) {
                Some((latest, info)) if latest > *since => found.newer.push((appid.clone(), info)),
                Some(_) => {}
                None => found.missing.push(appid.clone()),
            }
        }
        found
    }

    /// The answer, when something is newer.
    fn into_answer<'a>(mut self, kind: PollKind) -> Option<Answer<'a>> {
        if self.newer.is_empty() {
            return None;
        }
        Some(match kind {
            PollKind::One => Answer::Info(self.newer.swap_remove(0).1),
            PollKind::Many => Answer::Polls {
                newer: self.newer,
                missing: self.missing,
            },
        })
    }
}

/// Handles poll or polls: answers at once, or parks.
pub(crate) fn handle<'a>(api: &Api, poll: Poll) -> Result<Polled<'a>> {
    let found = Found::look(&api.registry, &poll);
    if poll.kind == PollKind::One {
        if let Some(appid) = found.missing.first() {
            return Err(Error::not_found(format!("{appid} not found")));
        }
    }
    if let Some(answer) = found.into_answer(poll.kind) {
        metrics::inc(&api.metrics.core().polls_answered);
        return Ok(Polled::Now(answer));
    }
    // Bounded by connections too, but a parked poll costs more than an idle connection.
    if api.metrics.polls_parked() >= api.max_parked_polls as i64 {
        metrics::inc(&api.metrics.core().polls_refused);
        return Err(Error::new(
            Kind::Overloaded,
            format!(
                "too many parked polls (httpServer.maxParkedPolls = {})",
                api.max_parked_polls
            ),
        ));
    }
    let keys: Vec<WakeKey> = poll
        .apps
        .iter()
        .map(|(a, _)| WakeKey::of(&poll.env, a))
        .collect();
    // Park, then look again: a change published between the first look and parking would
    // otherwise go unnoticed until the deadline.
    let ticket = api.waiters.park(&keys);
    metrics::add(&api.metrics.core().polls_parked, 1);
    let parked = ParkedPoll {
        poll,
        ticket,
        deadline: Instant::now() + api.poll_hold,
        metrics: api.metrics.clone(),
    };
    Ok(match parked.due(api) {
        Some(answer) => Polled::Now(answer),
        None => Polled::Parked(Box::new(parked)),
    })
}

impl ParkedPoll {
    /// Resolves at the next change of a watched app, at the deadline, or at shutdown (the
    /// core's dispatcher wakes every parked poll then).
    pub(crate) async fn wake(&self) {
        monoio::select! {
            _ = self.ticket.changed() => {},
            _ = monoio::time::sleep_until(monoio::time::Instant::from_std(self.deadline)) => {},
        }
    }

    /// The answer if there is one now — newer data, or -304 at the deadline or at shutdown;
    /// `None` keeps waiting.
    fn due<'a>(&self, api: &Api) -> Option<Answer<'a>> {
        let answer = Found::look(&api.registry, &self.poll).into_answer(self.poll.kind);
        if answer.is_some() {
            metrics::inc(&api.metrics.core().polls_answered);
        } else if api.shutdown.is_stopping() || Instant::now() >= self.deadline {
            metrics::inc(&api.metrics.core().poll_timeouts);
            return Some(Answer::NotModified);
        }
        answer
    }

    /// Writes the answer if one is due (see [`ParkedPoll::due`]) and says how the connection
    /// goes on: closed once the server is stopping.
    pub(crate) fn resume(&self, api: &Api, out: &mut Vec<u8>, framing: Framing) -> Option<Keep> {
        let answer = self.due(api)?;
        let framing = Framing {
            keep: if api.shutdown.is_stopping() {
                Keep::Close
            } else {
                framing.keep
            },
            ..framing
        };
        answer.write(out, framing);
        Some(framing.keep)
    }
}
