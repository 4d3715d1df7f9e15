//! One connection's life: read, frame requests (pipelined or not), hand each to the
//! [`Service`], write the answers, and enforce the idle, slow-header and size limits. A bad
//! request gets its status code and a closed connection; nothing a client sends can panic here.
//! Buffers are bounded: read bytes are consumed through a cursor, a buffer grown by one large
//! request is given back after it, and a client that reads nothing of its answer for
//! `Limits::write` is disconnected.

use std::future::Future;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::buf::IoBuf;
use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;
use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;

use super::request::{parse_head, BodyDecoder, Head, ParseError, MAX_HEAD_BYTES};
use super::response::{self, Framing, Keep, Version};
use super::timers::Timer;
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

    /// Resolves when a parked request should be looked at again before its deadline.
    fn wake<'a>(&'a self, parked: &'a Self::Parked) -> impl Future<Output = ()> + 'a;

    /// When a parked request is looked at again if nothing woke it before.
    fn deadline(&self, parked: &Self::Parked) -> Instant;

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
    /// How long one write of an answer may wait for the client to read.
    pub(crate) write: Duration,
}

/// Capacity a read or write buffer keeps between requests. A buffer that one large request or
/// answer grew past this is given back once that request is done, so an idle connection that
/// once sent a large body holds no more than this.
pub(crate) const KEEP_CAPACITY: usize = 64 * 1024;

/// Bytes asked of the kernel per read while a body streams in.
const BODY_READ_CHUNK: usize = 64 * 1024;

/// A pending head shorter than this is parsed after every read (cheap, and garbage is refused
/// at once); a longer one only once its blank line has arrived.
const EAGER_HEAD_BYTES: usize = 16 * 1024;

/// Writes all of `out`; false when the client is gone or let one write wait longer than
/// `timeout` (it read nothing of the answer meanwhile). `out` is left empty, and small.
pub(crate) async fn write(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    timer: &mut Timer,
    timeout: Duration,
) -> bool {
    let mut buf = std::mem::take(out);
    let mut done = 0;
    while done < buf.len() {
        let deadline = Instant::now() + timeout;
        let Ok((res, slice)) = timer
            .within(deadline, stream.write(buf.slice(done..)))
            .await
        else {
            tracing::debug!(timeout = ?timeout, "client read nothing in time; closing");
            return false;
        };
        buf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return false,
            Ok(n) => done += n,
        }
    }
    buf.clear();
    if buf.capacity() > KEEP_CAPACITY {
        buf = Vec::new();
    }
    *out = buf;
    true
}

/// How a read attempt ended.
enum Read {
    Data,
    Closed,
    TimedOut,
}

/// The bytes a connection has read and not yet framed: `buf[start..]`. Requests are consumed by
/// moving `start`; the bytes before it are dropped only when more must be read, so a pipeline
/// of many requests in one read costs no copy per request.
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
}

impl ReadBuf {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Between requests: a buffer grown past [`KEEP_CAPACITY`] is swapped for one that holds
    /// only what is pending (nothing at all, the usual case, until the client sends again).
    fn settle(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY && self.buf.len() - self.start <= KEEP_CAPACITY {
            self.buf = self.pending().to_vec();
            self.start = 0;
        }
    }

    /// Moves the pending bytes to the front, making room to read after them.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Reads more into `rbuf` until `deadline`, asking for at least `chunk` bytes. On `TimedOut`
/// the buffer went down with the cancelled read, so callers only close the connection then.
async fn read_more(
    stream: &mut TcpStream,
    rbuf: &mut ReadBuf,
    timer: &mut Timer,
    deadline: Instant,
    chunk: usize,
) -> Read {
    if rbuf.buf.capacity() == 0 {
        // A new or just-unparked connection has no buffer: wait until the client sends before
        // allocating one, so thousands of quiet connections hold no memory for reading.
        match timer.within(deadline, stream.readable(false)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Read::Closed,
            Err(_) => return Read::TimedOut,
        }
    }
    rbuf.compact();
    let buf = &mut rbuf.buf;
    buf.reserve(chunk);
    let len = buf.len();
    let cap = buf.capacity();
    let owned = std::mem::take(buf);
    match timer
        .within(deadline, stream.read(owned.slice_mut(len..cap)))
        .await
    {
        Ok((res, owned)) => {
            *buf = owned.into_inner();
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
        ParseError::HeadTooLarge => (431, "request head too large (limit 1 MiB)"),
        ParseError::BodyTooLarge => (413, "request body too large (httpServer.maxBody)"),
        ParseError::FramingTooLarge => (
            413,
            "chunked framing too large (limit 2 x httpServer.maxBody)",
        ),
    }
}

/// Whether the pending head is worth handing to the parser: always while short, else only once
/// its end (an empty line) may have arrived, or the head limit is reached. `scanned` remembers
/// how far the search went, so each byte of a long head is searched once.
fn head_may_be_complete(pending: &[u8], scanned: &mut usize) -> bool {
    if pending.len() <= EAGER_HEAD_BYTES || pending.len() >= MAX_HEAD_BYTES {
        return true;
    }
    // An empty line is LF LF or LF CR LF; back up so one split across reads is seen.
    let from = scanned.saturating_sub(2);
    *scanned = pending.len();
    pending[from..].windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\n' && (w[1] == b'\n' || pending.get(from + i + 1..from + i + 3) == Some(b"\r\n"))
    })
}

