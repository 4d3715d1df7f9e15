//! Every endpoint and every ecode of the wire protocol, against the real binary.

mod common;

use common::{hosts, ident, instance, reg, Form, Server, Setup};
use serde_json::Value;

/// The instance fields in the order the original's Go struct encodes them.
const INSTANCE_FIELDS: [&str; 14] = [
    "region",
    "zone",
    "env",
    "appid",
    "hostname",
    "addrs",
    "version",
    "metadata",
    "status",
    "reg_timestamp",
    "up_timestamp",
    "renew_timestamp",
    "dirty_timestamp",
    "latest_timestamp",
];

/// The top-level keys of the JSON object at the start of `text`, in wire order, and the
/// object's length in bytes.
fn object_keys(text: &str) -> (Vec<&str>, usize) {
    let (mut depth, mut in_string, mut escaped, mut want_key) = (0, false, false, false);
    let mut keys = Vec::new();
    let mut string_start = 0;
    for (i, c) in text.bytes().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
                if depth == 1 && want_key {
                    keys.push(&text[string_start..i]);
                    want_key = false;
                }
            }
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                string_start = i + 1;
            }
            b'{' | b'[' => {
                depth += 1;
                want_key = depth == 1;
            }
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return (keys, i + 1);
                }
            }
            b',' if depth == 1 => want_key = true,
            _ => {}
        }
    }
    panic!("unterminated object in {text}");
}

/// Checks that every instance object in the raw answer `text` has exactly the instance fields,
/// in the original's order; returns how many there were.
fn assert_field_order(text: &str) -> usize {
    let mut count = 0;
    let mut from = 0;
    while let Some(i) = text[from..].find("{\"region\":") {
        let (keys, len) = object_keys(&text[from + i..]);
        assert_eq!(keys, INSTANCE_FIELDS, "instance fields in {text}");
        from += i + len;
        count += 1;
    }
    assert!(count > 0, "no instance in {text}");
    count
}

#[test]
fn envelope_and_instance_json() {
    let s = Server::start();
    let meta = r#"{"weight":"10","cluster":"c1"}"#;
    s.register(&reg("demo.app", "h1").set("metadata", meta));

    let r = s.fetch("demo.app");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = r.json();
    assert_eq!(body["code"], 0);
    assert_eq!(body["message"], "0");
    assert_eq!(body["ttl"], 1);
    let info = r.data();
    let i = instance(&info, "sh001", "h1");
    assert_eq!(assert_field_order(r.text()), 1);
    assert_eq!(i["region"], "sh");
    assert_eq!(i["zone"], "sh001");
    assert_eq!(i["env"], "dev");
    assert_eq!(i["appid"], "demo.app");
    assert_eq!(i["addrs"], serde_json::json!(["http://127.0.0.1:8000"]));
    assert_eq!(i["version"], "v1");
    assert_eq!(
        i["metadata"],
        serde_json::json!({"weight":"10","cluster":"c1"})
    );
    assert_eq!(i["status"], 1);
    for ts in &INSTANCE_FIELDS[9..] {
        assert!(i[ts].as_i64().unwrap() > 0, "{ts} of {i}");
    }
    assert!(info["latest_timestamp"].as_i64().unwrap() > 0);
    assert!(info.get("scheduler").is_none(), "no scheduler configured");

    // Without metadata the field is null, and answers without data leave `data` out.
    let r = s.post("/discovery/register", &reg("demo.app", "h2"));
    let ok = r.json();
    assert_eq!(ok, serde_json::json!({"code":0,"message":"0","ttl":1}));
    assert_eq!(
        instance(&s.fetch("demo.app").data(), "sh001", "h2")["metadata"],
        Value::Null
    );
}

#[test]
fn register_requires_each_param() {
    let s = Server::start();
    for missing in ["zone", "env", "appid", "hostname", "addrs", "status"] {
        let r = s.post("/discovery/register", &reg("a", "h1").without(missing));
        assert_eq!(r.code(), -400, "without {missing}: {}", r.text());
        assert!(
            r.message().contains(missing),
            "message names {missing}: {}",
            r.message()
        );
        // An empty value counts as missing.
        let r = s.post("/discovery/register", &reg("a", "h1").set(missing, ""));
        assert_eq!(r.code(), -400, "empty {missing}: {}", r.text());
        assert!(r.message().contains(missing), "{}", r.message());
    }
    assert_eq!(s.fetch("a").code(), -404, "nothing was registered");
}

