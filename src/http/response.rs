//! Writing responses straight into the connection's output buffer. The head is written first
//! with a fixed-width `Content-Length` that is filled in once the body is there, so a body built
//! from prepared snapshot bytes is copied exactly once.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

pub use super::request::{Keep, Version};

/// What this server calls itself in `Server`. Peers that answer with it are ours and take
/// batched replication; see [`is_ours`].
pub const SERVER_NAME: &str = "discovery-rs";

/// True when a `Server` header value names this implementation.
pub fn is_ours(server: &str) -> bool {
    server.starts_with(SERVER_NAME)
}

/// Width reserved for the Content-Length digits (bodies are far below 10^12 bytes).
const LENGTH_DIGITS: usize = 12;

/// How the connection goes on after this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Whether the connection stays open.
    pub keep: Keep,
    /// The version to answer in (HTTP/1.0 keep-alive must be announced).
    pub version: Version,
}

/// A response head waiting for its body; see [`begin`].
#[derive(Debug)]
#[must_use = "call finish() once the body is written"]
pub struct Open {
    length_at: usize,
    body_at: usize,
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes a status line and headers to `out`; the body follows, then [`Open::finish`].
pub fn begin(out: &mut Vec<u8>, status: u16, content_type: &str, framing: Framing) -> Open {
    out.extend_from_slice(match framing.version {
        Version::Http10 => b"HTTP/1.0 ",
        Version::Http11 => b"HTTP/1.1 ",
    });
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER_NAME.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    match (framing.keep, framing.version) {
        (Keep::Close, _) => out.extend_from_slice(b"\r\nConnection: close"),
        (Keep::Alive, Version::Http10) => out.extend_from_slice(b"\r\nConnection: keep-alive"),
        (Keep::Alive, Version::Http11) => {}
    }
    out.extend_from_slice(b"\r\nContent-Length: ");
    let length_at = out.len();
    out.extend_from_slice(&[b' '; LENGTH_DIGITS]);
    out.extend_from_slice(b"\r\n\r\n");
    Open {
        length_at,
        body_at: out.len(),
    }
}

impl Open {
    /// Fills in the Content-Length of the body written since [`begin`]. The digits are
    /// right-aligned; the spaces before them are optional whitespace HTTP allows there.
    pub fn finish(self, out: &mut [u8]) {
        let len = out.len() - self.body_at;
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(len).as_bytes();
        let end = self.length_at + LENGTH_DIGITS;
        out[end - digits.len()..end].copy_from_slice(digits);
    }
}

/// A whole plain-text response (errors of the HTTP layer itself).
pub fn plain(out: &mut Vec<u8>, status: u16, text: &str, framing: Framing) {
    let open = begin(out, status, "text/plain; charset=utf-8", framing);
    out.extend_from_slice(text.as_bytes());
    open.finish(out);
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

thread_local! {
    /// The Date header changes once a second; each core formats it once per second.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn with_date(f: impl FnOnce(&[u8])) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, http_date(secs));
        }
        f(&cached.1);
    });
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    let mut out = [0u8; 29];
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    out[0..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(day));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[month - 1]);
    out[11] = b' ';
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(rem / 3600));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(rem / 60 % 60));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(rem % 60));
    out[25..29].copy_from_slice(b" GMT");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_http_dates() {
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn content_length_is_patched_in() {
        let mut out = Vec::new();
        let open = begin(
            &mut out,
            200,
            "application/json",
            Framing {
                keep: Keep::Close,
                version: Version::Http11,
            },
        );
        out.extend_from_slice(b"{\"code\":0}");
        open.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.contains("Content-Length:           10\r\n\r\n{\"code\":0}"));
    }
}