/// An answer's framing when the connection closes after it.
const CLOSE: Framing = Framing {
    keep: Keep::Close,
    version: Version::Http11,
};

/// Why a connection ends: quietly (closed, timed out while idle, or gone), or after an error
/// answer.
enum Stop {
    Quiet,
    Refuse(u16, &'static str),
}

/// What every phase of serving a connection uses. Each phase is a method of its own, so the
/// locals of one (a request's head, its body decoder) share space in the connection's future
/// with those of the others instead of adding to it. The phases take little by argument: an
/// async function keeps its arguments twice in its future.
struct Conn {
    stream: TcpStream,
    rbuf: ReadBuf,
    out: Vec<u8>,
    timer: Timer,
    limits: Limits,
}

impl Conn {
    /// Writes what is pending; false when the client is gone.
    async fn flush(&mut self) -> bool {
        self.out.is_empty()
            || write(
                &mut self.stream,
                &mut self.out,
                &mut self.timer,
                self.limits.write,
            )
            .await
    }

    /// Frames the next request's head from what is buffered, reading more as needed; also
    /// says by when its body must have arrived.
    async fn read_head(&mut self) -> Result<(Head, Instant), Stop> {
        let limits = self.limits;
        // A request's clock starts with its first byte; from then on the whole request must
        // arrive within `limits.header`, however it trickles in.
        let mut deadline =
            (!self.rbuf.pending().is_empty()).then(|| Instant::now() + limits.header);
        let mut scanned = 0;
        loop {
            if head_may_be_complete(self.rbuf.pending(), &mut scanned) {
                match parse_head(self.rbuf.pending(), limits.max_body_bytes) {
                    Ok(Some(head)) => {
                        let deadline = deadline.unwrap_or_else(|| Instant::now() + limits.header);
                        self.rbuf.consume(head.head_len);
                        return Ok((head, deadline));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let (status, why) = error_status(e);
                        tracing::debug!(status, why, "rejected request head");
                        return Err(Stop::Refuse(status, why));
                    }
                }
            }
            if !self.flush().await {
                return Err(Stop::Quiet);
            }
            let until = deadline.unwrap_or_else(|| Instant::now() + limits.idle);
            let read = read_more(
                &mut self.stream,
                &mut self.rbuf,
                &mut self.timer,
                until,
                READ_CHUNK,
            );
            match read.await {
                Read::Data => {
                    deadline.get_or_insert_with(|| Instant::now() + limits.header);
                }
                Read::Closed => return Err(Stop::Quiet),
                Read::TimedOut if deadline.is_none() => return Err(Stop::Quiet),
                Read::TimedOut => return Err(Stop::Refuse(408, "request incomplete in time")),
            }
        }
    }

