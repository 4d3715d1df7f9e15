//! `report`: turns a results directory (one JSON per target) into
//! summary.md, and for fleet, park and capacity a chart (SVG via gnuplot).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::args::Args;

/// Targets in the order they are compared.
const ORDER: &[&str] = &["ours", "go", "ceiling"];

struct Figure {
    label: &'static str,
    pointer: &'static str,
    /// true when a larger value is better (shown in the legend of ratios).
    higher_better: bool,
}

const fn fig(label: &'static str, pointer: &'static str, higher_better: bool) -> Figure {
    Figure {
        label,
        pointer,
        higher_better,
    }
}

fn figures_for(scenario: &str) -> Vec<Figure> {
    match scenario {
        "fetch" | "renew" => vec![
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
        ],
        "fleet" => vec![
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
        ],
        "park" => vec![
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
                "server CPU during wake (%)",
                "/figures/server_cpu_during_wake_pct",
                false,
            ),
            fig("errors", "/figures/errors", false),
        ],
        "capacity" => vec![
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
        ],
        _ => Vec::new(),
    }
}

fn fmt_num(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(f) = n.as_f64() {
                if f.abs() >= 10_000.0 {
                    format!("{f:.0}")
                } else if f.abs() >= 100.0 {
                    format!("{f:.1}")
                } else if f.abs() >= 10.0 {
                    format!("{f:.2}")
                } else {
                    format!("{f:.3}")
                }
            } else {
                n.to_string()
            }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn ratio(a: &Value, b: &Value) -> String {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if y != 0.0 => format!("{:.2}", x / y),
        _ => "–".into(),
    }
}

fn load(dir: &Path) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if v.get("tool").and_then(|t| t.as_str()) != Some("discovery-loadtest") {
            continue;
        }
        let label = v["target"].as_str().unwrap_or("target").to_string();
        out.push((label, v));
    }
    out.sort_by_key(|(l, _)| ORDER.iter().position(|o| o == l).unwrap_or(ORDER.len()));
    Ok(out)
}

