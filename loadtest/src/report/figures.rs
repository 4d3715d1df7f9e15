//! The figures `summary.md` tabulates for each scenario: a label, where the
//! value is in a target's JSON report, and which direction is better.

/// One row of the summary table.
pub(super) struct Figure {
    pub label: &'static str,
    /// JSON pointer into a target's report.
    pub pointer: &'static str,
    /// true when a larger value is better (shown in the legend of ratios).
    pub higher_better: bool,
}

const fn fig(label: &'static str, pointer: &'static str, higher_better: bool) -> Figure {
    Figure {
        label,
        pointer,
        higher_better,
    }
}

/// The rows for fetch and renew.
const CLOSED: &[Figure] = &[
    fig("requests/s", "/figures/req_per_s", true),
    fig("latency p50 (ms)", "/figures/latency/p50_ms", false),
    fig("latency p99 (ms)", "/figures/latency/p99_ms", false),
    fig("latency p99.9 (ms)", "/figures/latency/p999_ms", false),
    fig("latency max (ms)", "/figures/latency/max_ms", false),
    fig("errors", "/figures/errors", false),
    fig("server CPU (% of a core)", "/figures/server_cpu_pct", false),
    fig(
        "server RSS max (MiB)",
        "/figures/resources/server_rss_max_mib",
        false,
    ),
    fig(
        "loadgen CPU (% of a core)",
        "/figures/loadgen_cpu_pct",
        false,
    ),
    fig("answer bytes", "/figures/answer_bytes_avg", false),
];

/// The rows for fleet.
const FLEET: &[Figure] = &[
    fig("instances", "/figures/instances", true),
    fig("consumers", "/figures/consumers", true),
    fig("registrations/s", "/figures/registration/rate_per_s", true),
    fig(
        "renews/s (due in window)",
        "/figures/renew/rate_per_s",
        true,
    ),
    fig("renews answered/s", "/figures/renew/answered_per_s", true),
    fig("renew done ratio", "/figures/renew/done_ratio", true),
    fig("renew p50 (ms)", "/figures/renew/latency/p50_ms", false),
    fig("renew p99 (ms)", "/figures/renew/latency/p99_ms", false),
    fig("renew p99.9 (ms)", "/figures/renew/latency/p999_ms", false),
    fig("churn writes", "/figures/churn/writes", true),
    fig(
        "churn register p99 (ms)",
        "/figures/churn/latency/p99_ms",
        false,
    ),
    fig("wakes", "/figures/polls/wakes", true),
    fig("wakes unmatched", "/figures/polls/wakes_unmatched", false),
    fig("wake p50 (ms)", "/figures/polls/wake_latency/p50_ms", false),
    fig("wake p99 (ms)", "/figures/polls/wake_latency/p99_ms", false),
    fig("wake max (ms)", "/figures/polls/wake_latency/max_ms", false),
    fig("errors", "/figures/errors", false),
    fig(
        "server CPU avg (%)",
        "/figures/resources/server_cpu_avg_pct",
        false,
    ),
    fig(
        "server CPU max (%)",
        "/figures/resources/server_cpu_max_pct",
        false,
    ),
    fig(
        "server RSS max (MiB)",
        "/figures/resources/server_rss_max_mib",
        false,
    ),
];

/// The rows for park.
const PARK: &[Figure] = &[
    fig("polls", "/figures/polls", true),
    fig("parked", "/figures/parked", true),
    fig("open rate (conn/s)", "/figures/open_rate_per_s", true),
    fig("server RSS before (MiB)", "/figures/rss_before_mib", false),
    fig("server RSS parked (MiB)", "/figures/rss_after_mib", false),
    fig(
        "bytes per parked poll",
        "/figures/bytes_per_parked_poll",
        false,
    ),
    fig("answered", "/figures/answered", true),
    fig("unanswered", "/figures/unanswered", false),
    fig("answered early", "/figures/answered_early", false),
    fig("wake p50 (ms)", "/figures/wake_latency/p50_ms", false),
    fig("wake p99 (ms)", "/figures/wake_latency/p99_ms", false),
    fig("wake max (ms)", "/figures/wake_latency/max_ms", false),
    fig(
        "server-side wake p99, bound of its histogram (ms)",
        "/figures/server_wake/p99_at_most_ms",
        false,
    ),
    fig(
        "server CPU during wake (%)",
        "/figures/server_cpu_during_wake_pct",
        false,
    ),
    fig("errors", "/figures/errors", false),
];

/// The rows for capacity.
const CAPACITY: &[Figure] = &[
    fig("largest passing instances", "/figures/best_instances", true),
    fig("largest passing consumers", "/figures/best_consumers", true),
    fig(
        "renew p99 at best (ms)",
        "/figures/best/renew_p99_ms",
        false,
    ),
    fig("wake p99 at best (ms)", "/figures/best/wake_p99_ms", false),
    fig(
        "server RSS at best (MiB)",
        "/figures/best/server_rss_max_mib",
        false,
    ),
    fig(
        "server CPU at best (%)",
        "/figures/best/server_cpu_avg_pct",
        false,
    ),
];

/// The rows for `scenario` (none for an unknown one).
pub(super) fn figures_for(scenario: &str) -> &'static [Figure] {
    match scenario {
        "fetch" | "renew" => CLOSED,
        "fleet" => FLEET,
        "park" => PARK,
        "capacity" => CAPACITY,
        _ => &[],
    }
}
