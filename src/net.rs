//! The `net` step: listeners and one monoio runtime per core. [`bind`] opens one `SO_REUSEPORT`
//! listener per core on the same address; [`start`] gives each core a thread with its runtime,
//! its listener, an accept loop, its API service and a dispatcher for its parked polls. A core
//! stops accepting when the shutdown watch triggers, gives its connections a moment to finish,
//! and ends. The [`Gate`] caps open connections, in total and per source address; a
//! connection beyond a cap is answered 503 and closed.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::api::{Access, Api, FetchAllCache};
use crate::cluster::Cluster;
use crate::config::HttpServerConfig;
use crate::http::conn::{self, Limits};
use crate::http::response::{self, Framing, Keep, Version};
use crate::http::timers::{Timer, Timers};
use crate::identity::Identity;
use crate::metrics::{self, Metrics};
use crate::park::{CoreWaiters, Hub};
use crate::registry::Registry;
use crate::runtime;
use crate::shutdown::ShutdownWatch;
use crate::wire;
use monoio::io::{AsyncReadRent, AsyncWriteRent};

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

/// Connection caps: open connections in total and per source address, all cores together.
#[derive(Debug)]
pub(crate) struct Gate {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<GateCounts>,
}

#[derive(Debug, Default)]
struct GateCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// An admitted connection's place in the [`Gate`]; dropping it gives the place back.
#[derive(Debug)]
pub(crate) struct Admitted {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Gate {
    /// A gate for `max_total` connections, at most `max_per_ip` from one source address.
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Gate> {
        Arc::new(Gate {
            max_total,
            max_per_ip,
            open: Mutex::new(GateCounts::default()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, GateCounts> {
        // The counts stay consistent even if a holder panicked: every update is one statement.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a connection from `ip`, or `None` when a cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut counts = self.counts();
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if counts.total >= self.max_total || from_ip >= self.max_per_ip {
            return None;
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Some(Admitted {
            gate: self.clone(),
            ip,
        })
    }

    /// Why a connection from `ip` was refused, naming the limit.
    fn describe(&self, ip: IpAddr) -> String {
        let counts = self.counts();
        if counts.total >= self.max_total {
            format!(
                "too many connections (httpServer.maxConns = {})",
                self.max_total
            )
        } else {
            format!(
                "too many connections from {ip} (httpServer.maxConnsPerIp = {})",
                self.max_per_ip
            )
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.gate.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Refused connections answered at once on one core; beyond this they are closed unanswered.
const MAX_REFUSING: usize = 64;
/// An open connection, counted in the core's count and the gauge until dropped; holds its place
/// at the gate.
struct Open {
    _admitted: Admitted,
    open: Rc<Cell<usize>>,
    api: Rc<Api>,
}

impl Open {
    fn new(admitted: Admitted, open: &Rc<Cell<usize>>, api: &Rc<Api>) -> Open {
        open.set(open.get() + 1);
        metrics::add(&api.metrics.core().connections_open, 1);
        Open {
            _admitted: admitted,
            open: open.clone(),
            api: api.clone(),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.set(self.open.get() - 1);
        metrics::add(&self.api.metrics.core().connections_open, -1);
    }
}

/// How long a refused connection is given to take its 503.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// Answers a refused connection 503 with `why` and closes it, reading (and dropping) what the
/// client sent meanwhile so that the close does not reset the answer away.
fn refuse(
    mut stream: monoio::net::TcpStream,
    refusing: &Rc<Cell<usize>>,
    mut timer: Timer,
    why: String,
) {
    tracing::debug!(why, "connection refused");
    if refusing.get() >= MAX_REFUSING {
        return;
    }
    refusing.set(refusing.get() + 1);
    let refusing = refusing.clone();
    monoio::spawn(async move {
        let mut out = Vec::new();
        let close = Framing {
            keep: Keep::Close,
            version: Version::Http11,
        };
        response::plain(&mut out, 503, &why, close);
        if conn::write(&mut stream, &mut out, &mut timer, REFUSE_LINGER).await {
            let _ = stream.shutdown().await;
            let until = Instant::now() + REFUSE_LINGER;
            let mut buf = vec![0u8; 4096];
            loop {
                let left = until.saturating_duration_since(Instant::now());
                match monoio::time::timeout(left, stream.read(buf)).await {
                    Ok((Ok(n), back)) if n > 0 => buf = back,
                    _ => break,
                }
            }
        }
        refusing.set(refusing.get() - 1);
    });
}

/// Starts one core thread per listener; they end after `shared.shutdown` triggers.
pub(crate) fn start(
    listeners: Vec<TcpListener>,
    shared: Shared,
) -> io::Result<Vec<JoinHandle<()>>> {
    let cores = listeners.len();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pins = core_cpus(cores, cpus, &allowed_cpus());
    let mut threads = Vec::with_capacity(cores);
    let gate = Gate::new(shared.http.max_conns, shared.http.max_conns_per_ip);
    for ((core, listener), pin) in listeners.into_iter().enumerate().zip(pins) {
        let shared = shared.clone();
        let gate = gate.clone();
        let thread = std::thread::Builder::new()
            .name(format!("core-{core}"))
            .spawn(move || run_core(core, pin, listener, shared, gate))?;
        threads.push(thread);
    }
    Ok(threads)
}

/// The CPU each of `cores` core threads is pinned to: core N to the N-th CPU of `allowed`, or
/// none at all when there are more threads than `cpus` (they then share the CPUs as the kernel
/// sees fit). Counting within `allowed` keeps a server started under `taskset -c 2-3` on CPUs 2
/// and 3 instead of moving it onto CPUs 0 and 1.
fn core_cpus(cores: usize, cpus: usize, allowed: &[usize]) -> Vec<Option<usize>> {
    if cores > cpus {
        return vec![None; cores];
    }
    (0..cores).map(|core| allowed.get(core).copied()).collect()
}

/// The CPUs this process may run on, lowest first: the affinity it was started with.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero `cpu_set_t` is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed, and the kernel writes at most that.
    let got =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if got != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the size of `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Which I/O driver a core runs on.
fn driver_name<L, R>(rt: &monoio::FusionRuntime<L, R>) -> &'static str {
    match rt {
        monoio::FusionRuntime::Uring(_) => "io_uring",
        monoio::FusionRuntime::Legacy(_) => "epoll",
    }
}

fn run_core(
    core: usize,
    pin: Option<usize>,
    listener: TcpListener,
    shared: Shared,
    gate: Arc<Gate>,
) {
    if let Some(cpu) = pin {
        if let Err(e) = monoio::utils::bind_to_cpu_set(Some(cpu)) {
            tracing::debug!(core, cpu, error = ?e, "cannot pin thread to its CPU");
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
    runtime.block_on(serve_core(core, listener, shared, gate));
}

async fn serve_core(core: usize, listener: TcpListener, shared: Shared, gate: Arc<Gate>) {
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(core, error = %e, "cannot adopt the listener");
            return;
        }
    };
    let shutdown = shared.shutdown;
    let timers = Rc::new(Timers::default());
    monoio::spawn(timers.clone().drive());
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
        write: http.write_timeout,
    };
    // Refused connections being told so; beyond this many at once they are just closed.
    let refusing = Rc::new(Cell::new(0usize));
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
        max_parked_polls: shared.http.max_parked_polls,
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
                    let Some(admitted) = gate.admit(peer.ip()) else {
                        metrics::inc(&api.metrics.core().connections_refused);
                        refuse(stream, &refusing, timers.timer(), gate.describe(peer.ip()));
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let open = Open::new(admitted, &open, &api);
                    let remote = peer.ip().to_canonical();
                    let timer = timers.timer();
                    let (api, shutdown) = (api.clone(), shutdown.clone());
                    monoio::spawn(conn::serve(stream, remote, api, limits, timer, shutdown, open));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_pinned_within_the_allowed_cpus() {
        assert_eq!(core_cpus(2, 2, &[2, 3]), [Some(2), Some(3)]);
        assert_eq!(core_cpus(1, 1, &[1]), [Some(1)]);
        assert_eq!(core_cpus(2, 4, &[0, 1, 2, 3]), [Some(0), Some(1)]);
    }

    #[test]
    fn more_threads_than_cpus_are_not_pinned() {
        assert_eq!(core_cpus(3, 2, &[0, 1]), [None, None, None]);
        assert_eq!(core_cpus(2, 2, &[]), [None, None]);
    }

    #[test]
    fn this_process_may_run_somewhere() {
        assert!(!allowed_cpus().is_empty());
    }
}
