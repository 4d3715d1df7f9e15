//! Machine facts and /proc sampling (CPU and RSS of the server under test).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// CPUs this process may use.
pub fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// CPU model, kernel, memory and open-file limit, for the report.
pub fn machine_json() -> Value {
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let meminfo = read("/proc/meminfo");
    let mem_kb = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    json!({
        "nproc": online_cpus(),
        "cpu_model": model,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "mem_total_mib": mem_kb / 1024,
        "nofile_limit": nofile_limit(),
    })
}

/// CPUs online on the machine, whatever this process may use (`taskset` narrows [`nproc`]).
fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(nproc)
}

/// The CPUs this process may run on, as the kernel lists them (`0-1`, `2,5`).
pub fn allowed_cpus() -> String {
    read("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "?".to_string())
}

/// Clock ticks per second for /proc/<pid>/stat times.
pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The direct children of a process, from every thread's `children` list. A server of
/// several processes (nginx: a master and its workers) is measured as the master and these.
fn children(pid: &str) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .flat_map(|t| {
            let kids = read(&t.path().join("children").to_string_lossy());
            kids.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// utime + stime in ticks of a process and its direct children (`self` for this process).
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let own = stat_ticks(pid)?;
    Some(
        own + children(pid)
            .iter()
            .filter_map(|c| stat_ticks(c))
            .sum::<u64>(),
    )
}

/// utime + stime of one process in ticks.
fn stat_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After ")": index 0 is field 3 (state); utime is field 14, stime 15.
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some(ut + st)
}

/// VmRSS in KiB of a process and its direct children (pages they share are counted in each).
pub fn rss_kb(pid: &str) -> Option<u64> {
    let own = vm_rss_kb(pid)?;
    Some(
        own + children(pid)
            .iter()
            .filter_map(|c| vm_rss_kb(c))
            .sum::<u64>(),
    )
}

/// VmRSS in KiB of one process.
fn vm_rss_kb(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The soft RLIMIT_NOFILE.
pub fn nofile_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        1024
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
    nofile_limit()
}

/// One sample of the server (and of this process).
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the run's start.
    pub t: f64,
    pub cpu_pct: f64,
    pub rss_kb: u64,
    pub self_cpu_pct: f64,
    /// A progress counter supplied by the scenario (e.g. instances registered).
    pub progress: u64,
}

/// Samples CPU % and RSS of the server pid every `period` on its own thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Sample>>>,
}

impl Sampler {
    /// Starts sampling `pid` (and this process) every `period`, with times
    /// since `t0` and the value of `progress`, if given.
    pub fn start(
        pid: Option<u32>,
        period: Duration,
        t0: Instant,
        progress: Option<Arc<AtomicU64>>,
    ) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let tck = clk_tck();
            let pid_s = pid.map(|p| p.to_string());
            let mut out = Vec::new();
            let mut last_t = Instant::now();
            let mut last_cpu = pid_s.as_deref().and_then(cpu_ticks).unwrap_or(0);
            let mut last_self = cpu_ticks("self").unwrap_or(0);
            // Bounded by the stop flag, which every scenario sets when it ends.
            while !stop2.load(Ordering::Relaxed) {
                let next = last_t + period;
                while Instant::now() < next && !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10).min(period));
                }
                let now = Instant::now();
                let dt = now.duration_since(last_t).as_secs_f64().max(1e-6);
                let cpu = pid_s.as_deref().and_then(cpu_ticks).unwrap_or(last_cpu);
                let me = cpu_ticks("self").unwrap_or(last_self);
                out.push(Sample {
                    t: now.duration_since(t0).as_secs_f64(),
                    cpu_pct: (cpu.saturating_sub(last_cpu)) as f64 / tck / dt * 100.0,
                    rss_kb: pid_s.as_deref().and_then(rss_kb).unwrap_or(0),
                    self_cpu_pct: (me.saturating_sub(last_self)) as f64 / tck / dt * 100.0,
                    progress: progress
                        .as_ref()
                        .map(|p| p.load(Ordering::Relaxed))
                        .unwrap_or(0),
                });
                last_t = now;
                last_cpu = cpu;
                last_self = me;
            }
            out
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling and returns the samples.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// CPU used by a process between two points, as % of one core.
pub struct CpuWindow {
    pid: Option<String>,
    t: Instant,
    ticks: u64,
    self_ticks: u64,
}