    /// Reads the body `head` announces, by `deadline`.
    async fn read_body(&mut self, head: &Head, deadline: Instant) -> Result<Vec<u8>, Stop> {
        let refuse = |e| {
            let (status, why) = error_status(e);
            tracing::debug!(status, why, "rejected request body");
            Stop::Refuse(status, why)
        };
        let mut decoder =
            BodyDecoder::new(head.body, self.limits.max_body_bytes).map_err(refuse)?;
        let mut continued = false;
        loop {
            let used = decoder.feed(self.rbuf.pending()).map_err(refuse)?;
            self.rbuf.consume(used);
            if decoder.is_done() {
                self.rbuf.settle();
                return Ok(decoder.into_body());
            }
            if head.expect_continue && !continued {
                continued = true;
                self.out.extend_from_slice(response::CONTINUE);
            }
            if !self.flush().await {
                return Err(Stop::Quiet);
            }
            let read = read_more(
                &mut self.stream,
                &mut self.rbuf,
                &mut self.timer,
                deadline,
                BODY_READ_CHUNK,
            );
            match read.await {
                Read::Data => {}
                Read::Closed => return Err(Stop::Quiet),
                Read::TimedOut => return Err(Stop::Refuse(408, "request body incomplete in time")),
            }
        }
    }
}

/// Serves one connection until it closes, or until `shutdown` and its current answer; `guard`
/// is dropped then. The future is what the connection's task holds, whole.
///
/// A plain function returning an `async move` block rather than an `async fn`, which would
/// keep its arguments twice in the future every open connection holds; for the same reason the
/// block captures the connection's state whole and uses it in place, and a caller spawns this
/// future itself rather than awaiting it inside another.
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve<S: Service + 'static, G: 'static>(
    stream: TcpStream,
    remote: IpAddr,
    service: Rc<S>,
    limits: Limits,
    timer: Timer,
    shutdown: ShutdownWatch,
    guard: G,
) -> impl Future<Output = ()> + 'static {
    // Both buffers grow on first use; see `read_more`.
    let mut c = Conn {
        stream,
        rbuf: ReadBuf {
            buf: Vec::new(),
            start: 0,
        },
        out: Vec::new(),
        timer,
        limits,
    };
    async move {
        let c = &mut c;
        let service = &*service;
        let stop = loop {
            // The head ends with this block, so what comes after holds no room for it.
            let (request, framing) = {
                let (head, deadline) = match c.read_head().await {
                    Ok(h) => h,
                    Err(stop) => break stop,
                };
                let body = match c.read_body(&head, deadline).await {
                    Ok(b) => b,
                    Err(stop) => break stop,
                };
                let framing = Framing {
                    keep: match head.keep {
                        Keep::Alive if !shutdown.is_stopping() => Keep::Alive,
                        _ => Keep::Close,
                    },
                    version: head.version,
                };
                (Request { head, body, remote }, framing)
            };
            let keep = match service.call(request, framing, &mut c.out) {
                Reply::Done(keep) => keep,
                Reply::Park(parked) => {
                    // Earlier pipelined answers go out first.
                    if !c.flush().await {
                        break Stop::Quiet;
                    }
                    c.rbuf.compact();
                    match park(c, service, &mut Some(parked), framing).await {
                        Some(keep) => keep,
                        None => break Stop::Quiet,
                    }
                }
            };
            if keep == Keep::Close {
                c.flush().await;
                break Stop::Quiet;
            }
            if c.out.len() >= FLUSH_AT && !c.flush().await {
                break Stop::Quiet;
            }
        };
        if let Stop::Refuse(status, why) = stop {
            response::plain(&mut c.out, status, why, CLOSE);
            c.flush().await;
        }
        drop(guard);
    }
}

/// Waits with a parked request until the service answers it (`Some(keep)`) or the client
/// leaves (`None`). Both buffers are released (`out` has been written), so a parked connection
/// costs little; bytes the client pipelines meanwhile are kept.
///
/// While nothing is pipelined, one readiness watch (on io_uring, one pending poll) covers the
/// whole wait: for a change, for the client to leave, and, once the answer has gone out whole
/// without waiting, for the client's next request. A woken poll's watch is thus never
/// cancelled, and that matters: on io_uring a cancellation searches the ring's pending polls,
/// so cancelling each of 10,000 woken polls costs in proportion to 10,000 squared. The parked
/// record in `slot` is dropped as soon as the answer is out.
async fn park<S: Service>(
    c: &mut Conn,
    service: &S,
    slot: &mut Option<S::Parked>,
    framing: Framing,
) -> Option<Keep> {
    let Conn {
        stream,
        rbuf,
        out,
        timer,
        limits,
    } = c;
    let rbuf = &mut rbuf.buf;
    let deadline = service.deadline(slot.as_ref()?);
    *out = Vec::new();
    if rbuf.is_empty() {
        *rbuf = Vec::new();
    }
    let fd = stream.as_raw_fd();
    // A client that sent more cannot have left; after that only the service is awaited.
    let mut watching = rbuf.is_empty();
    loop {
        if !watching {
            // Woken or not, the service says whether it is due: at the deadline it answers.
            let parked = slot.as_ref()?;
            let _ = timer.within(deadline, service.wake(parked)).await;
            match service.resume(parked, framing, out) {
                Some(keep) => return Some(keep),
                None => continue,
            }
        }
        let seen = {
            let mut watch = std::pin::pin!(stream.readable(false));
            loop {
                let parked = slot.as_ref()?;
                monoio::select! {
                    _ = timer.within(deadline, service.wake(parked)) => {},
                    ready = &mut watch => break Seen::Readable(ready.is_ok()),
                }
                let Some(keep) = service.resume(parked, framing, out) else {
                    continue;
                };
                if keep == Keep::Close {
                    break Seen::Answered(keep);
                }
                if !send_now(fd, out) {
                    // The rest goes out the usual way, after the watch is given up.
                    tracing::debug!(
                        left = out.len(),
                        "a woken poll's answer did not go out at once; the rest follows as the client reads"
                    );
                    break Seen::Answered(keep);
                }
                // The next woken poll's answer reuses this memory while it is warm; a poll
                // whose client polls again parks without a buffer anyway.
                *out = Vec::new();
                *slot = None;
                break match timer.within(Instant::now() + limits.idle, &mut watch).await {
                    Ok(Ok(())) => Seen::Next,
                    _ => Seen::Gone,
                };
            }
        };
        match seen {
            Seen::Answered(keep) => return Some(keep),
            // The next request is there (or the client closed; the read will say which):
            // a buffer makes the next read go straight to the socket.
            Seen::Next => {
                rbuf.reserve(READ_CHUNK);
                return Some(Keep::Alive);
            }
            Seen::Gone | Seen::Readable(false) => return None,
            Seen::Readable(true) => match read_now(stream, rbuf).await {
                Read::Data => watching = false,
                Read::Closed => return None,
                Read::TimedOut => {}
            },
        }
    }
}

