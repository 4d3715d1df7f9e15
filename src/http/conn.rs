//! One connection's life: read, frame requests (pipelined or not), hand each to the
//! [`Service`], write the answers, and enforce the idle, slow-header and size limits. A bad
//! request gets its status code and a closed connection; nothing a client sends can panic here.

use std::future::Future;
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use super::request::{parse_body, parse_head, Head, ParseError};
use super::response::{self, Framing};

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 4096;
/// Answers are flushed once this much is pending, even mid-pipeline.
const FLUSH_AT: usize = 64 * 1024;

/// A framed request.
#[derive(Debug)]
pub struct Request {
    pub head: Head,
    pub body: Vec<u8>,
}

/// The application behind the HTTP layer.
pub trait Service {
    /// Answers `req`, appending one whole response framed per `framing` to `out`. Returns
    /// false when the connection must close after it (the response must then say so).
    fn call(
        &self,
        req: Request,
        framing: Framing,
        out: &mut Vec<u8>,
        watch: &mut Watch<'_>,
    ) -> impl Future<Output = bool>;

    /// False once the server is shutting down: the connection closes after the current answer.
    fn accepting(&self) -> bool;
}

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// How long a kept-alive connection may wait for its next request.
    pub idle: Duration,
    /// How long a started request may take to arrive whole.
    pub header: Duration,
}

/// What a long-running handler (a long-poll) gets from the connection: a way to flush earlier
/// answers and to notice the client leaving while it waits.
pub struct Watch<'a> {
    stream: &'a mut TcpStream,
    rbuf: &'a mut Vec<u8>,
}

impl Watch<'_> {
    /// Writes `out` now and releases its memory; false if the client is gone.
    pub async fn flush(&mut self, out: &mut Vec<u8>) -> bool {
        let ok = out.is_empty() || write(self.stream, out).await;
        *out = Vec::new();
        ok
    }

    /// Runs `fut` until it completes (`Some`) or the client closes the connection (`None`).
    /// Bytes a client pipelines meanwhile are kept for the next request; the read buffer is
    /// released while waiting so a parked connection costs little.
    pub async fn until_gone<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        if self.rbuf.is_empty() {
            *self.rbuf = Vec::new();
        }
        let mut fut = std::pin::pin!(fut);
        loop {
            monoio::select! {
                out = &mut fut => return Some(out),
                ready = self.stream.readable(false) => {
                    if ready.is_err() {
                        return None;
                    }
                }
            }
            self.rbuf.reserve(READ_CHUNK);
            let len = self.rbuf.len();
            let cap = self.rbuf.capacity();
            let buf = std::mem::take(self.rbuf);
            let (res, buf) = self.stream.read(buf.slice_mut(len..cap)).await;
            *self.rbuf = buf.into_inner();
            match res {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Ok(0) | Err(_) => return None,
                // The client pipelined its next request: keep it, stop watching (a client
                // that sends more cannot have left), and let the handler finish.
                Ok(_) => return Some(fut.await),
            }
        }
    }
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

/// Serves one connection until it closes.
pub async fn serve<S: Service>(mut stream: TcpStream, service: &S, limits: Limits) {
    let mut rbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let close = Framing {
        keep_alive: false,
        http10: false,
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
            keep_alive: head.keep_alive && service.accepting(),
            http10: head.http10,
        };
        let request = Request { head, body };
        let keep = {
            let mut watch = Watch {
                stream: &mut stream,
                rbuf: &mut rbuf,
            };
            service.call(request, framing, &mut out, &mut watch).await
        };
        if !keep {
            write(&mut stream, &mut out).await;
            return;
        }
        if out.len() >= FLUSH_AT && !write(&mut stream, &mut out).await {
            return;
        }
    }
}
