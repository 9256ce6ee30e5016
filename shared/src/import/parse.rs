//! Typed parsers for the values found in the published SMARTS and eSMR files.
//!
//! Every parser takes the field as read by the CSV reader and returns `Ok(None)` for the
//! publisher's "missing" spellings (`""`, `NA`, `NaN`, a lone space), `Ok(Some(v))` for a good
//! value, or a [`ValueError`] that names what was wrong. See ../shared/docs/DATASETS.md.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

/// Why one value could not be read. The message is stored with the raw value in the
/// data-quality table, so it says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("not a Y/N flag: {0:?}")]
    Flag(String),
    #[error("not a date (expected YYYY-MM-DD or M/D/YYYY): {0:?}")]
    Date(String),
    #[error("date out of range (year {year} outside 1900..={max}): {raw:?}")]
    DateRange { raw: String, year: i32, max: i32 },
    #[error("not a time of day (expected HH:MM or HH:MM:SS, 24:00 allowed): {0:?}")]
    Time(String),
    #[error("not an Oracle timestamp (expected DD-MON-YY HH.MI.SS.FFFFFF AM): {0:?}")]
    Timestamp(String),
    #[error("not a finite number: {0:?}")]
    Number(String),
    #[error("not a whole number: {0:?}")]
    Integer(String),
    #[error("{axis} {value} outside [-{limit}, {limit}]")]
    Coordinate {
        axis: &'static str,
        value: String,
        limit: u8,
    },
}

/// `true` for the spellings the publishers use for "no value": empty, whitespace only
/// (raw SMARTS TSV has single-space fields), `NA` (portal text) and `NaN` (portal numbers, eSMR).
pub fn is_missing(raw: &str) -> bool {
    let t = raw.trim();
    t.is_empty() || t == "NA" || t == "NaN"
}

/// Text: trimmed; missing spellings become `None`.
pub fn text(raw: &str) -> Option<&str> {
    if is_missing(raw) {
        None
    } else {
        Some(raw.trim())
    }
}

/// Y/N flags (`Y`, `N`, `Yes`, `No`, `TRUE`, `FALSE`, any case).
pub fn flag(raw: &str) -> Result<Option<bool>, ValueError> {
    if is_missing(raw) {
        return Ok(None);
    }
    match raw.trim().to_ascii_uppercase().as_str() {
        "Y" | "YES" | "TRUE" | "T" => Ok(Some(true)),
        "N" | "NO" | "FALSE" | "F" => Ok(Some(false)),
        _ => Err(ValueError::Flag(raw.to_owned())),
    }
}

/// Latest plausible year for any date in the sources: next year (permits carry future
/// end dates, never decades ahead).
fn max_year() -> i32 {
    chrono::Utc::now().year() + 1
}

/// Dates: ISO `YYYY-MM-DD` (portal since 2020), `M/D/YYYY` (2019 portal and raw SMARTS),
/// optionally followed by a midnight time (`5/9/2008 0:00:00` in old extracts).
/// Years before 1900 or after next year are errors: the publisher zero-pads junk years
/// (`0201-05-04`), which would otherwise look valid.
pub fn date(raw: &str) -> Result<Option<NaiveDate>, ValueError> {
    if is_missing(raw) {
        return Ok(None);
    }
    let t = raw.trim();
    let day_part = t.split_once(' ').map_or(t, |(d, _)| d);
    let parsed = NaiveDate::parse_from_str(day_part, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(day_part, "%m/%d/%Y"))
        .map_err(|_| ValueError::Date(raw.to_owned()))?;
    // `%Y` accepts any number of digits; insist on four so `12/1/95` is not year 95.
    let year_digits = if day_part.contains('-') {
        day_part.split('-').next().map_or(0, str::len)
    } else {
        day_part.rsplit('/').next().map_or(0, str::len)
    };
    if year_digits != 4 {
        return Err(ValueError::Date(raw.to_owned()));
    }
    let max = max_year();
    if !(1900..=max).contains(&parsed.year()) {
        return Err(ValueError::DateRange {
            raw: raw.to_owned(),
            year: parsed.year(),
            max,
        });
    }
    Ok(Some(parsed))
}

/// Time of day as published (`HH:MM`, `HH:MM:SS`, `H:MM`), returned as `HH:MM:SS` text.
/// `24:00` (end of day, used by SMARTS) is kept: Postgres `time` accepts `24:00:00`.
pub fn time_of_day(raw: &str) -> Result<Option<String>, ValueError> {
    if is_missing(raw) {
        return Ok(None);
    }
    let t = raw.trim();
    let err = || ValueError::Time(raw.to_owned());
    let mut parts = t.split(':');
    let mut next = || -> Result<Option<u32>, ValueError> {
        match parts.next() {
            None => Ok(None),
            Some(p) if (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map(Some).map_err(|_| err())
            }
            Some(_) => Err(err()),
        }
    };
    let h = next()?.ok_or_else(err)?;
    let m = next()?.ok_or_else(err)?;
    let s = next()?.unwrap_or(0);
    if next()?.is_some() || m > 59 || s > 59 || h > 24 || (h == 24 && (m, s) != (0, 0)) {
        return Err(err());
    }
    Ok(Some(format!("{h:02}:{m:02}:{s:02}")))
}

