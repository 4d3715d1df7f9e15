//! The one HTTP/1.1 parser of the load tools. `parse_response` frames the
//! answers `loadgen` reads (status line, `Content-Length`, chunked, or a body
//! that runs to the end of the connection, and `Connection`); `request_len`
//! frames the requests `ceiling` reads. Both read the head with the same
//! code. `body_code` picks the envelope's `"code"` out of a body.
//!
//! Parsing is sans-IO: it looks at the bytes received so far and answers
//! "complete", "need more" (`Ok(None)`) or "malformed" (`Err`), so it can be
//! fed a message split anywhere.

use std::io;

/// Largest head accepted; a longer one is an error.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest body accepted; a longer one is an error.
pub const MAX_BODY: usize = 256 * 1024 * 1024;

/// Where the body of a parsed answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLoc {
    /// `start..end` inside the buffer that was parsed.
    Buf(usize, usize),
    /// The de-chunked body is in the scratch buffer.
    Scratch,
}

/// One complete answer at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Msg {
    pub status: u16,
    /// The server asked to close the connection after this answer.
    pub close: bool,
    /// Bytes of the buffer used by this answer (head + body).
    pub consumed: usize,
    pub body: BodyLoc,
}

pub(crate) fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last = hay.len() - needle.len();
    let mut i = 0;
    while i <= last {
        let p = hay[i..=last].iter().position(|&b| b == first)?;
        i += p;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn parse_usize(s: &[u8], radix: u32) -> Option<usize> {
    let s = std::str::from_utf8(s).ok()?.trim();
    if s.is_empty() {
        return None;
    }
    usize::from_str_radix(s, radix).ok()
}

/// The head of a message: its first line and the headers that frame it.
struct Head<'a> {
    first_line: &'a [u8],
    /// Bytes of the head, the blank line included.
    len: usize,
    content_length: Option<usize>,
    chunked: bool,
    /// The last `Connection` header: close (true) or keep-alive (false).
    close: Option<bool>,
}

/// Reads the head at the start of `buf`; `Ok(None)` means more bytes are needed.
fn parse_head(buf: &[u8]) -> io::Result<Option<Head<'_>>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(bad("head too large"));
        }
        return Ok(None);
    };
    let mut lines = buf[..end].split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let mut head = Head {
        first_line: first.strip_suffix(b"\r").unwrap_or(first),
        len: end + 4,
        content_length: None,
        chunked: false,
        close: None,
    };
    for line in lines {
        head.header(line.strip_suffix(b"\r").unwrap_or(line))?;
    }
    Ok(Some(head))
}

impl Head<'_> {
    fn header(&mut self, line: &[u8]) -> io::Result<()> {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Ok(());
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_usize(value, 10).ok_or_else(|| bad("bad content-length"))?;
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.chunked = find(&value.to_ascii_lowercase(), b"chunked").is_some();
        } else if name.eq_ignore_ascii_case(b"connection") {
            let v = value.to_ascii_lowercase();
            if find(&v, b"close").is_some() {
                self.close = Some(true);
            } else if find(&v, b"keep-alive").is_some() {
                self.close = Some(false);
            }
        }
        Ok(())
    }
}

fn status_code(line: &[u8]) -> io::Result<u16> {
    if line.len() < 12 || !line.starts_with(b"HTTP/1.") {
        return Err(bad("bad status line"));
    }
    parse_usize(&line[9..12], 10)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| bad("bad status code"))
}

/// Tries to parse one complete answer at the start of `buf`. `Ok(None)` means
/// more bytes are needed. A chunked body is decoded into `scratch`.
/// `eof` tells that the peer has closed, which ends a body without length.
pub fn parse_response(buf: &[u8], scratch: &mut Vec<u8>, eof: bool) -> io::Result<Option<Msg>> {
    let Some(head) = parse_head(buf)? else {
        return Ok(None);
    };
    let status = status_code(head.first_line)?;
    let close = head
        .close
        .unwrap_or_else(|| head.first_line.starts_with(b"HTTP/1.0"));
    let start = head.len;
    let msg = |consumed, body| Msg {
        status,
        close,
        consumed,
        body,
    };
    if status / 100 == 1 || status == 204 || status == 304 {
        return Ok(Some(msg(start, BodyLoc::Buf(start, start))));
    }
    if head.chunked {
        return Ok(dechunk(buf, start, scratch)?.map(|end| msg(end, BodyLoc::Scratch)));
    }
    match head.content_length {
        Some(n) if n > MAX_BODY => Err(bad("body too large")),
        Some(n) if buf.len() < start + n => Ok(None),
        Some(n) => Ok(Some(msg(start + n, BodyLoc::Buf(start, start + n)))),
        // The body runs to the end of the connection.
        None if !eof && buf.len() > MAX_BODY => Err(bad("body too large")),
        None if !eof => Ok(None),
        None => Ok(Some(Msg {
            close: true,
            ..msg(buf.len(), BodyLoc::Buf(start, buf.len()))
        })),
    }
}

