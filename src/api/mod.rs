//! The discovery HTTP API: routes and one handler per endpoint. [`Api`] is the
//! [`Service`] each core runs behind the HTTP layer. Every handler has one shape: a typed
//! request from `wire` in, a typed [`Answer`] (or an error) out; [`Answer::write`] and
//! [`envelope::error`] are the only writers of a response.

mod access;
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
mod ui;

use std::time::Instant;

use crate::error::{Error, Kind, Result};
use crate::http::conn::{Reply, Request, Service};
use crate::http::request::Method;
use crate::http::response::{self, Framing, Keep};
use crate::identity::SELF_APPID;
use crate::metrics::inc;
use crate::metrics::{ecode_slot, nanos_since, ENDPOINTS, LATENCY_BOUNDS_NS};
use crate::wire::cancel::Cancel;
use crate::wire::fetch::{Fetch, Fetchs};
use crate::wire::params::Params;
use crate::wire::poll::{Poll, PollKind};
use crate::wire::register::Register;
use crate::wire::renew::Renew;
use crate::wire::set::Set;
use crate::wire::Origin;
pub(crate) use access::Access;
use access::{Credentials, Level, Need};
use answer::Answer;
pub(crate) use context::Api;
pub(crate) use fetch::FetchAllCache;
use poll::{ParkedPoll, Polled};
/// The replicate handler and its request, which the fuzzing harness (`crate::fuzzing`) calls
/// directly.
#[cfg(feature = "fuzzing")]
pub(crate) use replicate::{handle as handle_replicate, Batch as ReplicateBatch};

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
    /// The dashboard's page (`/`) and its assets.
    UiPage,
    UiScript,
    UiStyle,
    /// The dashboard's JSON.
    UiOverview,
    UiApps,
    UiApp,
    UiCluster,
    UiConfig,
}

// Each route has its own slot of per-endpoint metrics.
const _: () = assert!(Route::ALL.len() <= ENDPOINTS);

impl Route {
    /// Every route, in slot order.
    const ALL: [Route; 20] = [
        Route::Register,
        Route::Renew,
        Route::Cancel,
        Route::Set,
        Route::Replicate,
        Route::Fetch,
        Route::Fetchs,
        Route::FetchAll,
        Route::Poll,
        Route::Polls,
        Route::Nodes,
        Route::Metrics,
        Route::UiPage,
        Route::UiScript,
        Route::UiStyle,
        Route::UiOverview,
        Route::UiApps,
        Route::UiApp,
        Route::UiCluster,
        Route::UiConfig,
    ];

    /// The route's slot in the per-endpoint metrics.
    fn slot(self) -> usize {
        self as usize
    }

