//! Warm restart on the real binary: the registry saved to `[registry] snapshot` comes back at
//! the next start, after a graceful stop and after `kill -9` (as of the last periodic save);
//! a damaged file is refused and the node starts empty; instances silent for longer than
//! `evictAfter` are not brought back.

mod common;

use std::path::Path;

use common::{hosts, reg, Setup, TempDir};

fn node(snapshot: &Path) -> Setup {
    Setup::new()
        .registry("snapshot", &snapshot.display().to_string())
        .registry("snapshotInterval", "200ms")
}

fn count(s: &common::Server, appid: &str) -> usize {
    let r = s.fetch(appid);
    if r.code() != 0 {
        return 0;
    }
    hosts(&r.data(), "sh001").len()
}

#[test]
fn a_gracefully_restarted_node_answers_with_every_instance_at_once() {
    let dir = TempDir::new("snap");
    let file = dir.path().join("registry.snapshot");
    let mut s = node(&file).start();
    for n in 0..50 {
        s.register(&reg("kept", &format!("h{n}")).set("metadata", r#"{"k":"v,\"q\""}"#));
    }
    let before = s.fetch("kept").data();
    s.signal(libc::SIGTERM);
    assert_eq!(s.wait_exit().code(), Some(0));
    assert!(
        s.log_text().contains("snapshot written"),
        "{}",
        s.log_text()
    );

    let again = node(&file).start();
    // The very first read after start has them all: no renew has arrived yet.
    assert_eq!(count(&again, "kept"), 50);
    let after = again.fetch("kept").data();
    assert_eq!(
        after["instances"]["sh001"][7],
        before["instances"]["sh001"][7]
    );
    assert!(
        again.log_text().contains("snapshot loaded"),
        "{}",
        again.log_text()
    );
    // Self-preservation expects two renews a window from each instance brought back (the
    // node's own registration included), counted once the whole file is restored.
    assert_eq!(again.metric("discovery_renews_expected"), 2 * 51);
}

#[test]
fn a_killed_node_comes_back_with_its_last_periodic_snapshot() {
    let dir = TempDir::new("snap");
    let file = dir.path().join("registry.snapshot");
    let s = node(&file).start();
    for n in 0..20 {
        s.register(&reg("periodic", &format!("h{n}")));
    }
    common::wait_until("a periodic save with all 20", || {
        s.log_text()
            .lines()
            .any(|l| l.contains("snapshot written") && l.contains("instances=21"))
            .then_some(())
    });
    s.signal(libc::SIGKILL);
    drop(s);
    let again = node(&file).start();
    assert_eq!(count(&again, "periodic"), 20);
}

#[test]
fn a_damaged_snapshot_is_refused_and_the_node_starts_empty() {
    let dir = TempDir::new("snap");
    let file = dir.path().join("registry.snapshot");
    let mut s = node(&file).start();
    s.register(&reg("lost", "h1"));
    s.signal(libc::SIGTERM);
    s.wait_exit();
    let good = std::fs::read(&file).unwrap();
    for (damage, why) in [
        (good[..good.len() - 10].to_vec(), "truncated"),
        ([&good[..good.len() - 5], b"xxxx\n"].concat(), "corrupted"),
        (b"discovery-snapshot/0 len=2 crc32=0\n[]".to_vec(), "format"),
    ] {
        std::fs::write(&file, &damage).unwrap();
        let again = node(&file).start();
        let line = again.wait_log("snapshot refused");
        assert!(line.contains(why), "{line}");
        assert_eq!(count(&again, "lost"), 0);
    }
}

#[test]
fn instances_silent_past_eviction_are_not_brought_back() {
    let dir = TempDir::new("snap");
    let file = dir.path().join("registry.snapshot");
    let mut s = node(&file).registry("evictAfter", "1s").start();
    s.register(&reg("stale", "h1"));
    s.signal(libc::SIGTERM);
    s.wait_exit();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let again = node(&file).registry("evictAfter", "1s").start();
    let line = again.wait_log("snapshot loaded");
    assert!(line.contains("expired=1"), "{line}");
    assert_eq!(count(&again, "stale"), 0);
}
