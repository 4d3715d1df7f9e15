//! One connection's life: read, frame requests (pipelined or not), hand each to the
//! [`Service`], write the answers, and enforce the idle, slow-header and size limits. A bad
//! request gets its status code and a closed connection; nothing a client sends can panic here.

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use super::request::{parse_body, parse_head, Head, ParseError};
use super::response::{self, Framing, Keep, Version};
use crate::shutdown::ShutdownWatch;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 4096;
/// Answers are flushed once this much is pending, even mid-pipeline.
const FLUSH_AT: usize = 64 * 1024;

/// A framed request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) head: Head,
    pub(crate) body: Vec<u8>,
    /// The client's address, as the socket says (peers and `writeFrom` are judged by it).
    pub(crate) remote: IpAddr,
}

/// What the service did with a request.
pub(crate) enum Reply<P> {
    /// The whole answer is in the output buffer.
    Done(Keep),
    /// Nothing to answer yet (a long-poll): the connection waits with this record.
    Park(P),
}

/// The application behind the HTTP layer.
pub(crate) trait Service {
    /// What a parked request keeps while it waits.
    type Parked;

    /// Answers `req`, appending one whole response framed per `framing` to `out`, or parks it.
    /// A `Done(Keep::Close)` response must say `Connection: close`.
    fn call(&self, req: Request, framing: Framing, out: &mut Vec<u8>) -> Reply<Self::Parked>;

    /// Resolves when a parked request should be looked at again.
    fn wake<'a>(&'a self, parked: &'a Self::Parked) -> impl Future<Output = ()> + 'a;

    /// Answers a parked request into `out` if it is due (`Some(keep)`), else `None`.
    fn resume(&self, parked: &Self::Parked, framing: Framing, out: &mut Vec<u8>) -> Option<Keep>;
}

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_body_bytes: usize,
    /// How long a kept-alive connection may wait for its next request.
    pub(crate) idle: Duration,
    /// How long a started request may take to arrive whole.
    pub(crate) header: Duration,
}

async fn write(stream: &mut TcpStream, out: &mut Vec<u8>) -> bool {
    let buf = std::mem::take(out);
    let (res, mut buf) = stream.write_all(buf).await;
    buf.clear();
    *out = buf;
    res.is_ok()
}

/// How a read attempt ended.
enum Read {
    Data,
    Closed,
    TimedOut,
}

/// Reads more into `rbuf`. On `TimedOut` the buffer went down with the cancelled read and
/// `rbuf` is left empty, so callers only close the connection then.
async fn read_more(stream: &mut TcpStream, rbuf: &mut Vec<u8>, limit: Duration) -> Read {
    if rbuf.capacity() == 0 {
        // A new or just-unparked connection has no buffer: wait until the client sends before
        // allocating one, so thousands of quiet connections hold no memory for reading.
        match monoio::time::timeout(limit, stream.readable(false)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Read::Closed,
            Err(_) => return Read::TimedOut,
        }
    }
    rbuf.reserve(READ_CHUNK);
    let len = rbuf.len();
    let cap = rbuf.capacity();
    let buf = std::mem::take(rbuf);
    match monoio::time::timeout(limit, stream.read(buf.slice_mut(len..cap))).await {
        Ok((res, buf)) => {
            *rbuf = buf.into_inner();
            match res {
                Ok(0) | Err(_) => Read::Closed,
                Ok(_) => Read::Data,
            }
        }
        Err(_) => Read::TimedOut,
    }
}

fn error_status(e: ParseError) -> (u16, &'static str) {
    match e {
        ParseError::Malformed(why) => (400, why),
        ParseError::HeadTooLarge => (431, "request head too large"),
        ParseError::BodyTooLarge => (413, "request body too large"),
    }
}