pub fn run(argv: &[String]) -> Result<(), String> {
    let a = Args::parse(argv, &[])?;
    let dir = PathBuf::from(a.string("dir", "."));
    let scenario_flag = a.opt::<String>("scenario")?;
    a.finish()?;
    let runs = load(&dir)?;
    let scenario = scenario_flag
        .or_else(|| {
            runs.first()
                .and_then(|(_, v)| v["scenario"].as_str().map(String::from))
        })
        .unwrap_or_else(|| "unknown".into());
    let skipped = std::fs::read_to_string(dir.join("skipped.txt")).unwrap_or_default();

    let mut md = String::new();
    let _ = writeln!(md, "# Load test: `{scenario}`\n");
    if let Some((_, v)) = runs.first() {
        let m = &v["machine"];
        let _ = writeln!(
            md,
            "Machine: {} CPU(s), {}, kernel {}, {} MiB memory, open-file limit {}.  \nLoad generator: {} thread(s), {} driver, on the same machine as the server.\n",
            fmt_num(&m["nproc"]),
            m["cpu_model"].as_str().unwrap_or("?"),
            m["kernel"].as_str().unwrap_or("?"),
            fmt_num(&m["mem_total_mib"]),
            fmt_num(&m["nofile_limit"]),
            fmt_num(&v["client"]["threads"]),
            v["client"]["driver"].as_str().unwrap_or("?"),
        );
        let params: Vec<String> = v["params"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "addr" | "out" | "label" | "server-pid" | "quiet"
                        )
                    })
                    .map(|(k, v)| format!("`--{k} {}`", v.as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(md, "Parameters: {}\n", params.join(" "));
    }
    let notes = std::fs::read_to_string(dir.join("notes.txt")).unwrap_or_default();
    if !notes.trim().is_empty() {
        let _ = writeln!(md, "Notes:\n");
        for l in notes.lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(md, "- {l}");
        }
        let _ = writeln!(md);
    }
    if runs.is_empty() {
        let _ = writeln!(md, "No target produced a result.\n");
    }
    if !skipped.trim().is_empty() {
        let _ = writeln!(md, "Not measured:\n");
        for l in skipped.lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(md, "- {l}");
        }
        let _ = writeln!(md);
    }

    let labels: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
    let get = |label: &str, ptr: &str| -> Value {
        runs.iter()
            .find(|(l, _)| l == label)
            .and_then(|(_, v)| v.pointer(ptr).cloned())
            .unwrap_or(Value::Null)
    };
    let has = |l: &str| labels.contains(&l);
    let figs = figures_for(&scenario);
    if !figs.is_empty() && !runs.is_empty() {
        let mut head = String::from("| figure |");
        let mut sep = String::from("|---|");
        for l in &labels {
            let _ = write!(head, " {l} |");
            sep.push_str("---:|");
        }
        if has("ours") && has("go") {
            head.push_str(" ours/go |");
            sep.push_str("---:|");
        }
        if has("ours") && has("ceiling") {
            head.push_str(" ours/ceiling |");
            sep.push_str("---:|");
        }
        let _ = writeln!(md, "{head}\n{sep}");
        for f in &figs {
            let mut row = format!(
                "| {} {} |",
                f.label,
                if f.higher_better { "↑" } else { "↓" }
            );
            for l in &labels {
                let _ = write!(row, " {} |", fmt_num(&get(l, f.pointer)));
            }
            if has("ours") && has("go") {
                let _ = write!(
                    row,
                    " {} |",
                    ratio(&get("ours", f.pointer), &get("go", f.pointer))
                );
            }
            if has("ours") && has("ceiling") {
                let _ = write!(
                    row,
                    " {} |",
                    ratio(&get("ours", f.pointer), &get("ceiling", f.pointer))
                );
            }
            let _ = writeln!(md, "{row}");
        }
        let _ = writeln!(
            md,
            "\n↑ higher is better, ↓ lower is better. Ratios divide ours by the other target's value.\n"
        );
    }
    if scenario == "capacity" {
        for (l, v) in &runs {
            let _ = writeln!(
                md,
                "### {l}: steps (stopped: {})\n\n| instances | consumers | renews due/s | renews answered/s | renew p99 ms | wake p99 ms | errors | RSS MiB | CPU % | result |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
                v["figures"]["stop_reason"].as_str().unwrap_or("?")
            );
            for s in v["figures"]["steps"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    fmt_num(&s["instances"]),
                    fmt_num(&s["consumers"]),
                    fmt_num(&s["renew_rate_per_s"]),
                    fmt_num(&s["renew_answered_per_s"]),
                    fmt_num(&s["renew_p99_ms"]),
                    fmt_num(&s["wake_p99_ms"]),
                    fmt_num(&s["errors"]),
                    fmt_num(&s["server_rss_max_mib"]),
                    fmt_num(&s["server_cpu_avg_pct"]),
                    if s["pass"].as_bool() == Some(true) {
                        "pass".to_string()
                    } else {
                        format!("fail: {}", s["fail_reasons"])
                    }
                );
            }
            let _ = writeln!(md);
        }
    }
    for (l, v) in &runs {
        let samples = collect_error_samples(v);
        if !samples.is_empty() {
            let _ = writeln!(md, "Errors seen by `{l}`: {}\n", samples.join("; "));
        }
    }

    match chart(&dir, &scenario, &runs) {
        Ok(Some(name)) => {
            let _ = writeln!(md, "![chart]({name})\n");
        }
        Ok(None) => {}
        Err(e) => {
            let _ = writeln!(md, "Chart not drawn: {e}\n");
        }
    }
    let _ = writeln!(
        md,
        "Raw figures: one JSON per target in this directory ({}).",
        labels
            .iter()
            .map(|l| format!("`{l}.json`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let path = dir.join("summary.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{md}");
    Ok(())
}

fn collect_error_samples(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for ptr in [
        "/figures/error_samples",
        "/figures/renew/error_samples",
        "/figures/polls/error_samples",
    ] {
        if let Some(a) = v.pointer(ptr).and_then(|x| x.as_array()) {
            out.extend(a.iter().filter_map(|s| s.as_str().map(String::from)));
        }
    }
    if let Some(s) = v
        .pointer("/figures/first_open_error")
        .and_then(|x| x.as_str())
    {
        out.push(s.to_string());
    }
    if let Some(s) = v.pointer("/figures/change_error").and_then(|x| x.as_str()) {
        out.push(s.to_string());
    }
    out
}

fn write_dat(path: &Path, rows: &[Vec<String>]) -> Result<(), String> {
    let mut s = String::new();
    for r in rows {
        s.push_str(&r.join(" "));
        s.push('\n');
    }
    std::fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) => format!("{f}"),
        None => "NaN".into(),
    }
}

