//! The `/discovery/replicate` handler itself, not only its decoders: each input is a batch body
//! handled by a fresh node (`ReplicateHarness`: the default config, no peers, `demo.service`
//! h1 and h2 and `demo.big` b1 with 48 KiB of metadata registered), and its response read as the
//! sending peer reads it.
//!
//! Checked: no panic; the response frames as the peers' client frames it (HTTP 200, ours); the
//! body is JSON in the envelope, refused whole (-400, no `data`) exactly when the batch has more
//! than `limits.maxBatchLines` lines, else code 0 with one result per non-empty line, each
//! `{"code":N}` with N one of a write's codes (0, -400, -404, -409) and only a -409 carrying
//! an instance (an object); the body within the bound [`max_body`] derives from
//! `api/replicate.rs` and `api/answer.rs`; and a time budget per input that grows linearly
//! with its size (run with a large `-max_len`). An input over budget is timed again, on a fresh
//! node, before it counts, so a stall of the machine is no finding.

#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use discovery::config::{Config, Overrides};
use discovery::fuzzing::ReplicateHarness;
use discovery::http::client::parse_answer;
use discovery::wire::replicate::decode_answer;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use serde_json::Value;

/// Instances are echoed while the results hold fewer bytes than this plus
/// `ECHO_PER_REQUEST_BYTE` per byte of the request (`api/replicate.rs`).
const ECHO_FLOOR_BYTES: usize = 64 * 1024;
const ECHO_PER_REQUEST_BYTE: usize = 4;
/// The most one result adds besides an echoed instance: its separator and `{"code":-409}`
/// (every ecode is 0 or a sign and three digits, `error.rs`).
const RESULT_BYTES: usize = 14;
/// The envelope around the results: `{"code":0,"message":"0","ttl":1,"data":[`, `]}`.
const ENVELOPE_BYTES: usize = 42;
/// What an echo adds to its result besides the instance: `,"data":`.
const ECHO_KEY_BYTES: usize = 8;

/// The codes one replicated write can be answered with.
const LINE_CODES: [i64; 4] = [0, -400, -404, -409];

/// The largest body an accepted batch of `input` bytes in `lines` lines may be answered with,
/// `largest_echo` being the longest instance the answer carries. `write_batch` checks the budget
/// before it writes an instance, and writes that instance whole: the results up to it stay
/// under the budget, the instance that crosses it may be any size, and no instance follows it.
fn max_body(input: usize, lines: usize, largest_echo: Option<usize>) -> usize {
    ENVELOPE_BYTES
        + ECHO_FLOOR_BYTES
        + ECHO_PER_REQUEST_BYTE * input
        + RESULT_BYTES * lines
        + largest_echo.map_or(0, |e| ECHO_KEY_BYTES + e)
}

thread_local! {
    /// The preset node, built once (from the embedded default config); every input is handled
    /// by a fresh fork of it.
    static HARNESS: ReplicateHarness = ReplicateHarness::new(
        &Config::load(None, &Overrides::default()).expect("default config"),
    )
    .expect("the harness's own instances register");
}

/// Handles `data` on `node`; returns the response and how long the handler took.
fn timed(node: &ReplicateHarness, data: &[u8]) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let response = node.batch(data);
    (response, started.elapsed())
}

/// A JSON object, its members kept as the exact text the server wrote.
type Object = HashMap<String, Box<RawValue>>;

/// An object's `code`, which must be an integer.
fn code(o: &Object) -> i64 {
    let text = o.get("code").expect("a code").get();
    text.parse()
        .unwrap_or_else(|_| panic!("code {text} is not an integer"))
}

fuzz_target!(|data: &[u8]| HARNESS.with(|node| check(node, data)));

fn check(node: &ReplicateHarness, data: &[u8]) {
    let budget = Duration::from_millis(100) + Duration::from_micros(5) * data.len() as u32;
    let (response, mut took) = timed(node, data);
    if took >= budget {
        // A stall of a loaded machine is not twice in a row; a slow path is. (Each run starts
        // from the preset state.)
        took = took.min(timed(node, data).1);
    }
    assert!(took < budget, "{} bytes took {took:?}", data.len());

    let (answer, _) = parse_answer(&response)
        .expect("the response frames")
        .expect("the response is whole");
    assert_eq!((answer.status, answer.ours), (200, true));
    let body = answer.body;
    serde_json::from_slice::<Value>(&body).expect("the body is JSON");
    let envelope: Object = serde_json::from_slice(&body).expect("the body is an object");
    let lines = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    if lines > node.max_batch_lines() {
        assert_eq!(code(&envelope), -400, "{lines} lines");
        assert!(!envelope.contains_key("data"));
        assert!(body.len() <= max_body(data.len(), lines, None));
        return;
    }
    assert_eq!(code(&envelope), 0);
    let results: Vec<Object> = serde_json::from_str(envelope.get("data").expect("data").get())
        .expect("data is an array of objects");
    assert_eq!(results.len(), lines);
    let mut largest_echo = None;
    for r in &results {
        let code = code(r);
        assert!(LINE_CODES.contains(&code), "code {code}");
        if let Some(inst) = r.get("data") {
            assert_eq!(code, -409, "only a conflict carries an instance");
            assert!(serde_json::from_str::<Value>(inst.get()).is_ok_and(|v| v.is_object()));
            largest_echo = largest_echo.max(Some(inst.get().len()));
        }
        assert!(
            r.keys().all(|k| k == "code" || k == "data"),
            "{:?}",
            r.keys()
        );
    }
    let bound = max_body(data.len(), lines, largest_echo);
    assert!(
        body.len() <= bound,
        "{} bytes answered for {} bytes in {lines} lines (bound {bound})",
        body.len(),
        data.len()
    );
    // What the sending peer reads of it.
    assert_eq!(decode_answer(&body).len(), lines);
}