    /// The `endpoint` label of its metrics.
    fn name(self) -> &'static str {
        match self {
            Route::Register => "register",
            Route::Renew => "renew",
            Route::Cancel => "cancel",
            Route::Set => "set",
            Route::Replicate => "replicate",
            Route::Fetch => "fetch",
            Route::Fetchs => "fetchs",
            Route::FetchAll => "fetch_all",
            Route::Poll => "poll",
            Route::Polls => "polls",
            Route::Nodes => "nodes",
            Route::Metrics => "metrics",
            Route::UiPage => "ui_page",
            Route::UiScript => "ui_script",
            Route::UiStyle => "ui_style",
            Route::UiOverview => "ui_overview",
            Route::UiApps => "ui_apps",
            Route::UiApp => "ui_app",
            Route::UiCluster => "ui_cluster",
            Route::UiConfig => "ui_config",
        }
    }

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
            "/" | "/ui" | "/ui/" | "/ui/index.html" => (Route::UiPage, false),
            "/ui/app.js" => (Route::UiScript, false),
            "/ui/style.css" => (Route::UiStyle, false),
            "/ui/api/overview" => (Route::UiOverview, false),
            "/ui/api/apps" => (Route::UiApps, false),
            "/ui/api/app" => (Route::UiApp, false),
            "/ui/api/cluster" => (Route::UiCluster, false),
            "/ui/api/config" => (Route::UiConfig, false),
            _ => return Err(404),
        };
        match (method, post) {
            (Method::Post, true) | (Method::Get, false) => Ok(route),
            _ => Err(405),
        }
    }

    /// Reads refused while start-up protection is on. The dashboard's apps and app are reads of
    /// the registry like fetch; its overview, cluster and config pages stay readable, which is
    /// how an operator sees that the node is protected.
    fn is_protected_read(self) -> bool {
        matches!(
            self,
            Route::Fetch
                | Route::Fetchs
                | Route::FetchAll
                | Route::Poll
                | Route::Polls
                | Route::Nodes
                | Route::UiApps
                | Route::UiApp
        )
    }

    /// What the caller must present; writes are judged by their flags and appid.
    fn need(self, params: &Params) -> Need {
        match self {
            Route::Replicate => Need::Peer,
            Route::Register | Route::Renew | Route::Cancel | Route::Set => {
                // Invalid flags read as a peer's write: a stranger is refused before parsing.
                let origin = Origin::from_params(params).unwrap_or(Origin::Peer);
                if origin != Origin::Client || params.get("appid") == Some(SELF_APPID) {
                    Need::Peer
                } else if self == Route::Set {
                    Need::Admin { then: Level::Write }
                } else {
                    Need::Client(Level::Write)
                }
            }
            Route::FetchAll | Route::Metrics | Route::UiConfig => Need::Admin { then: Level::Read },
            Route::Fetch
            | Route::Fetchs
            | Route::Poll
            | Route::Polls
            | Route::Nodes
            | Route::UiOverview
            | Route::UiApps
            | Route::UiApp
            | Route::UiCluster => Need::Client(Level::Read),
            // The page and its assets hold no data; the page must load to ask for a token.
            Route::UiPage | Route::UiScript | Route::UiStyle => Need::Open,
        }
    }

    /// Routes whose requests carry form parameters (the others are not decoded).
    fn takes_params(self) -> bool {
        matches!(
            self,
            Route::Register
                | Route::Renew
                | Route::Cancel
                | Route::Set
                | Route::Fetch
                | Route::Fetchs
                | Route::Poll
                | Route::Polls
                | Route::UiApp
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
        req: &'p Request,
    ) -> Result<Outcome<'p>> {
        let query_params;
        let token = match (&req.head.bearer, route.takes_params()) {
            (Some(t), _) => Some(t.as_str()),
            (None, true) => params.get("token"),
            (None, false) => {
                query_params = Params::parse(req.head.query.as_bytes(), b"").ok();
                query_params.as_ref().and_then(|p| p.get("token"))
            }
        };
        let credentials = Credentials {
            token,
            remote: req.remote,
        };
        if let Err(e) = self
            .access
            .check(route.need(params), credentials, &self.cluster)
        {
            inc(&self.metrics.core().auth_refused);
            tracing::info!(remote = %req.remote, path = %req.head.path, why = %e.context, "refused");
            return Err(e);
        }
        if route.is_protected_read() && self.cluster.protected() {
            return Err(Error::new(
                Kind::Protected,
                "discovery in protect mode and only support register",
            ));
        }
        let answer = match route {
            Route::Register => {
                register::handle(self, Register::from_params(params, &self.rules())?)
            }
            Route::Renew => renew::handle(self, Renew::from_params(params, &self.rules())?),
            Route::Cancel => cancel::handle(self, Cancel::from_params(params, &self.rules())?),
            Route::Set => set::handle(self, Set::from_params(params, &self.rules())?),
            Route::Replicate => replicate::handle(self, replicate::Batch { body: &req.body }),
            Route::Fetch => fetch::fetch(self, Fetch::from_params(params)?),
            Route::Fetchs => fetch::fetchs(self, Fetchs::from_params(params, &self.limits)?),
            Route::FetchAll => fetch::all(self, ()),
            Route::Nodes => nodes::handle(self, ()),
            Route::Metrics => metrics::handle(self, Route::ALL.map(|r| r.name())),
            Route::UiPage => ui::asset(self, ui::Asset::Page),
            Route::UiScript => ui::asset(self, ui::Asset::Script),
            Route::UiStyle => ui::asset(self, ui::Asset::Style),
            Route::UiOverview => ui::overview::handle(self, ()),
            Route::UiApps => ui::apps::handle(self, ()),
            Route::UiApp => ui::app::handle(self, ui::app::AppQuery::from_params(params)?),
            Route::UiCluster => ui::cluster::handle(self, ()),
            Route::UiConfig => ui::config::handle(self, ()),
            Route::Poll | Route::Polls => {
                let kind = match route {
                    Route::Poll => PollKind::One,
                    _ => PollKind::Many,
                };
                return Ok(
                    match poll::handle(
                        self,
                        Poll::from_params(params, kind, &self.limits)?,
                        route.slot(),
                    )? {
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
        let started = Instant::now();
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
            Ok(Params::default())
        };
        let outcome = params
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|params| self.dispatch(route, params, &req));
        let (reply, code) = match outcome {
            Ok(Outcome::Answer(answer)) => {
                answer.write(out, framing);
                (Reply::Done(framing.keep), 0)
            }
            Ok(Outcome::Park(parked)) => (Reply::Park(parked), 0),
            Err(e) => {
                if matches!(e.kind, Kind::BadParam | Kind::Limit) {
                    inc(&counters.bad_requests);
                }
                if e.kind == Kind::Limit {
                    inc(&counters.limit_refused);
                }
                envelope::error(out, framing, &e);
                (Reply::Done(framing.keep), e.ecode())
            }
        };
        let nanos = nanos_since(started);
        let endpoint = &counters.endpoints[route.slot()];
        endpoint.latency.observe(&LATENCY_BOUNDS_NS, nanos);
        // A parked poll's answer is counted when it is written (`poll::ParkedPoll::resume`).
        if !matches!(reply, Reply::Park(_)) {
            inc(&endpoint.answers[ecode_slot(code)]);
        }
        tracing::debug!(
            target: "access",
            route = ?route,
            query = %Redacted(&req.head.query),
            code,
            parked = matches!(reply, Reply::Park(_)),
            micros = nanos / 1000,
        );
        reply
    }

    fn wake<'a>(&'a self, parked: &'a Self::Parked) -> impl std::future::Future<Output = ()> + 'a {
        parked.wake()
    }

    fn deadline(&self, parked: &Self::Parked) -> std::time::Instant {
        parked.deadline()
    }

    fn resume(&self, parked: &Self::Parked, framing: Framing, out: &mut Vec<u8>) -> Option<Keep> {
        parked.resume(self, out, framing)
    }
}

/// A query string as the access log shows it: the value of `token` replaced, so a secret sent
/// as a parameter never reaches a log.
struct Redacted<'a>(&'a str);

