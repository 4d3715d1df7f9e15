//! Unit strings of the config file: Go duration strings ("40s", "1m30s") as the original's
//! `time.ParseDuration` reads them, and byte sizes ("512KiB", "1MB").
//!
//! Plain string parsers under `config::file`; they know nothing of TOML or key names, so their
//! errors describe the value and the caller adds the key.

use std::time::Duration;

/// Parses a byte size: "1048576", "1024B", "512KiB", "1MiB", "1GiB", "1KB", "1MB", "1GB"
/// (units ignore case; KB/MB/GB are powers of 1000).
pub(super) fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let bad = || format!("invalid size {s:?} (use bytes or a size like \"512KiB\" or \"1MiB\")");
    let number: usize = number.parse().map_err(|_| bad())?;
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    number.checked_mul(multiplier).ok_or_else(bad)
}

/// Parses Go's `time.ParseDuration` syntax: "40s", "1s", "500ms", "1m30s", "1.5h",
/// "2us"/"2µs", "100ns", "0". Negative durations are rejected because none of
/// the settings can be negative; the range is Go's (about 292 years).
pub(super) fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {s:?}: {why}");
    let rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(bad("negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut rest = rest;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad("expected a number"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit")),
        };
        // Go keeps 64-bit nanoseconds; anything past that cannot be represented there either.
        let limit = i64::MAX as u128;
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad("out of range"))?
        };
        // Digits beyond nanosecond-of-an-hour precision cannot change the result.
        let frac_digits = &frac_part[..frac_part.len().min(20)];
        let frac: u128 = if frac_digits.is_empty() {
            0
        } else {
            frac_digits.parse().map_err(|_| bad("out of range"))?
        };
        let scale = 10u128.pow(frac_digits.len() as u32);
        total = int
            .checked_mul(unit_ns)
            .and_then(|v| v.checked_add(frac * unit_ns / scale))
            .and_then(|v| total.checked_add(v))
            .filter(|&v| v <= limit)
            .ok_or_else(|| bad("out of range"))?;
        rest = after;
    }
    let secs = (total / 1_000_000_000) as u64;
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn sizes() {
        for (s, n) in [
            ("2048", 2048),
            ("1024B", 1024),
            ("512KiB", 512 * 1024),
            ("1MiB", 1 << 20),
            ("1mib", 1 << 20),
            ("2GiB", 2 << 30),
            ("1KB", 1000),
            ("1MB", 1_000_000),
            ("3 kb", 3000),
        ] {
            assert_eq!(parse_size(s), Ok(n), "{s}");
        }
        for s in [
            "",
            "MiB",
            "1.5MiB",
            "1 TiB",
            "-1",
            "99999999999999999999GiB",
        ] {
            assert!(parse_size(s).is_err(), "{s}");
        }
    }

    #[test]
    fn go_durations() {
        let ok = [
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("40s", secs(40)),
            ("1s", secs(1)),
            ("500ms", Duration::from_millis(500)),
            ("1m30s", secs(90)),
            ("1.5h", secs(5400)),
            ("2us", Duration::from_micros(2)),
            ("2µs", Duration::from_micros(2)),
            ("2μs", Duration::from_micros(2)),
            ("100ns", Duration::from_nanos(100)),
            (".5s", Duration::from_millis(500)),
            ("5.s", secs(5)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("+3s", secs(3)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("2562047h", secs(2562047 * 3600)),
        ];
        for (s, d) in ok {
            assert_eq!(parse_go_duration(s), Ok(d), "{s}");
        }
        for s in [
            "",
            "s",
            "1",
            "10",
            "-1s",
            ".s",
            "1x",
            "1d",
            "1 s",
            "1s ",
            "1.2.3s",
            "3000000h",
            "9999999999999999999999s",
        ] {
            assert!(parse_go_duration(s).is_err(), "{s:?} should fail");
        }
    }
}
