//! A minimal HTTP/1.1 client for keep-alive connections: it writes fixed,
//! pre-formatted requests and parses only the status line, `Content-Length`,
//! `Transfer-Encoding: chunked`, `Connection: close` and the body.
//!
//! Nothing here panics on network input: every malformed answer becomes an
//! `io::Error` and the caller drops the connection and reconnects.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

/// Largest head or body accepted; anything bigger is treated as an error.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Whether runtimes in this process use io_uring (blocking sockets) or epoll
/// (non-blocking sockets). Set once at start-up by `rt::init_driver`.
static URING: AtomicBool = AtomicBool::new(false);

pub fn set_uring(on: bool) {
    URING.store(on, Ordering::Relaxed);
}

pub fn uring() -> bool {
    URING.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLoc {
    /// `start..end` inside the connection's read buffer.
    Buf(usize, usize),
    /// The de-chunked body is in the scratch buffer.
    Scratch,
}

#[derive(Debug, Clone, Copy)]
pub struct Msg {
    pub status: u16,
    /// The server asked to close the connection after this answer.
    pub close: bool,
    /// Bytes of the buffer used by this answer (head + body).
    pub consumed: usize,
    pub body: BodyLoc,
}

fn bad(msg: &str) -> io::Error {
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
        match hay[i..=last].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
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

/// Tries to parse one complete answer at the start of `buf`. `Ok(None)` means
/// more bytes are needed. A chunked body is decoded into `scratch`.
/// `eof` tells that the peer has closed, which ends a body without length.
pub fn parse_response(buf: &[u8], scratch: &mut Vec<u8>, eof: bool) -> io::Result<Option<Msg>> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(bad("response head too large"));
        }
        return Ok(None);
    };
    let head = &buf[..head_end];
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    if status_line.len() < 12 || !status_line.starts_with(b"HTTP/1.") {
        return Err(bad("bad status line"));
    }
    let status = parse_usize(&status_line[9..12], 10)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| bad("bad status code"))?;
    let http10 = status_line.starts_with(b"HTTP/1.0");
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut close = http10;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            content_length = Some(parse_usize(value, 10).ok_or_else(|| bad("bad content-length"))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value
                .to_ascii_lowercase()
                .windows(7)
                .any(|w| w == b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            let v = value.to_ascii_lowercase();
            if find(&v, b"close").is_some() {
                close = true;
            } else if find(&v, b"keep-alive").is_some() {
                close = false;
            }
        }
    }
    let body_start = head_end + 4;
    let no_body = status / 100 == 1 || status == 204 || status == 304;
    if no_body {
        return Ok(Some(Msg {
            status,
            close,
            consumed: body_start,
            body: BodyLoc::Buf(body_start, body_start),
        }));
    }
    if chunked {
        scratch.clear();
        let mut pos = body_start;
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
                // Trailers (normally none) end with an empty line.
                let Some(te) = find(&buf[pos..], b"\r\n") else {
                    return Ok(None);
                };
                if te == 0 {
                    pos += 2;
                } else {
                    let Some(end) = find(&buf[pos..], b"\r\n\r\n") else {
                        return Ok(None);
                    };
                    pos += end + 4;
                }
                return Ok(Some(Msg {
                    status,
                    close,
                    consumed: pos,
                    body: BodyLoc::Scratch,
                }));
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
    match content_length {
        Some(n) => {
            if n > MAX_BODY {
                return Err(bad("body too large"));
            }
            if buf.len() < body_start + n {
                return Ok(None);
            }
            Ok(Some(Msg {
                status,
                close,
                consumed: body_start + n,
                body: BodyLoc::Buf(body_start, body_start + n),
            }))
        }
        None => {
            // Body runs to the end of the connection.
            if !eof {
                if buf.len() > MAX_BODY {
                    return Err(bad("body too large"));
                }
                return Ok(None);
            }
            Ok(Some(Msg {
                status,
                close: true,
                consumed: buf.len(),
                body: BodyLoc::Buf(body_start, buf.len()),
            }))
        }
    }
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

/// One parsed answer: status, envelope code and where its body is.
#[derive(Debug, Clone, Copy)]
pub struct Resp {
    pub status: u16,
    pub code: Option<i64>,
    pub close: bool,
    body: BodyLoc,
}

impl Resp {
    /// HTTP 200 with the expected envelope code.
    pub fn is_ok(&self, want: i64) -> bool {
        self.status == 200 && self.code == Some(want)
    }
}

/// Creates a TCP socket, optionally bound to a source address (before
/// connect, so that many loopback addresses can each use the full ephemeral
/// port range), and starts a non-blocking connect. Returns the std stream and
/// whether the connect is still in progress.
fn start_connect(
    addr: SocketAddrV4,
    src: Option<Ipv4Addr>,
) -> io::Result<(std::net::TcpStream, bool)> {
    // SAFETY: plain socket(2); the fd is owned by the TcpStream right after.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid socket owned by nobody else.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    stream.set_nodelay(true)?;
    if let Some(ip) = src {
        let one: libc::c_int = 1;
        // SAFETY: valid fd, pointer to a c_int of the given size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let sa = sockaddr_in(SocketAddrV4::new(ip, 0));
        // SAFETY: valid fd and a properly sized sockaddr_in.
        let rc = unsafe {
            libc::bind(
                fd,
                &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let sa = sockaddr_in(addr);
    // SAFETY: valid fd and a properly sized sockaddr_in.
    let rc = unsafe {
        libc::connect(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok((stream, false));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok((stream, true))
    } else {
        Err(e)
    }
}

fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

fn socket_error(fd: i32) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd, out-pointers sized correctly.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(())
}

/// A keep-alive client connection on the current monoio runtime.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    pos: usize,
    scratch: Vec<u8>,
    last_body: BodyLoc,
}

impl Conn {
    pub async fn connect(addr: SocketAddrV4, src: Option<Ipv4Addr>) -> io::Result<Conn> {
        let (std_stream, pending) = start_connect(addr, src)?;
        let fd = std_stream.as_raw_fd();
        let stream = TcpStream::from_std(std_stream)?;
        if pending {
            stream.writable(false).await?;
        }
        socket_error(fd)?;
        if uring() {
            // io_uring operations expect blocking sockets (monoio creates its
            // own sockets that way); epoll needs them non-blocking.
            // SAFETY: fcntl on a valid fd.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                if fl >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
                }
            }
        }
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
            pos: 0,
            scratch: Vec::new(),
            last_body: BodyLoc::Buf(0, 0),
        })
    }

    /// Writes a whole request; the buffer is handed back for reuse.
    pub async fn send(&mut self, req: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let (res, req) = self.stream.write_all(req).await;
        (res.map(|_| ()), req)
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < 2048 {
            let want = self.buf.capacity().max(4096);
            self.buf.reserve(want);
        }
        let buf = std::mem::take(&mut self.buf);
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = self.stream.read(SliceMut::new(buf, len, cap)).await;
        self.buf = slice.into_inner();
        res
    }

    /// Reads exactly one answer.
    pub async fn recv(&mut self) -> io::Result<Resp> {
        let mut eof = false;
        // Each pass either parses an answer or reads more bytes; sizes are
        // capped by MAX_HEAD/MAX_BODY so this ends.
        loop {
            match parse_response(&self.buf[self.pos..], &mut self.scratch, eof)? {
                Some(m) => {
                    let base = self.pos;
                    self.pos += m.consumed;
                    self.last_body = match m.body {
                        BodyLoc::Buf(s, e) => BodyLoc::Buf(base + s, base + e),
                        BodyLoc::Scratch => BodyLoc::Scratch,
                    };
                    let code = body_code(self.body());
                    return Ok(Resp {
                        status: m.status,
                        code,
                        close: m.close,
                        body: self.last_body,
                    });
                }
                None => {
                    if eof {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed mid-answer",
                        ));
                    }
                    let n = self.fill().await?;
                    if n == 0 {
                        if self.pos >= self.buf.len() {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "connection closed by server",
                            ));
                        }
                        eof = true;
                    }
                }
            }
        }
    }

    /// Body of the last answer returned by `recv`.
    pub fn body(&self) -> &[u8] {
        match self.last_body {
            BodyLoc::Buf(s, e) => self.buf.get(s..e).unwrap_or_default(),
            BodyLoc::Scratch => &self.scratch,
        }
    }

    pub fn body_of(&self, r: &Resp) -> &[u8] {
        match r.body {
            BodyLoc::Buf(s, e) => self.buf.get(s..e).unwrap_or_default(),
            BodyLoc::Scratch => &self.scratch,
        }
    }

    /// Sends a request and reads its answer.
    pub async fn call(&mut self, req: Vec<u8>) -> (io::Result<Resp>, Vec<u8>) {
        let (r, req) = self.send(req).await;
        if let Err(e) = r {
            return (Err(e), req);
        }
        (self.recv().await, req)
    }
}

