//! The discovery HTTP API: routes and one handler per endpoint. [`Api`] is the
//! [`Service`] each core runs behind the HTTP layer. Every handler has one shape: a typed
//! request from `wire` in, a typed [`Answer`] (or an error) out; [`Answer::write`] and
//! [`envelope::error`] are the only writers of a response.

mod answer;
mod cancel;
mod context;
pub mod envelope;
mod fetch;
mod metrics;
mod nodes;
mod poll;
mod register;
mod renew;
mod replicate;
mod set;

use std::time::Instant;

use crate::error::{Error, Kind, Result};
use crate::http::conn::{Reply, Request, Service};
use crate::http::request::Method;
use crate::http::response::{self, Framing, Keep};
use crate::metrics::inc;
use crate::wire::cancel::Cancel;
use crate::wire::fetch::{Fetch, Fetchs};
use crate::wire::params::Params;
use crate::wire::poll::{Poll, PollKind};
use crate::wire::register::Register;
use crate::wire::renew::Renew;
use crate::wire::set::Set;
use answer::Answer;
pub(crate) use context::Api;
use poll::{ParkedPoll, Polled};

/// Every endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Register,
    Renew,
    Cancel,
    Set,
    Replicate,
    Fetch,
    Fetchs,
    FetchAll,
    Poll,
    Polls,
    Nodes,
    Metrics,
}

impl Route {
    /// The route for a method and path; `Err` is the HTTP status to answer (404 or 405).
    fn find(method: Method, path: &str) -> std::result::Result<Route, u16> {
        let (route, post) = match path {
            "/discovery/register" => (Route::Register, true),
            "/discovery/renew" => (Route::Renew, true),
            "/discovery/cancel" => (Route::Cancel, true),
            "/discovery/set" => (Route::Set, true),
            "/discovery/replicate" => (Route::Replicate, true),
            "/discovery/fetch" => (Route::Fetch, false),
            "/discovery/fetchs" => (Route::Fetchs, false),
            "/discovery/fetch/all" => (Route::FetchAll, false),
            "/discovery/poll" => (Route::Poll, false),
            "/discovery/polls" => (Route::Polls, false),
            "/discovery/nodes" => (Route::Nodes, false),
            "/metrics" => (Route::Metrics, false),
            _ => return Err(404),
        };
        match (method, post) {
            (Method::Post, true) | (Method::Get, false) => Ok(route),
            _ => Err(405),
        }
    }

    /// Reads refused while start-up protection is on.
    fn is_protected_read(self) -> bool {
        matches!(
            self,
            Route::Fetch
                | Route::Fetchs
                | Route::FetchAll
                | Route::Poll
                | Route::Polls
                | Route::Nodes
        )
    }

    /// Routes whose requests carry form parameters (the others are not decoded).
    fn takes_params(self) -> bool {
        !matches!(
            self,
            Route::Replicate | Route::FetchAll | Route::Nodes | Route::Metrics
        )
    }
}

/// What dispatching a request came to: an answer, or a parked poll.
enum Outcome<'a> {
    Answer(Answer<'a>),
    Park(Box<ParkedPoll>),
}

impl Api {
    fn dispatch<'p>(
        &self,
        route: Route,
        params: &'p Params,
        body: &'p [u8],
    ) -> Result<Outcome<'p>> {
        if route.is_protected_read() && self.cluster.protected() {
            return Err(Error::new(
                Kind::Protected,
                "discovery in protect mode and only support register",
            ));
        }
        let answer = match route {
            Route::Register => register::handle(self, Register::from_params(params)?),
            Route::Renew => renew::handle(self, Renew::from_params(params)?),
            Route::Cancel => cancel::handle(self, Cancel::from_params(params)?),
            Route::Set => set::handle(self, Set::from_params(params)?),
            Route::Replicate => replicate::handle(self, replicate::Batch { body }),
            Route::Fetch => fetch::fetch(self, Fetch::from_params(params)?),
            Route::Fetchs => fetch::fetchs(self, Fetchs::from_params(params)?),
            Route::FetchAll => fetch::all(self, ()),
            Route::Nodes => nodes::handle(self, ()),
            Route::Metrics => metrics::handle(self, ()),
            Route::Poll | Route::Polls => {
                let kind = match route {
                    Route::Poll => PollKind::One,
                    _ => PollKind::Many,
                };
                return Ok(
                    match poll::handle(self, Poll::from_params(params, kind)?)? {
                        Polled::Now(answer) => Outcome::Answer(answer),
                        Polled::Parked(parked) => Outcome::Park(parked),
                    },
                );
            }
        };
        answer.map(Outcome::Answer)
    }
}

impl Service for Api {
    type Parked = Box<ParkedPoll>;

    fn call(&self, req: Request, framing: Framing, out: &mut Vec<u8>) -> Reply<Self::Parked> {
        // The clock is read for the access log only when that log is on.
        let started = tracing::enabled!(target: "access", tracing::Level::DEBUG).then(Instant::now);
        let counters = self.metrics.core();
        inc(&counters.requests);
        let route = match Route::find(req.head.method, &req.head.path) {
            Ok(r) => r,
            Err(status) => {
                tracing::debug!(target: "access", path = %req.head.path, status, "no route");
                let text = if status == 404 {
                    "404 page not found"
                } else {
                    "405 method not allowed"
                };
                response::plain(out, status, text, framing);
                return Reply::Done(framing.keep);
            }
        };
        // As the Go original's framework does, a form body counts only for POST (and PUT, which
        // no route takes): a GET's body is not read as parameters.
        let params = if route.takes_params() {
            let form: &[u8] = match req.head.method {
                Method::Post => &req.body,
                _ => &[],
            };
            Params::parse(req.head.query.as_bytes(), form)
        } else {
            Params::default()
        };
        let (reply, code) = match self.dispatch(route, &params, &req.body) {
            Ok(Outcome::Answer(answer)) => {
                answer.write(out, framing);
                (Reply::Done(framing.keep), 0)
            }
            Ok(Outcome::Park(parked)) => (Reply::Park(parked), 0),
            Err(e) => {
                if e.kind == Kind::BadParam {
                    inc(&counters.bad_requests);
                }
                envelope::error(out, framing, &e);
                (Reply::Done(framing.keep), e.ecode())
            }
        };
        tracing::debug!(
            target: "access",
            route = ?route,
            query = %req.head.query,
            code,
            parked = matches!(reply, Reply::Park(_)),
            micros = started.map_or(0, |t| t.elapsed().as_micros() as u64),
        );
        reply
    }

    fn wake<'a>(&'a self, parked: &'a Self::Parked) -> impl std::future::Future<Output = ()> + 'a {
        parked.wake()
    }

    fn resume(&self, parked: &Self::Parked, framing: Framing, out: &mut Vec<u8>) -> Option<Keep> {
        parked.resume(self, out, framing)
    }
}
