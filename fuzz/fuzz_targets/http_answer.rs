//! The peer client's answer framing (`AnswerFramer`): a peer's bytes, whole or in pieces.
//!
//! Input: byte 0 picks the body limit, byte 1 seeds the read sizes, the rest is what a peer
//! answers. Checked: no panic; the same answer (or failure) however the bytes are split; the body
//! within its limit.

#![no_main]

use discovery::http::client::AnswerFramer;
use libfuzzer_sys::fuzz_target;

/// Status, `ours`, keep-alive and body of a framed answer; `Err` a failure; `Ok(None)` more wanted.
type Framed = Result<Option<(u16, bool, bool, Vec<u8>)>, ()>;

fn frame(raw: &[u8], sizes: &mut dyn Iterator<Item = usize>, max: usize) -> Framed {
    let mut f = AnswerFramer::new(max);
    let mut at = 0;
    while at < raw.len() {
        let n = sizes.next().unwrap_or(raw.len()).min(raw.len() - at);
        match f.push(&raw[at..at + n]) {
            Ok(Some((a, keep))) => {
                assert!(a.body.len() <= max);
                return Ok(Some((a.status, a.ours, keep, a.body)));
            }
            Ok(None) => {}
            Err(_) => return Err(()),
        }
        at += n;
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = 16 + usize::from(data[0]) * 8;
    let mut seed = u32::from(data[1]) | 0x100;
    let raw = &data[2..];
    let whole = frame(raw, &mut std::iter::once(raw.len()), max);
    let mut pieces = std::iter::from_fn(|| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        Some(1 + (seed % 64) as usize)
    });
    assert_eq!(whole, frame(raw, &mut pieces, max));
});
