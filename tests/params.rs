//! Parameter dialects of the known clients: repeated keys or comma-joined lists, POST
//! parameters in the URL, query and body merged, unescaped values, Go's boolean spellings.

mod common;

use common::{hosts, ident, instance, reg, Server, Setup};
use serde_json::json;

/// Sends a POST with `query` in the URL and `body` as the form body.
fn post_raw(s: &Server, path: &str, query: &str, body: &str) -> common::Response {
    let target = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    s.connect().post(&target, body)
}

#[test]
fn addrs_repeated_or_comma_joined() {
    let s = Server::start();
    let want = json!(["grpc://127.0.0.1:9000", "http://127.0.0.1:8000"]);
    s.register(
        &reg("a", "repeated")
            .set("addrs", "grpc://127.0.0.1:9000")
            .add("addrs", "http://127.0.0.1:8000"),
    );
    s.register(&reg("a", "joined").set("addrs", "grpc://127.0.0.1:9000,http://127.0.0.1:8000"));
    let info = s.fetch("a").data();
    assert_eq!(instance(&info, "sh001", "repeated")["addrs"], want);
    assert_eq!(instance(&info, "sh001", "joined")["addrs"], want);
}

#[test]
fn unescaped_values_are_taken_as_written() {
    let s = Server::start();
    // brpc sends its body without percent-encoding.
    let body = r#"zone=sh001&env=dev&appid=raw.app&hostname=h1&status=1&addrs=grpc://127.0.0.1:9000&metadata={"weight":"10","tags":"a,b"}&version=1.0"#;
    let r = post_raw(&s, "/discovery/register", "", body);
    assert_eq!(r.code(), 0, "{}", r.text());
    let i = instance(&s.fetch("raw.app").data(), "sh001", "h1");
    assert_eq!(i["addrs"], json!(["grpc://127.0.0.1:9000"]));
    assert_eq!(i["metadata"], json!({"weight":"10","tags":"a,b"}));
    assert_eq!(i["version"], "1.0");
}

