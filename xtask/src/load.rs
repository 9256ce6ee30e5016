//! HTTP load with wrk (Debian's package; `./dev bench-api` installs it): one URL, a number of
//! connections, a duration; the numbers come from a `done` hook in Lua that prints them as
//! one JSON line (wrk's own summary has no p95).

use anyhow::{Context as _, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The hook: wrk calls `done` once with the run's summary and latency histogram
/// (microseconds). `errors.status` counts answers with a status above 399.
const SCRIPT: &str = r#"-- Written by xtask bench-api: the run's numbers as one JSON line.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%.1f,"p95_us":%.1f,"p99_us":%.1f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"#;

/// One run's numbers (milliseconds, requests per second, counts).
#[derive(Default, Clone, Debug)]
pub struct Load {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub rps: f64,
    pub requests: u64,
    /// Answers with a status above 399.
    pub non_2xx: u64,
    /// Connection, read and write errors and timeouts.
    pub errors: u64,
    /// What failed, with counts.
    pub problems: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct Raw {
    requests: u64,
    duration_us: u64,
    p50_us: f64,
    p95_us: f64,
    p99_us: f64,
    connect: u64,
    read: u64,
    write: u64,
    status: u64,
    timeout: u64,
}

impl Load {
    /// The numbers of wrk's output (the hook's `WRK_JSON` line).
    pub fn from_wrk(stdout: &str) -> anyhow::Result<Self> {
        let line = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("WRK_JSON "))
            .context("wrk printed no WRK_JSON line (was the script loaded?)")?;
        let r: Raw = serde_json::from_str(line).context("wrk's WRK_JSON line")?;
        let mut problems = BTreeMap::new();
        for (name, n) in [
            ("HTTP status above 399", r.status),
            ("connect error", r.connect),
            ("read error", r.read),
            ("write error", r.write),
            ("timeout", r.timeout),
        ] {
            if n > 0 {
                problems.insert(name.to_owned(), n);
            }
        }
        Ok(Load {
            p50: r.p50_us / 1000.0,
            p95: r.p95_us / 1000.0,
            p99: r.p99_us / 1000.0,
            rps: r.requests as f64 / (r.duration_us.max(1) as f64 / 1e6),
            requests: r.requests,
            non_2xx: r.status,
            errors: r.connect + r.read + r.write + r.timeout,
            problems,
        })
    }

    /// Failed requests: non-2xx answers and errors.
    pub fn failed(&self) -> u64 {
        self.non_2xx + self.errors
    }
}

/// wrk, with its hook written once into a folder.
pub struct Wrk {
    bin: String,
    script: PathBuf,
}

impl Wrk {
    /// `bin` (`wrk` on the PATH unless `WRK` says otherwise), its hook written into `dir`.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        let script = dir.join("wrk-report.lua");
        std::fs::write(&script, SCRIPT)?;
        Ok(Self {
            bin: std::env::var("WRK").unwrap_or_else(|_| "wrk".into()),
            script,
        })
    }

    /// `wrk 4.1.0 [epoll] …`: the first line wrk prints of itself.
    pub fn version(&self) -> anyhow::Result<String> {
        // wrk -v prints its version and usage, and exits 1.
        let out = Command::new(&self.bin)
            .arg("-v")
            .output()
            .with_context(|| {
                format!(
                    "{} -v (is wrk installed? ./dev bench-api installs it)",
                    self.bin
                )
            })?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let first = text.lines().next().unwrap_or_default();
        let version = first.split(" Copyright").next().unwrap_or(first).trim();
        if !version.starts_with("wrk ") {
            bail!("{} -v printed no version: {text}", self.bin);
        }
        Ok(version.to_owned())
    }

    /// The command line of a run, for the report.
    pub fn describe(connections: usize, seconds: u64) -> String {
        format!(
            "wrk -t {} -c {connections} -d {seconds}s --timeout 30s",
            threads(connections)
        )
    }

    /// `url` for `seconds` over `connections` keep-alive connections.
    pub fn run(&self, url: &str, connections: usize, seconds: u64) -> anyhow::Result<Load> {
        let out = Command::new(&self.bin)
            .args(["-t", &threads(connections).to_string()])
            .args(["-c", &connections.to_string()])
            .args(["-d", &format!("{seconds}s")])
            .args(["--timeout", "30s"])
            .arg("-s")
            .arg(&self.script)
            .arg(url)
            .output()
            .with_context(|| format!("running {}", self.bin))?;
        if !out.status.success() {
            bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Load::from_wrk(&String::from_utf8_lossy(&out.stdout))
    }
}

/// wrk's threads: one per core here (2), never more than the connections.
fn threads(connections: usize) -> usize {
    connections.clamp(1, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_line_is_read_in_milliseconds_with_failures_named() {
        let out = "Running 1s test @ http://127.0.0.1:1/\n  2 threads and 2 connections\n\
                   WRK_JSON {\"requests\":1000,\"duration_us\":2000000,\"p50_us\":1500.0,\
                   \"p95_us\":4000.0,\"p99_us\":10000.0,\"connect\":1,\"read\":0,\"write\":0,\
                   \"status\":3,\"timeout\":2}\n";
        let l = Load::from_wrk(out).unwrap();
        assert_eq!((l.p50, l.p95, l.p99), (1.5, 4.0, 10.0));
        assert_eq!(l.rps, 500.0);
        assert_eq!(
            (l.requests, l.non_2xx, l.errors, l.failed()),
            (1000, 3, 3, 6)
        );
        assert_eq!(l.problems["timeout"], 2);
        assert!(!l.problems.contains_key("read error"));
        assert!(Load::from_wrk("no hook here").is_err());
    }
}
