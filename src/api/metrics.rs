//! GET `/metrics`: the node's counters and histograms in the OpenMetrics text format, plus what
//! is counted at scrape time (registry, peers and replication, the process).
//!
//! The values live in `crate::metrics` (per-core slots, summed here) and in the registry and
//! the peers; `prometheus-client` writes the exposition format from them through a
//! [`Collector`] built for each scrape. Its own metric types are not used on the request path:
//! they are one shared value per series, which every core would write.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry as Exposition;

use super::answer::Answer;
use super::context::Api;
use crate::cluster::peer::{DropReason, Peer, PeerStatus};
use crate::cluster::Cluster;
use crate::error::Result;
use crate::metrics::{
    self, count, gauge, Merged, Metrics, BATCH_BOUNDS, ECODE_LABELS, LATENCY_BOUNDS_NS,
};
use crate::registry::instance::{STATUS_UP, STATUS_WAITING};
use crate::registry::Registry;

/// Handles `/metrics`; `endpoints` names each endpoint slot in use.
pub(crate) fn handle<'a, const N: usize>(
    api: &Api,
    endpoints: [&'static str; N],
) -> Result<Answer<'a>> {
    let mut exposition = Exposition::default();
    exposition.register_collector(Box::new(Scrape {
        metrics: api.metrics.clone(),
        registry: api.registry.clone(),
        cluster: api.cluster.clone(),
        endpoints: endpoints.to_vec(),
    }));
    let mut text = String::with_capacity(32 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &exposition);
    Ok(Answer::Metrics(text))
}

/// What one scrape reads.
struct Scrape {
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    cluster: Arc<Cluster>,
    endpoints: Vec<&'static str>,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

type Out<'a> = DescriptorEncoder<'a>;
type Fmt = std::result::Result<(), std::fmt::Error>;

/// A counter without labels; `name` without the `_total` the format adds.
fn counter(e: &mut Out<'_>, name: &str, help: &str, v: u64) -> Fmt {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// A gauge without labels.
fn gauge_of(e: &mut Out<'_>, name: &str, help: &str, v: i64) -> Fmt {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A family of series of one type, one per label set.
fn family<L: prometheus_client::encoding::EncodeLabelSet>(
    e: &mut Out<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl IntoIterator<Item = (L, Value)>,
) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let m = m.encode_family(&labels)?;
        match value {
            Value::Count(v) => ConstCounter::new(v).encode(m)?,
            Value::Level(v) => ConstGauge::new(v).encode(m)?,
            Value::Float(v) => ConstGauge::new(v).encode(m)?,
        }
    }
    Ok(())
}

/// A value of a series in a [`family`].
enum Value {
    Count(u64),
    Level(i64),
    Float(f64),
}

/// A histogram without labels, of nanoseconds shown in seconds.
fn histogram_seconds<const N: usize>(
    e: &mut Out<'_>,
    name: &str,
    help: &str,
    bounds: &[u64; N],
    merged: Merged<N>,
) -> Fmt {
    let (buckets, sum, n) = merged.exposition(bounds, 1e9);
    e.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(sum, n, &buckets, None)
}

/// A histogram family: bounds scaled down by `scale` (1e9 turns nanoseconds into seconds).
fn histograms<L: prometheus_client::encoding::EncodeLabelSet, const N: usize>(
    e: &mut Out<'_>,
    name: &str,
    help: &str,
    bounds: &[u64; N],
    scale: f64,
    series: impl IntoIterator<Item = (L, Merged<N>)>,
) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, merged) in series {
        let (buckets, sum, n) = merged.exposition(bounds, scale);
        m.encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(sum, n, &buckets, None)?;
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Fmt {
        self.node(&mut e)?;
        self.endpoints(&mut e)?;
        self.registry(&mut e)?;
        self.peers(&mut e)?;
        self.process(&mut e)
    }
}

