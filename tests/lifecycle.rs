//! A node's life: start-up (driver, flags, config errors, start-up protection), scheduler files,
//! eviction and self-preservation, its own registration, and graceful shutdown.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{hosts, ident, instance, reg, wait_until, Conn, Server, Setup, TempDir, BIN};

/// The epoll run of the suite must really run on epoll, and the default one on io_uring.
#[test]
fn cores_run_the_requested_driver() {
    let s = Server::start();
    let lines = s.wait_logs("core started", 2);
    let legacy = std::env::var("MONOIO_FORCE_LEGACY_DRIVER").is_ok_and(|v| v == "1");
    let want = if legacy {
        "driver=\"epoll\""
    } else {
        "driver=\"io_uring\""
    };
    for line in &lines {
        assert!(line.contains(want), "expected {want}: {line}");
    }
    let ready = s.wait_log("discovery listening");
    assert!(ready.contains("threads=2"), "{ready}");
}

/// `[httpServer] driver` picks the driver whatever the environment says.
#[test]
fn the_configured_driver_runs() {
    for (driver, want) in [
        ("epoll", "driver=\"epoll\""),
        ("io_uring", "driver=\"io_uring\""),
    ] {
        let s = Setup::new().http("driver", driver).start();
        for line in s.wait_logs("core started", 2) {
            assert!(line.contains(want), "driver = {driver:?}: {line}");
        }
        s.register(&reg("a", "h1"));
        assert_eq!(s.fetch("a").code(), 0);
    }
}

#[test]
fn an_unknown_driver_is_a_config_error() {
    let dir = TempDir::new("driver");
    std::fs::write(
        dir.path().join("discovery.toml"),
        "[env]\nzone = \"z\"\nhost = \"h\"\nDeployEnv = \"dev\"\n[httpServer]\naddr = \"127.0.0.1:0\"\ndriver = \"kqueue\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .arg("-conf")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("httpServer.driver") && err.contains("kqueue"),
        "{err}"
    );
}

#[test]
fn unknown_config_keys_are_logged_not_fatal() {
    let s = Setup::new()
        .top("bogusKey = 1")
        .http("readTimeout", "1s")
        .start();
    s.wait_log("unknown config key `bogusKey` ignored");
    s.wait_log("unknown config key `httpServer.readTimeout` ignored");
    assert_eq!(s.get("/discovery/nodes").code(), 0);
}

/// The Go original's start line (its Makefile): `-confkey` and kratos' `-log.dir`, plus a kratos
/// flag that has no effect here, and `-zone`, which fills `[env] zone` only where it is empty.
#[test]
fn the_go_originals_start_flags_work() {
    let logs = TempDir::new("logdir");
    let dir = logs.path().join("log");
    let dir_arg = dir.to_string_lossy().to_string();
    let s = Setup::new()
        .args(&[
            "-confkey",
            "discovery.toml",
            "-log.dir",
            &dir_arg,
            "-log.v",
            "3",
            "-zone",
            "sh009",
        ])
        .start();
    s.wait_log("flag -log.v=3 of the Go original has no effect here");
    let file = dir.join("discovery.log");
    wait_until("the log file to name the listening address", || {
        let text = std::fs::read_to_string(&file).ok()?;
        text.contains("discovery listening").then_some(())
    });
    // The config names zone sh001, which wins over the flag.
    let nodes = s.get("/discovery/nodes").data();
    assert_eq!(nodes[0]["zone"], "sh001", "{nodes}");
}

#[test]
fn help_and_bad_flags() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-conf"), "{text}");
    assert!(text.to_lowercase().contains("usage"), "{text}");

    let out = Command::new(BIN)
        .arg("--bogus")
        .output()
        .expect("run --bogus");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bogus"), "{err}");
}

#[test]
fn bad_config_names_the_key() {
    let dir = TempDir::new("badconf");
    let text = "[env]\nzone = \"sh001\"\nhost = \"h\"\nDeployEnv = \"dev\"\n[httpServer]\naddr = \"127.0.0.1:0\"\ntimeout = 40\n";
    std::fs::write(dir.path().join("discovery.toml"), text).expect("write config");
    let out = Command::new(BIN)
        .arg("-conf")
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("httpServer.timeout"), "{err}");

    // A missing file is an error too, naming the file.
    let missing = dir.path().join("nope.toml");
    let out = Command::new(BIN)
        .arg("-conf")
        .arg(&missing)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}