/// Blocking one-shot request for control operations (readiness checks,
/// the park scenario's change). Returns status and body.
pub fn blocking_request(
    addr: SocketAddrV4,
    req: &[u8],
    timeout: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect_timeout(&addr.into(), timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(req)?;
    let mut buf = Vec::with_capacity(8192);
    let mut scratch = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut eof = false;
    loop {
        if let Some(m) = parse_response(&buf, &mut scratch, eof)? {
            let body = match m.body {
                BodyLoc::Buf(a, b) => buf.get(a..b).unwrap_or_default().to_vec(),
                BodyLoc::Scratch => scratch,
            };
            return Ok((m.status, body));
        }
        if eof {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-answer",
            ));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            eof = true;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"code\":-304}..extra";
        let mut s = Vec::new();
        let m = parse_response(raw, &mut s, false)
            .expect("ok")
            .expect("complete");
        assert_eq!(m.status, 200);
        assert!(!m.close);
        let BodyLoc::Buf(a, b) = m.body else {
            panic!("body in buf")
        };
        assert_eq!(body_code(&raw[a..b]), Some(-304));
        assert_eq!(m.consumed, raw.len() - 5);
    }

    #[test]
    fn partial() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"code\"";
        let mut s = Vec::new();
        assert!(parse_response(raw, &mut s, false).expect("ok").is_none());
        assert!(parse_response(b"HTTP/1.1 200", &mut s, false)
            .expect("ok")
            .is_none());
    }

    #[test]
    fn chunked() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{\"cod\r\n6\r\ne\": 0}\r\n0\r\n\r\n";
        let mut s = Vec::new();
        let m = parse_response(raw, &mut s, false)
            .expect("ok")
            .expect("complete");
        assert_eq!(m.body, BodyLoc::Scratch);
        assert!(m.close);
        assert_eq!(&s[..], b"{\"code\": 0}");
        assert_eq!(body_code(&s), Some(0));
        assert_eq!(m.consumed, raw.len());
        let cut = &raw[..raw.len() - 3];
        assert!(parse_response(cut, &mut s, false).expect("ok").is_none());
    }

    #[test]
    fn garbage() {
        let mut s = Vec::new();
        assert!(parse_response(b"SSH-2.0-x\r\n\r\n", &mut s, false).is_err());
        assert!(parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n",
            &mut s,
            false
        )
        .is_err());
        assert_eq!(body_code(b"{\"code\":}"), None);
        assert_eq!(body_code(b"nothing"), None);
    }

    #[test]
    fn until_close() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\n{\"code\":0}";
        let mut s = Vec::new();
        assert!(parse_response(raw, &mut s, false).expect("ok").is_none());
        let m = parse_response(raw, &mut s, true)
            .expect("ok")
            .expect("complete");
        assert!(m.close);
        assert_eq!(m.consumed, raw.len());
    }
}