/// Decodes the chunked body that starts at `pos` into `scratch`; returns the
/// end of the message, or `None` when more bytes are needed.
fn dechunk(buf: &[u8], mut pos: usize, scratch: &mut Vec<u8>) -> io::Result<Option<usize>> {
    scratch.clear();
    // Each pass consumes one chunk or returns; sizes are capped by MAX_BODY.
    loop {
        let Some(le) = find(&buf[pos..], b"\r\n") else {
            return Ok(None);
        };
        let size_line = &buf[pos..pos + le];
        let size_hex = match size_line.iter().position(|&b| b == b';') {
            Some(p) => &size_line[..p],
            None => size_line,
        };
        let size = parse_usize(size_hex, 16).ok_or_else(|| bad("bad chunk size"))?;
        pos += le + 2;
        if size == 0 {
            return Ok(trailers_end(buf, pos));
        }
        if scratch.len() + size > MAX_BODY {
            return Err(bad("chunked body too large"));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        scratch.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// End of the trailers (normally none) that follow the last chunk at `pos`.
fn trailers_end(buf: &[u8], pos: usize) -> Option<usize> {
    let rest = &buf[pos..];
    if rest.starts_with(b"\r\n") {
        return Some(pos + 2);
    }
    find(rest, b"\r\n\r\n").map(|end| pos + end + 4)
}

/// Length of the complete request at the start of `buf`; `Ok(None)` means
/// more bytes are needed. Bodies are framed by `Content-Length` only: the
/// load generator never sends a chunked request.
pub fn request_len(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(head) = parse_head(buf)? else {
        return Ok(None);
    };
    if head.chunked {
        return Err(bad("chunked requests are not supported"));
    }
    let n = head.content_length.unwrap_or(0);
    if n > MAX_BODY {
        return Err(bad("body too large"));
    }
    let total = head.len + n;
    Ok((buf.len() >= total).then_some(total))
}

/// The integer after the first `"code":` of a JSON body.
pub fn body_code(body: &[u8]) -> Option<i64> {
    let p = find(body, b"\"code\":")?;
    let rest = &body[p + 7..];
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let (neg, digits) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        _ => (false, rest),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 18 {
        return None;
    }
    let v: i64 = std::str::from_utf8(&digits[..n]).ok()?.parse().ok()?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"code\":-304}";
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{\"cod\r\n6;x=y\r\ne\": 0}\r\n0\r\n\r\n";
    const TRAILERS: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
    const NO_BODY: &[u8] = b"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n";
    const UNTIL_CLOSE: &[u8] = b"HTTP/1.0 200 OK\r\n\r\n{\"code\":0}";

    /// Parses a whole message and returns it with its body.
    fn whole(raw: &[u8], eof: bool) -> (Msg, Vec<u8>) {
        let mut s = Vec::new();
        let m = parse_response(raw, &mut s, eof)
            .expect("well formed")
            .expect("complete");
        let body = match m.body {
            BodyLoc::Buf(a, b) => raw[a..b].to_vec(),
            BodyLoc::Scratch => s,
        };
        (m, body)
    }

    #[test]
    fn content_length() {
        let mut raw = SIZED.to_vec();
        raw.extend_from_slice(b"HTTP/1.1");
        let (m, body) = whole(&raw, false);
        assert_eq!((m.status, m.close, m.consumed), (200, false, SIZED.len()));
        assert_eq!(body_code(&body), Some(-304));
    }

    #[test]
    fn chunked_with_extension_and_trailers() {
        let (m, body) = whole(CHUNKED, false);
        assert_eq!(
            (m.body, m.close, m.consumed),
            (BodyLoc::Scratch, true, CHUNKED.len())
        );
        assert_eq!(body, b"{\"code\": 0}");
        let (m, body) = whole(TRAILERS, false);
        assert_eq!(
            (m.close, m.consumed, &body[..]),
            (false, TRAILERS.len(), &b"abc"[..])
        );
    }

    #[test]
    fn no_body_statuses_ignore_length() {
        let (m, body) = whole(NO_BODY, false);
        assert_eq!((m.status, m.consumed), (204, NO_BODY.len()));
        assert!(body.is_empty());
    }

    #[test]
    fn until_close_needs_eof() {
        let mut s = Vec::new();
        assert!(parse_response(UNTIL_CLOSE, &mut s, false)
            .expect("ok")
            .is_none());
        let (m, body) = whole(UNTIL_CLOSE, true);
        assert!(m.close);
        assert_eq!(
            (m.consumed, &body[..]),
            (UNTIL_CLOSE.len(), &b"{\"code\":0}"[..])
        );
    }

    #[test]
    fn connection_header_overrides_version() {
        let (m, _) = whole(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(!m.close);
        let (m, _) = whole(
            b"HTTP/1.1 200 OK\r\nconnection: Close\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert!(m.close);
    }

    /// Every proper prefix is incomplete (never an error), and the whole
    /// message parses the same however it was cut before.
    #[test]
    fn split_at_every_offset() {
        for raw in [SIZED, CHUNKED, TRAILERS, NO_BODY] {
            let (want, want_body) = whole(raw, false);
            let mut s = Vec::new();
            for cut in 0..raw.len() {
                let r = parse_response(&raw[..cut], &mut s, false).expect("prefix is not an error");
                assert!(r.is_none(), "prefix of {cut} bytes parsed as complete");
            }
            let (m, body) = whole(raw, false);
            assert_eq!(
                (m.status, m.close, m.consumed, m.body),
                (want.status, want.close, want.consumed, want.body)
            );
            assert_eq!(body, want_body);
        }
    }

    #[test]
    fn pipelined_answers_parse_in_order() {
        let stream = [SIZED, TRAILERS, NO_BODY, CHUNKED].concat();
        let mut pos = 0;
        let mut got = Vec::new();
        while pos < stream.len() {
            let (m, body) = whole(&stream[pos..], false);
            got.push((m.status, body));
            pos += m.consumed;
        }
        assert_eq!(pos, stream.len());
        let statuses: Vec<u16> = got.iter().map(|g| g.0).collect();
        assert_eq!(statuses, [200, 200, 204, 200]);
        assert_eq!(got[1].1, b"abc");
        assert_eq!(got[3].1, b"{\"code\": 0}");
    }

    #[test]
    fn malformed() {
        let mut s = Vec::new();
        for raw in [
            &b"SSH-2.0-x\r\n\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse_response(raw, &mut s, false).is_err(), "{raw:?}");
        }
        assert_eq!(body_code(b"{\"code\":}"), None);
        assert_eq!(body_code(b"nothing"), None);
        assert_eq!(body_code(b"{\"code\": 12}"), Some(12));
    }

    #[test]
    fn limits() {
        let mut s = Vec::new();
        let head = vec![b'a'; MAX_HEAD];
        assert!(parse_response(&head, &mut s, false)
            .expect("at limit")
            .is_none());
        let head = vec![b'a'; MAX_HEAD + 1];
        assert!(parse_response(&head, &mut s, false).is_err());
        let at = format!("HTTP/1.1 200 OK\r\nContent-Length: {MAX_BODY}\r\n\r\n");
        assert!(parse_response(at.as_bytes(), &mut s, false)
            .expect("at limit")
            .is_none());
        let past = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(parse_response(past.as_bytes(), &mut s, false).is_err());
        assert!(request_len(
            past.replace("HTTP/1.1 200 OK", "POST / HTTP/1.1")
                .as_bytes()
        )
        .is_err());
    }

    #[test]
    fn requests_split_and_pipelined() {
        let post = b"POST /discovery/renew HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab=cd";
        let get = b"GET /discovery/nodes HTTP/1.1\r\nHost: h\r\n\r\n";
        for raw in [&post[..], &get[..]] {
            for cut in 0..raw.len() {
                assert_eq!(request_len(&raw[..cut]).expect("prefix"), None);
            }
            assert_eq!(request_len(raw).expect("whole"), Some(raw.len()));
        }
        let both = [&post[..], &get[..]].concat();
        assert_eq!(request_len(&both).expect("first"), Some(post.len()));
        assert_eq!(
            request_len(&both[post.len()..]).expect("second"),
            Some(get.len())
        );
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(request_len(chunked).is_err());
    }
}
