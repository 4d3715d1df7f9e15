//! The `net` step: listeners and one monoio runtime per core. [`bind`] opens one `SO_REUSEPORT`
//! listener per core on the same address; [`start`] gives each core a thread with its runtime,
//! its listener, an accept loop, its API service and a dispatcher for its parked polls. A core
//! stops accepting when the shutdown watch triggers, gives its connections a moment to finish,
//! and ends.

use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::api::{Access, Api, FetchAllCache};
use crate::cluster::Cluster;
use crate::config::HttpServerConfig;
use crate::http::conn::{self, Limits};
use crate::identity::Identity;
use crate::metrics::{self, Metrics};
use crate::park::{CoreWaiters, Hub};
use crate::registry::Registry;
use crate::runtime;
use crate::shutdown::ShutdownWatch;
use crate::wire;

/// Listen backlog per core: bursts of reconnecting pollers must not be refused.
const BACKLOG: i32 = 4096;
/// How long a core waits for its connections to finish after shutdown started.
const DRAIN: Duration = Duration::from_secs(2);

/// Opens `count` listeners on `addr` with `SO_REUSEPORT`. With port 0 the first picks the port
/// and the others join it.
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        let listener: TcpListener = socket.into();
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// What every core is given.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) registry: Arc<Registry>,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) metrics: Arc<Metrics>,
    /// The effective configuration, secrets masked, for the dashboard.
    pub(crate) effective_config: Arc<[(String, String)]>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) http: HttpServerConfig,
    pub(crate) poll_hold: Duration,
    pub(crate) access: Arc<Access>,
    pub(crate) max_clock_skew: Duration,
    pub(crate) limits: wire::Limits,
    pub(crate) fetch_all: Arc<FetchAllCache>,
    pub(crate) shutdown: ShutdownWatch,
}

/// Starts one core thread per listener; they end after `shared.shutdown` triggers.
pub(crate) fn start(
    listeners: Vec<TcpListener>,
    shared: Shared,
) -> io::Result<Vec<JoinHandle<()>>> {
    let cores = listeners.len();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = Vec::with_capacity(cores);
    for (core, listener) in listeners.into_iter().enumerate() {
        let shared = shared.clone();
        let pin = cores <= cpus;
        let thread = std::thread::Builder::new()
            .name(format!("core-{core}"))
            .spawn(move || run_core(core, pin, listener, shared))?;
        threads.push(thread);
    }
    Ok(threads)
}

/// Which I/O driver a core runs on.
fn driver_name<L, R>(rt: &monoio::FusionRuntime<L, R>) -> &'static str {
    match rt {
        monoio::FusionRuntime::Uring(_) => "io_uring",
        monoio::FusionRuntime::Legacy(_) => "epoll",
    }
}

fn run_core(core: usize, pin: bool, listener: TcpListener, shared: Shared) {
    if pin {
        if let Err(e) = monoio::utils::bind_to_cpu_set(Some(core)) {
            tracing::debug!(core, error = ?e, "cannot pin thread to its core");
        }
    }
    metrics::enter_core(core);
    let mut runtime = match runtime::build(shared.http.driver) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(core, error = %e, "cannot start the core's runtime");
            return;
        }
    };
    let driver = driver_name(&runtime);
    let _ = shared.metrics.driver.set(driver);
    tracing::info!(core, driver, "core started");
    runtime.block_on(serve_core(core, listener, shared));
}

async fn serve_core(core: usize, listener: TcpListener, shared: Shared) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(core, error = %e, "cannot adopt the listener");
            return;
        }
    };
    let shutdown = shared.shutdown;
    let waiters = Rc::new(CoreWaiters::default());
    monoio::spawn(
        waiters
            .clone()
            .dispatch(shared.hub.subscribe(), shutdown.clone()),
    );
    let http = &shared.http;
    let limits = Limits {
        max_body_bytes: http.max_body_bytes,
        idle: http.idle_timeout,
        header: http.header_timeout,
    };
    let api = Rc::new(Api {
        registry: shared.registry,
        cluster: shared.cluster,
        identity: shared.identity,
        metrics: shared.metrics,
        effective_config: shared.effective_config,
        waiters,
        poll_hold: shared.poll_hold,
        access: shared.access,
        max_clock_skew: shared.max_clock_skew,
        limits: shared.limits,
        fetch_all: shared.fetch_all,
        shutdown: shutdown.clone(),
    });
    // Connections of this core still open; `Rc<Cell>` because only this core counts them.
    let open = Rc::new(Cell::new(0usize));
    let mut stopped = std::pin::pin!(shutdown.stopped());
    loop {
        monoio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let api = api.clone();
                    let open = open.clone();
                    let shutdown = shutdown.clone();
                    open.set(open.get() + 1);
                    metrics::add(&api.metrics.core().connections_open, 1);
                    monoio::spawn(async move {
                        conn::serve(stream, peer.ip().to_canonical(), &*api, limits, &shutdown).await;
                        open.set(open.get() - 1);
                        metrics::add(&api.metrics.core().connections_open, -1);
                    });
                }
                Err(e) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(core, error = %e, "accept failed");
                    monoio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let until = Instant::now() + DRAIN;
    while open.get() > 0 && Instant::now() < until {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::debug!(core, left_open = open.get(), "core stopped");
}