#[test]
fn register_rejects_bad_status_and_metadata() {
    let s = Server::start();
    for status in ["3", "0", "-1", "up"] {
        let r = s.post("/discovery/register", &reg("a", "h1").set("status", status));
        assert_eq!(r.code(), -400, "status {status}: {}", r.text());
        assert!(r.message().contains("status"), "{}", r.message());
    }
    for meta in ["{oops", "[1,2]", "\"text\""] {
        let r = s.post("/discovery/register", &reg("a", "h1").set("metadata", meta));
        assert_eq!(r.code(), -400, "metadata {meta}: {}", r.text());
        assert!(r.message().contains("metadata"), "{}", r.message());
    }
    assert_eq!(s.fetch("a").code(), -404);
    // Status 2 (WAITING) is fine.
    s.register(&reg("a", "h1").set("status", "2"));
    assert_eq!(instance(&s.fetch("a").data(), "sh001", "h1")["status"], 2);
}

/// Checks that `r` succeeded and moved app `a`'s latest_timestamp above `latest`; returns the
/// new one.
fn changed(s: &Server, what: &str, r: common::Response, latest: i64) -> i64 {
    assert_eq!(r.code(), 0, "{what}: {}", r.text());
    let now = s.latest("a");
    assert!(now > latest, "{what}: latest_timestamp {now} <= {latest}");
    now
}

#[test]
fn latest_timestamp_rises_and_reregister_keeps_up_timestamp() {
    let s = Setup::new().test_client_is_a_peer().start();
    s.register(&reg("a", "h1"));
    let first = instance(&s.fetch("a").data(), "sh001", "h1");
    let latest = s.latest("a");

    let r = s.post("/discovery/register", &reg("a", "h1").set("version", "v2"));
    let latest = changed(&s, "re-register", r, latest);
    let again = instance(&s.fetch("a").data(), "sh001", "h1");
    assert_eq!(again["version"], "v2");
    assert_eq!(again["up_timestamp"], first["up_timestamp"]);
    assert!(again["reg_timestamp"].as_i64() >= first["reg_timestamp"].as_i64());

    let r = s.post("/discovery/register", &reg("a", "h2"));
    let latest = changed(&s, "register h2", r, latest);
    let r = s.post("/discovery/set", &ident("a", "h2").set("status", "2"));
    let latest = changed(&s, "set", r, latest);

    // A requested timestamp below the current one still moves it up by one.
    let r = s.post(
        "/discovery/register",
        &reg("a", "h3").set("latest_timestamp", "5"),
    );
    let next = changed(&s, "register with an old latest_timestamp", r, latest);
    assert_eq!(next, latest + 1);
    // A requested timestamp above it is taken as is.
    let ahead = next + 1_000_000_000;
    let r = s.post(
        "/discovery/register",
        &reg("a", "h4").set("latest_timestamp", &ahead.to_string()),
    );
    let latest = changed(&s, "register with a future latest_timestamp", r, next);
    assert_eq!(latest, ahead);

    let r = s.post("/discovery/cancel", &ident("a", "h3"));
    let latest = changed(&s, "cancel", r, latest);
    // A peer's cancel carries its latest_timestamp.
    let peer = latest + 5;
    let r = s.post(
        "/discovery/cancel",
        &ident("a", "h4")
            .set("replication", "true")
            .set("latest_timestamp", &peer.to_string()),
    );
    let latest = changed(&s, "replicated cancel", r, latest);
    assert_eq!(latest, peer);
    // A renew is not a change.
    let r = s.post("/discovery/renew", &ident("a", "h1"));
    assert_eq!(r.code(), 0);
    assert_eq!(s.latest("a"), latest);
}