/// Serves one connection until it closes, or until `shutdown` and its current answer.
pub(crate) async fn serve<S: Service>(
    mut stream: TcpStream,
    remote: IpAddr,
    service: &S,
    limits: Limits,
    shutdown: &ShutdownWatch,
) {
    // Both buffers grow on first use; see `read_more`.
    let mut rbuf: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let close = Framing {
        keep: Keep::Close,
        version: Version::Http11,
    };
    loop {
        // A request's clock starts with its first byte; from then on the whole request must
        // arrive within `limits.header`, however it trickles in.
        let mut deadline = (!rbuf.is_empty()).then(|| Instant::now() + limits.header);
        // Frame the next request from what is buffered, reading more as needed.
        let head = loop {
            match parse_head(&rbuf, limits.max_body_bytes) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(e) => {
                    let (status, why) = error_status(e);
                    tracing::debug!(status, why, "rejected request head");
                    response::plain(&mut out, status, why, close);
                    write(&mut stream, &mut out).await;
                    return;
                }
            }
            if !out.is_empty() && !write(&mut stream, &mut out).await {
                return;
            }
            let limit = match deadline {
                None => limits.idle,
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            match read_more(&mut stream, &mut rbuf, limit).await {
                Read::Data => {
                    deadline.get_or_insert_with(|| Instant::now() + limits.header);
                }
                Read::Closed => return,
                Read::TimedOut if deadline.is_none() => return,
                Read::TimedOut => {
                    response::plain(&mut out, 408, "request incomplete in time", close);
                    write(&mut stream, &mut out).await;
                    return;
                }
            }
        };
        let deadline = deadline.unwrap_or_else(|| Instant::now() + limits.header);
        let mut continued = false;
        let (body, used) = loop {
            match parse_body(&rbuf[head.head_len..], head.body, limits.max_body_bytes) {
                Ok(Some(done)) => break done,
                Ok(None) => {}
                Err(e) => {
                    let (status, why) = error_status(e);
                    response::plain(&mut out, status, why, close);
                    write(&mut stream, &mut out).await;
                    return;
                }
            }
            if head.expect_continue && !continued {
                continued = true;
                out.extend_from_slice(response::CONTINUE);
            }
            if !out.is_empty() && !write(&mut stream, &mut out).await {
                return;
            }
            let limit = deadline.saturating_duration_since(Instant::now());
            match read_more(&mut stream, &mut rbuf, limit).await {
                Read::Data => {}
                Read::Closed => return,
                Read::TimedOut => {
                    response::plain(&mut out, 408, "request body incomplete in time", close);
                    write(&mut stream, &mut out).await;
                    return;
                }
            }
        };
        rbuf.drain(..head.head_len + used);
        let framing = Framing {
            keep: match head.keep {
                Keep::Alive if !shutdown.is_stopping() => Keep::Alive,
                _ => Keep::Close,
            },
            version: head.version,
        };
        let request = Request { head, body, remote };
        let keep = match service.call(request, framing, &mut out) {
            Reply::Done(keep) => keep,
            Reply::Park(parked) => {
                match park(&mut stream, &mut rbuf, &mut out, service, &parked, framing).await {
                    Some(keep) => keep,
                    None => return,
                }
            }
        };
        if keep == Keep::Close {
            write(&mut stream, &mut out).await;
            return;
        }
        if out.len() >= FLUSH_AT && !write(&mut stream, &mut out).await {
            return;
        }
    }
}

/// Waits with a parked request until the service answers it (`Some(keep)`) or the client
/// leaves (`None`). Earlier pipelined answers go out first, and both buffers are released, so
/// a parked connection costs little; bytes the client pipelines meanwhile are kept.
async fn park<S: Service>(
    stream: &mut TcpStream,
    rbuf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    service: &S,
    parked: &S::Parked,
    framing: Framing,
) -> Option<Keep> {
    if !out.is_empty() && !write(stream, out).await {
        return None;
    }
    *out = Vec::new();
    if rbuf.is_empty() {
        *rbuf = Vec::new();
    }
    // A client that sent more cannot have left; after that only the service is awaited.
    let mut watching = rbuf.is_empty();
    loop {
        if watching {
            monoio::select! {
                _ = service.wake(parked) => {},
                ready = stream.readable(false) => {
                    if ready.is_err() {
                        return None;
                    }
                    match read_now(stream, rbuf).await {
                        Read::Data => watching = false,
                        Read::Closed => return None,
                        Read::TimedOut => {}
                    }
                    continue;
                }
            }
        } else {
            service.wake(parked).await;
        }
        if let Some(keep) = service.resume(parked, framing, out) {
            return Some(keep);
        }
    }
}

/// Reads what a readable socket has; a spurious wake-up reads as `TimedOut` (nothing yet).
async fn read_now(stream: &mut TcpStream, rbuf: &mut Vec<u8>) -> Read {
    rbuf.reserve(READ_CHUNK);
    let len = rbuf.len();
    let cap = rbuf.capacity();
    let buf = std::mem::take(rbuf);
    let (res, buf) = stream.read(buf.slice_mut(len..cap)).await;
    *rbuf = buf.into_inner();
    match res {
        Ok(0) => Read::Closed,
        Ok(_) => Read::Data,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Read::TimedOut,
        Err(_) => Read::Closed,
    }
}
