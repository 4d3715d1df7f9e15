//! What the cargo-fuzz targets in `fuzz/` need of the crate's internals, compiled only with the
//! `fuzzing` feature: one node's API state built as a serving core builds it, so a target drives
//! a handler itself rather than the decoders under it.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{envelope, handle_replicate, Access, Api, ReplicateBatch};
use crate::clock;
use crate::cluster::{Cluster, Settings};
use crate::config::Config;
use crate::error::Result;
use crate::http::response::{Framing, Keep, Version};
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::park::{CoreWaiters, Hub};
use crate::registry::instance::Registration;
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::wire::Limits;

/// The `dirty_timestamp` of every instance [`ReplicateHarness::new`] registers: a peer's renew
/// line (`replication=true`) carrying a smaller positive one is answered -409 with the instance,
/// a larger one -404, the same one (or none) 0.
pub const PRESET_DIRTY_TS: i64 = 1_000_000;

/// Bytes of the `blob` metadata value of `demo.big`: two echoes of it pass the answer's echo
/// floor (64 KiB), so a batch of a few lines already reaches the end of its echo budget.
const BIG_METADATA_BYTES: usize = 48 * 1024;

/// A single node's `/discovery/replicate` handler over fresh state, with no peers (forwarding
/// goes nowhere, no thread is started). Env `dev`, zone `sh001`, region `sh` hold, each at
/// [`PRESET_DIRTY_TS`]: `demo.service` hosts `h1` and `h2` (small metadata), and `demo.big` host
/// `b1` (a metadata value of 48 KiB).
pub struct ReplicateHarness {
    /// The state every batch starts from; each gets a fork of it.
    preset: Registry,
    settings: Settings,
    enable_protect: bool,
    identity: Arc<Identity>,
    metrics: Arc<Metrics>,
    access: Arc<Access>,
    effective_config: Arc<[(String, String)]>,
    limits: Limits,
    poll_hold: Duration,
    max_clock_skew: Duration,
    max_parked_polls: usize,
}

/// How the answers are framed: a peer's keep-alive connection.
const FRAMING: Framing = Framing {
    keep: Keep::Alive,
    version: Version::Http11,
};

impl ReplicateHarness {
    /// A node built from `config` as `node::run` and `net::serve_core` build one, holding the
    /// instances listed on [`ReplicateHarness`].
    pub fn new(config: &Config) -> Result<ReplicateHarness> {
        let preset = Registry::new(Arc::new(Hub::new()), 1);
        let now = clock::now_ns();
        let instance = |appid: &str, hostname: &str, metadata: (&str, String)| Registration {
            region: "sh".into(),
            zone: "sh001".into(),
            env: "dev".into(),
            appid: appid.into(),
            hostname: hostname.into(),
            addrs: vec![format!("grpc://10.0.0.1:9000/{hostname}")],
            version: "v1".into(),
            metadata: Some(vec![(metadata.0.into(), metadata.1.into())]),
            status: 1,
            dirty_ts: Some(PRESET_DIRTY_TS),
            ..Registration::default()
        };
        for reg in [
            instance("demo.service", "h1", ("weight", "10".into())),
            instance("demo.service", "h2", ("weight", "20".into())),
            instance("demo.big", "b1", ("blob", "x".repeat(BIG_METADATA_BYTES))),
        ] {
            preset.register(&reg, now)?;
        }
        Ok(ReplicateHarness {
            preset,
            settings: Settings::from_config(config),
            enable_protect: config.enable_protect,
            identity: Arc::new(Identity::new(config, config.http_server.addr)),
            metrics: Arc::new(Metrics::new(1)),
            access: Arc::new(Access::new(config.auth.clone())),
            effective_config: config.effective().into(),
            limits: Limits::from_config(&config.limits, config.http_server.max_body_bytes),
            poll_hold: config.registry.poll_hold,
            max_clock_skew: config.registry.max_clock_skew,
            max_parked_polls: config.http_server.max_parked_polls,
        })
    }

    /// Lines a batch may hold (`limits.maxBatchLines`); one more and it is refused whole.
    pub fn max_batch_lines(&self) -> usize {
        self.limits.max_batch_lines
    }

    /// A node in the preset state, as a serving core builds its `Api`.
    fn node(&self) -> Api {
        let registry = Arc::new(self.preset.fork(1));
        let cluster = Arc::new(Cluster::new(
            self.settings.clone(),
            registry.clone(),
            self.identity.clone(),
            self.enable_protect,
        ));
        Api {
            registry,
            cluster,
            identity: self.identity.clone(),
            metrics: self.metrics.clone(),
            effective_config: self.effective_config.clone(),
            waiters: Rc::new(CoreWaiters::default()),
            poll_hold: self.poll_hold,
            access: self.access.clone(),
            max_clock_skew: self.max_clock_skew,
            limits: self.limits,
            fetch_all: Arc::default(),
            max_parked_polls: self.max_parked_polls,
            shutdown: Shutdown::new().watch(),
        }
    }

    /// Handles `body` as a `/discovery/replicate` request's body on a node in the preset state
    /// (a fresh one per call) and returns the whole response the server writes for it, head and
    /// envelope, exactly as it goes on the connection.
    pub fn batch(&self, body: &[u8]) -> Vec<u8> {
        let api = self.node();
        let mut out = Vec::new();
        match handle_replicate(&api, ReplicateBatch { body }) {
            Ok(answer) => answer.write(&mut out, FRAMING),
            Err(e) => envelope::error(&mut out, FRAMING, &e),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::wire::replicate::decode_answer;

    fn renew(appid: &str, hostname: &str, dirty_ts: i64) -> String {
        format!("op=renew&replication=true&zone=sh001&env=dev&appid={appid}&hostname={hostname}&dirty_timestamp={dirty_ts}\n")
    }

    #[test]
    fn preset_instances_answer_renews_by_version() {
        let config = Config::load(None, &Overrides::default()).unwrap();
        let node = ReplicateHarness::new(&config).unwrap();
        let body = [
            renew("demo.service", "h1", PRESET_DIRTY_TS),
            renew("demo.service", "h2", PRESET_DIRTY_TS + 1),
            renew("demo.big", "b1", PRESET_DIRTY_TS - 1),
            renew("demo.service", "nope", PRESET_DIRTY_TS),
            "op=bogus\n".into(),
        ]
        .concat();
        let response = node.batch(body.as_bytes());
        let (answer, keep) = crate::http::client::parse_answer(&response)
            .unwrap()
            .unwrap();
        assert!(keep && answer.status == 200);
        let results = decode_answer(&answer.body);
        let codes: Vec<i64> = results.iter().map(|r| r.0).collect();
        assert_eq!(codes, [0, -404, -409, -404, -400]);
        let echoed = results[2].1.as_ref().unwrap();
        assert!(echoed.len() > BIG_METADATA_BYTES);
        let refused = node.batch("op=renew\n".repeat(node.max_batch_lines() + 1).as_bytes());
        assert!(String::from_utf8_lossy(&refused).contains("limits.maxBatchLines"));
    }
}