#[test]
fn renew_answers_the_instance() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    let before = instance(&s.fetch("a").data(), "sh001", "h1");
    let r = s.post("/discovery/renew", &ident("a", "h1"));
    assert_eq!(r.code(), 0, "{}", r.text());
    let data = r.data();
    assert_eq!(assert_field_order(r.text()), 1);
    assert_eq!(data["hostname"], "h1");
    assert_eq!(data["appid"], "a");
    assert!(data["renew_timestamp"].as_i64() >= before["renew_timestamp"].as_i64());
    assert_eq!(data["dirty_timestamp"], before["dirty_timestamp"]);

    for (what, form) in [
        ("unknown host", ident("a", "nope")),
        ("unknown app", ident("nope", "h1")),
        ("other zone", ident("a", "h1").set("zone", "sh002")),
        ("other env", ident("a", "h1").set("env", "prod")),
    ] {
        let r = s.post("/discovery/renew", &form);
        assert_eq!(r.code(), -404, "{what}: {}", r.text());
    }
    for missing in ["zone", "env", "appid", "hostname"] {
        let r = s.post("/discovery/renew", &ident("a", "h1").without(missing));
        assert_eq!(r.code(), -400, "{}", r.text());
        assert!(r.message().contains(missing), "{}", r.message());
    }
}

#[test]
fn replicated_renew_compares_dirty_timestamps() {
    let s = Setup::new().test_client_is_a_peer().start();
    s.register(&reg("a", "h1"));
    let dirty = instance(&s.fetch("a").data(), "sh001", "h1")["dirty_timestamp"]
        .as_i64()
        .unwrap();
    let peer = |ts: i64| {
        ident("a", "h1")
            .set("replication", "true")
            .set("from_zone", "true")
            .set("dirty_timestamp", &ts.to_string())
    };
    // The peer holds a newer copy: it is asked to send its register.
    let r = s.post("/discovery/renew", &peer(dirty + 1));
    assert_eq!(r.code(), -404, "{}", r.text());
    // The peer's copy is older: conflict, with our instance.
    let r = s.post("/discovery/renew", &peer(dirty - 1));
    assert_eq!(r.code(), -409, "{}", r.text());
    let ours = r.data();
    assert_eq!(assert_field_order(r.text()), 1);
    assert_eq!(ours["hostname"], "h1");
    assert_eq!(ours["dirty_timestamp"], dirty);
    // Same version: a plain renew.
    let r = s.post("/discovery/renew", &peer(dirty));
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(r.data()["hostname"], "h1");
    // Without replication the dirty timestamp does not matter.
    let r = s.post(
        "/discovery/renew",
        &ident("a", "h1").set("dirty_timestamp", &(dirty + 1).to_string()),
    );
    assert_eq!(r.code(), 0, "{}", r.text());
}

#[test]
fn cancel_removes_zone_then_app() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("a", "h2"));
    s.register(&reg("a", "h3").set("zone", "sh002"));

    let r = s.post("/discovery/cancel", &ident("a", "h1"));
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"code":0,"message":"0","ttl":1})
    );
    let r = s.post("/discovery/cancel", &ident("a", "h1"));
    assert_eq!(r.code(), -404, "cancel twice: {}", r.text());
    assert_eq!(hosts(&s.fetch("a").data(), "sh001"), ["h2"]);

    // The last instance of sh002 takes the zone with it.
    let r = s.post("/discovery/cancel", &ident("a", "h3").set("zone", "sh002"));
    assert_eq!(r.code(), 0, "{}", r.text());
    let info = s.fetch("a").data();
    let zones: Vec<&String> = info["instances"].as_object().unwrap().keys().collect();
    assert_eq!(zones, ["sh001"]);
    let r = s.get("/discovery/fetch?appid=a&env=dev&status=3&zone=sh002");
    assert_eq!(r.code(), -404, "{}", r.text());

    // The last instance of the app takes the app with it.
    assert_eq!(s.post("/discovery/cancel", &ident("a", "h2")).code(), 0);
    let r = s.fetch("a");
    assert_eq!(r.code(), -404, "{}", r.text());
    assert!(r.json().get("data").is_none());
    let r = s.get("/discovery/fetchs?appid=a&env=dev&status=3");
    assert_eq!(r.data(), serde_json::json!({}));

    for missing in ["zone", "env", "appid", "hostname"] {
        let r = s.post("/discovery/cancel", &ident("a", "h2").without(missing));
        assert_eq!(r.code(), -400, "{}", r.text());
        assert!(r.message().contains(missing), "{}", r.message());
    }
    // The app can come back.
    s.register(&reg("a", "h1"));
    assert_eq!(hosts(&s.fetch("a").data(), "sh001"), ["h1"]);
}

