//! The `net` step: listeners and one monoio runtime per core. [`bind`] opens one `SO_REUSEPORT`
//! listener per core on the same address; [`run`] gives each core its listener, an accept loop
//! and a dispatcher for parked polls, runs the housekeeping chores on the calling thread, and
//! carries out the shutdown.

use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::api::Api;
use crate::clock;
use crate::cluster::{self, op::Op};
use crate::config::Config;
use crate::housekeeping;
use crate::http::conn::{self, Limits};
use crate::metrics;
use crate::node::Node;
use crate::registry::scheduler::SchedulerDir;
use crate::registry::waiters::CoreWaiters;
use crate::shutdown::Shutdown;

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

/// Which I/O driver a core runs on.
fn driver_name<L, R>(rt: &monoio::FusionRuntime<L, R>) -> &'static str {
    match rt {
        monoio::FusionRuntime::Uring(_) => "io_uring",
        monoio::FusionRuntime::Legacy(_) => "epoll",
    }
}

/// Runs the node on already-bound `listeners` (one core each) until `shutdown` triggers, then
/// stops accepting, answers parked polls, cancels this node's own registration and returns.
pub fn run(config: Config, listeners: Vec<TcpListener>, shutdown: Arc<Shutdown>) -> io::Result<()> {
    let addr = listeners
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listener"))?
        .local_addr()?;
    let cores = listeners.len();
    // One change inbox per core, plus one for the cluster thread (index `cores`).
    let node = Arc::new(Node::new(config, addr, cores + 1));
    let mut schedulers = node.config.dir.as_deref().map(SchedulerDir::new);
    if let Some(dir) = schedulers.as_mut() {
        housekeeping::apply_schedulers(&node, dir);
    }
    let cluster = cluster::spawn(node.clone(), cores)?;
    let me = node.self_registration();
    let own = node
        .registry
        .register(&me, clock::now_ns())
        .map_err(|e| io::Error::other(e.to_string()))?;
    node.cluster.replicate(Op::Register(own), false);

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = Vec::with_capacity(cores);
    for (core, listener) in listeners.into_iter().enumerate() {
        let node = node.clone();
        let pin = cores <= cpus;
        let thread = std::thread::Builder::new()
            .name(format!("core-{core}"))
            .spawn(move || run_core(core, pin, listener, node))?;
        threads.push(thread);
    }
    tracing::info!(
        %addr,
        threads = cores,
        zone = %node.config.env.zone,
        env = %node.config.env.deploy_env,
        protected = node.protected(),
        "discovery listening"
    );

    housekeeping::run(&node, &shutdown, schedulers);

    tracing::info!("shutting down: cancelling own registration, answering parked polls");
    let now = clock::now_ns();
    match node
        .registry
        .cancel(&me.env, &me.appid, &me.zone, &me.hostname, None, now)
    {
        Ok(inst) => node.cluster.replicate(
            Op::Cancel {
                inst,
                latest_ts: now,
            },
            false,
        ),
        Err(e) => tracing::warn!(error = %e, "own registration was already gone"),
    }
    node.hub.shutdown();
    if cluster.join().is_err() {
        tracing::error!("the cluster thread panicked");
    }
    for t in threads {
        if t.join().is_err() {
            tracing::error!("a core thread panicked");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

fn run_core(core: usize, pin: bool, listener: TcpListener, node: Arc<Node>) {
    if pin {
        if let Err(e) = monoio::utils::bind_to_cpu_set(Some(core)) {
            tracing::debug!(core, error = ?e, "cannot pin thread to its core");
        }
    }
    let runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .with_entries(4096)
        .build();
    let mut runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(core, error = %e, "cannot start the core's runtime");
            return;
        }
    };
    tracing::info!(core, driver = driver_name(&runtime), "core started");
    runtime.block_on(serve_core(core, listener, node));
}

async fn serve_core(core: usize, listener: TcpListener, node: Arc<Node>) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(core, error = %e, "cannot adopt the listener");
            return;
        }
    };
    let waiters = Rc::new(CoreWaiters::default());
    let mut dispatcher = monoio::spawn(waiters.clone().dispatch(node.hub.clone(), core));
    let http = &node.config.http_server;
    let limits = Limits {
        max_body_bytes: http.max_body_bytes,
        idle: http.idle_timeout,
        header: http.header_timeout,
    };
    let api = Rc::new(Api {
        node: node.clone(),
        waiters,
    });
    // Connections of this core still open; `Rc<Cell>` because only this core counts them.
    let open = Rc::new(Cell::new(0usize));
    loop {
        monoio::select! {
            _ = &mut dispatcher => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let api = api.clone();
                    let open = open.clone();
                    open.set(open.get() + 1);
                    metrics::add(&node.metrics.connections_open, 1);
                    monoio::spawn(async move {
                        conn::serve(stream, &*api, limits).await;
                        open.set(open.get() - 1);
                        metrics::add(&api.node.metrics.connections_open, -1);
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
