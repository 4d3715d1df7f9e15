//! `loadgen report`: turns a results directory (one JSON per target) into
//! summary.md, and for fleet, park and capacity a chart (SVG via gnuplot).
//!
//! Layout: `summary` writes the sections of summary.md, `figures` says which
//! figures its table shows for each scenario, and `chart` draws the chart.

mod chart;
mod figures;
mod summary;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::args::Args;

/// Targets in the order they are compared.
const ORDER: &[&str] = &["ours", "go", "ceiling", "nginx"];

/// A figure as the table shows it: integers as they are, other numbers
/// with fewer decimals the larger they are, a missing one as a dash.
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

/// `a / b` with two decimals, or a dash.
fn ratio(a: &Value, b: &Value) -> String {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if y != 0.0 => format!("{:.2}", x / y),
        _ => "–".into(),
    }
}

/// The reports in `dir` with their target labels, in `ORDER`.
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

/// `loadgen report --dir DIR [--scenario S]`: writes DIR/summary.md (and the
/// chart) and prints the summary.
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
    let md = summary::render(&dir, &scenario, &runs);
    let path = dir.join("summary.md");
    std::fs::write(&path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{md}");
    Ok(())
}