#[test]
fn fetch_filters_by_status_mask_and_zone() {
    let s = Server::start();
    s.register(&reg("a", "up1"));
    s.register(&reg("a", "wait1").set("status", "2"));
    s.register(&reg("a", "up2").set("zone", "sh002"));

    let fetch = |q: &str| s.get(&format!("/discovery/fetch?appid=a&env=dev&{q}"));
    let info = fetch("status=1").data();
    assert_eq!(hosts(&info, "sh001"), ["up1"]);
    assert_eq!(hosts(&info, "sh002"), ["up2"]);
    assert_eq!(hosts(&fetch("status=2").data(), "sh001"), ["wait1"]);
    assert_eq!(hosts(&fetch("status=3").data(), "sh001"), ["up1", "wait1"]);

    let info = fetch("status=3&zone=sh002").data();
    let zones: Vec<&String> = info["instances"].as_object().unwrap().keys().collect();
    assert_eq!(zones, ["sh002"]);
    assert_eq!(hosts(&info, "sh002"), ["up2"]);
    assert_eq!(info["latest_timestamp"], s.latest("a"));

    for q in [
        "appid=a&env=dev&status=3&zone=sh009",
        "appid=a&env=prod&status=3",
        "appid=nope&env=dev&status=3",
    ] {
        let r = s.get(&format!("/discovery/fetch?{q}"));
        assert_eq!(r.code(), -404, "{q}: {}", r.text());
    }
    let r = s.get("/discovery/fetch?appid=nope&env=dev&status=3");
    assert!(r.message().contains("nope"), "{}", r.message());

    for status in ["0", "4", "x"] {
        let r = fetch(&format!("status={status}"));
        assert_eq!(r.code(), -400, "status {status}: {}", r.text());
        assert!(r.message().contains("status"), "{}", r.message());
    }
    for (q, missing) in [
        ("env=dev&status=3", "appid"),
        ("appid=a&status=3", "env"),
        ("appid=a&env=dev", "status"),
    ] {
        let r = s.get(&format!("/discovery/fetch?{q}"));
        assert_eq!(r.code(), -400, "{q}: {}", r.text());
        assert!(r.message().contains(missing), "{}", r.message());
    }
}

#[test]
fn fetchs_answers_found_apps_only() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("b", "h2"));
    let r = s.get("/discovery/fetchs?appid=a&appid=nope&appid=b&env=dev&status=3");
    assert_eq!(r.code(), 0, "{}", r.text());
    let data = r.data();
    let apps: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(apps, ["a", "b"]);
    assert_eq!(hosts(&data["a"], "sh001"), ["h1"]);
    assert_eq!(hosts(&data["b"], "sh001"), ["h2"]);
    assert_eq!(data["a"]["latest_timestamp"], s.latest("a"));

    let r = s.get("/discovery/fetchs?appid=nope&env=dev&status=3");
    assert_eq!(r.code(), 0);
    assert_eq!(r.data(), serde_json::json!({}));
    let r = s.get("/discovery/fetchs?env=dev&status=3");
    assert_eq!(r.code(), -400, "{}", r.text());
    assert!(r.message().contains("appid"), "{}", r.message());
}

#[test]
fn poll_of_unknown_app_is_not_found() {
    let s = Server::start();
    let r = s.get("/discovery/poll?appid=ghost.app&env=dev&hostname=c1&latest_timestamp=0");
    assert_eq!(r.code(), -404, "{}", r.text());
    assert_eq!(r.message(), "ghost.app not found");
    let r = s.get("/discovery/poll?appid=ghost.app&env=dev&latest_timestamp=0");
    assert_eq!(r.code(), -400, "hostname is required: {}", r.text());
    assert!(r.message().contains("hostname"), "{}", r.message());
}

