//! The reference benchmarks: IGP Table 2 Numeric Action Levels, CTR / EPA NRWQC aquatic-life
//! criteria and drinking-water standards, read from `shared/reference/*.csv` (copies of
//! `../shared/data/benchmarks/`, where their sources and verification notes are documented).
//!
//! Each CSV row becomes one or more [`Benchmark`]s keyed to a pollutant through
//! [`super::pollutant::classify`], so benchmark names and sample parameter names go through the
//! same matcher. A value whose note does not say VERIFIED before any UNVERIFIED is flagged
//! `unverified` and must not be presented as authoritative.

use super::pollutant::{self, Fraction};
use chrono::NaiveDate;
use serde::Deserialize;
use std::sync::LazyLock;

const IGP_CSV: &str = include_str!("../../reference/igp_nals.csv");
const AQUATIC_CSV: &str = include_str!("../../reference/aquatic_and_drinking.csv");
/// The permit the NALs come from (as amended by 2015-0122-DWQ and 2018-0028-DWQ).
pub const IGP_SOURCE: &str = "IGP 2014-0057-DWQ";

/// The IGP (Order 2014-0057-DWQ) and its NALs took effect on July 1, 2015: results before
/// that date are not judged against them.
pub const IGP_EFFECTIVE: Option<NaiveDate> = NaiveDate::from_ymd_opt(2015, 7, 1);

/// One threshold, as stored in the `benchmark` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Benchmark {
    pub pollutant_key: &'static str,
    /// The name the reference file uses (becomes the pollutant's display name).
    pub pollutant_name: String,
    /// `NAL_ANNUAL`, `NAL_INSTANT`, `CMC`, `CCC`, `MCL`, `ACTION_LEVEL`.
    pub benchmark_type: String,
    /// `all` (IGP), `freshwater`, `saltwater`, `drinking`.
    pub water_type: String,
    /// `total`, `dissolved`, `total_recoverable`, or `None` where a fraction is meaningless (pH).
    pub fraction: Option<&'static str>,
    /// Lower bound for a range (pH), otherwise the limit; decimal text as published.
    pub value: String,
    pub value_max: Option<String>,
    pub unit: String,
    pub source: String,
    pub source_url: Option<String>,
    pub verification: String,
    pub unverified: bool,
    pub hardness_dependent: bool,
    pub hardness_equation: Option<String>,
    pub test_method: Option<String>,
    pub effective_date: Option<NaiveDate>,
}

#[derive(Deserialize)]
struct IgpRow {
    parameter: String,
    test_method: String,
    units: String,
    annual_nal: String,
    instantaneous_max_nal: String,
    instantaneous_range_min: String,
    instantaneous_range_max: String,
    source_url: String,
    source_note: String,
}

#[derive(Deserialize)]
struct AquaticRow {
    pollutant: String,
    benchmark_type: String,
    water_type: String,
    value: String,
    units: String,
    basis: String,
    hardness_dependent: String,
    hardness_equation: String,
    source_url: String,
    source_note: String,
}

static VERIFICATION: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\b(UN)?VERIFIED\b").expect("pattern compiles"));
static EFFECTIVE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"effective (\d{4}-\d{2}-\d{2})").expect("pattern compiles")
});

/// `true` unless the note's first verification word is VERIFIED.
fn is_unverified(note: &str) -> bool {
    VERIFICATION
        .find(note)
        .is_none_or(|m| m.as_str() == "UNVERIFIED")
}

fn fraction_name(f: Fraction) -> Option<&'static str> {
    match f {
        Fraction::Total => Some("total"),
        Fraction::TotalRecoverable => Some("total_recoverable"),
        Fraction::Dissolved => Some("dissolved"),
        Fraction::Unspecified => None,
    }
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn key_of(name: &str) -> Result<(&'static str, Fraction), String> {
    pollutant::classify(name)
        .map(|m| (m.key, m.fraction))
        .ok_or_else(|| {
            format!("reference pollutant {name:?} is not recognised by pollutant::classify")
        })
}

/// The short authority label of an aquatic/drinking row, from the start of its note.
fn authority(note: &str) -> String {
    ["CTR", "EPA NRWQC", "Federal NPDWR", "California MCL"]
        .into_iter()
        .find(|a| note.starts_with(a))
        .unwrap_or("other")
        .to_owned()
}

fn igp(rows: Vec<IgpRow>) -> Result<Vec<Benchmark>, String> {
    let mut out = Vec::new();
    for r in rows {
        let (key, fraction) = key_of(&r.parameter)?;
        let base = Benchmark {
            pollutant_key: key,
            pollutant_name: r.parameter.clone(),
            benchmark_type: String::new(),
            water_type: "all".into(),
            fraction: fraction_name(fraction),
            value: String::new(),
            value_max: None,
            unit: r.units.clone(),
            source: IGP_SOURCE.into(),
            source_url: non_empty(&r.source_url),
            verification: r.source_note.clone(),
            unverified: is_unverified(&r.source_note),
            hardness_dependent: false,
            hardness_equation: None,
            test_method: non_empty(&r.test_method),
            effective_date: IGP_EFFECTIVE,
        };
        if let Some(v) = non_empty(&r.annual_nal) {
            out.push(Benchmark {
                benchmark_type: "NAL_ANNUAL".into(),
                value: v,
                ..base.clone()
            });
        }
        if let Some(v) = non_empty(&r.instantaneous_max_nal) {
            out.push(Benchmark {
                benchmark_type: "NAL_INSTANT".into(),
                value: v,
                ..base.clone()
            });
        }
        if let (Some(lo), Some(hi)) = (
            non_empty(&r.instantaneous_range_min),
            non_empty(&r.instantaneous_range_max),
        ) {
            out.push(Benchmark {
                benchmark_type: "NAL_INSTANT".into(),
                value: lo,
                value_max: Some(hi),
                ..base
            });
        }
    }
    Ok(out)
}

