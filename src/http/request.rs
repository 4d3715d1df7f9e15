//! HTTP/1.1 request framing, the `http` step of net → http → api → registry.
//!
//! `net` owns sockets and read buffers; this module only looks at bytes already read and says
//! where a request head ends, what it asks of the connection (keep-alive, `100-continue`) and
//! where its body ends. Routing and parameter decoding belong to `api`. Both parsers are pure
//! functions of the buffered bytes; [`parse_head`] may be retried after every read, and a body is
//! decoded by a [`BodyDecoder`] fed each byte once.

use std::str;

use ParseError::{BodyTooLarge, HeadTooLarge, Malformed};

/// Longest request head (request line, headers and the blank line) we buffer: 1 MiB, the Go
/// original's `MaxHeaderBytes`, so a Go SDK `polls` for thousands of appids in its URL fits. The
/// connection's slow-request deadline bounds how long a client may take to send it.
pub const MAX_HEAD_BYTES: usize = 1024 * 1024;

/// Most header fields a request may carry.
pub const MAX_HEADERS: usize = 64;

/// Longest chunk-size line, extensions included; bounds how long we wait for its CRLF.
const MAX_CHUNK_LINE: usize = 4096;

/// Request method; the API only routes on these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `HEAD`.
    Head,
    /// Any other method.
    Other,
}

/// The HTTP version a request spoke, and its answer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: keep-alive only when asked for, and announced.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// Whether a connection stays open after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Keep the connection for the next request.
    Alive,
    /// Close it after this response.
    Close,
}

/// How the body following a head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No `Content-Length` and no `Transfer-Encoding`: there is no body.
    Empty,
    /// `Content-Length` bytes follow the head.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What a parsed request head tells the connection loop and the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The request method.
    pub method: Method,
    /// The target's path, before any '?', still percent-encoded.
    pub path: String,
    /// The raw text after the first '?', without any fragment; empty if there is none.
    pub query: String,
    /// The request's HTTP version.
    pub version: Version,
    /// Whether the client lets the connection stay open after the response.
    pub keep: Keep,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// How the body that follows the head is framed.
    pub body: BodyKind,
    /// The credential of an `Authorization: Bearer <token>` header, if one was sent.
    pub bearer: Option<String>,
    /// Bytes of the head, including the final CRLFCRLF.
    pub head_len: usize,
}

/// Why a request cannot be framed. After any of them the next request's start is unknown, so
/// the connection cannot be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes are not a request we accept; the text says which rule broke.
    Malformed(&'static str),
    /// The head is longer than [`MAX_HEAD_BYTES`] or has more than [`MAX_HEADERS`] fields.
    HeadTooLarge,
    /// The body is longer than the caller's limit.
    BodyTooLarge,
    /// A chunked body's framing (chunk sizes, extensions, CRLFs, trailers) is longer than
    /// [`max_framing`] of the body limit: padding that costs reads without carrying data.
    FramingTooLarge,
}