/// Oracle timestamps as exported by SMARTS: `13-JUN-12 09.24.22.060000 AM`.
/// Two-digit years follow chrono's `%y` pivot (00–68 → 20xx), which covers SMARTS (2011–).
pub fn oracle_timestamp(raw: &str) -> Result<Option<NaiveDateTime>, ValueError> {
    if is_missing(raw) {
        return Ok(None);
    }
    let t = raw.trim();
    NaiveDateTime::parse_from_str(t, "%d-%b-%y %I.%M.%S%.f %p")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%d-%b-%y %I.%M.%S %p"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|_| {
            date(t)
                .ok()
                .flatten()
                .map(|d| d.and_time(NaiveTime::MIN))
                .ok_or(())
        })
        .map(Some)
        .map_err(|_| ValueError::Timestamp(raw.to_owned()))
}

/// Decimal numbers as published: `.0057`, `-124.217723`, `1e-04`, `23`. The value is kept as
/// its (trimmed) decimal text so Postgres `numeric` stores exactly what was published;
/// it is only checked to be a finite number. A leading `+` is dropped.
pub fn number(raw: &str) -> Result<Option<&str>, ValueError> {
    if is_missing(raw) {
        return Ok(None);
    }
    let t = raw.trim();
    let t = match t.strip_prefix('+') {
        Some(rest) if !rest.starts_with(['-', '+']) => rest,
        _ => t,
    };
    // Only the forms the publishers write: an optional sign, digits with at most one point,
    // an optional exponent (`-124.21`, `.0057`, `23`, `1e-04`).
    static DECIMAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,3})?$").expect("pattern compiles")
    });
    let looks_decimal = DECIMAL.is_match(t);
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && looks_decimal => Ok(Some(t)),
        _ => Err(ValueError::Number(raw.to_owned())),
    }
}

/// Whole numbers (`REPORTING_YEAR`, counts); `2016.0` is accepted as 2016.
pub fn integer(raw: &str) -> Result<Option<i64>, ValueError> {
    if is_missing(raw) {
        return Ok(None);
    }
    let t = raw.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Ok(Some(v));
    }
    match number(t) {
        Ok(Some(n)) => {
            let v: f64 = n.parse().map_err(|_| ValueError::Integer(raw.to_owned()))?;
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                Ok(Some(v as i64))
            } else {
                Err(ValueError::Integer(raw.to_owned()))
            }
        }
        _ => Err(ValueError::Integer(raw.to_owned())),
    }
}

/// Latitude: a number within [-90, 90]. Plausibility for California (wrong sign, 0,0) is
/// judged later, where facilities are linked; here only impossible values are refused.
pub fn latitude(raw: &str) -> Result<Option<&str>, ValueError> {
    coordinate(raw, "latitude", 90)
}

/// Longitude: a number within [-180, 180].
pub fn longitude(raw: &str) -> Result<Option<&str>, ValueError> {
    coordinate(raw, "longitude", 180)
}

