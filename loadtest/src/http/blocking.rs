//! One-shot blocking requests on a plain std socket, for control steps that
//! run outside the load threads (readiness checks, park's set-up and change).

use std::io::{self, Read, Write};
use std::net::SocketAddrV4;
use std::time::Duration;

use super::reader::Reader;

/// Sends `req` on a new connection and reads one answer. Returns status and
/// body. Every step (connect, write, each read) is bounded by `timeout`.
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
    let mut reader = Reader::default();
    let mut chunk = [0u8; 16384];
    let mut eof = false;
    // After the end of the stream `next` answers or fails, so this ends.
    loop {
        if let Some(r) = reader.next(eof)? {
            return Ok((r.status, reader.body().to_vec()));
        }
        let n = match s.read(&mut chunk) {
            // A socket read with a timeout fails so after the process was stopped and continued.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        eof = n == 0;
        reader.extend(&chunk[..n]);
    }
}