impl CpuWindow {
    /// Starts the window now.
    pub fn start(pid: Option<u32>) -> CpuWindow {
        let pid = pid.map(|p| p.to_string());
        let ticks = pid.as_deref().and_then(cpu_ticks).unwrap_or(0);
        CpuWindow {
            pid,
            t: Instant::now(),
            ticks,
            self_ticks: cpu_ticks("self").unwrap_or(0),
        }
    }

    /// (server %, loadgen %) over the window.
    pub fn end(&self) -> (Option<f64>, f64) {
        let dt = self.t.elapsed().as_secs_f64().max(1e-6);
        let tck = clk_tck();
        let server = self
            .pid
            .as_deref()
            .and_then(cpu_ticks)
            .map(|c| c.saturating_sub(self.ticks) as f64 / tck / dt * 100.0);
        let me = cpu_ticks("self").unwrap_or(self.self_ticks);
        (
            server,
            me.saturating_sub(self.self_ticks) as f64 / tck / dt * 100.0,
        )
    }
}

/// Samples for the report's series.
pub fn samples_json(s: &[Sample]) -> Value {
    Value::Array(
        s.iter()
            .map(|x| {
                json!({
                    "t": round3(x.t),
                    "cpu_pct": round1(x.cpu_pct),
                    "rss_mib": round3(x.rss_kb as f64 / 1024.0),
                    "loadgen_cpu_pct": round1(x.self_cpu_pct),
                    "progress": x.progress,
                })
            })
            .collect(),
    )
}

/// Summary of samples: average and max CPU, RSS at start, end and max.
pub fn samples_summary(s: &[Sample]) -> Value {
    if s.is_empty() {
        return Value::Null;
    }
    let n = s.len() as f64;
    let avg = s.iter().map(|x| x.cpu_pct).sum::<f64>() / n;
    let max = s.iter().map(|x| x.cpu_pct).fold(0.0, f64::max);
    let self_avg = s.iter().map(|x| x.self_cpu_pct).sum::<f64>() / n;
    let rss_max = s.iter().map(|x| x.rss_kb).max().unwrap_or(0);
    json!({
        "server_cpu_avg_pct": round1(avg),
        "server_cpu_max_pct": round1(max),
        "loadgen_cpu_avg_pct": round1(self_avg),
        "server_rss_start_mib": round3(s[0].rss_kb as f64 / 1024.0),
        "server_rss_end_mib": round3(s[s.len() - 1].rss_kb as f64 / 1024.0),
        "server_rss_max_mib": round3(rss_max as f64 / 1024.0),
    })
}

/// Rounded to one decimal.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Rounded to three decimals.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Server-side view of its established connections on `port`, from
/// /proc/net/tcp: (count, count with an empty receive queue).
pub fn server_sockets(port: u16) -> (usize, usize) {
    let s = read("/proc/net/tcp");
    let want = format!(":{port:04X}");
    let mut total = 0;
    let mut drained = 0;
    for line in s.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().take(5).collect();
        if f.len() < 5 || !f[1].ends_with(&want) || f[3] != "01" {
            continue;
        }
        total += 1;
        if f[4].rsplit(':').next() == Some("00000000") {
            drained += 1;
        }
    }
    (total, drained)
}

/// A free loopback TCP port (bound then released).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Seconds since the Unix epoch.
pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_process_is_measured_with_its_parent() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .expect("spawn sleep");
        let me = std::process::id().to_string();
        let kids = children(&me);
        let own = vm_rss_kb(&me);
        let with_kids = rss_kb(&me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(kids.contains(&child.id().to_string()), "{kids:?}");
        assert!(with_kids > own, "{with_kids:?} vs {own:?}");
    }

    #[test]
    fn this_process_runs_on_some_cpus() {
        let cpus = allowed_cpus();
        assert!(cpus.starts_with(|c: char| c.is_ascii_digit()), "{cpus}");
        assert!(online_cpus() >= nproc());
    }
}
