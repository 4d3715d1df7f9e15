//! Every `[limits]` bound on the real binary: at the limit a request is served, past it the
//! answer is -400 naming the key, counted in `discovery_limit_refused_total`; and the
//! answers that used to grow with something other than the request stay small.

mod common;

use common::{ident, instance, reg, Setup};

fn assert_limit(r: &common::Response, key: &str) {
    assert_eq!(r.code(), -400, "{}", r.text());
    assert!(r.message().contains(key), "{}", r.text());
}

fn appids(n: usize) -> String {
    (0..n)
        .map(|i| format!("app{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn appid_lists_are_bounded() {
    let s = Setup::new().raw_table("limits", "maxAppids = 1000").start();
    s.register(&reg("app0", "h1"));
    let fetchs = |n| {
        s.get(&format!(
            "/discovery/fetchs?env=dev&status=1&appid={}",
            appids(n)
        ))
    };
    assert_eq!(fetchs(1000).code(), 0);
    assert_limit(&fetchs(1001), "limits.maxAppids (1000)");
    let polls = |n: usize| {
        let ts = vec!["0"; n].join(",");
        s.get(&format!(
            "/discovery/polls?env=dev&hostname=c&appid={}&latest_timestamp={ts}",
            appids(n)
        ))
    };
    assert_limit(&polls(1001), "maxAppids");
    assert_eq!(polls(3).code(), 0);
    assert_eq!(s.metric("discovery_limit_refused_total"), 2);
}

#[test]
fn addresses_and_metadata_are_bounded() {
    let s = Setup::new()
        .raw_table(
            "limits",
            "maxAddrs = 3\nmaxMetadataKeys = 4\nmaxMetadataBytes = 64",
        )
        .start();
    let addrs = |n: usize| {
        (0..n).fold(reg("a", "h1").without("addrs"), |f, i| {
            f.add("addrs", &format!("http://10.0.0.{i}:80"))
        })
    };
    assert_eq!(s.post("/discovery/register", &addrs(3)).code(), 0);
    assert_limit(
        &s.post("/discovery/register", &addrs(4)),
        "limits.maxAddrs (3)",
    );
    let meta = |pairs: usize, len: usize| {
        let body: Vec<String> = (0..pairs)
            .map(|i| format!("\"k{i}\":\"{}\"", "v".repeat(len)))
            .collect();
        format!("{{{}}}", body.join(","))
    };
    let r = s.post(
        "/discovery/register",
        &reg("a", "h2").set("metadata", &meta(5, 1)),
    );
    assert_limit(&r, "limits.maxMetadataKeys (4)");
    let r = s.post(
        "/discovery/register",
        &reg("a", "h2").set("metadata", &meta(1, 80)),
    );
    assert_limit(&r, "limits.maxMetadataBytes (64)");
    // A set that merges past the limit is refused whole, and the instance keeps its metadata.
    assert_eq!(
        s.post(
            "/discovery/register",
            &reg("a", "h2").set("metadata", &meta(3, 1))
        )
        .code(),
        0
    );
    let r = s.post(
        "/discovery/set",
        &ident("a", "h2").set("metadata", r#"{"x":"1","y":"2"}"#),
    );
    assert_limit(&r, "maxMetadataKeys");
    let kept = instance(&s.fetch("a").data(), "sh001", "h2");
    assert_eq!(
        kept["metadata"].as_object().map(|m| m.len()),
        Some(3),
        "{kept}"
    );
    let r = s.post(
        "/discovery/set",
        &ident("a", "h2").set("metadata", r#"{"k0":"changed"}"#),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
}

#[test]
fn replicate_batches_are_bounded_and_answers_stay_small() {
    let s = Setup::new()
        .test_client_is_a_peer()
        .raw_table("limits", "maxBatchLines = 500")
        .start();
    // An instance with 50 KB of metadata, renewed 400 times in one batch: each renew line used
    // to echo the whole instance (611 times the request).
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(50_000));
    s.register(&reg("a", "h1").set("metadata", &big));
    let dirty = instance(&s.fetch("a").data(), "sh001", "h1")["dirty_timestamp"].to_string();
    let line = format!(
        "op=renew&{}\n",
        ident("a", "h1")
            .set("replication", "true")
            .set("dirty_timestamp", &dirty)
            .encode()
    );
    let body = line.repeat(400);
    let mut c = s.connect();
    let r = c.post("/discovery/replicate", &body);
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(r.data().as_array().map(Vec::len), Some(400));
    assert!(
        r.body.len() < 4 * body.len(),
        "{} bytes answered for {}",
        r.body.len(),
        body.len()
    );
    // Conflicts do carry the instance, but only as far as a small multiple of the request.
    let stale = format!(
        "op=renew&{}\n",
        ident("a", "h1")
            .set("replication", "true")
            .set("dirty_timestamp", "1")
            .encode()
    );
    let body = stale.repeat(400);
    let r = c.post("/discovery/replicate", &body);
    let lines = r.data();
    let lines = lines.as_array().expect("results");
    assert_eq!(lines.len(), 400);
    assert!(
        lines.iter().all(|l| l["code"] == -409),
        "{}",
        r.text().len()
    );
    assert!(lines[0]["data"]["hostname"] == "h1");
    assert!(lines[399].get("data").is_none());
    assert!(
        r.body.len() < 4 * body.len() + 128 * 1024,
        "{} bytes",
        r.body.len()
    );
    // Past the line limit the batch is refused whole.
    let r = c.post("/discovery/replicate", &line.repeat(501));
    assert_limit(&r, "limits.maxBatchLines (500)");
}

#[test]
fn invalid_url_escapes_are_refused_as_go_refuses_them() {
    let s = Setup::new().start();
    let r = s.get("/discovery/fetch?appid=%ZZ&env=dev&status=1");
    assert_eq!(r.code(), -400, "{}", r.text());
    assert!(r.message().contains("invalid URL escape"), "{}", r.text());
    let body = reg("APP", "h1").encode().replace("APP", "a%ZZ");
    let r = s.connect().post("/discovery/register", &body);
    assert_eq!(r.code(), -400, "{}", r.text());
    // Nothing was registered under the literal name either.
    assert_eq!(
        s.get("/discovery/fetch?appid=a%25ZZ&env=dev&status=1")
            .code(),
        -404
    );
}
