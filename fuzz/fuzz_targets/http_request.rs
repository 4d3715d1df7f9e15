//! Request framing as a connection drives it: heads parsed from what is buffered, bodies fed to
//! a `BodyDecoder` as reads arrive, pipelined requests one after another.
//!
//! Input: byte 0 picks the body limit, bytes 1-2 seed the read sizes, the rest is what a client
//! sends. Checked: no panic; the same requests and verdict whether read whole or in pieces;
//! consumed ≤ input; body ≤ the limit; chunked framing ≤ its bound; never a request that carried
//! both Content-Length and Transfer-Encoding.

#![no_main]

use discovery::http::request::{
    max_framing, parse_head, BodyDecoder, Head, ParseError, MAX_HEAD_BYTES,
};
use libfuzzer_sys::fuzz_target;

/// Requests framed before the input ended, and why framing stopped (`None`: it wants more).
type Outcome = (Vec<(Head, Vec<u8>)>, Option<ParseError>);

fn run(raw: &[u8], reads: &mut dyn Iterator<Item = usize>, max_body: usize) -> Outcome {
    let mut buf = Vec::new();
    let mut start = 0;
    let mut fed = 0;
    let mut framed = Vec::new();
    let mut body: Option<(Head, BodyDecoder)> = None;
    while fed < raw.len() {
        let n = reads.next().unwrap_or(raw.len()).min(raw.len() - fed);
        buf.extend_from_slice(&raw[fed..fed + n]);
        fed += n;
        loop {
            match body.take() {
                None => match parse_head(&buf[start..], max_body) {
                    Ok(Some(head)) => {
                        assert!(head.head_len <= MAX_HEAD_BYTES);
                        assert_no_cl_and_te(&buf[start..start + head.head_len]);
                        start += head.head_len;
                        match BodyDecoder::new(head.body, max_body) {
                            Ok(d) => body = Some((head, d)),
                            Err(e) => return (framed, Some(e)),
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return (framed, Some(e)),
                },
                Some((head, mut d)) => {
                    let used = match d.feed(&buf[start..]) {
                        Ok(used) => used,
                        Err(e) => return (framed, Some(e)),
                    };
                    start += used;
                    assert!(start <= buf.len());
                    assert!(d.framing_bytes() <= max_framing(max_body));
                    if !d.is_done() {
                        body = Some((head, d));
                        break;
                    }
                    let b = d.into_body();
                    assert!(b.len() <= max_body);
                    framed.push((head, b));
                }
            }
        }
    }
    (framed, None)
}

/// A head that was accepted never carried both framings (request smuggling).
fn assert_no_cl_and_te(head: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(head).is_err() {
        return;
    }
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
    };
    assert!(!(has("content-length") && has("transfer-encoding")));
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max_body = 16 + usize::from(data[0]) * 8;
    let mut seed = u32::from(data[1]) << 8 | u32::from(data[2]) | 1;
    let raw = &data[3..];
    let whole = run(raw, &mut std::iter::once(raw.len()), max_body);
    let mut pieces = std::iter::from_fn(|| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        Some(1 + (seed % 64) as usize)
    });
    let split = run(raw, &mut pieces, max_body);
    assert_eq!(whole, split, "the verdict depends on how the bytes arrived");
    let consumed: usize = whole.0.iter().map(|(h, _)| h.head_len).sum();
    assert!(consumed <= raw.len());
});