#[test]
fn polls_checks_lengths_and_lists_unknown_apps() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    let r = s.get("/discovery/polls?appid=a&appid=b&env=dev&hostname=c1&latest_timestamp=0");
    assert_eq!(r.code(), -400, "{}", r.text());
    assert!(r.message().contains("latest_timestamp"), "{}", r.message());
    let r = s.get("/discovery/polls?appid=a&env=dev&hostname=c1");
    assert_eq!(r.code(), -400, "{}", r.text());
    let r = s.get("/discovery/polls?appid=a&env=dev&hostname=c1&latest_timestamp=x");
    assert_eq!(r.code(), -400, "{}", r.text());

    let r = s.get(
        "/discovery/polls?appid=a&appid=ghost1&appid=ghost2&env=dev&hostname=c1\
         &latest_timestamp=0&latest_timestamp=0&latest_timestamp=0",
    );
    assert_eq!(r.code(), 0, "{}", r.text());
    let body = r.json();
    let apps: Vec<&String> = body["data"].as_object().unwrap().keys().collect();
    assert_eq!(apps, ["a"]);
    assert_eq!(hosts(&body["data"]["a"], "sh001"), ["h1"]);
    assert_eq!(
        body["error"],
        serde_json::json!({"-404": ["ghost1", "ghost2"]})
    );
}

