//! `ceiling --park` holds polls until a register, then answers every held one with its body.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Ceiling(Child);

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn connect(port: u16) -> TcpStream {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() < end => {
                assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
                std::thread::yield_now();
            }
            Err(e) => panic!("ceiling never listened: {e}"),
        }
    }
}

/// Reads one whole answer of `len` body bytes; returns it.
fn answer(s: &mut TcpStream, body_len: usize) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            if got.len() >= head_end + 4 + body_len {
                return text;
            }
        }
        let n = s.read(&mut chunk).expect("read an answer");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_held_poll_is_answered_by_the_next_register() {
    let dir = std::env::temp_dir().join(format!("ceiling-park-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let body = r#"{"code":0,"message":"0","ttl":1,"data":{"latest_timestamp":2}}"#;
    std::fs::write(dir.join("body.json"), body).expect("body");
    let port = loadtest::sys::free_port().expect("free port");
    let _ceiling = Ceiling(
        Command::new(env!("CARGO_BIN_EXE_ceiling"))
            .args([
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--threads",
                "1",
                "--park",
            ])
            .arg("--body")
            .arg(dir.join("body.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ceiling"),
    );
    let mut poll = connect(port);
    poll.write_all(b"GET /discovery/poll?appid=a HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send poll");
    // An ordinary request on another connection is answered at once, and the poll still is not.
    let mut other = connect(port);
    other
        .write_all(b"GET /discovery/fetch?appid=a HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send fetch");
    assert!(answer(&mut other, body.len()).ends_with(body));
    poll.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let held = poll.read(&mut byte);
    assert!(
        matches!(&held, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the poll was answered before any register: {held:?}"
    );
    poll.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    other
        .write_all(
            b"POST /discovery/register HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nappid=a",
        )
        .expect("send register");
    assert!(answer(&mut other, body.len()).ends_with(body));
    let text = answer(&mut poll, body.len());
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with(body), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
