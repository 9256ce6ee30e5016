//! The violation engine: benchmark exceedances computed from the monitoring results, the IGP
//! NAL rules (annual averages, instantaneous maxima, pH range, ERA Levels), duplicate candidates
//! against SMARTS regulatory violations, and the review workflow.
//!
//! Rules and thresholds are documented in docs/VIOLATION_SCHEMA_MIGRATION.md; the SQL a reader
//! needs to check a figure is in docs/VIOLATION_QUERY_PATTERNS.md.

pub mod classify;
pub mod engine;
pub mod patterns;
pub mod review;

use std::fmt;
use std::str::FromStr;

/// How non-detects enter an annual average (shared/data/benchmarks/README.md section 3).
///
/// A non-detect is never an exceedance on its own, whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NdPolicy {
    /// ND counts as 0 and stays in the denominator (the project's default convention).
    #[default]
    Zero,
    /// ND counts as half its MDL (RL when no MDL is given; 0 when neither is).
    HalfMdl,
    /// NDs are left out of the average.
    Dropped,
}

impl NdPolicy {
    pub const ALL: [NdPolicy; 3] = [NdPolicy::Zero, NdPolicy::HalfMdl, NdPolicy::Dropped];

    pub fn as_str(self) -> &'static str {
        match self {
            NdPolicy::Zero => "zero",
            NdPolicy::HalfMdl => "half_mdl",
            NdPolicy::Dropped => "dropped",
        }
    }
}

impl fmt::Display for NdPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NdPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NdPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| format!("expected one of zero, half_mdl, dropped; got {s:?}"))
    }
}

/// Severity thresholds on the ratio measured / benchmark (for pH: 10^(distance outside the
/// range)). Mirrors the SQL function `violation_severity` (migration 7); a test checks both agree.
pub fn severity(ratio: f64) -> Option<&'static str> {
    if !ratio.is_finite() {
        return None;
    }
    Some(if ratio <= 2.0 {
        "low"
    } else if ratio <= 5.0 {
        "moderate"
    } else if ratio <= 10.0 {
        "high"
    } else {
        "critical"
    })
}

/// The IGP reporting year (July 1 - June 30) a date falls in, named by its starting year.
pub fn reporting_year(date: chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    if date.month() >= 7 {
        date.year()
    } else {
        date.year() - 1
    }
}

/// The `violations-compute` function's event: `{}` for an incremental run, `{"full": true}` to
/// recompute everything (after a benchmark or classifier change the engine does so by itself).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeRequest {
    #[serde(default)]
    pub full: bool,
}

/// One `violations-compute` invocation: the engine (incremental, or everything with
/// `{"full": true}`), then what the API serves from its results (stored dashboards, a new cache
/// generation); a failed run is recorded. [`serve_compute`] calls this for every event.
pub async fn handle_compute(
    pool: &sqlx::PgPool,
    cache: &crate::cache::Cache,
    policy: NdPolicy,
    req: ComputeRequest,
) -> Result<engine::Report, lambda_runtime::Error> {
    let mut opts = engine::Options::new("function", policy);
    opts.force_full = req.full;
    match engine::compute(pool, &opts).await {
        Ok(report) => {
            crate::api::dashboard::refresh_snapshots(pool, None).await?;
            cache.bump_generation().await;
            Ok(report)
        }
        Err(e) => {
            if let Err(db) = engine::record_failure(pool, &opts, &e).await {
                tracing::error!(error = %db, "could not record the engine failure");
            }
            Err(e.into())
        }
    }
}

/// The whole `main` of `violations-compute`: config read once, pool built once per execution
/// environment, [`handle_compute`] per invocation.
pub async fn serve_compute() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let cfg = crate::config::Config::load().await?;
    let pool: &'static sqlx::PgPool = Box::leak(Box::new(crate::db::pool(&cfg)?));
    let cache: &'static crate::cache::Cache =
        Box::leak(Box::new(crate::cache::Cache::new(cfg.redis_url.as_deref())));
    let policy = cfg.nd_policy;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<ComputeRequest>| async move {
            handle_compute(pool, cache, policy, event.payload).await
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn reporting_year_turns_on_july_first() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
        assert_eq!(reporting_year(d(2024, 6, 30)), 2023);
        assert_eq!(reporting_year(d(2024, 7, 1)), 2024);
        assert_eq!(reporting_year(d(2025, 1, 1)), 2024);
    }

    #[test]
    fn nd_policy_parses_its_names_only() {
        for p in NdPolicy::ALL {
            assert_eq!(p.as_str().parse::<NdPolicy>(), Ok(p));
        }
        assert!("half".parse::<NdPolicy>().is_err());
    }

    #[test]
    fn severity_bands() {
        assert_eq!(severity(1.01), Some("low"));
        assert_eq!(severity(2.0), Some("low"));
        assert_eq!(severity(2.01), Some("moderate"));
        assert_eq!(severity(10.0), Some("high"));
        assert_eq!(severity(10.5), Some("critical"));
        assert_eq!(severity(f64::NAN), None);
    }
}