/// Writes data files and a gnuplot script; runs gnuplot when present.
fn chart(dir: &Path, scenario: &str, runs: &[(String, Value)]) -> Result<Option<String>, String> {
    if runs.is_empty() || !matches!(scenario, "fleet" | "park" | "capacity") {
        return Ok(None);
    }
    let mut panels: Vec<String> = Vec::new();
    match scenario {
        "fleet" => {
            let mut p1 = Vec::new();
            let mut p2 = Vec::new();
            let mut p3 = Vec::new();
            let mut marks = String::new();
            for (l, v) in runs {
                if let Some(ws) = v
                    .pointer("/figures/window_start_s")
                    .and_then(|x| x.as_f64())
                {
                    let _ = writeln!(
                        marks,
                        "set arrow from {ws}, graph 0 to {ws}, graph 1 nohead dt 3"
                    );
                }
                let ramp: Vec<Vec<String>> = v["series"]["ramp"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|r| vec![num(&r["instances"]), num(&r["rss_mib"])])
                    .collect();
                write_dat(&dir.join(format!("{l}-ramp.dat")), &ramp)?;
                let ps: Vec<Vec<String>> = v["series"]["per_second"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|r| {
                        vec![
                            num(&r["t"]),
                            num(&r["renew_p99_ms"]),
                            num(&r["wake_p99_ms"]),
                            num(&r["cpu_pct"]),
                            num(&r["rss_mib"]),
                        ]
                    })
                    .collect();
                write_dat(&dir.join(format!("{l}-persec.dat")), &ps)?;
                p1.push(format!(
                    "'{l}-ramp.dat' using 1:2 with linespoints title '{l}'"
                ));
                p2.push(format!(
                    "'{l}-persec.dat' using 1:2 with linespoints title '{l} renew p99'"
                ));
                p2.push(format!(
                    "'{l}-persec.dat' using 1:3 with linespoints dt 2 title '{l} wake p99'"
                ));
                p3.push(format!(
                    "'{l}-persec.dat' using 1:4 with lines title '{l} CPU %'"
                ));
                p3.push(format!(
                    "'{l}-persec.dat' using 1:5 with lines dt 2 axes x1y2 title '{l} RSS MiB'"
                ));
            }
            panels.push(format!(
                "set title 'Server memory while instances register'\nset xlabel 'instances registered'\nset ylabel 'RSS (MiB)'\nunset y2tics\nunset y2label\nplot {}",
                p1.join(", ")
            ));
            panels.push(format!(
                "set title 'p99 latency per second (measured window starts at the dotted line)'\nset xlabel 'seconds'\nset ylabel 'ms (log scale)'\nset logscale y\n{marks}plot {}\nunset logscale y\nunset arrow",
                p2.join(", ")
            ));
            panels.push(format!(
                "set title 'Server CPU and memory per second'\nset xlabel 'seconds'\nset ylabel 'CPU (% of a core)'\nset y2label 'RSS (MiB)'\nset y2tics\nplot {}",
                p3.join(", ")
            ));
        }
        "park" => {
            let mut p1 = Vec::new();
            let mut p2 = Vec::new();
            for (l, v) in runs {
                let ramp: Vec<Vec<String>> = v["series"]["ramp"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|r| vec![num(&r["parked"]), num(&r["rss_mib"])])
                    .collect();
                write_dat(&dir.join(format!("{l}-ramp.dat")), &ramp)?;
                let cdf: Vec<Vec<String>> = v["series"]["wake_cdf"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|r| vec![num(&r["ms"]), num(&r["fraction"])])
                    .collect();
                write_dat(&dir.join(format!("{l}-cdf.dat")), &cdf)?;
                p1.push(format!(
                    "'{l}-ramp.dat' using 1:2 with linespoints title '{l}'"
                ));
                p2.push(format!(
                    "'{l}-cdf.dat' using 1:2 with lines lw 2 title '{l}'"
                ));
            }
            panels.push(format!(
                "set title 'Server memory against parked polls'\nset xlabel 'polls written'\nset ylabel 'RSS (MiB)'\nplot {}",
                p1.join(", ")
            ));
            panels.push(format!(
                "set title 'Time from the change to each poll answer'\nset xlabel 'ms after the change was sent'\nset ylabel 'fraction of polls answered'\nset yrange [0:1.05]\nplot {}",
                p2.join(", ")
            ));
        }
        _ => {
            let mut p1 = Vec::new();
            let mut p2 = Vec::new();
            for (l, v) in runs {
                let steps: Vec<Vec<String>> = v["figures"]["steps"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|s| {
                        vec![
                            num(&s["instances"]),
                            num(&s["renew_p99_ms"]),
                            num(&s["wake_p99_ms"]),
                            num(&s["server_rss_max_mib"]),
                        ]
                    })
                    .collect();
                write_dat(&dir.join(format!("{l}-steps.dat")), &steps)?;
                p1.push(format!(
                    "'{l}-steps.dat' using 1:2 with linespoints title '{l} renew p99'"
                ));
                p1.push(format!(
                    "'{l}-steps.dat' using 1:3 with linespoints dt 2 title '{l} wake p99'"
                ));
                p2.push(format!(
                    "'{l}-steps.dat' using 1:4 with linespoints title '{l}'"
                ));
            }
            panels.push(format!(
                "set title 'p99 latency against fleet size'\nset logscale x 2\nset logscale y\nset xlabel 'instances'\nset ylabel 'ms (log scale)'\nplot {}\nunset logscale y",
                p1.join(", ")
            ));
            panels.push(format!(
                "set title 'Server memory against fleet size'\nset xlabel 'instances'\nset ylabel 'RSS max (MiB)'\nplot {}",
                p2.join(", ")
            ));
        }
    }
    let height = 380 * panels.len();
    let script = format!(
        "set terminal svg size 960,{height} dynamic font 'sans,11'\nset output 'chart.svg'\nset grid\nset key top left\nset rmargin 6\nset multiplot layout {},1\n{}\nunset multiplot\n",
        panels.len(),
        panels.join("\n")
    );
    let gp = dir.join("chart.gp");
    std::fs::write(&gp, script).map_err(|e| format!("{}: {e}", gp.display()))?;
    let status = std::process::Command::new("gnuplot")
        .arg("chart.gp")
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Ok(Some("chart.svg".into())),
        Ok(s) => Err(format!("gnuplot exited with {s} (script: chart.gp)")),
        Err(e) => Err(format!(
            "gnuplot not available ({e}); data and script are in chart.gp and *.dat"
        )),
    }
}
