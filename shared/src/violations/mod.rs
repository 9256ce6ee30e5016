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

pub use crate::config::NdPolicy;

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
