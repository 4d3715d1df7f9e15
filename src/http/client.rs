//! A small HTTP/1.1 client on monoio for talking to peers: one keep-alive connection, requests
//! with a deadline, answers framed by Content-Length or chunked encoding (Go peers chunk large
//! answers) through the server's incremental [`BodyDecoder`], within [`MAX_ANSWER_BYTES`]. It
//! never blocks a thread; a call that misses its deadline drops the connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::request::{BodyDecoder, BodyKind};
use super::response::is_ours;

/// Largest answer body accepted from a peer (a `fetch/all` of a big registry); a chunked one
/// may carry at most twice that in framing besides.
pub const MAX_ANSWER_BYTES: usize = 1 << 30;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 16 * 1024;

/// A peer's answer.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// True when the peer is this implementation (it names itself in `Server`).
    pub ours: bool,
    /// The decoded body.
    pub body: Vec<u8>,
}

/// One keep-alive connection to `addr`.
pub(crate) struct Client {
    addr: SocketAddr,
    /// Sent as `Authorization: Bearer` on every request (the cluster's peer token).
    bearer: Option<Arc<str>>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "peer did not answer in time")
}

impl Client {
    /// A client for `addr` that sends `bearer` with every request; connects on first use.
    pub(crate) fn new(addr: SocketAddr, bearer: Option<Arc<str>>) -> Client {
        Client {
            addr,
            bearer,
            stream: None,
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads its answer, connecting first if needed (within `dial`).
    /// Any failure closes the connection so the next call starts clean.
    pub(crate) async fn call(
        &mut self,
        method: &str,
        target: &str,
        form: &str,
        dial: Duration,
        timeout: Duration,
    ) -> io::Result<Answer> {
        let reused = self.stream.is_some();
        match self.attempt(method, target, form, dial, timeout).await {
            // A kept-alive connection the peer closed meanwhile (idle timeout, restart) fails
            // before any answer arrives; the request never reached the peer, so send it again
            // on a new connection, once.
            Err(e) if reused && is_stale(&e) => {
                self.attempt(method, target, form, dial, timeout).await
            }
            other => other,
        }
    }

    async fn attempt(
        &mut self,
        method: &str,
        target: &str,
        form: &str,
        dial: Duration,
        timeout: Duration,
    ) -> io::Result<Answer> {
        if self.stream.is_none() {
            let stream = monoio::time::timeout(dial, TcpStream::connect_addr(self.addr))
                .await
                .map_err(|_| timed_out())??;
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
        }
        let result = monoio::time::timeout(timeout, self.exchange(method, target, form))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        if result.as_ref().map_or(true, |a| !a.1) {
            self.stream = None;
        }
        result.map(|(answer, _)| answer)
    }

    /// Writes the request and reads the answer; the bool says whether the connection may be
    /// reused.
    async fn exchange(
        &mut self,
        method: &str,
        target: &str,
        form: &str,
    ) -> io::Result<(Answer, bool)> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "not connected"));
        };
        let mut req = Vec::with_capacity(160 + form.len());
        req.extend_from_slice(method.as_bytes());
        req.push(b' ');
        req.extend_from_slice(target.as_bytes());
        req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        req.extend_from_slice(self.addr.to_string().as_bytes());
        req.extend_from_slice(b"\r\nUser-Agent: ");
        req.extend_from_slice(super::response::SERVER_NAME.as_bytes());
        req.extend_from_slice(b"\r\n");
        if let Some(token) = &self.bearer {
            req.extend_from_slice(b"Authorization: Bearer ");
            req.extend_from_slice(token.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        if method == "POST" {
            req.extend_from_slice(
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ",
            );
            req.extend_from_slice(itoa::Buffer::new().format(form.len()).as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"\r\n");
        if method == "POST" {
            req.extend_from_slice(form.as_bytes());
        }
        let (res, _) = stream.write_all(req).await;
        res?;
        let mut framer = AnswerFramer::new(MAX_ANSWER_BYTES);
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            buf.clear();
            buf.reserve(READ_CHUNK);
            let cap = buf.capacity();
            let (res, slice) = stream.read(buf.slice_mut(0..cap)).await;
            buf = slice.into_inner();
            if res? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the connection",
                ));
            }
            if let Some(done) = framer.push(&buf)? {
                self.buf = buf;
                return Ok(done);
            }
        }
    }
}

/// Errors of a connection the peer had already closed.
fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn bad(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad answer from peer: {why}"),
    )
}

/// Longest answer head accepted from a peer.
const MAX_ANSWER_HEAD: usize = 64 * 1024;

/// Frames one answer from a peer as its bytes arrive: the head is buffered until complete (at
/// most [`MAX_ANSWER_HEAD`]), then the body goes through a [`BodyDecoder`], each byte looked at
/// once, within the answer-size bound and its framing bound. Bytes after the answer's end are
/// ignored: a request is only sent once the previous answer is read.
#[derive(Debug)]
pub struct AnswerFramer {
    max_body: usize,
    head: Vec<u8>,
    body: Option<(u16, bool, bool, BodyDecoder)>,
}

impl AnswerFramer {
    /// A framer for one answer whose body may hold up to `max_body` bytes.
    pub fn new(max_body: usize) -> AnswerFramer {
        AnswerFramer {
            max_body,
            head: Vec::new(),
            body: None,
        }
    }