fn aquatic(rows: Vec<AquaticRow>) -> Result<Vec<Benchmark>, String> {
    rows.into_iter()
        .map(|r| {
            let (key, _) = key_of(&r.pollutant)?;
            let fraction = match r.basis.trim() {
                "dissolved" => Some("dissolved"),
                "total" => Some("total"),
                "total_recoverable" | "total recoverable" => Some("total_recoverable"),
                "" => None,
                other => return Err(format!("{}: unknown basis {other:?}", r.pollutant)),
            };
            Ok(Benchmark {
                pollutant_key: key,
                pollutant_name: r.pollutant.clone(),
                benchmark_type: r.benchmark_type.trim().to_owned(),
                water_type: r.water_type.trim().to_ascii_lowercase(),
                fraction,
                value: r.value.trim().to_owned(),
                value_max: None,
                unit: r.units.clone(),
                source: authority(&r.source_note),
                source_url: non_empty(&r.source_url),
                unverified: is_unverified(&r.source_note),
                hardness_dependent: r.hardness_dependent.trim().eq_ignore_ascii_case("true"),
                hardness_equation: non_empty(&r.hardness_equation),
                test_method: None,
                effective_date: EFFECTIVE
                    .captures(&r.source_note)
                    .and_then(|c| NaiveDate::parse_from_str(&c[1], "%Y-%m-%d").ok()),
                verification: r.source_note,
            })
        })
        .collect()
}

fn rows<T: for<'de> Deserialize<'de>>(text: &str) -> Result<Vec<T>, String> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| e.to_string())
}

/// Every reference benchmark.
pub fn reference() -> Result<Vec<Benchmark>, String> {
    let mut all = igp(rows(IGP_CSV)?)?;
    all.extend(aquatic(rows(AQUATIC_CSV)?)?);
    Ok(all)
}

/// Grouping for the `pollutant` table.
pub fn category(key: &str) -> &'static str {
    match key {
        "ph" | "tss" | "oil_and_grease" | "bod" | "cod" => "conventional",
        "ammonia" | "nitrate" | "nitrite" | "nitrate_nitrite" | "phosphorus" => "nutrient",
        "cyanide" => "inorganic",
        _ => "metal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(all: &'a [Benchmark], key: &str, kind: &str, source: &str) -> Vec<&'a Benchmark> {
        all.iter()
            .filter(|b| b.pollutant_key == key && b.benchmark_type == kind && b.source == source)
            .collect()
    }

    #[test]
    fn igp_table_2_gives_23_nals_with_ph_as_a_range() {
        let all = reference().unwrap();
        let nals: Vec<_> = all.iter().filter(|b| b.source == IGP_SOURCE).collect();
        assert_eq!(nals.len(), 23, "20 annual + 3 instantaneous");
        let ph = find(&all, "ph", "NAL_INSTANT", IGP_SOURCE);
        assert_eq!(ph.len(), 1);
        assert_eq!(
            (ph[0].value.as_str(), ph[0].value_max.as_deref()),
            ("6.0", Some("9.0"))
        );
        assert_eq!(ph[0].fraction, None);
        assert_eq!(find(&all, "tss", "NAL_INSTANT", IGP_SOURCE)[0].value, "400");
        assert_eq!(
            find(&all, "oil_and_grease", "NAL_ANNUAL", IGP_SOURCE)[0].value,
            "15"
        );
        let copper = find(&all, "copper", "NAL_ANNUAL", IGP_SOURCE);
        assert_eq!(
            (
                copper[0].value.as_str(),
                copper[0].unit.as_str(),
                copper[0].fraction
            ),
            ("0.0332", "mg/L", Some("total"))
        );
    }

    #[test]
    fn unverified_values_are_flagged_and_verified_ones_are_not() {
        let all = reference().unwrap();
        assert!(find(&all, "silver", "NAL_ANNUAL", IGP_SOURCE)[0].unverified);
        assert!(!find(&all, "ammonia", "NAL_ANNUAL", IGP_SOURCE)[0].unverified);
        assert!(find(&all, "nickel", "MCL", "California MCL")[0].unverified);
        assert!(!find(&all, "arsenic", "CMC", "CTR")[0].unverified);
    }

    #[test]
    fn aquatic_rows_keep_authority_basis_hardness_and_dates() {
        let all = reference().unwrap();
        assert_eq!(all.len(), 23 + 86);
        let ctr_cu = find(&all, "copper", "CMC", "CTR");
        assert!(ctr_cu.iter().all(|b| b.fraction == Some("dissolved")));
        assert!(ctr_cu.iter().any(|b| b.water_type == "freshwater"
            && b.hardness_dependent
            && b.hardness_equation.is_some()));
        let cr6 = find(&all, "chromium_vi", "MCL", "California MCL");
        assert_eq!(cr6[0].effective_date, NaiveDate::from_ymd_opt(2024, 10, 1));
        let lead = find(&all, "lead", "ACTION_LEVEL", "Federal NPDWR");
        assert_eq!(lead.len(), 2, "0.015 and the LCRI 0.010");
        assert!(lead.iter().any(
            |b| b.effective_date == NaiveDate::from_ymd_opt(2024, 12, 30) && b.value == "0.010"
        ));
    }

    #[test]
    fn every_benchmark_key_is_unique_as_the_table_requires() {
        let all = reference().unwrap();
        let mut keys: Vec<_> = all
            .iter()
            .map(|b| {
                (
                    b.pollutant_key,
                    b.benchmark_type.clone(),
                    b.water_type.clone(),
                    b.fraction,
                    b.source.clone(),
                    b.effective_date,
                )
            })
            .collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }
}
