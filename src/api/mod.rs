//! The discovery HTTP API: routes, parameters and one handler per endpoint. [`Api`] is the
//! [`Service`] each core runs behind the HTTP layer; handlers talk to the registry.

pub mod cancel;
pub mod envelope;
pub mod fetch;
pub mod nodes;
pub mod params;
pub mod poll;
pub mod register;
pub mod renew;
pub mod replicate;
pub mod set;

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::clock;
use crate::cluster;
use crate::error::{Error, Kind, Result};
use crate::http::conn::{Reply, Request, Service};
use crate::http::request::Method;
use crate::http::response::{self, Framing};
use crate::metrics;
use crate::node::Node;
use crate::registry::waiters::CoreWaiters;
use params::Params;

/// Every endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
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
    pub fn find(method: Method, path: &str) -> std::result::Result<Route, u16> {
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
}

/// The `/metrics` text: the node's counters plus what is counted at scrape time.
fn metrics_text(node: &Node) -> String {
    let (apps, instances) = node.registry.size();
    let guard = node.registry.guard();
    let peers = node.cluster.peers();
    let all: Vec<_> = peers
        .own
        .iter()
        .chain(peers.zones.values().flatten())
        .collect();
    let count = |f: &dyn Fn(&cluster::peer::Peer) -> i64| all.iter().map(|p| f(p)).sum::<i64>();
    node.metrics.render(&[
        (
            "discovery_apps",
            "gauge",
            "Apps (env, appid) with at least one instance.",
            apps as i64,
        ),
        (
            "discovery_instances",
            "gauge",
            "Registered instances.",
            instances as i64,
        ),
        (
            "discovery_renews_last_window",
            "gauge",
            "Renews counted in the last guard window.",
            guard.renews_last_window(),
        ),
        (
            "discovery_renews_expected",
            "gauge",
            "Renews expected per guard window.",
            guard.expected().0,
        ),
        (
            "discovery_peers",
            "gauge",
            "Peer nodes known (all zones).",
            all.len() as i64,
        ),
        (
            "discovery_peers_up",
            "gauge",
            "Peer nodes whose last call succeeded.",
            count(&|p| i64::from(p.status() == crate::node::NODE_UP)),
        ),
        (
            "discovery_replication_queued",
            "gauge",
            "Replicated writes waiting to be sent.",
            count(&|p| p.queued() as i64),
        ),
        (
            "discovery_replication_ops_total",
            "counter",
            "Replicated writes delivered to peers.",
            count(&|p| p.ops_sent.load(Ordering::Relaxed) as i64),
        ),
        (
            "discovery_replication_requests_total",
            "counter",
            "Requests that carried them (fewer when batched).",
            count(&|p| p.requests_sent.load(Ordering::Relaxed) as i64),
        ),
        (
            "discovery_replication_dropped_total",
            "counter",
            "Replicated writes dropped (peer unreachable or queue full).",
            count(&|p| p.dropped.load(Ordering::Relaxed) as i64),
        ),
    ])
}

/// One core's API service.
pub struct Api {
    pub node: Arc<Node>,
    /// This core's parked polls; `Rc` because only this core's tasks touch them.
    pub waiters: Rc<CoreWaiters>,
}

impl Api {
    fn dispatch(
        &self,
        route: Route,
        req: &Request,
        out: &mut Vec<u8>,
        framing: Framing,
    ) -> Result<Reply<Box<poll::Parked>>> {
        let node = &self.node;
        if route.is_protected_read() && node.protected() {
            return Err(Error::new(
                Kind::Protected,
                "discovery in protect mode and only support register",
            ));
        }
        // Only writes read the clock, and only routes with parameters decode them.
        let params = || Params::parse(req.head.query.as_bytes(), &req.body);
        let now = clock::now_ns;
        match route {
            Route::Replicate => replicate::handle(node, &req.body, now(), out, framing),
            Route::Register => {
                register::handle(node, &params(), now()).map(|()| envelope::ok(out, framing))?
            }
            Route::Renew => renew::handle(node, &params(), now(), out, framing)?,
            Route::Cancel => {
                cancel::handle(node, &params(), now()).map(|()| envelope::ok(out, framing))?
            }
            Route::Set => {
                set::handle(node, &params(), now()).map(|()| envelope::ok(out, framing))?
            }
            Route::Fetch => fetch::fetch(node, &params(), out, framing)?,
            Route::Fetchs => fetch::fetchs(node, &params(), out, framing)?,
            Route::FetchAll => fetch::all(node, out, framing),
            Route::Nodes => nodes::handle(node, out, framing),
            Route::Poll | Route::Polls => {
                let single = route == Route::Poll;
                if let poll::Started::Parked(parked) =
                    poll::start(node, &self.waiters, &params(), single, out, framing)?
                {
                    return Ok(Reply::Park(parked));
                }
            }
            Route::Metrics => {
                let text = metrics_text(node);
                let open = response::begin(out, 200, "text/plain; version=0.0.4", framing);
                out.extend_from_slice(text.as_bytes());
                open.finish(out);
            }
        }
        Ok(Reply::Done(framing.keep_alive))
    }
}

impl Service for Api {
    type Parked = Box<poll::Parked>;

    fn call(&self, req: Request, framing: Framing, out: &mut Vec<u8>) -> Reply<Self::Parked> {
        // The clock is read for the access log only when that log is on.
        let started = tracing::enabled!(target: "access", tracing::Level::DEBUG).then(Instant::now);
        metrics::inc(&self.node.metrics.requests);
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
                return Reply::Done(framing.keep_alive);
            }
        };
        let (reply, code) = match self.dispatch(route, &req, out, framing) {
            Ok(reply) => (reply, 0),
            Err(e) => {
                if e.kind == Kind::BadParam {
                    metrics::inc(&self.node.metrics.bad_requests);
                }
                envelope::error(out, framing, &e);
                (Reply::Done(framing.keep_alive), e.ecode())
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

    fn resume(&self, parked: &Self::Parked, framing: Framing, out: &mut Vec<u8>) -> Option<bool> {
        parked.resume(&self.waiters, out, framing)
    }

    fn accepting(&self) -> bool {
        !self.waiters.shutting_down()
    }
}
