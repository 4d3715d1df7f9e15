//! The receive side of one client connection: bytes go in as they arrive,
//! complete answers come out one at a time through `parse::parse_response`.
//! Both the async `Conn` and `blocking_request` read through it, so answers
//! pipelined on a keep-alive connection are framed in one place.

use std::io;

use super::parse::{body_code, parse_response, BodyLoc};

/// Free room a buffer gets before a read.
const READ_ROOM: usize = 2048;

/// One parsed answer: status, envelope code and whether the server closes.
#[derive(Debug, Clone, Copy)]
pub struct Resp {
    pub status: u16,
    /// The body's `"code"`, when it has one.
    pub code: Option<i64>,
    /// The server asked to close the connection after this answer.
    pub close: bool,
}

/// Bytes received on a connection and the body of the last answer.
pub struct Reader {
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed by an answer.
    pos: usize,
    /// The de-chunked body of the last answer, when it was chunked.
    scratch: Vec<u8>,
    body: BodyLoc,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            buf: Vec::with_capacity(4096),
            pos: 0,
            scratch: Vec::new(),
            body: BodyLoc::Buf(0, 0),
        }
    }
}

impl Reader {
    /// The next complete answer in the bytes received so far. `Ok(None)`
    /// means more bytes are needed. With `eof` (the peer has closed) an
    /// incomplete answer is an error, so a read loop always ends.
    pub fn next(&mut self, eof: bool) -> io::Result<Option<Resp>> {
        let rest = &self.buf[self.pos..];
        let Some(m) = parse_response(rest, &mut self.scratch, eof)? else {
            if !eof {
                return Ok(None);
            }
            let why = if rest.is_empty() {
                "connection closed by server"
            } else {
                "connection closed mid-answer"
            };
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
        };
        let base = self.pos;
        self.pos += m.consumed;
        self.body = match m.body {
            BodyLoc::Buf(s, e) => BodyLoc::Buf(base + s, base + e),
            BodyLoc::Scratch => BodyLoc::Scratch,
        };
        Ok(Some(Resp {
            status: m.status,
            code: body_code(self.body()),
            close: m.close,
        }))
    }

    /// Body of the last answer `next` returned, until the next read.
    pub fn body(&self) -> &[u8] {
        match self.body {
            BodyLoc::Buf(s, e) => self.buf.get(s..e).unwrap_or_default(),
            BodyLoc::Scratch => &self.scratch,
        }
    }

    /// Drops the consumed bytes (and with them the last body).
    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.body = BodyLoc::Buf(0, 0);
    }

    /// Hands out the buffer, compacted and with room for a read that
    /// appends after its length; give it back with `put_back`.
    pub fn take_for_read(&mut self) -> Vec<u8> {
        self.compact();
        if self.buf.capacity() - self.buf.len() < READ_ROOM {
            let want = self.buf.capacity().max(4096);
            self.buf.reserve(want);
        }
        std::mem::take(&mut self.buf)
    }

    /// Takes back the buffer `take_for_read` handed out, with what was read.
    pub fn put_back(&mut self, buf: Vec<u8>) {
        self.buf = buf;
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"code\":0}";
    const B: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"co\r\n9\r\nde\":-304}\r\n0\r\n\r\n";
    const C: &[u8] = b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno";

    /// An answer as the tests compare it: status, code, close, body.
    type Seen = (u16, Option<i64>, bool, Vec<u8>);

    /// Feeds `pieces` in order, collecting every answer (status, code,
    /// close, body) as soon as it is complete, then signals the end.
    fn feed(pieces: &[&[u8]]) -> io::Result<Vec<Seen>> {
        let mut r = Reader::default();
        let mut out = Vec::new();
        for p in pieces {
            r.extend(p);
            while let Some(a) = r.next(false)? {
                out.push((a.status, a.code, a.close, r.body().to_vec()));
            }
        }
        match r.next(true) {
            Ok(_) => panic!("nothing left to parse"),
            Err(e) if e.to_string() == "connection closed by server" => Ok(out),
            Err(e) => Err(e),
        }
    }

    fn expected() -> Vec<Seen> {
        vec![
            (200, Some(0), false, b"{\"code\":0}".to_vec()),
            (200, Some(-304), false, b"{\"code\":-304}".to_vec()),
            (503, None, true, b"no".to_vec()),
        ]
    }

    #[test]
    fn pipelined_split_at_every_offset() {
        let stream = [A, B, C].concat();
        for cut in 0..=stream.len() {
            let got = feed(&[&stream[..cut], &stream[cut..]]).expect("parses");
            assert_eq!(got, expected(), "cut at {cut}");
        }
    }

    #[test]
    fn byte_by_byte() {
        let stream = [A, B, C].concat();
        let pieces: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(feed(&pieces).expect("parses"), expected());
    }

    #[test]
    fn eof_mid_answer_is_an_error() {
        let mut r = Reader::default();
        r.extend(&A[..A.len() - 1]);
        assert!(r.next(false).expect("incomplete").is_none());
        let e = r.next(true).expect_err("cut short");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(e.to_string(), "connection closed mid-answer");
    }

    #[test]
    fn read_buffer_round_trip() {
        let mut r = Reader::default();
        r.extend(A);
        assert!(r.next(false).expect("ok").is_some());
        let mut buf = r.take_for_read();
        assert!(buf.is_empty(), "the consumed answer is dropped");
        assert!(buf.capacity() >= READ_ROOM);
        buf.extend_from_slice(C);
        r.put_back(buf);
        let a = r.next(false).expect("ok").expect("complete");
        assert_eq!((a.status, r.body()), (503, &b"no"[..]));
    }
}
