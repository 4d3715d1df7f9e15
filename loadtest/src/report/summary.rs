//! The text of summary.md, section by section: machine, pinning (from run.sh's
//! `pinning.txt`) and parameters, notes and targets not measured (from
//! `notes.txt` and `skipped.txt`), the table of figures with the ratios
//! ours/go, ours/ceiling and ours/nginx, capacity's steps, the errors each
//! target saw, the chart and where the raw data is.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::chart::chart;
use super::figures::figures_for;
use super::{fmt_num, ratio};

/// The whole summary of `runs` (label, report) for `scenario`.
pub(super) fn render(dir: &Path, scenario: &str, runs: &[(String, Value)]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Load test: `{scenario}`\n");
    let pinning = std::fs::read_to_string(dir.join("pinning.txt")).unwrap_or_default();
    if let Some((_, v)) = runs.first() {
        machine_and_params(&mut md, v, pinning.trim());
    }
    let notes = std::fs::read_to_string(dir.join("notes.txt")).unwrap_or_default();
    listed(&mut md, "Notes", &notes);
    if runs.is_empty() {
        let _ = writeln!(md, "No target produced a result.\n");
    }
    let skipped = std::fs::read_to_string(dir.join("skipped.txt")).unwrap_or_default();
    listed(&mut md, "Not measured", &skipped);
    table(&mut md, scenario, runs);
    if scenario == "capacity" {
        for (l, v) in runs {
            capacity_steps(&mut md, l, v);
        }
    }
    for (l, v) in runs {
        let samples = error_samples(v);
        if !samples.is_empty() {
            let _ = writeln!(md, "Errors seen by `{l}`: {}\n", samples.join("; "));
        }
    }
    match chart(dir, scenario, runs) {
        Ok(Some(name)) => {
            let _ = writeln!(md, "![chart]({name})\n");
        }
        Ok(None) => {}
        Err(e) => {
            let _ = writeln!(md, "Chart not drawn: {e}\n");
        }
    }
    let files: Vec<String> = runs.iter().map(|(l, _)| format!("`{l}.json`")).collect();
    let _ = writeln!(
        md,
        "Raw figures: one JSON per target in this directory ({}).",
        files.join(", ")
    );
    md
}