/// What ended a parked connection's watch.
enum Seen {
    /// The answer is in `out`, to be written the usual way.
    Answered(Keep),
    /// The answer went out whole, and the client has sent again since.
    Next,
    /// The answer went out whole, and the client sent nothing more while `idle` lasted.
    Gone,
    /// Before any answer, the socket became readable (`true`) or failed (`false`).
    Readable(bool),
}

/// Sends what the socket takes of `out` now, never waiting (`MSG_DONTWAIT`). True when all of
/// it went (`out` is then empty); else `out` keeps what is left, for the usual write, which
/// also finds out when the client is gone. Used where a pending io_uring operation on the
/// socket should not be cancelled for an ordinary write.
fn send_now(fd: RawFd, out: &mut Vec<u8>) -> bool {
    let mut sent = 0;
    while sent < out.len() {
        let rest = &out[sent..];
        // SAFETY: `rest` is valid for `rest.len()` bytes, and `fd` is an open socket for as
        // long as the connection's stream, which the caller holds.
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
            _ if n < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    out.drain(..sent);
    out.is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_requests_are_consumed_without_moving_bytes() {
        let mut r = ReadBuf {
            buf: b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c".to_vec(),
            start: 0,
        };
        let at = r.buf.as_ptr();
        r.consume(19);
        assert_eq!(&r.pending()[..6], b"GET /b");
        r.consume(19);
        assert_eq!(r.pending(), b"GET /c");
        // Nothing was copied: the cursor moved over the same bytes.
        assert_eq!(r.buf.as_ptr(), at);
        assert_eq!(r.start, 38);
        // Only making room for a read moves the rest to the front, once.
        r.compact();
        assert_eq!((r.buf.as_slice(), r.start), (&b"GET /c"[..], 0));
        r.consume(6);
        assert!(r.buf.is_empty() && r.start == 0);
    }

    #[test]
    fn a_grown_read_buffer_is_given_back_between_requests() {
        let mut r = ReadBuf {
            buf: Vec::with_capacity(4 * KEEP_CAPACITY),
            start: 0,
        };
        r.buf.extend_from_slice(&[b'x'; 3 * KEEP_CAPACITY]);
        r.buf.extend_from_slice(b"GET /next");
        r.consume(3 * KEEP_CAPACITY);
        r.settle();
        assert_eq!(r.pending(), b"GET /next");
        assert!(r.buf.capacity() <= KEEP_CAPACITY);
        // An empty one ends with no allocation at all.
        let mut r = ReadBuf {
            buf: Vec::with_capacity(4 * KEEP_CAPACITY),
            start: 0,
        };
        r.settle();
        assert_eq!(r.buf.capacity(), 0);
        // A small one is kept for the next request.
        let mut r = ReadBuf {
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
        };
        r.settle();
        assert_eq!(r.buf.capacity(), READ_CHUNK);
    }

    #[test]
    fn the_end_of_a_long_head_is_searched_once() {
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(EAGER_HEAD_BYTES + 10, b'a');
        let mut scanned = 0;
        assert!(!head_may_be_complete(&head, &mut scanned));
        assert_eq!(scanned, head.len());
        // The blank line split across reads is still found.
        head.extend_from_slice(b"\r\n\r");
        assert!(!head_may_be_complete(&head, &mut scanned));
        head.push(b'\n');
        assert!(head_may_be_complete(&head, &mut scanned));
        // Bare LF line ends, which the parser accepts, too.
        let mut bare = head[..EAGER_HEAD_BYTES + 10].to_vec();
        let mut scanned = 0;
        bare.extend_from_slice(b"\n");
        assert!(!head_may_be_complete(&bare, &mut scanned));
        bare.extend_from_slice(b"\n");
        assert!(head_may_be_complete(&bare, &mut scanned));
        // Short heads are always parsed, so garbage is refused at once.
        assert!(head_may_be_complete(b"GET", &mut 0));
    }
}