#[test]
fn startup_protection_refuses_reads_until_it_ends() {
    let s = Setup::new()
        .top("enableprotect = true")
        .registry("protectTimeout", "3s")
        .start();
    assert!(s.wait_log("discovery listening").contains("protected=true"));
    // Writes work.
    s.register(&reg("a", "h1"));
    assert_eq!(s.post("/discovery/renew", &ident("a", "h1")).code(), 0);
    // Reads answer 503 with code -500.
    for target in [
        "/discovery/fetch?appid=a&env=dev&status=3",
        "/discovery/fetchs?appid=a&env=dev&status=3",
        "/discovery/fetch/all",
        "/discovery/poll?appid=a&env=dev&hostname=c&latest_timestamp=0",
        "/discovery/polls?appid=a&env=dev&hostname=c&latest_timestamp=0",
        "/discovery/nodes",
    ] {
        let r = s.get(target);
        assert_eq!(r.status, 503, "{target}: {}", r.text());
        assert_eq!(r.json()["code"], -500, "{target}");
    }
    // Metrics are for operators, not a registry read.
    assert_eq!(s.get("/metrics").status, 200);
    // After protectTimeout the reads are served, with what was registered meanwhile.
    let info = wait_until("start-up protection to end", || {
        let r = s.fetch("a");
        (r.status == 200).then(|| r.data())
    });
    assert_eq!(hosts(&info, "sh001"), ["h1"]);
    s.wait_log("start-up protection ended");
    assert_eq!(s.get("/discovery/nodes").code(), 0);
}

const DEMO: &str = r#"{"app_id":"demo","env":"dev","clients":{"sh001":{"zones":{"sh002":{"weight":3}}}},"remark":""}"#;

#[test]
fn scheduler_files_are_attached_and_reloaded() {
    // Started with the config file's path: scheduler files are found beside it.
    let s = Setup::new()
        .registry("schedulerReload", "100ms")
        .file("demo.json", DEMO)
        .file("notes.txt", "not a scheduler")
        .conf_file()
        .start();
    s.register(&reg("demo", "h1"));
    let info = s.fetch("demo").data();
    assert_eq!(
        info["scheduler"]["clients"],
        serde_json::json!({"sh001":{"zones":{"sh002":{"weight":3}}}})
    );
    // Polls carry it as well.
    let r = s.get("/discovery/poll?appid=demo&env=dev&hostname=c&latest_timestamp=0");
    assert_eq!(r.data()["scheduler"], info["scheduler"]);
    // Other apps have none.
    s.register(&reg("other", "h1"));
    assert!(s.fetch("other").data().get("scheduler").is_none());

    // Rewriting the file is a change: a parked poll wakes with the new weights.
    let latest = info["latest_timestamp"].as_i64().unwrap();
    let mut c = s.connect();
    c.send(format!(
        "GET /discovery/poll?appid=demo&env=dev&hostname=c&latest_timestamp={latest} HTTP/1.1\r\n\r\n"
    ));
    s.wait_parked(1);
    // Written aside and renamed, so the reload never sees a half-written file.
    let file = s.dir().join("demo.json");
    let aside = s.dir().join("demo.json.new");
    std::fs::write(&aside, DEMO.replace("\"weight\":3", "\"weight\":30")).expect("write");
    std::fs::rename(&aside, &file).expect("rename");
    let r = c.read_response();
    assert_eq!(r.code(), 0, "{}", r.text());
    let info = r.data();
    assert_eq!(
        info["scheduler"]["clients"]["sh001"]["zones"]["sh002"]["weight"],
        30
    );
    assert!(info["latest_timestamp"].as_i64().unwrap() > latest);
    assert_eq!(s.fetch("demo").data()["scheduler"], info["scheduler"]);

    // Deleting it removes it, again as a change.
    let latest = info["latest_timestamp"].as_i64().unwrap();
    let mut c = s.connect();
    c.send(format!(
        "GET /discovery/poll?appid=demo&env=dev&hostname=c&latest_timestamp={latest} HTTP/1.1\r\n\r\n"
    ));
    s.wait_parked(1);
    std::fs::remove_file(&file).expect("remove");
    let r = c.read_response();
    assert_eq!(r.code(), 0, "{}", r.text());
    assert!(r.data().get("scheduler").is_none(), "{}", r.text());
    assert!(s.fetch("demo").data().get("scheduler").is_none());
}