/// Parses the request head at the start of `buf`.
///
/// Ok(None) = need more bytes. HeadTooLarge when no complete head within MAX_HEAD_BYTES (checked
/// on incomplete input too, so a client can't make us buffer forever) or more than MAX_HEADERS
/// headers. BodyTooLarge when Content-Length > max_body.
pub fn parse_head(buf: &[u8], max_body: usize) -> Result<Option<Head>, ParseError> {
    // Parsing only the first MAX_HEAD_BYTES makes the verdict the same however the bytes arrived.
    let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => return Err(HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadTooLarge),
        Err(e) => return Err(Malformed(describe(e))),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Malformed("incomplete request line"));
    };
    if !target.starts_with('/') {
        return Err(Malformed("request target is not an absolute path"));
    }
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let http10 = version == 0;

    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    let mut length = None;
    let mut codings = 0;
    let mut only_chunked = true;
    let mut bearer = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("authorization") {
            bearer = bearer_token(h.value).map(str::to_owned);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in elements(h.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue |= trim(h.value).eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("content-length") {
            for value in elements(h.value) {
                let n = content_length(value)?;
                if length.is_some_and(|l| l != n) {
                    return Err(Malformed("conflicting Content-Length values"));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in elements(h.value) {
                codings += 1;
                only_chunked &= coding.eq_ignore_ascii_case(b"chunked");
            }
        }
    }

    let body = match (codings, length) {
        (0, None) => BodyKind::Empty,
        (0, Some(n)) if n > max_body => return Err(BodyTooLarge),
        (0, Some(n)) => BodyKind::Length(n),
        // A message with both lets two parsers disagree on where it ends (request smuggling).
        (_, Some(_)) => return Err(Malformed("both Content-Length and Transfer-Encoding")),
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
        _ if http10 => return Err(Malformed("Transfer-Encoding in HTTP/1.0")),
        // Any other coding (e.g. gzip) would hand undecoded bytes to the form parser.
        (1, None) if only_chunked => BodyKind::Chunked,
        _ => return Err(Malformed("unsupported Transfer-Encoding")),
    };

    Ok(Some(Head {
        method: match method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "HEAD" => Method::Head,
            _ => Method::Other,
        },
        path: path.to_owned(),
        query: query.to_owned(),
        version: if http10 {
            Version::Http10
        } else {
            Version::Http11
        },
        keep: if !close && (keep_alive || !http10) {
            Keep::Alive
        } else {
            Keep::Close
        },
        expect_continue: expect_continue && !http10,
        body,
        bearer,
        head_len,
    }))
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = str::from_utf8(trim(value)).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Parses the body that starts at `buf`, the byte right after the head, in one go.
///
/// Ok(None) = need more bytes; Ok(Some((body, consumed))) where consumed counts the framing bytes
/// (for chunked: chunk sizes, extensions, data, CRLFs, last-chunk and trailers). A wrapper over
/// [`BodyDecoder`] for callers that hold the whole input (tests, benchmarks); a connection feeds
/// a decoder as bytes arrive instead.
pub fn parse_body(
    buf: &[u8],
    kind: BodyKind,
    max_body: usize,
) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    let mut decoder = BodyDecoder::new(kind, max_body)?;
    let used = decoder.feed(buf)?;
    Ok(decoder.is_done().then(|| (decoder.into_body(), used)))
}

/// The framing bytes a chunked body may carry besides its data: twice the body limit, and at
/// least this floor, so that small limits still admit ordinary chunk sizes and trailers.
const MIN_FRAMING_BYTES: usize = 8 * 1024;

/// Longest trailer section of a chunked body (its fields and the final blank line).
pub const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Framing bytes (sizes, extensions, CRLFs, trailers) a chunked body of limit `max_body` may
/// carry: `2 × max_body`, at least [`MIN_FRAMING_BYTES`].
pub fn max_framing(max_body: usize) -> usize {
    max_body.saturating_mul(2).max(MIN_FRAMING_BYTES)
}

/// Where a chunked decoder stands; every state but `Data` consumes one byte at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In the size's hex digits (`digits` so far, `size` their value).
    Size { size: usize, digits: usize },
    /// After the digits: optional whitespace, then `;` or CR.
    SizeEnd { size: usize },
    /// In a chunk extension, up to CR.
    Ext { size: usize },
    /// CR seen at the end of a size line; LF expected.
    SizeLf { size: usize },
    /// `left` data bytes of the current chunk still to come.
    Data { left: usize },
    /// CR expected after chunk data.
    DataCr,
    /// LF expected after chunk data.
    DataLf,
    /// At the start of a trailer line (or of the final blank line).
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// CR seen inside a trailer line; LF expected.
    TrailerLf,
    /// CR seen on the final blank line; LF expected.
    EndLf,
    /// The body is complete.
    Done,
}