impl Scrape {
    /// The counters and gauges the node always had (their names are kept).
    fn node(&self, e: &mut Out<'_>) -> Fmt {
        let m = &*self.metrics;
        let sum = |f: &dyn Fn(&metrics::CoreCounters) -> i64| m.sum(f);
        counter(
            e,
            "discovery_requests",
            "HTTP requests answered.",
            sum(&|c| count(&c.requests) as i64) as u64,
        )?;
        counter(
            e,
            "discovery_bad_requests",
            "Requests answered with ecode -400.",
            sum(&|c| count(&c.bad_requests) as i64) as u64,
        )?;
        counter(
            e,
            "discovery_auth_refused",
            "Requests refused with 403: a missing or wrong token, or a stranger's address.",
            sum(&|c| count(&c.auth_refused) as i64) as u64,
        )?;
        counter(
            e,
            "discovery_connections_refused",
            "Connections refused at a cap (httpServer.maxConns or maxConnsPerIp).",
            sum(&|c| count(&c.connections_refused) as i64) as u64,
        )?;
        counter(
            e,
            "discovery_polls_refused",
            "Long polls refused at httpServer.maxParkedPolls.",
            sum(&|c| count(&c.polls_refused) as i64) as u64,
        )?;
        counter(
            e,
            "discovery_limit_refused",
            "Requests refused with -400 for exceeding a [limits] bound.",
            sum(&|c| count(&c.limit_refused) as i64) as u64,
        )?;
        gauge_of(
            e,
            "discovery_connections_open",
            "Open client connections.",
            sum(&|c| gauge(&c.connections_open)),
        )?;
        gauge_of(
            e,
            "discovery_polls_parked",
            "Long-polls waiting for a change.",
            sum(&|c| gauge(&c.polls_parked)),
        )?;
        counter(
            e,
            "discovery_polls_answered",
            "Long-polls answered with data.",
            sum(&|c| count(&c.polls_answered) as i64) as u64,
        )?;
        counter(
            e,
            "discovery_poll_timeouts",
            "Long-polls answered -304 at the deadline.",
            sum(&|c| count(&c.poll_timeouts) as i64) as u64,
        )?;
        counter(
            e,
            "discovery_evict_rounds",
            "Eviction rounds run.",
            count(&m.evict_rounds),
        )?;
        counter(
            e,
            "discovery_evicted",
            "Instances evicted for missing renews.",
            count(&m.evicted),
        )?;
        gauge_of(
            e,
            "discovery_self_preservation",
            "1 while eviction is held back by self-preservation.",
            gauge(&m.self_preservation),
        )?;
        // Slot 0 belongs to the threads that are not cores; core N has slot N + 1.
        family(
            e,
            "discovery_core_requests",
            "HTTP requests per serving core (to see imbalance).",
            MetricType::Counter,
            m.cores.iter().skip(1).enumerate().map(|(core, c)| {
                (
                    [("core", core.to_string())],
                    Value::Count(count(&c.requests)),
                )
            }),
        )?;
        histogram_seconds(
            e,
            "discovery_poll_hold_seconds",
            "How long parked long-polls were held, from parking to their answer.",
            &LATENCY_BOUNDS_NS,
            m.merged(|c| &c.poll_hold),
        )?;
        histogram_seconds(
            e,
            "discovery_poll_wake_seconds",
            "From a change's publication to the answer of a long-poll parked on it.",
            &LATENCY_BOUNDS_NS,
            m.merged(|c| &c.poll_wake),
        )
    }

