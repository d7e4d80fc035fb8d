//! Results: printed as they come and collected for `--out FILE` (JSON).

use std::time::Duration;

use serde_json::{Value, json};

#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) entries: Vec<Value>,
}

impl Report {
    /// Records one figure: `section` (e.g. `fleet/w3/1000`), `metric`, value and unit.
    pub(crate) fn add(&mut self, section: &str, metric: &str, value: f64, unit: &str) {
        println!("{section:<28} {metric:<44} {value:>12.3} {unit}");
        self.entries
            .push(json!({"section": section, "metric": metric, "value": value, "unit": unit}));
    }

    /// Records a note (a fact that is not a number).
    pub(crate) fn note(&mut self, section: &str, text: &str) {
        println!("{section:<28} {text}");
        self.entries.push(json!({"section": section, "note": text}));
    }

    pub(crate) fn latencies(&mut self, section: &str, metric: &str, samples: &[Duration]) {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        if ms.is_empty() {
            self.note(section, &format!("{metric}: no samples"));
            return;
        }
        ms.sort_by(f64::total_cmp);
        self.add(section, &format!("{metric} n"), ms.len() as f64, "samples");
        self.add(section, &format!("{metric} p50"), pct(&ms, 0.50), "ms");
        self.add(section, &format!("{metric} p99"), pct(&ms, 0.99), "ms");
        self.add(section, &format!("{metric} max"), pct(&ms, 1.0), "ms");
    }
}

/// The `p` quantile of sorted `v` (nearest rank).
pub(crate) fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (p * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// This process's resident set size and its peak, in MB, from `/proc/self/status`.
pub(crate) fn rss_of(pid: Option<u32>) -> (f64, f64) {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) of a process, from `/proc/PID/stat`.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which is in parentheses and may hold spaces).
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; after the command they are 11 and 12
    // (0-based from the state field).
    (ticks(11) + ticks(12)) / 100.0
}