/// The machine, the load generator, how the two were pinned (run.sh's line,
/// empty when the report was made without it) and the flags that shape the run.
fn machine_and_params(md: &mut String, v: &Value, pinning: &str) {
    let m = &v["machine"];
    let _ = write!(
        md,
        "Machine: {} CPU(s), {}, kernel {}, {} MiB memory, open-file limit {}.  \nLoad generator: {} thread(s), {} driver, on CPUs {} of the same machine as the server.",
        fmt_num(&m["nproc"]),
        m["cpu_model"].as_str().unwrap_or("?"),
        m["kernel"].as_str().unwrap_or("?"),
        fmt_num(&m["mem_total_mib"]),
        fmt_num(&m["nofile_limit"]),
        fmt_num(&v["client"]["threads"]),
        v["client"]["driver"].as_str().unwrap_or("?"),
        v["client"]["cpus"].as_str().unwrap_or("?"),
    );
    if pinning.is_empty() {
        let _ = writeln!(md, "\n");
    } else {
        let _ = writeln!(md, "  \n{pinning}.\n");
    }
    // Flags that only say where the run went are left out.
    let local = |k: &str| matches!(k, "addr" | "out" | "label" | "server-pid" | "quiet");
    let params: Vec<String> = v["params"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !local(k))
                .map(|(k, v)| format!("`--{k} {}`", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(md, "Parameters: {}\n", params.join(" "));
}

/// A titled list of the non-empty lines of `text`, if there are any.
fn listed(md: &mut String, title: &str, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    let _ = writeln!(md, "{title}:\n");
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(md, "- {l}");
    }
    let _ = writeln!(md);
}

/// One row per figure, one column per target, then the ratios.
fn table(md: &mut String, scenario: &str, runs: &[(String, Value)]) {
    let figs = figures_for(scenario);
    if figs.is_empty() || runs.is_empty() {
        return;
    }
    let labels: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
    let get = |label: &str, ptr: &str| -> Value {
        runs.iter()
            .find(|(l, _)| l == label)
            .and_then(|(_, v)| v.pointer(ptr).cloned())
            .unwrap_or(Value::Null)
    };
    let has = |l: &str| labels.contains(&l);
    let ratios: Vec<&str> = ["go", "ceiling", "nginx"]
        .into_iter()
        .filter(|o| has("ours") && has(o))
        .collect();
    let mut head = String::from("| figure |");
    let mut sep = String::from("|---|");
    for l in &labels {
        let _ = write!(head, " {l} |");
        sep.push_str("---:|");
    }
    for o in &ratios {
        let _ = write!(head, " ours/{o} |");
        sep.push_str("---:|");
    }
    let _ = writeln!(md, "{head}\n{sep}");
    for f in figs {
        let arrow = if f.higher_better { "↑" } else { "↓" };
        let mut row = format!("| {} {arrow} |", f.label);
        for l in &labels {
            let _ = write!(row, " {} |", fmt_num(&get(l, f.pointer)));
        }
        for o in &ratios {
            let r = ratio(&get("ours", f.pointer), &get(o, f.pointer));
            let _ = write!(row, " {r} |");
        }
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(
        md,
        "\n↑ higher is better, ↓ lower is better. Ratios divide ours by the other target's value.\n"
    );
}

/// Capacity's steps for target `l`, one row each.
fn capacity_steps(md: &mut String, l: &str, v: &Value) {
    let _ = writeln!(
        md,
        "### {l}: steps (stopped: {})\n\n| instances | consumers | renews due/s | renews answered/s | renew p99 ms | wake p99 ms | errors | RSS MiB | CPU % | result |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        v["figures"]["stop_reason"].as_str().unwrap_or("?")
    );
    let steps = v["figures"]["steps"].as_array().map(|a| a.as_slice());
    for s in steps.unwrap_or_default() {
        let result = if s["pass"].as_bool() == Some(true) {
            "pass".to_string()
        } else {
            format!("fail: {}", s["fail_reasons"])
        };
        let cols = [
            "instances",
            "consumers",
            "renew_rate_per_s",
            "renew_answered_per_s",
            "renew_p99_ms",
            "wake_p99_ms",
            "errors",
            "server_rss_max_mib",
            "server_cpu_avg_pct",
        ];
        let cells: Vec<String> = cols.iter().map(|c| fmt_num(&s[*c])).collect();
        let _ = writeln!(md, "| {} | {result} |", cells.join(" | "));
    }
    let _ = writeln!(md);
}

/// The error kinds a report recorded, in every section that keeps them.
fn error_samples(v: &Value) -> Vec<String> {
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
    for ptr in ["/figures/first_open_error", "/figures/change_error"] {
        if let Some(s) = v.pointer(ptr).and_then(|x| x.as_str()) {
            out.push(s.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(target: &str, req_per_s: f64) -> (String, Value) {
        let v = json!({
            "tool": "discovery-loadtest",
            "scenario": "fetch",
            "target": target,
            "machine": { "nproc": 2 },
            "client": { "threads": 1, "driver": "uring", "cpus": "1" },
            "params": {},
            "figures": { "req_per_s": req_per_s },
        });
        (target.to_string(), v)
    }

    #[test]
    fn the_pinning_line_follows_the_load_generator() {
        let dir = std::env::temp_dir().join(format!("loadtest-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let line = "Pinned: server on CPUs 0 (1 thread(s)), load generator on CPUs 1 (1 thread(s))";
        std::fs::write(dir.join("pinning.txt"), format!("{line}\n")).expect("write");
        let md = render(&dir, "fetch", &[report("ours", 10.0)]);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(md.contains(&format!(
            "on CPUs 1 of the same machine as the server.  \n{line}.\n"
        )));
    }

    #[test]
    fn nginx_gets_a_column_and_a_ratio() {
        let mut md = String::new();
        table(
            &mut md,
            "fetch",
            &[
                report("ours", 30.0),
                report("ceiling", 40.0),
                report("nginx", 20.0),
            ],
        );
        assert!(md.starts_with("| figure | ours | ceiling | nginx | ours/ceiling | ours/nginx |"));
        assert!(
            md.contains("| requests/s ↑ | 30.00 | 40.00 | 20.00 | 0.75 | 1.50 |"),
            "{md}"
        );
    }
}