    /// Per endpoint: answers by ecode and latency.
    fn endpoints(&self, e: &mut Out<'_>) -> Fmt {
        let m = &*self.metrics;
        let per_code = |slot: usize, code: usize| {
            m.sum(|c| count(&c.endpoints[slot].answers[code]) as i64) as u64
        };
        family(
            e,
            "discovery_endpoint_requests",
            "Requests per endpoint, by the ecode answered (0: success).",
            MetricType::Counter,
            self.endpoints.iter().enumerate().flat_map(|(slot, name)| {
                ECODE_LABELS
                    .iter()
                    .enumerate()
                    .map(move |(code, label)| (slot, *name, code, *label))
                    .filter(|&(slot, _, code, _)| code == 0 || per_code(slot, code) > 0)
                    .map(|(slot, name, code, label)| {
                        (
                            [("endpoint", name), ("ecode", label)],
                            Value::Count(per_code(slot, code)),
                        )
                    })
            }),
        )?;
        family(
            e,
            "discovery_endpoint_errors",
            "Requests per endpoint answered with an error ecode (-304 not counted).",
            MetricType::Counter,
            self.endpoints.iter().enumerate().map(|(slot, name)| {
                let errors = (2..ECODE_LABELS.len())
                    .map(|code| per_code(slot, code))
                    .sum();
                ([("endpoint", *name)], Value::Count(errors))
            }),
        )?;
        histograms(
            e,
            "discovery_endpoint_duration_seconds",
            "Time from a request framed to its answer written (or parked), per endpoint.",
            &LATENCY_BOUNDS_NS,
            1e9,
            self.endpoints.iter().enumerate().map(|(slot, name)| {
                (
                    [("endpoint", *name)],
                    m.merged(|c| &c.endpoints[slot].latency),
                )
            }),
        )
    }

    /// Apps, instances, renews, protection.
    fn registry(&self, e: &mut Out<'_>) -> Fmt {
        let apps = self.registry.apps();
        let (mut up, mut waiting, mut other) = (0i64, 0i64, 0i64);
        for (_, snap) in &apps {
            for inst in snap.instances() {
                match inst.status {
                    STATUS_UP => up += 1,
                    STATUS_WAITING => waiting += 1,
                    _ => other += 1,
                }
            }
        }
        let guard = self.registry.self_preservation();
        gauge_of(
            e,
            "discovery_apps",
            "Apps (env, appid) with at least one instance.",
            apps.len() as i64,
        )?;
        gauge_of(
            e,
            "discovery_instances",
            "Registered instances.",
            up + waiting + other,
        )?;
        family(
            e,
            "discovery_instances_by_status",
            "Registered instances by status.",
            MetricType::Gauge,
            [("up", up), ("waiting", waiting), ("other", other)]
                .map(|(s, n)| ([("status", s)], Value::Level(n))),
        )?;
        gauge_of(
            e,
            "discovery_renews_last_window",
            "Renews counted in the last guard window.",
            guard.renews_last_window(),
        )?;
        gauge_of(
            e,
            "discovery_renews_expected",
            "Renews expected per guard window.",
            guard.expected().0,
        )?;
        gauge_of(
            e,
            "discovery_renews_threshold",
            "Renews per window below which self-preservation turns on.",
            guard.expected().1,
        )?;
        gauge_of(
            e,
            "discovery_protected",
            "1 while start-up protection refuses reads.",
            i64::from(self.cluster.protected()),
        )
    }

