//! Thread-per-core execution: one monoio runtime per thread, no work
//! stealing, results merged after the threads join.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

/// Which I/O driver the runtimes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    Uring,
    Epoll,
}

impl Driver {
    /// `auto` picks io_uring when the kernel allows it.
    pub fn parse(s: &str) -> Result<Driver, String> {
        match s {
            "auto" => Ok(if monoio::utils::detect_uring() {
                Driver::Uring
            } else {
                Driver::Epoll
            }),
            "uring" | "io_uring" => Ok(Driver::Uring),
            "epoll" | "legacy" => Ok(Driver::Epoll),
            _ => Err(format!(
                "--driver: expected auto, uring or epoll, got `{s}`"
            )),
        }
    }

    /// The driver's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Uring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }

    /// Tells the connections which driver their runtime uses.
    pub fn install(self) {
        crate::http::set_uring(self == Driver::Uring);
    }
}

/// Rings are set up with cooperative task run where the kernel has it (5.19 and later), as
/// the server's are: a completion then waits until the thread next enters the kernel instead
/// of interrupting it. Without it, every answer arriving at a busy load generator costs the
/// sending CPU an interrupt of the load generator's, and on loopback the sending CPU is the
/// server's: 10,000 answers to parked polls cost the server's core that much more.
fn ring_setup() -> io_uring::Builder {
    let coop = || {
        let mut b = io_uring::IoUring::builder();
        b.setup_coop_taskrun().setup_taskrun_flag();
        b
    };
    if coop().build(8).is_ok() {
        coop()
    } else {
        io_uring::IoUring::builder()
    }
}

/// Runs a future to completion on a fresh runtime on the current thread.
pub fn block_on<F: Future>(driver: Driver, f: F) -> io::Result<F::Output> {
    match driver {
        Driver::Uring => {
            let mut rt = RuntimeBuilder::<IoUringDriver>::new()
                .with_entries(4096)
                .uring_builder(ring_setup())
                .enable_timer()
                .build()?;
            Ok(rt.block_on(f))
        }
        Driver::Epoll => {
            let mut rt = RuntimeBuilder::<LegacyDriver>::new()
                .with_entries(4096)
                .enable_timer()
                .build()?;
            Ok(rt.block_on(f))
        }
    }
}

/// Runs `make(thread_index)` on `threads` threads, each on its own runtime,
/// and returns their outputs in thread order.
pub fn run_threads<T, F, Fut>(threads: usize, driver: Driver, make: F) -> io::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
{
    let make = Arc::new(make);
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads.max(1) {
        let make = make.clone();
        let h = std::thread::Builder::new()
            .name(format!("loadgen-{i}"))
            .spawn(move || block_on(driver, make(i)))?;
        handles.push(h);
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.join() {
            Ok(r) => out.push(r?),
            Err(_) => return Err(io::Error::other("a load thread panicked")),
        }
    }
    Ok(out)
}

/// Where the load goes, and from which loopback source addresses.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddrV4,
    /// Number of source addresses 127.0.0.1..=127.0.0.N used round-robin;
    /// 1 means "let the kernel choose" (no explicit bind).
    pub src_addrs: u32,
    next_src: Arc<AtomicUsize>,
}

impl Target {
    /// A loopback target; `src_addrs` in 1..=250.
    pub fn new(addr: SocketAddrV4, src_addrs: u32) -> Result<Target, String> {
        if !addr.ip().is_loopback() {
            return Err(format!(
                "--addr {addr}: only loopback (127.0.0.0/8) targets are allowed"
            ));
        }
        if src_addrs == 0 || src_addrs > 250 {
            return Err("--src-addrs must be within 1..=250".to_string());
        }
        Ok(Target {
            addr,
            src_addrs,
            next_src: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The next source address (round-robin), or None for a kernel choice.
    pub fn next_src(&self) -> Option<Ipv4Addr> {
        if self.src_addrs <= 1 {
            return None;
        }
        let k = self.next_src.fetch_add(1, Ordering::Relaxed) as u32 % self.src_addrs;
        Some(Ipv4Addr::new(127, 0, 0, 1 + k as u8))
    }

    /// Connects from the next source address.
    pub async fn connect(&self) -> io::Result<crate::http::Conn> {
        crate::http::Conn::connect(self.addr, self.next_src()).await
    }
}