/// Decodes one request or answer body as its bytes arrive: each byte is looked at once, however
/// the input is split, so a body dribbled in many reads costs no more than one read of it.
///
/// The decoded body never exceeds `max_body`; a chunked body's framing never exceeds
/// [`max_framing`]; both are refused with [`ParseError::BodyTooLarge`] /
/// [`ParseError::FramingTooLarge`] as soon as the bytes that cross the limit arrive.
#[derive(Debug)]
pub struct BodyDecoder {
    kind: BodyKind,
    max_body: usize,
    body: Vec<u8>,
    /// Chunked only: where the decoder stands, and the framing bytes and line bytes counted.
    state: Chunk,
    framing: usize,
    line: usize,
}

impl BodyDecoder {
    /// A decoder for a body framed as `kind`; a `Content-Length` over `max_body` is refused now.
    pub fn new(kind: BodyKind, max_body: usize) -> Result<BodyDecoder, ParseError> {
        let state = match kind {
            BodyKind::Length(n) if n > max_body => return Err(BodyTooLarge),
            BodyKind::Empty | BodyKind::Length(0) => Chunk::Done,
            BodyKind::Length(n) => Chunk::Data { left: n },
            BodyKind::Chunked => Chunk::Size { size: 0, digits: 0 },
        };
        Ok(BodyDecoder {
            kind,
            max_body,
            body: Vec::new(),
            state,
            framing: 0,
            line: 0,
        })
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// The decoded body so far (all of it once [`BodyDecoder::is_done`]).
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Framing bytes consumed so far (zero for a `Content-Length` body).
    pub fn framing_bytes(&self) -> usize {
        self.framing
    }

    /// Consumes the next bytes of the body from `input` and says how many it used: all of them
    /// until the body ends; the bytes after its end are left for the caller (the next message).
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, ParseError> {
        let mut pos = 0;
        while pos < input.len() && self.state != Chunk::Done {
            if let Chunk::Data { left } = self.state {
                let take = left.min(input.len() - pos);
                if let BodyKind::Length(n) = self.kind {
                    // Once a quarter of a known length has arrived, allocate the rest at once:
                    // no regrowth through ever larger blocks, and never more than four times
                    // what the client actually sent.
                    let have = self.body.len() + take;
                    if self.body.capacity() < n && have >= n / 4 {
                        self.body.reserve_exact(n - self.body.len());
                    }
                }
                self.body.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                self.state = match (left - take, self.kind) {
                    (0, BodyKind::Chunked) => Chunk::DataCr,
                    (0, _) => Chunk::Done,
                    (left, _) => Chunk::Data { left },
                };
                continue;
            }
            self.framing += 1;
            if self.framing > max_framing(self.max_body) {
                return Err(ParseError::FramingTooLarge);
            }
            self.state = self.step(input[pos])?;
            pos += 1;
        }
        Ok(pos)
    }

    /// One framing byte of a chunked body.
    fn step(&mut self, b: u8) -> Result<Chunk, ParseError> {
        let crlf_after_data = Malformed("missing CRLF after chunk data");
        match self.state {
            Chunk::Size { .. } | Chunk::SizeEnd { .. } | Chunk::Ext { .. } => {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE {
                    return Err(Malformed("chunk-size line too long"));
                }
            }
            _ => {}
        }
        Ok(match self.state {
            Chunk::Size { size, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let digit = char::from(b).to_digit(16).unwrap_or(0) as usize;
                    let size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(digit))
                        .ok_or(Malformed("chunk size overflows"))?;
                    Chunk::Size {
                        size,
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 && matches!(b, b'\r' | b';') => {
                    return Err(Malformed("empty chunk size"))
                }
                b' ' | b'\t' if digits > 0 => Chunk::SizeEnd { size },
                b';' => Chunk::Ext { size },
                b'\r' => Chunk::SizeLf { size },
                _ => return Err(Malformed("invalid chunk size")),
            },
            Chunk::SizeEnd { size } => match b {
                b' ' | b'\t' => Chunk::SizeEnd { size },
                b';' => Chunk::Ext { size },
                b'\r' => Chunk::SizeLf { size },
                _ => return Err(Malformed("invalid chunk size")),
            },
            Chunk::Ext { size } => match b {
                b'\r' => Chunk::SizeLf { size },
                b'\n' => return Err(Malformed("bare LF in chunk extension")),
                _ => Chunk::Ext { size },
            },
            Chunk::SizeLf { size } => {
                if b != b'\n' {
                    return Err(Malformed("invalid line ending after chunk size"));
                }
                self.line = 0;
                // body.len() never exceeds max_body, so the subtraction cannot underflow.
                if size > self.max_body - self.body.len() {
                    return Err(BodyTooLarge);
                }
                match size {
                    0 => Chunk::TrailerStart,
                    left => Chunk::Data { left },
                }
            }
            Chunk::Data { .. } | Chunk::Done => self.state,
            Chunk::DataCr if b == b'\r' => Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => Chunk::Size { size: 0, digits: 0 },
            Chunk::DataCr | Chunk::DataLf => return Err(crlf_after_data),
            Chunk::TrailerStart | Chunk::Trailer | Chunk::TrailerLf | Chunk::EndLf => {
                // Trailers are skipped unread, within their own bound.
                self.line += 1;
                if self.line > MAX_TRAILER_BYTES {
                    return Err(HeadTooLarge);
                }
                match (self.state, b) {
                    (Chunk::TrailerStart, b'\r') => Chunk::EndLf,
                    (Chunk::EndLf, b'\n') => Chunk::Done,
                    (Chunk::EndLf, _) => return Err(Malformed("invalid line ending in trailers")),
                    (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
                    (Chunk::TrailerLf, _) => {
                        return Err(Malformed("invalid line ending in trailers"))
                    }
                    (_, b'\r') => Chunk::TrailerLf,
                    (_, b'\n') => return Err(Malformed("bare LF in trailers")),
                    _ => Chunk::Trailer,
                }
            }
        })
    }
}

fn content_length(value: &[u8]) -> Result<usize, ParseError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Malformed("invalid Content-Length"));
    }
    // Only digits, so parsing can fail only on a length beyond anything we could buffer.
    str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(BodyTooLarge)
}