    /// Peers and replication: totals (the names kept) and per peer.
    fn peers(&self, e: &mut Out<'_>) -> Fmt {
        let set = self.cluster.peers();
        let all: Vec<&Arc<Peer>> = set.all().collect();
        let total = |f: &dyn Fn(&Peer) -> u64| all.iter().map(|p| f(p)).sum::<u64>();
        gauge_of(
            e,
            "discovery_peers",
            "Peer nodes known (all zones).",
            all.len() as i64,
        )?;
        gauge_of(
            e,
            "discovery_peers_up",
            "Peer nodes whose last call succeeded.",
            total(&|p| u64::from(p.status() == PeerStatus::Up)) as i64,
        )?;
        gauge_of(
            e,
            "discovery_replication_queued",
            "Replicated writes waiting to be sent.",
            total(&|p| p.queued() as u64) as i64,
        )?;
        counter(
            e,
            "discovery_replication_ops",
            "Replicated writes delivered to peers.",
            total(&|p| metrics::count(&p.ops_sent)),
        )?;
        counter(
            e,
            "discovery_replication_requests",
            "Requests that carried them (fewer when batched).",
            total(&|p| metrics::count(&p.requests_sent)),
        )?;
        counter(
            e,
            "discovery_replication_dropped",
            "Replicated writes dropped (queue full, unreachable, refused, or at shutdown).",
            total(&|p| p.dropped_total()),
        )?;
        counter(
            e,
            "discovery_replication_retried",
            "Replicated writes sent again after a failed attempt, or rerouted.",
            total(&|p| metrics::count(&p.retried)),
        )?;
        let labels = |p: &Peer| {
            [
                ("peer", p.addr.clone()),
                ("zone", p.zone.clone()),
                ("kind", p.kind().to_string()),
            ]
        };
        let per = |f: fn(&Peer) -> Value| all.iter().map(move |p| (labels(p), f(p)));
        family(
            e,
            "discovery_peer_up",
            "1 while the peer's last call succeeded.",
            MetricType::Gauge,
            per(|p| Value::Level(i64::from(p.status() == PeerStatus::Up))),
        )?;
        family(
            e,
            "discovery_peer_queued",
            "Replicated writes waiting for the peer.",
            MetricType::Gauge,
            per(|p| Value::Level(p.queued() as i64)),
        )?;
        family(
            e,
            "discovery_peer_ops_sent",
            "Replicated writes delivered to the peer.",
            MetricType::Counter,
            per(|p| Value::Count(metrics::count(&p.ops_sent))),
        )?;
        family(
            e,
            "discovery_peer_requests",
            "Requests sent to the peer.",
            MetricType::Counter,
            per(|p| Value::Count(metrics::count(&p.requests_sent))),
        )?;
        family(
            e,
            "discovery_peer_ops_retried",
            "Writes for the peer tried again: rerouted to another node of its zone, or resent one by one.",
            MetricType::Counter,
            per(|p| Value::Count(metrics::count(&p.retried))),
        )?;
        family(
            e,
            "discovery_peer_ops_dropped",
            "Writes for the peer dropped, by reason.",
            MetricType::Counter,
            all.iter().flat_map(|p| {
                DropReason::ALL.iter().map(move |&r| {
                    let [peer, zone, kind] = labels(p);
                    (
                        [peer, zone, kind, ("reason", r.name().to_string())],
                        Value::Count(p.dropped(r)),
                    )
                })
            }),
        )?;
        family(
            e,
            "discovery_peer_last_success_timestamp_seconds",
            "Unix time of the last successful call to the peer (0: none yet).",
            MetricType::Gauge,
            per(|p| Value::Float(p.last_ok_ns() as f64 / 1e9)),
        )?;
        histograms(
            e,
            "discovery_peer_batch_size",
            "Replicated writes per request sent to the peer.",
            &BATCH_BOUNDS,
            1.0,
            all.iter().map(|p| {
                let mut m = Merged::default();
                p.batch_sizes.add_to(&mut m);
                (labels(p), m)
            }),
        )
    }

    /// The process: memory, descriptors, start time, I/O driver.
    fn process(&self, e: &mut Out<'_>) -> Fmt {
        let (rss, fds) = metrics::process();
        if let Some(rss) = rss {
            gauge_of(
                e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss as i64,
            )?;
        }
        if let Some(fds) = fds {
            gauge_of(e, "process_open_fds", "Open file descriptors.", fds as i64)?;
        }
        gauge_of(
            e,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            self.metrics.started_unix,
        )?;
        let driver = self.metrics.driver.get().copied().unwrap_or("unknown");
        let mut m = e.encode_descriptor(
            "discovery_build",
            "The server's version and the I/O driver its cores run on.",
            None,
            MetricType::Info,
        )?;
        m.encode_info(&[("version", env!("CARGO_PKG_VERSION")), ("driver", driver)])
    }
}
