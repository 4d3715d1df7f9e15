//! Phase 1 of the fleet: the registration ramp. New instances register as
//! fast as the server takes them while the server's RSS is sampled against
//! the number registered, for the memory chart.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::FleetCfg;
use crate::scenario::common::{bulk, Bulk, Common};
use crate::sys::{self, Sample, Sampler};

/// Longest the registration of one step may take.
const REGISTER_LIMIT: Duration = Duration::from_secs(600);

/// What the ramp measured.
pub(super) struct Ramp {
    /// The registrations, when there were new instances to register.
    pub bulk: Option<Bulk>,
    /// RSS samples with the number of instances registered.
    pub samples: Vec<Sample>,
    /// The server's RSS before the ramp.
    pub rss0_kb: u64,
}

/// Registers instances `registered..cfg.instances`.
pub(super) fn ramp(c: &Common, cfg: &FleetCfg, registered: usize) -> Result<Ramp, String> {
    let n = cfg.instances;
    c.log(&format!(
        "fleet: registering instances {registered}..{n} ({} apps)",
        cfg.apps()
    ));
    let progress = Arc::new(AtomicU64::new(registered as u64));
    let rss0_kb = c
        .server_pid
        .and_then(|p| sys::rss_kb(&p.to_string()))
        .unwrap_or(0);
    let sampler = Sampler::start(
        c.server_pid,
        Duration::from_millis(50),
        Instant::now(),
        Some(progress.clone()),
    );
    let bulk = if registered < n {
        let id = c.ident.clone();
        let cfg2 = cfg.clone();
        let make = move |i, buf: &mut Vec<u8>| {
            let (app, host) = cfg2.names(i);
            id.register(buf, &app, &host, i, 1);
        };
        let conns = cfg.register_conns;
        Some(bulk(
            c,
            registered..n,
            conns,
            0,
            Some(progress),
            REGISTER_LIMIT,
            make,
        )?)
    } else {
        None
    };
    let samples = sampler.finish();
    let failed = bulk.as_ref().map(|b| b.failed).unwrap_or(0);
    if failed > 0 {
        c.log(&format!("fleet: {failed} registrations failed"));
    }
    Ok(Ramp {
        bulk,
        samples,
        rss0_kb,
    })
}