#[test]
fn silent_instances_are_evicted_renewed_ones_stay() {
    let s = Setup::new()
        .registry("evictInterval", "200ms")
        .registry("evictAfter", "1s")
        .registry("selfRenewInterval", "100ms")
        .start();
    s.register(&reg("a", "silent"));
    s.register(&reg("a", "alive"));
    let latest = s.latest("a");
    let mut poll = s.connect();
    poll.send(format!(
        "GET /discovery/poll?appid=a&env=dev&hostname=c&latest_timestamp={latest} HTTP/1.1\r\n\r\n"
    ));
    s.wait_parked(1);
    // Renew `alive` from another thread, far more often than self-preservation asks for,
    // until the poll wakes: its answer is the sign of the eviction.
    let stop = Arc::new(AtomicBool::new(false));
    let renewer = {
        let (stop, addr) = (stop.clone(), s.addr);
        std::thread::spawn(move || {
            let mut c = Conn::open(addr);
            let renew = ident("a", "alive").encode();
            let mut renews = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = c.post("/discovery/renew", &renew);
                assert_eq!(r.code(), 0, "renew of alive: {}", r.text());
                renews += 1;
                // Pacing, not synchronisation: ~200 renews per eviction window is plenty.
                std::thread::sleep(Duration::from_millis(1));
            }
            renews
        })
    };
    let r = poll.read_response();
    stop.store(true, Ordering::Relaxed);
    let renews = renewer.join().expect("the renewing thread failed");
    assert!(renews > 0);
    assert_eq!(r.code(), 0, "{}", r.text());
    assert_eq!(hosts(&r.data(), "sh001"), ["alive"]);
    assert_eq!(hosts(&s.fetch("a").data(), "sh001"), ["alive"]);
    assert_eq!(s.metric("discovery_evicted_total"), 1);
    assert!(s.wait_log("evicted").contains("hostname=silent"));
    // The node's own registration is renewed by the node and stays.
    let own = s.get("/discovery/fetch?appid=infra.discovery&env=dev&status=1");
    assert_eq!(hosts(&own.data(), "sh001"), ["test-node"]);
    // The evicted instance's next renew is -404; it registers again and is back.
    let r = s.post("/discovery/renew", &ident("a", "silent"));
    assert_eq!(r.code(), -404, "{}", r.text());
    s.register(&reg("a", "silent"));
    assert_eq!(hosts(&s.fetch("a").data(), "sh001"), ["alive", "silent"]);
}

#[test]
fn self_preservation_holds_back_eviction() {
    let s = Setup::new()
        .registry("evictInterval", "200ms")
        .registry("evictAfter", "300ms")
        .registry("evictAfterProtected", "1h")
        .registry("selfRenewInterval", "100ms")
        .start();
    for n in 0..10 {
        s.register(&reg("quiet", &format!("h{n}")));
    }
    // Two rounds later every instance has been silent for over 300ms; none is renewed.
    let base = s.metric("discovery_evict_rounds_total");
    s.wait_metric(
        "discovery_evict_rounds_total",
        "to pass 3 more rounds",
        |r| r >= base + 3,
    );
    let m = s.metrics();
    assert_eq!(m["discovery_evicted_total"], 0);
    assert_eq!(m["discovery_instances"], 11, "10 and the node itself");
    assert_eq!(m["discovery_self_preservation"], 1);
    assert_eq!(m["discovery_renews_expected"], 22);
    assert_eq!(hosts(&s.fetch("quiet").data(), "sh001").len(), 10);
    s.wait_log("self-preservation on");
    // The silent instances leave: only the node itself is expected to renew, which it does
    // (every 100ms), so the guard turns off. Each change is logged once, not every round.
    for n in 0..10 {
        assert_eq!(
            s.post("/discovery/cancel", &ident("quiet", &format!("h{n}")))
                .code(),
            0
        );
    }
    s.wait_log("self-preservation off");
    s.wait_metric("discovery_self_preservation", "== 0", |v| v == 0);
    let ons = s
        .log_text()
        .lines()
        .filter(|l| l.contains("self-preservation on"))
        .count();
    assert_eq!(ons, 1, "{}", s.log_text());
}