    /// Takes the next bytes read; `Some((answer, reusable))` once the answer is complete,
    /// where `reusable` says whether the connection may carry the next request.
    pub fn push(&mut self, mut bytes: &[u8]) -> io::Result<Option<(Answer, bool)>> {
        if self.body.is_none() {
            let had = self.head.len();
            let room = MAX_ANSWER_HEAD - had;
            self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
            let Some((head_len, framed)) = parse_answer_head(&self.head, self.max_body)? else {
                if self.head.len() >= MAX_ANSWER_HEAD {
                    return Err(bad("answer head too large"));
                }
                return Ok(None);
            };
            // Only the head's own bytes were new to it; the rest of this read is body.
            bytes = &bytes[head_len - had..];
            self.head = Vec::new();
            self.body = Some(framed);
        }
        let Some((status, ours, keep, decoder)) = self.body.as_mut() else {
            return Ok(None);
        };
        decoder.feed(bytes).map_err(|e| bad(&format!("{e:?}")))?;
        if !decoder.is_done() {
            return Ok(None);
        }
        let (status, ours, keep) = (*status, *ours, *keep);
        let body = match self.body.take() {
            Some((_, _, _, decoder)) => decoder.into_body(),
            None => Vec::new(),
        };
        Ok(Some((Answer { status, ours, body }, keep)))
    }
}

/// An answer's head: its length, and status, `ours`, keep-alive and a decoder for its body.
type Framed = (u16, bool, bool, BodyDecoder);

fn parse_answer_head(buf: &[u8], max_body: usize) -> io::Result<Option<(usize, Framed)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(&e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    let mut kind = None;
    let mut keep = resp.version == Some(1);
    let mut ours = false;
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value.parse().map_err(|_| bad("content-length"))?;
            if kind.is_some_and(|k| k != BodyKind::Length(n)) {
                return Err(bad("conflicting framing"));
            }
            kind = Some(BodyKind::Length(n));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") || kind.is_some() {
                return Err(bad("unsupported or conflicting transfer-encoding"));
            }
            kind = Some(BodyKind::Chunked);
        } else if h.name.eq_ignore_ascii_case("connection") {
            keep = !value.eq_ignore_ascii_case("close");
        } else if h.name.eq_ignore_ascii_case("server") {
            ours = is_ours(value);
        }
    }
    // Without framing the body runs to the close: not reusable, and we only take framed ones.
    let kind = kind.ok_or_else(|| bad("no content-length"))?;
    let decoder = BodyDecoder::new(kind, max_body).map_err(|e| bad(&format!("{e:?}")))?;
    Ok(Some((head_len, (status, ours, keep, decoder))))
}

/// Frames a complete answer held whole in `buf`, or `None` if more bytes are needed.
pub fn parse_answer(buf: &[u8]) -> io::Result<Option<(Answer, bool)>> {
    AnswerFramer::new(MAX_ANSWER_BYTES).push(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_length_and_chunked_answers() {
        let a = b"HTTP/1.1 200 OK\r\nServer: discovery-rs\r\nContent-Length: 2\r\n\r\n{}";
        let (answer, keep) = parse_answer(a).unwrap().unwrap();
        assert!(answer.ours && keep && answer.body == b"{}");
        assert!(parse_answer(&a[..a.len() - 1]).unwrap().is_none());
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        let (answer, keep) = parse_answer(c).unwrap().unwrap();
        assert!(!answer.ours && !keep && answer.body == b"{}");
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    /// Frames `raw` fed in pieces of `step` bytes.
    fn framed(raw: &[u8], step: usize, max: usize) -> Result<Option<(Vec<u8>, bool)>, String> {
        let mut f = AnswerFramer::new(max);
        for piece in raw.chunks(step) {
            match f.push(piece) {
                Ok(Some((a, keep))) => return Ok(Some((a.body, keep))),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(None)
    }

    #[test]
    fn framing_is_the_same_however_the_answer_is_split() {
        let raws: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        for raw in raws {
            let whole = framed(raw, raw.len(), 64);
            for step in 1..raw.len() {
                assert_eq!(framed(raw, step, 64), whole, "step {step}");
            }
        }
        assert_eq!(framed(raws[1], 1, 64), Ok(Some((b"abcde".to_vec(), true))));
        assert!(framed(raws[3], 1, 64).is_err(), "CL and TE together");
    }

    #[test]
    fn answers_are_bounded_in_body_and_framing() {
        let long = b"HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n";
        assert!(framed(long, 7, 64).is_err());
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        // One data byte per 100 framing bytes: refused once framing passes its bound.
        for _ in 0..200 {
            chunked.extend_from_slice(format!("1;{}\r\nx\r\n", "e".repeat(93)).as_bytes());
        }
        let err = framed(&chunked, 1000, 1024).unwrap_err();
        assert!(err.contains("FramingTooLarge"), "{err}");
        let endless = [
            b"HTTP/1.1 200 OK\r\nX: ".as_slice(),
            &[b'a'; MAX_ANSWER_HEAD],
        ]
        .concat();
        assert!(framed(&endless, 4096, 64).is_err());
    }
}