#[test]
fn metadata_is_never_split() {
    let s = Server::start();
    let meta = r#"{"tags":"a,b,c","list":"[1,2]","weight":"10"}"#;
    s.register(&reg("a", "h1").set("metadata", meta));
    let i = instance(&s.fetch("a").data(), "sh001", "h1");
    assert_eq!(
        i["metadata"],
        json!({"tags":"a,b,c","list":"[1,2]","weight":"10"})
    );
    // In `set`, one metadata value per hostname, commas and all.
    s.register(&reg("a", "h2"));
    let r = s.post(
        "/discovery/set",
        &ident("a", "h1,h2")
            .add("metadata", r#"{"x":"1,2"}"#)
            .add("metadata", r#"{"y":"3,4,5"}"#),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    let info = s.fetch("a").data();
    assert_eq!(instance(&info, "sh001", "h1")["metadata"]["x"], "1,2");
    assert_eq!(
        instance(&info, "sh001", "h2")["metadata"],
        json!({"y":"3,4,5"})
    );
}

#[test]
fn appid_lists_in_fetchs_and_polls() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("b", "h2"));
    for q in [
        "appid=a&appid=b",
        "appid=a,b",
        "appid=a%2Cb",
        "appid=a,b&appid=nope",
    ] {
        let r = s.get(&format!("/discovery/fetchs?{q}&env=dev&status=3"));
        assert_eq!(r.code(), 0, "{q}: {}", r.text());
        let data = r.data();
        let apps: Vec<&String> = data.as_object().unwrap().keys().collect();
        assert_eq!(apps, ["a", "b"], "{q}");
    }
    for q in [
        "appid=a&appid=b&latest_timestamp=0&latest_timestamp=0",
        "appid=a,b&latest_timestamp=0,0",
        "appid=a&appid=b&latest_timestamp=0,0",
        "appid=a,b&latest_timestamp=0&latest_timestamp=0",
    ] {
        let r = s.get(&format!("/discovery/polls?{q}&env=dev&hostname=c1"));
        assert_eq!(r.code(), 0, "{q}: {}", r.text());
        let data = r.data();
        let apps: Vec<&String> = data.as_object().unwrap().keys().collect();
        assert_eq!(apps, ["a", "b"], "{q}");
    }
    // Only b is newer than the client's copy.
    let (la, lb) = (s.latest("a"), s.latest("b"));
    let r = s.get(&format!(
        "/discovery/polls?appid=a,b&latest_timestamp={la},{}&env=dev&hostname=c1",
        lb - 1
    ));
    let data = r.data();
    let apps: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(apps, ["b"]);
}

#[test]
fn hostname_and_status_lists_in_set() {
    let s = Server::start();
    for h in ["h1", "h2", "h3", "h4"] {
        s.register(&reg("a", h));
    }
    let r = s.post(
        "/discovery/set",
        &ident("a", "h1")
            .add("hostname", "h2")
            .add("status", "2")
            .add("status", "2"),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    let r = s.post("/discovery/set", &ident("a", "h3,h4").set("status", "2,2"));
    assert_eq!(r.code(), 0, "{}", r.text());
    let info = s.get("/discovery/fetch?appid=a&env=dev&status=2").data();
    assert_eq!(hosts(&info, "sh001"), ["h1", "h2", "h3", "h4"]);
}

#[test]
fn post_params_in_the_url_with_an_empty_body() {
    let s = Server::start();
    let query = reg("kratos.app", "h1").encode();
    // kratos v2 style: everything in the URL, an empty body with Content-Length: 0.
    let r = post_raw(&s, "/discovery/register", &query, "");
    assert_eq!(r.code(), 0, "{}", r.text());
    // ...and without any Content-Length at all.
    let mut c = s.connect();
    c.send(format!(
        "POST /discovery/renew?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        ident("kratos.app", "h1").encode()
    ));
    let r = c.read_response();
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(r.data()["hostname"], "h1");
    let r = post_raw(
        &s,
        "/discovery/cancel",
        &ident("kratos.app", "h1").encode(),
        "",
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(s.fetch("kratos.app").code(), -404);
}

#[test]
fn query_and_body_are_merged() {
    let s = Server::start();
    let r = post_raw(
        &s,
        "/discovery/register",
        "zone=sh001&env=dev&addrs=http://10.0.0.1:1",
        "appid=merged&hostname=h1&status=1&addrs=http://10.0.0.2:2",
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    let i = instance(&s.fetch("merged").data(), "sh001", "h1");
    let mut addrs: Vec<&str> = i["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    addrs.sort_unstable();
    assert_eq!(addrs, ["http://10.0.0.1:1", "http://10.0.0.2:2"]);
    // The addrs above came from both places; here only the appid is in the URL.
    let r = post_raw(
        &s,
        "/discovery/register",
        "appid=other",
        &reg("x", "h2").without("appid").encode(),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(hosts(&s.fetch("other").data(), "sh001"), ["h2"]);
}

#[test]
fn bools_parse_like_go() {
    let s = Setup::new().test_client_is_a_peer().start();
    s.register(&reg("a", "h1"));
    // An older dirty_timestamp from a peer conflicts: so -409 proves replication was read as true.
    for v in ["1", "t", "T", "true", "TRUE", "True"] {
        let r = s.post(
            "/discovery/renew",
            &ident("a", "h1")
                .set("replication", v)
                .set("dirty_timestamp", "1"),
        );
        assert_eq!(r.code(), -409, "replication={v}: {}", r.text());
    }
    for v in ["0", "f", "F", "false", "FALSE", "False", ""] {
        let r = s.post(
            "/discovery/renew",
            &ident("a", "h1")
                .set("replication", v)
                .set("dirty_timestamp", "1"),
        );
        assert_eq!(r.code(), 0, "replication={v}: {}", r.text());
    }
    for v in ["yes", "2", "tRuE"] {
        let r = s.post("/discovery/renew", &ident("a", "h1").set("replication", v));
        assert_eq!(r.code(), -400, "replication={v}: {}", r.text());
        assert!(r.message().contains("replication"), "{}", r.message());
    }
}

#[test]
fn peer_register_with_timestamps() {
    let s = Setup::new().test_client_is_a_peer().start();
    let peer = reg("a", "h1")
        .set("replication", "true")
        .set("from_zone", "true")
        .set("reg_timestamp", "1000")
        .set("dirty_timestamp", "2000")
        .set("latest_timestamp", "3000");
    s.register(&peer);
    let i = instance(&s.fetch("a").data(), "sh001", "h1");
    assert_eq!(i["reg_timestamp"], 1000);
    assert_eq!(i["dirty_timestamp"], 2000);
    assert_eq!(i["latest_timestamp"], 3000);
    // An older replicated copy is ignored, a newer one replaces.
    s.register(
        &peer
            .clone()
            .set("dirty_timestamp", "1500")
            .set("version", "old"),
    );
    assert_eq!(
        instance(&s.fetch("a").data(), "sh001", "h1")["version"],
        "v1"
    );
    s.register(&peer.set("dirty_timestamp", "2500").set("version", "new"));
    assert_eq!(
        instance(&s.fetch("a").data(), "sh001", "h1")["version"],
        "new"
    );
    // Timestamps must be integers.
    let r = s.post(
        "/discovery/register",
        &reg("a", "h2").set("dirty_timestamp", "soon"),
    );
    assert_eq!(r.code(), -400, "{}", r.text());
    assert!(r.message().contains("dirty_timestamp"), "{}", r.message());
}

#[test]
fn values_that_need_json_escapes_round_trip() {
    let s = Server::start();
    let host = "h\"1\\x\ty\u{1}é";
    let meta = serde_json::json!({"quote": "a\"b", "slash": "c\\d", "line": "e\nf", "uni": "ünï"});
    s.register(
        &reg("esc", host)
            .set("version", "v\"2")
            .set("metadata", &meta.to_string()),
    );
    let r = s.fetch("esc");
    let i = instance(&r.data(), "sh001", host);
    assert_eq!(i["metadata"], meta);
    assert_eq!(i["version"], "v\"2");
    // Timestamps are nanoseconds.
    assert!(i["reg_timestamp"].as_i64().unwrap() > 1_000_000_000_000_000_000);
}

#[test]
fn an_appid_listed_twice_is_answered_once() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    for target in [
        "/discovery/fetchs?appid=a&appid=a&env=dev&status=3",
        "/discovery/fetchs?appid=a,a&env=dev&status=3",
        "/discovery/polls?appid=a,a&latest_timestamp=0,0&env=dev&hostname=c",
    ] {
        let r = s.get(target);
        assert_eq!(r.code(), 0, "{target}: {}", r.text());
        // A JSON object must not carry the same key twice.
        assert_eq!(
            r.text().matches("\"a\":{").count(),
            1,
            "{target}: {}",
            r.text()
        );
    }
}
