//! The chart of a results directory (fleet, park and capacity): one `.dat`
//! file per target and series, a gnuplot script `chart.gp` with one panel
//! per figure, and `chart.svg` when gnuplot is installed.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// Writes data files and a gnuplot script; runs gnuplot when present.
/// Returns the chart's file name, or `None` for a scenario without a chart.
pub(super) fn chart(
    dir: &Path,
    scenario: &str,
    runs: &[(String, Value)],
) -> Result<Option<String>, String> {
    if runs.is_empty() {
        return Ok(None);
    }
    let panels = match scenario {
        "fleet" => fleet_panels(dir, runs)?,
        "park" => park_panels(dir, runs)?,
        "capacity" => capacity_panels(dir, runs)?,
        _ => return Ok(None),
    };
    draw(dir, &panels).map(Some)
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

/// Writes `dir/name`: one row per element of the array at `v[group][key]`,
/// one column per field.
fn series_dat(
    dir: &Path,
    name: &str,
    v: &Value,
    (group, key): (&str, &str),
    fields: &[&str],
) -> Result<(), String> {
    let rows: Vec<Vec<String>> = v[group][key]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|r| fields.iter().map(|f| num(&r[*f])).collect())
        .collect();
    write_dat(&dir.join(name), &rows)
}

/// Memory during the ramp; p99 latencies per second with the window start
/// marked; server CPU and memory per second.
fn fleet_panels(dir: &Path, runs: &[(String, Value)]) -> Result<Vec<String>, String> {
    let (mut p1, mut p2, mut p3) = (Vec::new(), Vec::new(), Vec::new());
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
        let ramp = format!("{l}-ramp.dat");
        series_dat(dir, &ramp, v, ("series", "ramp"), &["instances", "rss_mib"])?;
        let ps = format!("{l}-persec.dat");
        let cols = ["t", "renew_p99_ms", "wake_p99_ms", "cpu_pct", "rss_mib"];
        series_dat(dir, &ps, v, ("series", "per_second"), &cols)?;
        p1.push(format!("'{ramp}' using 1:2 with linespoints title '{l}'"));
        p2.push(format!(
            "'{ps}' using 1:2 with linespoints title '{l} renew p99'"
        ));
        p2.push(format!(
            "'{ps}' using 1:3 with linespoints dt 2 title '{l} wake p99'"
        ));
        p3.push(format!("'{ps}' using 1:4 with lines title '{l} CPU %'"));
        p3.push(format!(
            "'{ps}' using 1:5 with lines dt 2 axes x1y2 title '{l} RSS MiB'"
        ));
    }
    Ok(vec![
        format!(
            "set title 'Server memory while instances register'\nset xlabel 'instances registered'\nset ylabel 'RSS (MiB)'\nunset y2tics\nunset y2label\nplot {}",
            p1.join(", ")
        ),
        format!(
            "set title 'p99 latency per second (measured window starts at the dotted line)'\nset xlabel 'seconds'\nset ylabel 'ms (log scale)'\nset logscale y\n{marks}plot {}\nunset logscale y\nunset arrow",
            p2.join(", ")
        ),
        format!(
            "set title 'Server CPU and memory per second'\nset xlabel 'seconds'\nset ylabel 'CPU (% of a core)'\nset y2label 'RSS (MiB)'\nset y2tics\nplot {}",
            p3.join(", ")
        ),
    ])
}

/// Memory against parked polls; the CDF of the wake latency.
fn park_panels(dir: &Path, runs: &[(String, Value)]) -> Result<Vec<String>, String> {
    let (mut p1, mut p2) = (Vec::new(), Vec::new());
    for (l, v) in runs {
        let ramp = format!("{l}-ramp.dat");
        series_dat(dir, &ramp, v, ("series", "ramp"), &["parked", "rss_mib"])?;
        let cdf = format!("{l}-cdf.dat");
        series_dat(dir, &cdf, v, ("series", "wake_cdf"), &["ms", "fraction"])?;
        p1.push(format!("'{ramp}' using 1:2 with linespoints title '{l}'"));
        p2.push(format!("'{cdf}' using 1:2 with lines lw 2 title '{l}'"));
    }
    Ok(vec![
        format!(
            "set title 'Server memory against parked polls'\nset xlabel 'polls written'\nset ylabel 'RSS (MiB)'\nplot {}",
            p1.join(", ")
        ),
        format!(
            "set title 'Time from the change to each poll answer'\nset xlabel 'ms after the change was sent'\nset ylabel 'fraction of polls answered'\nset yrange [0:1.05]\nplot {}",
            p2.join(", ")
        ),
    ])
}

/// p99 latencies and memory against fleet size, one point per step.
fn capacity_panels(dir: &Path, runs: &[(String, Value)]) -> Result<Vec<String>, String> {
    let (mut p1, mut p2) = (Vec::new(), Vec::new());
    for (l, v) in runs {
        let steps = format!("{l}-steps.dat");
        let cols = [
            "instances",
            "renew_p99_ms",
            "wake_p99_ms",
            "server_rss_max_mib",
        ];
        series_dat(dir, &steps, v, ("figures", "steps"), &cols)?;
        p1.push(format!(
            "'{steps}' using 1:2 with linespoints title '{l} renew p99'"
        ));
        p1.push(format!(
            "'{steps}' using 1:3 with linespoints dt 2 title '{l} wake p99'"
        ));
        p2.push(format!("'{steps}' using 1:4 with linespoints title '{l}'"));
    }
    Ok(vec![
        format!(
            "set title 'p99 latency against fleet size'\nset logscale x 2\nset logscale y\nset xlabel 'instances'\nset ylabel 'ms (log scale)'\nplot {}\nunset logscale y",
            p1.join(", ")
        ),
        format!(
            "set title 'Server memory against fleet size'\nset xlabel 'instances'\nset ylabel 'RSS max (MiB)'\nplot {}",
            p2.join(", ")
        ),
    ])
}

/// Writes `chart.gp` with the panels stacked, and runs gnuplot on it.
fn draw(dir: &Path, panels: &[String]) -> Result<String, String> {
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
        Ok(s) if s.success() => Ok("chart.svg".into()),
        Ok(s) => Err(format!("gnuplot exited with {s} (script: chart.gp)")),
        Err(e) => Err(format!(
            "gnuplot not available ({e}); data and script are in chart.gp and *.dat"
        )),
    }
}