#[test]
fn set_changes_status_and_metadata() {
    let s = Server::start();
    for h in ["h1", "h2", "h3"] {
        s.register(&reg("a", h).set("metadata", r#"{"keep":"yes"}"#));
    }
    let before = s.latest("a");
    let set_ts = (before + 10).to_string();
    let form = ident("a", "h1")
        .add("hostname", "h2")
        .add("status", "2")
        .add("status", "1")
        .add("metadata", r#"{"weight":"5","tags":"x,y"}"#)
        .add("metadata", r#"{"weight":"7"}"#)
        .set("set_timestamp", &set_ts);
    let r = s.post("/discovery/set", &form);
    assert_eq!(r.code(), 0, "{}", r.text());
    let info = s.fetch("a").data();
    let h1 = instance(&info, "sh001", "h1");
    let h2 = instance(&info, "sh001", "h2");
    let h3 = instance(&info, "sh001", "h3");
    assert_eq!(h1["status"], 2);
    assert_eq!(h2["status"], 1);
    // Set merges keys into the existing metadata.
    assert_eq!(
        h1["metadata"],
        serde_json::json!({"keep":"yes","weight":"5","tags":"x,y"})
    );
    assert_eq!(
        h2["metadata"],
        serde_json::json!({"keep":"yes","weight":"7"})
    );
    assert_eq!(h3["metadata"], serde_json::json!({"keep":"yes"}));
    for h in [&h1, &h2] {
        assert_eq!(h["dirty_timestamp"].to_string(), set_ts);
        assert_eq!(h["latest_timestamp"].to_string(), set_ts);
    }
    assert_eq!(info["latest_timestamp"].to_string(), set_ts);
    assert_ne!(h3["dirty_timestamp"].to_string(), set_ts);

    // Status only, without set_timestamp: the app still moves on.
    let r = s.post("/discovery/set", &ident("a", "h3").set("status", "2"));
    assert_eq!(r.code(), 0, "{}", r.text());
    assert!(s.latest("a") > before + 10);
    assert_eq!(instance(&s.fetch("a").data(), "sh001", "h3")["status"], 2);
}

#[test]
fn set_rejects_mismatched_lists_and_unknown_hosts() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("a", "h2"));
    let latest = s.latest("a");
    let cases = [
        (
            "two hosts, one status",
            ident("a", "h1").add("hostname", "h2").set("status", "2"),
        ),
        (
            "one host, two metadata",
            ident("a", "h1")
                .add("metadata", r#"{"a":"1"}"#)
                .add("metadata", r#"{"b":"2"}"#),
        ),
        ("unknown host", ident("a", "ghost").set("status", "2")),
        (
            "one known, one unknown",
            ident("a", "h1")
                .add("hostname", "ghost")
                .set("status", "2,2"),
        ),
        ("status 3", ident("a", "h1").set("status", "3")),
        ("bad metadata", ident("a", "h1").set("metadata", "{nope")),
    ];
    for (what, form) in cases {
        let r = s.post("/discovery/set", &form);
        assert_eq!(r.code(), -400, "{what}: {}", r.text());
    }
    // Nothing changed: all or nothing.
    assert_eq!(s.latest("a"), latest);
    let info = s.fetch("a").data();
    assert_eq!(instance(&info, "sh001", "h1")["status"], 1);
    for missing in ["zone", "env", "appid"] {
        let r = s.post(
            "/discovery/set",
            &ident("a", "h1").set("status", "2").without(missing),
        );
        assert_eq!(r.code(), -400, "{}", r.text());
        assert!(r.message().contains(missing), "{}", r.message());
    }
    let r = s.post("/discovery/set", &ident("ghost", "h1").set("status", "2"));
    assert_ne!(r.code(), 0, "set on an unknown app: {}", r.text());
}

#[test]
fn set_requires_hostname() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    let latest = s.latest("a");
    for form in [
        ident("a", "h1").without("hostname").set("status", "2"),
        ident("a", "h1").without("hostname"),
        ident("a", "").set("status", "2"),
    ] {
        let r = s.post("/discovery/set", &form);
        assert_eq!(r.code(), -400, "{:?}: {}", form.encode(), r.text());
        assert!(r.message().contains("hostname"), "{}", r.message());
    }
    assert_eq!(s.latest("a"), latest, "a refused set is no change");
}

#[test]
fn nodes_lists_this_node() {
    let s = Server::start();
    let r = s.get("/discovery/nodes");
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(
        r.data(),
        serde_json::json!([{"addr": s.addr.to_string(), "status": 0, "zone": "sh001"}])
    );
}

#[test]
fn fetch_all_includes_self_registration() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("a", "h2").set("zone", "sh002").set("status", "2"));
    s.register(&reg("b", "h3").set("env", "prod"));
    let r = s.get("/discovery/fetch/all");
    assert_eq!(r.code(), 0, "{}", r.text());
    let data = r.data();
    let me = &data["infra.discovery"].as_array().expect("self")[0];
    assert_eq!(
        assert_field_order(r.text()),
        4,
        "every instance of every app"
    );
    assert_eq!(me["hostname"], "test-node");
    assert_eq!(me["env"], "dev");
    assert_eq!(me["zone"], "sh001");
    assert_eq!(me["region"], "sh");
    assert_eq!(me["status"], 1);
    assert_eq!(
        me["addrs"],
        serde_json::json!([format!("http://{}", s.addr)])
    );
    // All zones, statuses and envs.
    let mut a: Vec<&str> = data["a"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["hostname"].as_str().unwrap())
        .collect();
    a.sort_unstable();
    assert_eq!(a, ["h1", "h2"]);
    assert_eq!(data["b"][0]["env"], "prod");
    // Renew times are current, as peers syncing from it need: a renew makes the next fetch/all
    // encode again.
    let renewed = s.post("/discovery/renew", &ident("a", "h1")).data()["renew_timestamp"]
        .as_i64()
        .unwrap();
    let all = s.get("/discovery/fetch/all").data();
    let h1 = all["a"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["hostname"] == "h1")
        .unwrap()
        .clone();
    assert_eq!(h1["renew_timestamp"].as_i64(), Some(renewed));
    // A change shows at once: the shared encoding lasts only until the next change.
    s.register(&reg("c", "h9"));
    let all = s.get("/discovery/fetch/all").data();
    assert_eq!(all["c"][0]["hostname"], "h9", "{all}");
    // The node's own app is visible to fetch too.
    let info = s
        .get("/discovery/fetch?appid=infra.discovery&env=dev&status=1")
        .data();
    assert_eq!(hosts(&info, "sh001"), ["test-node"]);
}

#[test]
fn metrics_are_prometheus_text() {
    let s = Server::start();
    s.register(&reg("a", "h1"));
    s.register(&reg("b", "h1"));
    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        r.header("content-type")
    );
    assert!(r.text().contains("# TYPE discovery_instances gauge"));
    let m = s.metrics();
    for name in [
        "discovery_apps",
        "discovery_instances",
        "discovery_requests_total",
        "discovery_bad_requests_total",
        "discovery_connections_open",
        "discovery_polls_parked",
        "discovery_polls_answered_total",
        "discovery_poll_timeouts_total",
        "discovery_evict_rounds_total",
        "discovery_evicted_total",
        "discovery_renews_last_window",
        "discovery_renews_expected",
        "discovery_self_preservation",
    ] {
        assert!(m.contains_key(name), "{name} missing from\n{}", r.text());
    }
    // a, b and the node's own infra.discovery.
    assert_eq!(m["discovery_apps"], 3);
    assert_eq!(m["discovery_instances"], 3);
    assert_eq!(m["discovery_renews_expected"], 6);
    assert!(m["discovery_requests_total"] >= 3);

    let bad = m["discovery_bad_requests_total"];
    s.post("/discovery/register", &Form::new());
    assert_eq!(s.metric("discovery_bad_requests_total"), bad + 1);
}

