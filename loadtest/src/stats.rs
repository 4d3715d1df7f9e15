//! Latency histograms (microseconds) and outcome counters.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Highest latency recorded exactly: 100 s.
const MAX_US: u64 = 100_000_000;

/// A latency histogram in microseconds, 1 µs to 100 s.
pub struct Lat {
    h: Histogram<u64>,
}

impl Default for Lat {
    fn default() -> Self {
        Lat::new(3)
    }
}

impl Lat {
    /// A histogram with `sigfig` significant figures (1..=5).
    pub fn new(sigfig: u8) -> Lat {
        // Constant bounds; only a sigfig above 5 could fail.
        let h = Histogram::new_with_bounds(1, MAX_US, sigfig.clamp(1, 5))
            .expect("histogram bounds are constants");
        Lat { h }
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, MAX_US);
        self.h.saturating_record(us);
    }

    /// Records one latency given in microseconds.
    pub fn record_us(&mut self, us: u64) {
        self.h.saturating_record(us.clamp(1, MAX_US));
    }

    /// Adds another histogram's values.
    pub fn merge(&mut self, o: &Lat) {
        let _ = self.h.add(&o.h);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The quantile `q` in milliseconds (0 when empty).
    pub fn ms(&self, q: f64) -> f64 {
        if self.h.is_empty() {
            return 0.0;
        }
        self.h.value_at_quantile(q) as f64 / 1000.0
    }

    /// The largest value in milliseconds (0 when empty).
    pub fn max_ms(&self) -> f64 {
        if self.h.is_empty() {
            return 0.0;
        }
        self.h.max() as f64 / 1000.0
    }

    /// Count, mean and percentiles (ms) for the report.
    pub fn json(&self) -> Value {
        let r = |v: f64| (v * 1000.0).round() / 1000.0;
        json!({
            "count": self.count(),
            "mean_ms": r(if self.h.is_empty() { 0.0 } else { self.h.mean() / 1000.0 }),
            "p50_ms": r(self.ms(0.50)),
            "p90_ms": r(self.ms(0.90)),
            "p99_ms": r(self.ms(0.99)),
            "p999_ms": r(self.ms(0.999)),
            "max_ms": r(self.max_ms()),
        })
    }
}

/// Outcome counters of one kind of request.
#[derive(Default)]
pub struct Counts {
    pub ok: u64,
    /// HTTP status != 200 or envelope code != expected.
    pub bad_answer: u64,
    /// Connect/read/write failures and timeouts.
    pub io_errors: u64,
    pub by_code: BTreeMap<String, u64>,
    pub samples: Vec<String>,
}

impl Counts {
    /// Counts an answer; true when it is HTTP 200 with the code `want`.
    pub fn answer(&mut self, status: u16, code: Option<i64>, want: i64) -> bool {
        let key = if status != 200 {
            format!("http {status}")
        } else {
            match code {
                Some(c) => format!("code {c}"),
                None => "no code".to_string(),
            }
        };
        let ok = status == 200 && code == Some(want);
        if ok {
            self.ok += 1;
        } else {
            self.bad_answer += 1;
            *self.by_code.entry(key.clone()).or_default() += 1;
            self.sample(&key);
        }
        ok
    }

    /// Counts an I/O failure or a timeout.
    pub fn io(&mut self, e: &dyn std::fmt::Display) {
        self.io_errors += 1;
        let key = format!("io: {e}");
        *self.by_code.entry(key.clone()).or_default() += 1;
        self.sample(&key);
    }

    fn sample(&mut self, s: &str) {
        if self.samples.len() < 5 && !self.samples.iter().any(|x| x == s) {
            self.samples.push(s.to_string());
        }
    }

    /// Bad answers and I/O failures together.
    pub fn errors(&self) -> u64 {
        self.bad_answer + self.io_errors
    }

    /// Adds another set of counters.
    pub fn merge(&mut self, o: &Counts) {
        self.ok += o.ok;
        self.bad_answer += o.bad_answer;
        self.io_errors += o.io_errors;
        for (k, v) in &o.by_code {
            *self.by_code.entry(k.clone()).or_default() += v;
        }
        for s in &o.samples {
            self.sample(s);
        }
    }

    /// The counters for the report.
    pub fn json(&self) -> Value {
        json!({
            "ok": self.ok,
            "errors": self.errors(),
            "bad_answers": self.bad_answer,
            "io_errors": self.io_errors,
            "errors_by_kind": self.by_code,
        })
    }
}

/// Latency + counters for a request kind, kept per thread and merged.
#[derive(Default)]
pub struct ReqStats {
    pub lat: Lat,
    pub counts: Counts,
    pub bytes: u64,
}

impl ReqStats {
    /// Adds another thread's figures.
    pub fn merge(&mut self, o: &ReqStats) {
        self.lat.merge(&o.lat);
        self.counts.merge(&o.counts);
        self.bytes += o.bytes;
    }

    /// Requests, rate over `window`, latency and counters for the report.
    pub fn json(&self, window: Duration) -> Value {
        let secs = window.as_secs_f64().max(1e-9);
        json!({
            "requests": self.lat.count(),
            "req_per_s": (self.lat.count() as f64 / secs).round(),
            "latency": self.lat.json(),
            "counts": self.counts.json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Lat::default();
        for i in 1..=1000u64 {
            l.record_us(i * 10);
        }
        assert_eq!(l.count(), 1000);
        assert!((l.ms(0.5) - 5.0).abs() < 0.05);
        assert!((l.max_ms() - 10.0).abs() < 0.05);
        let mut c = Counts::default();
        assert!(c.answer(200, Some(0), 0));
        assert!(!c.answer(200, Some(-404), 0));
        assert!(!c.answer(503, None, 0));
        assert_eq!(c.errors(), 2);
    }
}
