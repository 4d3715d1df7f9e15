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
use crate::metrics::{self, ecode_slot, nanos_since, Metrics, LATENCY_BOUNDS_NS};
use crate::park::{Changed, Ticket, WakeKey};
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
    /// When it parked, for the hold-time histogram.
    parked_at: Instant,
    deadline: Instant,
    /// The poll's endpoint slot in the per-endpoint metrics.
    slot: usize,
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
    /// When the newest of the `newer` snapshots was published.
    published: Option<Instant>,
}

impl Found {
    fn look(registry: &Registry, poll: &Poll) -> Found {
        let mut found = Found {
            newer: Vec::new(),
            missing: Vec::new(),
            published: None,
        };
        for (appid, since) in &poll.apps {
            let snap = registry.snapshot(&poll.env, appid);
            let zone = poll.zone.as_deref();
            match snap
                .as_ref()
                .and_then(|s| Some((s.latest_ts, s.info(zone, STATUS_UP)?)))
            {
                Some((latest, info)) if latest > *since => {
                    found.newer.push((appid.clone(), info));
                    let at = snap.as_ref().map(|s| s.published);
                    found.published = found.published.max(at);
                }
                Some(_) => {}
                None => found.missing.push(appid.clone()),
            }
        }
        found
    }

    /// The answer, when something is newer, and when the newest change was published.
    fn into_answer<'a>(mut self, kind: PollKind) -> Option<(Answer<'a>, Option<Instant>)> {
        if self.newer.is_empty() {
            return None;
        }
        let published = self.published;
        let answer = match kind {
            PollKind::One => Answer::Info(self.newer.swap_remove(0).1),
            PollKind::Many => Answer::Polls {
                newer: self.newer,
                missing: self.missing,
            },
        };
        Some((answer, published))
    }
}

/// Handles poll or polls (endpoint metrics slot `slot`): answers at once, or parks.
pub(crate) fn handle<'a>(api: &Api, poll: Poll, slot: usize) -> Result<Polled<'a>> {
    let found = Found::look(&api.registry, &poll);
    if poll.kind == PollKind::One {
        if let Some(appid) = found.missing.first() {
            return Err(Error::not_found(format!("{appid} not found")));
        }
    }
    if let Some((answer, _)) = found.into_answer(poll.kind) {
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
    let now = Instant::now();
    let parked = ParkedPoll {
        poll,
        ticket,
        parked_at: now,
        deadline: now + api.poll_hold,
        slot,
        metrics: api.metrics.clone(),
    };
    // A change that raced with parking is answered now, as if it had not parked.
    let found = Found::look(&api.registry, &parked.poll).into_answer(parked.poll.kind);
    Ok(match found {
        Some((answer, _)) => {
            metrics::inc(&api.metrics.core().polls_answered);
            Polled::Now(answer)
        }
        // Shutdown already woke every parked poll: this one would wait for its deadline.
        None if api.shutdown.is_stopping() => {
            metrics::inc(&api.metrics.core().poll_timeouts);
            Polled::Now(Answer::NotModified)
        }
        None => Polled::Parked(Box::new(parked)),
    })
}

impl ParkedPoll {
    /// Resolves at the next change of a watched app, or at shutdown (the core's dispatcher
    /// wakes every parked poll then). The connection waits for the deadline.
    pub(crate) fn wake(&self) -> Changed<'_> {
        self.ticket.changed()
    }

    /// When the poll is answered -304 if nothing changed.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The answer if there is one now — newer data, or -304 at the deadline or at shutdown;
    /// `None` keeps waiting. Counts the answer, how long the poll was held and, for data, how
    /// long after the change's publication it is answered.
    fn due<'a>(&self, api: &Api) -> Option<Answer<'a>> {
        let found = Found::look(&api.registry, &self.poll).into_answer(self.poll.kind);
        let core = api.metrics.core();
        let (answer, ecode) = match found {
            Some((answer, published)) => {
                metrics::inc(&core.polls_answered);
                if let Some(at) = published {
                    core.poll_wake.observe(&LATENCY_BOUNDS_NS, nanos_since(at));
                }
                (answer, 0)
            }
            None if api.shutdown.is_stopping() || Instant::now() >= self.deadline => {
                metrics::inc(&core.poll_timeouts);
                (Answer::NotModified, -304)
            }
            None => return None,
        };
        core.poll_hold
            .observe(&LATENCY_BOUNDS_NS, nanos_since(self.parked_at));
        metrics::inc(&core.endpoints[self.slot].answers[ecode_slot(ecode)]);
        Some(answer)
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