/// The comma-separated elements of a header value, trimmed; empty ones are kept so that
/// numeric and coding lists reject them.
fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim)
}

/// Strips optional whitespace (spaces and tabs, nothing else) from both ends.
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    trim_end(s)
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_BODY: usize = 1024;

    type Parsed = (Head, Vec<u8>, usize);

    /// Head and body of the request at the start of `buf`, and the bytes it took.
    fn parse_one(buf: &[u8]) -> Result<Option<Parsed>, ParseError> {
        let Some(head) = parse_head(buf, MAX_BODY)? else {
            return Ok(None);
        };
        let Some((body, used)) = parse_body(&buf[head.head_len..], head.body, MAX_BODY)? else {
            return Ok(None);
        };
        let total = head.head_len + used;
        Ok(Some((head, body, total)))
    }

    /// Parses `raw` whole and at every prefix: a prefix is incomplete until it holds the whole
    /// request, and from then on gives the same result.
    fn parse_every_split(raw: &[u8]) -> Parsed {
        let whole = parse_one(raw).unwrap().unwrap();
        for i in 0..raw.len() {
            match parse_one(&raw[..i]).unwrap() {
                None => assert!(i < whole.2, "prefix {i} of a {} byte request", whole.2),
                Some(got) => assert_eq!(got, whole, "prefix {i}"),
            }
        }
        whole
    }

    fn head(method: Method, path: &str, query: &str, body: BodyKind, head_len: usize) -> Head {
        Head {
            method,
            path: path.into(),
            query: query.into(),
            version: Version::Http11,
            keep: Keep::Alive,
            expect_continue: false,
            body,
            bearer: None,
            head_len,
        }
    }

    #[test]
    fn bearer_token_is_read_and_other_schemes_ignored() {
        let parse = |auth: &str| {
            let raw = format!("GET / HTTP/1.1\r\nAuthorization: {auth}\r\n\r\n");
            parse_head(raw.as_bytes(), 10).unwrap().unwrap().bearer
        };
        assert_eq!(parse("Bearer s3cret").as_deref(), Some("s3cret"));
        assert_eq!(parse("bearer  s3cret ").as_deref(), Some("s3cret"));
        assert_eq!(parse("Basic dXNlcjpwYXNz"), None);
        assert_eq!(parse("Bearer"), None);
        assert_eq!(parse("Bearer "), None);
    }

    #[test]
    fn get_with_query() {
        let raw = b"GET /discovery/fetchs?appid=a&appid=b&env=dev#frag HTTP/1.1\r\nHost: x\r\n\r\n";
        let (h, body, used) = parse_every_split(raw);
        let want = head(
            Method::Get,
            "/discovery/fetchs",
            "appid=a&appid=b&env=dev",
            BodyKind::Empty,
            raw.len(),
        );
        assert_eq!(h, want);
        assert!(body.is_empty());
        assert_eq!(used, raw.len());
    }

    #[test]
    fn post_with_content_length() {
        let raw = b"POST /discovery/register HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16\r\nConnection: Close\r\n\r\nappid=a&env=dev&";
        let (h, body, used) = parse_every_split(raw);
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.path, "/discovery/register");
        assert_eq!(h.query, "");
        assert_eq!(h.body, BodyKind::Length(16));
        assert_eq!(h.keep, Keep::Close);
        assert_eq!(body, b"appid=a&env=dev&");
        assert_eq!(used, raw.len());
    }

    #[test]
    fn post_chunked_with_extensions_and_trailers() {
        let raw = b"POST /x?y=1 HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n5;name=val\r\nappid\r\nA ; a=b;c\r\n=abc&env=d\r\n0;last\r\nX-Trailer: 1\r\nY: 2\r\n\r\n";
        let (h, body, used) = parse_every_split(raw);
        assert_eq!(h.body, BodyKind::Chunked);
        assert_eq!(h.query, "y=1");
        assert_eq!(body, b"appid=abc&env=d");
        assert_eq!(used, raw.len());
    }

    #[test]
    fn chunked_without_trailers() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let (_, body, used) = parse_every_split(raw);
        assert_eq!(body, b"abc");
        assert_eq!(used, raw.len());
    }

    #[test]
    fn http10_keep_alive_rules() {
        let raw = b"GET /a HTTP/1.0\r\n\r\n";
        let (h, _, _) = parse_every_split(raw);
        assert_eq!(h.version, Version::Http10);
        assert_eq!(h.keep, Keep::Close);

        let raw = b"GET /a HTTP/1.0\r\nConnection: foo, Keep-Alive\r\nExpect: 100-continue\r\n\r\n";
        let (h, _, _) = parse_every_split(raw);
        assert_eq!(h.version, Version::Http10);
        assert_eq!(h.keep, Keep::Alive);
        assert!(!h.expect_continue);

        let raw =
            b"GET /a HTTP/1.1\r\nConnection: keep-alive\r\nConnection: upgrade, CLOSE\r\n\r\n";
        let (h, _, _) = parse_every_split(raw);
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.keep, Keep::Close);
    }

    #[test]
    fn expect_continue() {
        let raw = b"POST /a HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc";
        let (h, body, _) = parse_every_split(raw);
        assert!(h.expect_continue);
        assert_eq!(body, b"abc");
        // Known from the head alone, so `100 Continue` can go out before any body byte arrives.
        let early = parse_head(&raw[..raw.len() - 3], MAX_BODY)
            .unwrap()
            .unwrap();
        assert!(early.expect_continue);
    }

    #[test]
    fn pipelined_requests() {
        let first = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi".to_vec();
        let second = b"GET /b?c=d HTTP/1.1\r\n\r\n";
        let raw = [first.as_slice(), second].concat();
        let (h1, body1, used1) = parse_every_split(&raw);
        assert_eq!(h1.path, "/a");
        assert_eq!(body1, b"hi");
        assert_eq!(used1, first.len());
        let (h2, body2, used2) = parse_every_split(&raw[used1..]);
        assert_eq!(
            h2,
            head(Method::Get, "/b", "c=d", BodyKind::Empty, second.len())
        );
        assert!(body2.is_empty());
        assert_eq!(used2, second.len());
    }

    #[test]
    fn methods_and_repeated_content_length() {
        let (h, _, _) = parse_every_split(b"HEAD / HTTP/1.1\r\n\r\n");
        assert_eq!(h.method, Method::Head);
        let (h, _, _) = parse_every_split(b"DELETE / HTTP/1.1\r\n\r\n");
        assert_eq!(h.method, Method::Other);
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok";
        let (h, body, _) = parse_every_split(raw);
        assert_eq!(h.body, BodyKind::Length(2));
        assert_eq!(body, b"ok");
    }

    fn head_err(raw: &[u8]) -> ParseError {
        parse_head(raw, MAX_BODY).unwrap_err()
    }

    fn is_malformed(e: ParseError) -> bool {
        matches!(e, Malformed(_))
    }

    #[test]
    fn bad_request_lines() {
        for raw in [
            &b"GE T / HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
            b"GET http://host/ HTTP/1.1\r\n\r\n",
            b"GET * HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(
                is_malformed(head_err(raw)),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn bad_body_headers() {
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                is_malformed(head_err(raw)),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    /// A GET whose head is exactly `len` bytes long, padded in one header value.
    fn padded_head(len: usize) -> Vec<u8> {
        let mut raw = b"GET / HTTP/1.1\r\nX: ".to_vec();
        raw.resize(len - 4, b'a');
        raw.extend_from_slice(b"\r\n\r\n");
        raw
    }

    #[test]
    fn head_size_limit() {
        let fits = padded_head(MAX_HEAD_BYTES);
        assert_eq!(
            parse_head(&fits, 0).unwrap().unwrap().head_len,
            MAX_HEAD_BYTES
        );
        let over = padded_head(MAX_HEAD_BYTES + 1);
        assert_eq!(head_err(&over), HeadTooLarge);
        // Never terminated: refused once the limit is buffered, not only when the head ends.
        let mut endless = b"GET / HTTP/1.1\r\nX: ".to_vec();
        endless.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse_head(&endless[..MAX_HEAD_BYTES - 1], 0), Ok(None));
        assert_eq!(head_err(&endless), HeadTooLarge);
    }

    #[test]
    fn too_many_headers() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            raw.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        let mut fits = raw.clone();
        fits.extend_from_slice(b"\r\n");
        assert!(parse_head(&fits, 0).unwrap().is_some());
        raw.extend_from_slice(b"One-More: v\r\n\r\n");
        assert_eq!(head_err(&raw), HeadTooLarge);
    }

    #[test]
    fn body_over_limit() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n";
        assert_eq!(head_err(raw), BodyTooLarge);
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert_eq!(head_err(raw), BodyTooLarge);
        assert_eq!(
            parse_body(b"", BodyKind::Length(MAX_BODY + 1), MAX_BODY),
            Err(BodyTooLarge)
        );
        // The second chunk's size line alone pushes the total over; its data never arrives.
        let chunked = b"200\r\n"
            .iter()
            .chain(&[b'a'; 0x200])
            .chain(b"\r\n201\r\n");
        let chunked: Vec<u8> = chunked.copied().collect();
        assert_eq!(
            parse_body(&chunked, BodyKind::Chunked, MAX_BODY),
            Err(BodyTooLarge)
        );
        // Exactly at the limit is fine.
        let mut exact = b"400\r\n".to_vec();
        exact.resize(exact.len() + MAX_BODY, b'a');
        exact.extend_from_slice(b"\r\n0\r\n\r\n");
        let (body, used) = parse_body(&exact, BodyKind::Chunked, MAX_BODY)
            .unwrap()
            .unwrap();
        assert_eq!((body.len(), used), (MAX_BODY, exact.len()));
    }

    fn chunked_err(raw: &[u8]) -> ParseError {
        parse_body(raw, BodyKind::Chunked, MAX_BODY).unwrap_err()
    }

    #[test]
    fn bad_chunk_framing() {
        for raw in [
            &b"x\r\n"[..],
            b"\r\n",
            b" 5\r\n",
            b"-5\r\n",
            b"5x\r\n",
            b"5\n\r\n",
            b"ffffffffffffffffffffffff\r\n",
            b"3\r\nabc\n0\r\n\r\n",
        ] {
            assert!(
                is_malformed(chunked_err(raw)),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        // A CR after the data may be the start of the CRLF.
        assert_eq!(
            parse_body(b"3\r\nabc\r", BodyKind::Chunked, MAX_BODY),
            Ok(None)
        );
        assert_eq!(
            chunked_err(b"3\r\nabcX"),
            Malformed("missing CRLF after chunk data")
        );
        assert_eq!(
            chunked_err(b"3\r\nabc\rX"),
            Malformed("missing CRLF after chunk data")
        );
        assert!(is_malformed(chunked_err(b"zz\r\n")));
        let long_ext = [b"5;".as_slice(), &[b'e'; MAX_CHUNK_LINE]].concat();
        assert!(is_malformed(chunked_err(&long_ext)));
        let long_trailer = [b"0\r\nX: ".as_slice(), &[b't'; MAX_TRAILER_BYTES + 1]].concat();
        assert_eq!(
            parse_body(&long_trailer, BodyKind::Chunked, 1 << 20),
            Err(HeadTooLarge)
        );
        for raw in [
            &b"0\r\nX: 1\n"[..],
            b"0\r\n\rX",
            b"0\r\nX\rY",
            b"5;a\nb\r\n",
        ] {
            assert!(
                is_malformed(chunked_err(raw)),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    /// A chunked body of `data` in one-byte chunks, each padded with a long extension.
    fn padded_chunks(data: &[u8], ext: usize) -> Vec<u8> {
        let mut raw = Vec::new();
        for &b in data {
            raw.extend_from_slice(b"1;");
            raw.resize(raw.len() + ext, b'x');
            raw.extend_from_slice(b"\r\n");
            raw.push(b);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        raw
    }

    #[test]
    fn chunked_framing_is_bounded_by_twice_the_body_limit() {
        let max_body = 16 * 1024;
        // 1 byte of data per 40 bytes of framing: within 2 x max_body only for short bodies.
        let fits = padded_chunks(&[b'a'; 100], 32);
        let (body, used) = parse_body(&fits, BodyKind::Chunked, max_body)
            .unwrap()
            .unwrap();
        assert_eq!((body.len(), used), (100, fits.len()));
        let padded = padded_chunks(&[b'a'; 2000], 32);
        assert!(padded.len() - 2000 > max_framing(max_body));
        assert_eq!(
            parse_body(&padded, BodyKind::Chunked, max_body),
            Err(ParseError::FramingTooLarge)
        );
        // Refused once the framing crosses the bound, not at the end of the body.
        let mut d = BodyDecoder::new(BodyKind::Chunked, max_body).unwrap();
        let mut fed = 0;
        let err = padded
            .chunks(100)
            .find_map(|c| {
                fed += c.len();
                d.feed(c).err()
            })
            .unwrap();
        assert_eq!(err, ParseError::FramingTooLarge);
        assert!(fed <= max_framing(max_body) + 2000 + 100, "{fed}");
    }

    /// Feeds `raw` to a decoder in pieces of `step` bytes: the same verdict and body as one
    /// piece, and no byte taken past the body's end.
    fn feed_split(
        raw: &[u8],
        kind: BodyKind,
        step: usize,
    ) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
        let mut d = BodyDecoder::new(kind, MAX_BODY)?;
        let mut used = 0;
        for piece in raw.chunks(step.max(1)) {
            let n = d.feed(piece)?;
            used += n;
            if d.is_done() {
                assert!(n <= piece.len());
                return Ok(Some((d.into_body(), used)));
            }
            assert_eq!(n, piece.len(), "an unfinished body takes every byte");
        }
        Ok(None)
    }

    #[test]
    fn decoding_is_the_same_however_the_bytes_are_split() {
        let raws: [&[u8]; 4] = [
            b"5;name=val\r\nappid\r\nA ; a=b;c\r\n=abc&env=d\r\n0;last\r\nX-Trailer: 1\r\nY: 2\r\n\r\nGET / HTTP/1.1\r\n",
            b"3\r\nabc\r\n0\r\n\r\nnext",
            b"3\r\nabcX",
            b"400\r\n",
        ];
        for raw in raws {
            let whole = feed_split(raw, BodyKind::Chunked, raw.len());
            for step in 1..raw.len() {
                assert_eq!(
                    feed_split(raw, BodyKind::Chunked, step),
                    whole,
                    "step {step}"
                );
            }
        }
        let whole = feed_split(b"abcdefg", BodyKind::Length(5), 7);
        assert_eq!(whole, Ok(Some((b"abcde".to_vec(), 5))));
        for step in 1..7 {
            assert_eq!(feed_split(b"abcdefg", BodyKind::Length(5), step), whole);
        }
    }

    #[test]
    fn a_length_body_is_allocated_in_proportion_to_what_arrived() {
        let n = 1 << 20;
        let mut d = BodyDecoder::new(BodyKind::Length(n), n).unwrap();
        // One byte announced as a megabyte does not make us allocate the megabyte.
        assert_eq!(d.feed(b"x").unwrap(), 1);
        assert!(d.body.capacity() < 64 * 1024, "{}", d.body.capacity());
        // A quarter of it does, once, for the rest.
        d.feed(&vec![b'y'; n / 4]).unwrap();
        assert_eq!(d.body.capacity(), n);
        d.feed(&vec![b'z'; n]).unwrap();
        assert!(d.is_done());
        assert_eq!(d.into_body().capacity(), n);
    }

    #[test]
    fn a_dribbled_chunked_body_is_decoded_in_linear_time() {
        // 1-byte chunks fed 1 byte at a time: each byte is looked at once. The old decoder
        // re-parsed the buffer from its start after every read, quadratic in the body.
        let data = vec![b'z'; MAX_BODY];
        let raw = padded_chunks(&data, 0);
        let mut d = BodyDecoder::new(BodyKind::Chunked, MAX_BODY).unwrap();
        let mut used = 0;
        for b in raw.chunks(1) {
            used += d.feed(b).unwrap();
        }
        assert!(d.is_done());
        assert_eq!(used, raw.len());
        assert_eq!(d.framing_bytes(), raw.len() - MAX_BODY);
        assert_eq!(d.into_body(), data);
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds: [&[u8]; 3] = [
            b"POST /a?b=c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nabcde\r\n0\r\nT: 1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            b"\r\n1\r\n0;\r\n\r\n\r\n",
        ];
        let alphabet = b"\r\n :;,0123456789abcdefABCDEF/?#GETPOSTHTTP/1.1\x00\xff";
        for round in 0..20_000 {
            let mut raw = seeds[round % seeds.len()].to_vec();
            for _ in 0..=next() % 4 {
                let at = (next() as usize) % (raw.len() + 1);
                let byte = if next() % 2 == 0 {
                    alphabet[(next() as usize) % alphabet.len()]
                } else {
                    next() as u8
                };
                match next() % 3 {
                    0 => raw.insert(at, byte),
                    1 if at < raw.len() => raw[at] = byte,
                    _ => raw.truncate(at),
                }
            }
            let _ = parse_one(&raw);
            for kind in [BodyKind::Empty, BodyKind::Length(7), BodyKind::Chunked] {
                let _ = parse_body(&raw, kind, 16);
            }
        }
    }
}