/// Per eviction round that found expired instances, the server logs
/// `eviction round size=S expired=X evicted=E`; returns every (S, E) logged so far.
fn eviction_rounds(s: &Server) -> Vec<(i64, i64)> {
    let field = |line: &str, key: &str| -> i64 {
        line.split(&format!(" {key}="))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    s.log_text()
        .lines()
        .filter(|l| l.contains("eviction round"))
        .map(|l| (field(l, "size"), field(l, "evicted")))
        .collect()
}

#[test]
fn eviction_removes_at_most_15_percent_per_round() {
    // Protected or not, an instance silent for 1s expires; the node renews itself.
    let s = Setup::new()
        .registry("evictInterval", "200ms")
        .registry("evictAfter", "1s")
        .registry("evictAfterProtected", "1s")
        .registry("selfRenewInterval", "100ms")
        .start();
    for n in 0..10 {
        s.register(&reg("doomed", &format!("h{n}")));
    }
    // By the counters alone: there are never more than 11 instances, so after r rounds at least
    // 11 shrunk r times by `size -> floor(size × 0.85)` remain, whatever the timing. One round
    // more is allowed: a round may end between the server's reads of the two counters.
    wait_until("10 evictions", || {
        let m = s.metrics();
        let (rounds, evicted) = (
            m["discovery_evict_rounds_total"],
            m["discovery_evicted_total"],
        );
        let most = 11 - (0..=rounds).fold(11, |size, _| size * 85 / 100);
        assert!(evicted <= most, "{evicted} evicted in {rounds} rounds");
        (evicted == 10).then_some(())
    });
    let rounds = wait_until("every eviction to be logged", || {
        let r = eviction_rounds(&s);
        (r.iter().map(|(_, e)| e).sum::<i64>() == 10).then_some(r)
    });
    for &(size, evicted) in &rounds {
        let cap = size - size * 85 / 100;
        assert!(
            evicted <= cap,
            "{evicted} of {size} evicted in one round; at most {cap} allowed: {rounds:?}"
        );
    }
    // 11 → 9 → 7 → 5 → 4 → 3 → 2 → 1 (the node itself stays): seven evicting rounds at least,
    // also by the counters.
    let evicting = rounds.iter().filter(|(_, e)| *e > 0).count() as i64;
    assert!(evicting >= 7, "10 evicted in {evicting} rounds: {rounds:?}");
    let m = s.metrics();
    assert!(m["discovery_evict_rounds_total"] >= evicting, "{m:?}");
    assert_eq!(m["discovery_instances"], 1);
    assert_eq!(s.fetch("doomed").code(), -404);
}

#[test]
fn own_registration_comes_back() {
    // The test plays a peer that cancels this node's registration behind its back.
    let s = Setup::new()
        .registry("selfRenewInterval", "100ms")
        .test_client_is_a_peer()
        .start();
    let me = ident("infra.discovery", "test-node");
    assert_eq!(s.post("/discovery/cancel", &me).code(), 0);
    s.wait_log("own registration was gone");
    let info = wait_until("the node to register itself again", || {
        let r = s.get("/discovery/fetch?appid=infra.discovery&env=dev&status=1");
        (r.code() == 0).then(|| r.data())
    });
    let i = instance(&info, "sh001", "test-node");
    assert_eq!(i["addrs"][0], format!("http://{}", s.addr));
}

#[test]
fn sigterm_answers_parked_polls_and_exits_cleanly() {
    let mut s = Server::start();
    s.register(&reg("a", "h1"));
    let latest = s.latest("a");
    let mut polls: Vec<Conn> = (0..4)
        .map(|n| {
            let mut c = s.connect();
            c.send(format!(
                "GET /discovery/poll?appid=a&env=dev&hostname=c{n}&latest_timestamp={latest} HTTP/1.1\r\n\r\n"
            ));
            c
        })
        .collect();
    let mut idle = s.connect();
    assert_eq!(idle.get("/discovery/nodes").code(), 0);
    s.wait_parked(4);
    s.signal(libc::SIGTERM);
    for c in &mut polls {
        let r = c.read_response();
        assert_eq!(r.code(), -304, "{}", r.text());
        assert!(
            r.closes(),
            "a poll answered at shutdown closes its connection"
        );
        c.expect_closed();
    }
    let status = s.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", s.log_text());
    let log = s.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("own registration") && l.contains("cancel")),
        "{log}"
    );
    assert!(!log.contains("already gone"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // The idle keep-alive connection did not hold the exit up, and nothing listens any more.
    idle.expect_closed();
    assert!(std::net::TcpStream::connect_timeout(&s.addr, Duration::from_secs(2)).is_err());
}

#[test]
fn sigint_stops_the_node_too() {
    let mut s = Server::start();
    s.register(&reg("a", "h1"));
    s.signal(libc::SIGINT);
    let status = s.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", s.log_text());
    assert!(s.log_text().contains("stopped"), "{}", s.log_text());
}
