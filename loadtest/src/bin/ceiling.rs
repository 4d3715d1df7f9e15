//! `ceiling`: answers every HTTP/1.1 request with the same fixed bytes over
//! keep-alive connections, one monoio runtime per core with SO_REUSEPORT.
//! It stands for the fastest any server could answer on this machine.
//! Requests are framed by the load tools' one HTTP parser (`http::parse`).
//!
//! With `--park` it is the floor of `loadgen park` instead: a poll is held unanswered, and a
//! register answers itself and then every held poll, one `send` after the other from that
//! thread, with nothing else done per answer (no wake-up of a task, no encoding). That is the
//! least any server must do to answer parked polls over this machine's loopback.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use loadtest::args::Args;
use loadtest::http::parse::request_len;
use loadtest::rt::{block_on, Driver};
use loadtest::sys;
use loadtest::task::{race, Either};
use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

const USAGE: &str = "\
ceiling --addr 127.0.0.1:PORT --body FILE [--threads <nproc>] [--driver auto|uring|epoll]
        [--max-lifetime 1h] [--park]

Answers every request with `HTTP/1.1 200 OK`, `Content-Type: application/json;
charset=utf-8` and the bytes of FILE. Exits by itself after --max-lifetime.
With --park, GET /discovery/poll and /discovery/polls are held until a
POST /discovery/register, which is answered and then answers every held poll.
";

/// With `--park`: the sockets of the held polls, answered by the next register. A connection
/// that ends takes its socket out first, so a descriptor here is never a reused one.
static PARKED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
static PARK: AtomicBool = AtomicBool::new(false);

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    if let Err(e) = run(&argv) {
        eprintln!("ceiling: {e}");
        std::process::exit(1);
    }
}

fn run(argv: &[String]) -> Result<(), String> {
    let a = Args::parse(argv, &["park"])?;
    let addr: SocketAddr = a
        .string("addr", "127.0.0.1:7199")
        .parse()
        .map_err(|_| "--addr: expected ip:port".to_string())?;
    if !addr.ip().is_loopback() {
        return Err("--addr must be a loopback address".into());
    }
    let body_path = a.opt::<String>("body")?.ok_or("--body FILE is required")?;
    let threads = a.get("threads", sys::nproc())?.max(1);
    let driver = Driver::parse(&a.string("driver", "auto"))?;
    let lifetime = a.duration("max-lifetime", Duration::from_secs(3600))?;
    PARK.store(a.switch("park")?, Ordering::Relaxed);
    a.finish()?;
    driver.install();
    sys::raise_nofile();
    let body = std::fs::read(&body_path).map_err(|e| format!("{body_path}: {e}"))?;
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    resp.extend_from_slice(&body);
    // Shared by every connection of every thread for the process lifetime.
    let resp: &'static [u8] = Box::leak(resp.into_boxed_slice());
    let end = Instant::now() + lifetime;

    let mut handles = Vec::new();
    for i in 0..threads {
        let h = std::thread::Builder::new()
            .name(format!("ceiling-{i}"))
            .spawn(move || -> Result<(), String> {
                let opts = ListenerOpts::new().reuse_port(true).backlog(4096);
                block_on(driver, async move {
                    let l = TcpListener::bind_with_config(addr, &opts)
                        .map_err(|e| format!("bind {addr}: {e}"))?;
                    let stop = monoio::time::sleep_until(monoio::time::Instant::from_std(end));
                    let mut stop = std::pin::pin!(stop);
                    loop {
                        match race(l.accept(), stop.as_mut()).await {
                            Either::Left(Ok((s, _))) => {
                                let _ = s.set_nodelay(true);
                                monoio::spawn(serve(s, resp));
                            }
                            Either::Left(Err(_)) => {
                                // Out of descriptors or a reset during accept: pause briefly.
                                monoio::time::sleep(Duration::from_millis(5)).await;
                            }
                            Either::Right(()) => return Ok(()),
                        }
                    }
                })
                .map_err(|e| format!("runtime: {e}"))?
            })
            .map_err(|e| e.to_string())?;
        handles.push(h);
    }
    eprintln!(
        "ceiling: listening on {addr} with {threads} thread(s), {} driver",
        driver.name()
    );
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => return Err("a server thread panicked".into()),
        }
    }
    Ok(())
}

async fn serve(s: TcpStream, resp: &'static [u8]) {
    let fd = s.as_raw_fd();
    let held = answer(s, resp).await;
    if held {
        parked().retain(|&f| f != fd);
    }
}

fn parked() -> std::sync::MutexGuard<'static, Vec<RawFd>> {
    PARKED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves one connection until it ends; says whether it ever held a poll (`--park`).
async fn answer(mut s: TcpStream, resp: &'static [u8]) -> bool {
    let park = PARK.load(Ordering::Relaxed);
    let mut held = false;
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        // Answer every complete request in the buffer.
        let mut used = 0;
        loop {
            match request_len(&buf[used..]) {
                Ok(Some(n)) => {
                    let req = &buf[used..used + n];
                    used += n;
                    if park && req.starts_with(b"GET /discovery/poll") {
                        parked().push(s.as_raw_fd());
                        held = true;
                        continue;
                    }
                    let (r, _) = s.write_all(resp).await;
                    if r.is_err() {
                        return held;
                    }
                    if park && req.starts_with(b"POST /discovery/register") {
                        answer_parked(resp);
                    }
                }
                Ok(None) => break,
                // A malformed request: drop the connection.
                Err(_) => return held,
            }
        }
        buf.drain(..used);
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let (r, slice) = s.read(SliceMut::new(buf, len, cap)).await;
        buf = slice.into_inner();
        match r {
            Ok(0) | Err(_) => return held,
            Ok(_) => {}
        }
    }
}

/// Sends `resp` to every held poll, in a plain loop, without waiting: a socket that does not
/// take it whole at once is left (the load generator counts it unanswered).
fn answer_parked(resp: &[u8]) {
    let mut held = parked();
    for fd in held.drain(..) {
        let mut sent = 0;
        while sent < resp.len() {
            let rest = &resp[sent..];
            // SAFETY: `rest` is valid for its length; `fd` is open while it is in PARKED,
            // which this thread holds locked.
            let n = unsafe {
                libc::send(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            match usize::try_from(n) {
                Ok(n) if n > 0 => sent += n,
                _ => break,
            }
        }
    }
}
