//! Form decoding of a register body (repeated `addrs`, JSON `metadata`): `Params::parse`, and
//! `Params::parse` plus reading every field into a `Registration` as the register handler does.
//! The baseline is a split-based decoder into `HashMap<String, Vec<String>>` (the shape of Go's
//! `url.Values`), read with `serde_json` for the metadata; `serde_urlencoded` is no option, as
//! it rejects repeated keys.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use discovery::registry::instance::Registration;
use discovery::wire::params::Params;
use discovery::wire::register::Register;
use discovery::wire::{Limits, Rules};

const BODY: &[u8] = b"region=sh&zone=sh001&env=prod&appid=main.account.account-service\
&hostname=account-service-7d9f8b6c4-00042&addrs=http%3A%2F%2F10.0.0.43%3A8000\
&addrs=grpc%3A%2F%2F10.0.0.43%3A9000&version=v1.4.2-20261120&status=1\
&metadata=%7B%22cluster%22%3A%22c1%22%2C%22color%22%3A%22blue%22%2C%22weight%22%3A%2210%22%7D\
&replication=false&latest_timestamp=0";

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes `s`, `+` as space; invalid escapes are kept as written.
fn naive_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Values = HashMap<String, Vec<String>>;

/// Query pairs first, then body pairs, each key's values in wire order.
fn naive_decode(query: &[u8], body: &[u8]) -> Values {
    let mut values = Values::new();
    for part in [body, query] {
        let text = String::from_utf8_lossy(part);
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            values
                .entry(naive_unescape(k))
                .or_default()
                .push(naive_unescape(v));
        }
    }
    values
}

fn first<'a>(v: &'a Values, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(|l| l.first())
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

fn naive_registration(v: &Values) -> Registration {
    let required = |key: &str| first(v, key).expect("required").to_owned();
    let ts = |key: &str| {
        first(v, key)
            .map(|t| t.parse::<i64>().unwrap())
            .filter(|t| *t > 0)
    };
    let metadata = first(v, "metadata").map(|m| {
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(m).unwrap();
        map.into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k.into_boxed_str(), v.into_boxed_str())
            })
            .collect()
    });
    let status = required("status").parse().unwrap();
    let _replication: bool = first(v, "replication").is_some_and(|r| r.parse().unwrap());
    Registration {
        region: first(v, "region").unwrap_or_default().to_owned(),
        zone: required("zone"),
        env: required("env"),
        appid: required("appid"),
        hostname: required("hostname"),
        addrs: v
            .get("addrs")
            .into_iter()
            .flatten()
            .flat_map(|a| a.split(','))
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect(),
        version: first(v, "version").unwrap_or_default().to_owned(),
        metadata,
        status,
        reg_ts: ts("reg_timestamp"),
        dirty_ts: ts("dirty_timestamp"),
        latest_ts: ts("latest_timestamp"),
        ..Default::default()
    }
}

fn ours_registration(p: &Params) -> Registration {
    let rules = Rules {
        now_ns: 0,
        max_skew_ns: i64::MAX,
        limits: Limits::DEFAULT,
    };
    let reg = Register::from_params(p, &rules).unwrap().reg;
    p.bool("replication").unwrap();
    reg
}

fn bench(c: &mut Criterion) {
    let ours = ours_registration(&Params::parse(b"", BODY).unwrap());
    let naive = naive_registration(&naive_decode(b"", BODY));
    assert_eq!(format!("{ours:?}"), format!("{naive:?}"));
    assert_eq!(ours.addrs.len(), 2);
    assert_eq!(ours.metadata.as_ref().map(Vec::len), Some(3));

    let mut g = c.benchmark_group("form_decode");
    g.bench_function("decode/ours", |b| {
        b.iter(|| Params::parse(b"", black_box(BODY)).unwrap())
    });
    g.bench_function("decode/naive", |b| {
        b.iter(|| naive_decode(b"", black_box(BODY)))
    });
    g.bench_function("decode_and_read/ours", |b| {
        b.iter(|| ours_registration(&Params::parse(b"", black_box(BODY)).unwrap()))
    });
    g.bench_function("decode_and_read/naive", |b| {
        b.iter(|| naive_registration(&naive_decode(b"", black_box(BODY))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench
}
criterion_main!(benches);