#[test]
fn unknown_path_and_wrong_method() {
    let s = Server::start();
    let mut c = s.connect();
    for target in [
        "/discovery",
        "/discovery/nope",
        "/discovery/fetch/",
        "/metricsx",
    ] {
        let r = c.get(target);
        assert_eq!(r.status, 404, "{target}: {}", r.text());
    }
    for (method, target) in [
        ("GET", "/discovery/register"),
        ("GET", "/discovery/renew"),
        ("GET", "/discovery/cancel"),
        ("GET", "/discovery/set"),
        ("POST", "/discovery/fetch"),
        ("POST", "/discovery/polls"),
        ("POST", "/discovery/nodes"),
        ("DELETE", "/discovery/fetch"),
    ] {
        c.send_request(method, target, "");
        let r = c.read_response();
        assert_eq!(r.status, 405, "{method} {target}: {}", r.text());
    }
    // The connection survived all of them.
    assert_eq!(c.get("/discovery/nodes").code(), 0);
}

#[test]
fn dashboard_page_and_its_json() {
    let s = Server::start();
    s.register(&reg("shop.cart", "h1"));
    s.register(
        &reg("shop.cart", "h2")
            .set("status", "2")
            .set("zone", "sh002"),
    );

    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    assert!(page.text().contains("/ui/app.js"), "{}", page.text());
    for (asset, kind) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let r = s.get(asset);
        assert_eq!(r.status, 200, "{asset}");
        assert!(r
            .header("content-type")
            .is_some_and(|t| t.starts_with(kind)));
    }

    let apps = s.get("/ui/api/apps").data();
    let cart = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["appid"] == "shop.cart")
        .unwrap();
    assert_eq!(cart["total"], 2);
    let zones: Vec<(String, i64, i64)> = cart["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| {
            let n = |k: &str| z[k].as_i64().unwrap();
            (
                z["zone"].as_str().unwrap().to_string(),
                n("up"),
                n("waiting"),
            )
        })
        .collect();
    assert_eq!(zones, [("sh001".into(), 1, 0), ("sh002".into(), 0, 1)]);

    let app = s.get("/ui/api/app?env=dev&appid=shop.cart").data();
    let hosts: Vec<&str> = app["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["h1", "h2"]);
    // A string, so that JavaScript does not round it.
    assert_eq!(
        app["latest_ts"].as_str().unwrap().parse::<i64>().unwrap(),
        s.latest("shop.cart")
    );
    assert_eq!(s.get("/ui/api/app?env=dev&appid=nope").code(), -404);
    assert_eq!(s.get("/ui/api/app?env=dev").code(), -400);

    let o = s.get("/ui/api/overview").data();
    assert_eq!(o["apps"], 2, "shop.cart and infra.discovery: {o}");
    assert_eq!(
        (o["instances"].as_i64(), o["waiting"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(o["admin"], false);
    assert_eq!(o["zone"], "sh001");

    let config = s.get("/ui/api/config").data();
    assert!(config
        .as_array()
        .unwrap()
        .iter()
        .any(|kv| kv[0] == "env.zone" && kv[1] == "sh001"));

    let cluster = s.get("/ui/api/cluster").data();
    assert_eq!(cluster["peers"].as_array().map(Vec::len), Some(0));

    // The dashboard's reads are counted per endpoint like the API's.
    let m = s.metrics();
    assert_eq!(
        m.get(r#"discovery_endpoint_requests_total{endpoint="ui_app",ecode="-404"}"#),
        Some(&1)
    );
    assert_eq!(
        m.get(r#"discovery_endpoint_requests_total{endpoint="ui_app",ecode="-400"}"#),
        Some(&1)
    );
    assert_eq!(
        m.get(r#"discovery_endpoint_errors_total{endpoint="ui_app"}"#),
        Some(&2)
    );
    assert!(m[r#"discovery_endpoint_duration_seconds_count{endpoint="register"}"#] >= 2);
    assert_eq!(m[r#"discovery_instances_by_status{status="waiting"}"#], 1);
}