impl std::fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, pair) in self.0.split('&').enumerate() {
            if n > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some(("token", _)) => f.write_str("token=***")?,
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_reach_the_access_log() {
        let shown = Redacted("appid=a&token=s3cret&env=dev&token").to_string();
        assert_eq!(shown, "appid=a&token=***&env=dev&token");
    }

    #[test]
    fn writes_of_nodes_and_flagged_writes_are_peer_only() {
        let need = |route: Route, q: &str| route.need(&Params::parse(q.as_bytes(), b"").unwrap());
        assert_eq!(need(Route::Register, "appid=a"), Need::Client(Level::Write));
        assert_eq!(need(Route::Register, "appid=infra.discovery"), Need::Peer);
        assert_eq!(need(Route::Renew, "appid=a&replication=true"), Need::Peer);
        assert_eq!(need(Route::Cancel, "appid=a&from_zone=1"), Need::Peer);
        assert_eq!(need(Route::Cancel, "appid=a&replication=maybe"), Need::Peer);
        assert_eq!(
            need(Route::Set, "appid=a"),
            Need::Admin { then: Level::Write }
        );
        assert_eq!(need(Route::Replicate, ""), Need::Peer);
        assert_eq!(need(Route::FetchAll, ""), Need::Admin { then: Level::Read });
        assert_eq!(need(Route::Polls, "appid=a"), Need::Client(Level::Read));
    }

    #[test]
    fn every_route_has_its_own_metrics_slot_and_name() {
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(r.slot(), i, "{r:?} is out of order in Route::ALL");
        }
        let mut names: Vec<&str> = Route::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Route::ALL.len());
        // The last variant is in the list, so no route is left without a slot.
        assert_eq!(Route::ALL.last(), Some(&Route::UiConfig));
    }

    #[test]
    fn dashboard_routes_are_explicit() {
        for path in ["/", "/ui", "/ui/", "/ui/index.html"] {
            assert_eq!(Route::find(Method::Get, path), Ok(Route::UiPage));
        }
        assert_eq!(Route::find(Method::Get, "/ui/api/apps"), Ok(Route::UiApps));
        assert_eq!(Route::find(Method::Get, "/ui/nope.js"), Err(404));
        assert_eq!(Route::find(Method::Post, "/"), Err(405));
        assert!(Route::UiApp.is_protected_read() && !Route::UiOverview.is_protected_read());
    }
}