fn coordinate<'a>(
    raw: &'a str,
    axis: &'static str,
    limit: u8,
) -> Result<Option<&'a str>, ValueError> {
    let Some(n) = number(raw)? else {
        return Ok(None);
    };
    let v: f64 = n.parse().map_err(|_| ValueError::Number(raw.to_owned()))?;
    if v.abs() > f64::from(limit) {
        return Err(ValueError::Coordinate {
            axis,
            value: n.to_owned(),
            limit,
        });
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn missing_spellings_are_none_for_every_type() {
        for raw in ["", "NA", "NaN", " ", "  NA ", "\t"] {
            assert!(is_missing(raw), "{raw:?}");
            assert_eq!(text(raw), None);
            assert_eq!(flag(raw), Ok(None));
            assert_eq!(date(raw), Ok(None));
            assert_eq!(time_of_day(raw), Ok(None));
            assert_eq!(oracle_timestamp(raw), Ok(None));
            assert_eq!(number(raw), Ok(None));
            assert_eq!(integer(raw), Ok(None));
            assert_eq!(latitude(raw), Ok(None));
        }
    }

    #[test]
    fn text_is_trimmed_and_keeps_inner_content() {
        assert_eq!(
            text("Crescent City Landfill "),
            Some("Crescent City Landfill")
        );
        assert_eq!(
            text("4212-Local Trucking, Without Storage"),
            Some("4212-Local Trucking, Without Storage")
        );
        assert_eq!(text("caf\u{FFFD}"), Some("caf\u{FFFD}"));
    }

    #[test]
    fn flags_accept_y_n_in_any_case_and_reject_other_words() {
        assert_eq!(flag("Y"), Ok(Some(true)));
        assert_eq!(flag("n"), Ok(Some(false)));
        assert_eq!(flag("Yes"), Ok(Some(true)));
        assert_eq!(flag("Maybe"), Err(ValueError::Flag("Maybe".into())));
    }

    #[test]
    fn dates_in_iso_and_us_layouts_parse_to_the_same_day() {
        assert_eq!(date("2016-12-29"), Ok(Some(d(2016, 12, 29))));
        assert_eq!(date("12/29/2016"), Ok(Some(d(2016, 12, 29))));
        assert_eq!(date("3/7/1992"), Ok(Some(d(1992, 3, 7))));
        assert_eq!(date("5/9/2008 0:00:00"), Ok(Some(d(2008, 5, 9))));
    }

    #[test]
    fn zero_padded_junk_years_and_impossible_dates_are_errors() {
        assert!(matches!(
            date("0201-05-04"),
            Err(ValueError::DateRange { year: 201, .. })
        ));
        assert!(matches!(
            date("05/04/0201"),
            Err(ValueError::DateRange { year: 201, .. })
        ));
        assert!(matches!(
            date("2999-01-01"),
            Err(ValueError::DateRange { .. })
        ));
        assert!(matches!(date("02/30/2016"), Err(ValueError::Date(_))));
        assert!(matches!(date("12/1/95"), Err(ValueError::Date(_))));
        assert!(matches!(date("yesterday"), Err(ValueError::Date(_))));
    }

    #[test]
    fn times_accept_hh_mm_and_end_of_day() {
        assert_eq!(time_of_day("08:05"), Ok(Some("08:05:00".into())));
        assert_eq!(time_of_day("8:05"), Ok(Some("08:05:00".into())));
        assert_eq!(time_of_day("05:20:00"), Ok(Some("05:20:00".into())));
        assert_eq!(time_of_day("24:00"), Ok(Some("24:00:00".into())));
        for bad in [
            "24:01",
            "25:00",
            "12:60",
            "1200",
            "12:00:00:00",
            "ab:cd",
            "123:00",
        ] {
            assert!(time_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn oracle_timestamps_parse_with_fraction_and_meridiem() {
        let ts = oracle_timestamp("13-JUN-12 09.24.22.060000 AM")
            .unwrap()
            .unwrap();
        assert_eq!(ts.to_string(), "2012-06-13 09:24:22.060");
        let pm = oracle_timestamp("06-FEB-15 03.58.01.815000 PM")
            .unwrap()
            .unwrap();
        assert_eq!(pm.to_string(), "2015-02-06 15:58:01.815");
        let noon = oracle_timestamp("02-AUG-17 12.03.32.748000 PM")
            .unwrap()
            .unwrap();
        assert_eq!(noon.to_string(), "2017-08-02 12:03:32.748");
        assert!(oracle_timestamp("32-JUN-12 09.24.22.060000 AM").is_err());
        assert!(oracle_timestamp("not a time").is_err());
    }

    #[test]
    fn numbers_keep_their_published_text() {
        assert_eq!(number(".0057"), Ok(Some(".0057")));
        assert_eq!(number("-124.217723"), Ok(Some("-124.217723")));
        assert_eq!(number("1e-04"), Ok(Some("1e-04")));
        assert_eq!(number(" 23 "), Ok(Some("23")));
        assert_eq!(number("+5"), Ok(Some("5")));
        for bad in [
            "inf", "Infinity", "1,234", "0x10", "12 mg", "--1", "+-1", "1-2", "1e", "e5", ".", "-",
            "1.2.3", "1e+-3", "١٢",
        ] {
            assert!(number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers_accept_whole_decimals_only() {
        assert_eq!(integer("2016"), Ok(Some(2016)));
        assert_eq!(integer("2016.0"), Ok(Some(2016)));
        assert!(integer("2016.5").is_err());
        assert!(integer("twenty").is_err());
    }

    #[test]
    fn coordinates_outside_the_globe_are_errors_but_wrong_signs_are_kept() {
        assert_eq!(latitude("41.795542"), Ok(Some("41.795542")));
        assert_eq!(longitude("121.385306"), Ok(Some("121.385306")));
        assert_eq!(latitude("0.0"), Ok(Some("0.0")));
        assert!(matches!(
            latitude("91"),
            Err(ValueError::Coordinate {
                axis: "latitude",
                ..
            })
        ));
        assert!(matches!(
            longitude("-1241.2"),
            Err(ValueError::Coordinate { .. })
        ));
    }
}
