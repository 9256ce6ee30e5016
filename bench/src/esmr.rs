//! eSMR yearly files (`esmr-analytical-export_year-YYYY.csv`, one per sampling year from 2006),
//! as data.ca.gov publishes them: the same NPDES facilities and monitoring locations, with their
//! CIWQS place ids, report year after year (some start later, some stop), and the yearly files
//! grow toward recent years.

use std::collections::HashSet;
use std::io::{self, Write};
use std::ops::RangeInclusive;

use chrono::Datelike;
use rand::RngExt;

use crate::monitoring::quotas;
use crate::out::Out;
use crate::real::Real;
use crate::util::{
    MONTH_NAMES, RECEIVING_WATERS, Rng, add_days, chance, day_num, esmr_region, from_day_num,
    junk_year, lognormal, pick, pick_ref, round_dp, with_fffd, wpick, ymd,
};
use crate::values::{PKind, Profile, measure, profile};

struct Loc {
    code: String,
    place_id: u64,
    ptype: Option<&'static str>,
    lat: Option<f64>,
    lon: Option<f64>,
    receiving: Option<String>,
    desc: Option<String>,
    /// (profile, relative frequency)
    params: Vec<(Profile, f64)>,
}

const CALC: &[(&str, u32)] = &[
    ("Daily Maximum", 22),
    ("Daily Discharge", 20),
    ("Monthly Discharge", 12),
    ("Daily Average (Mean)", 18),
    ("Instantaneous Minimum (IMIN)", 8),
    ("Average Monthly (AMEL)", 12),
    ("24-hour Average", 8),
];

const COMMENTS: &[&str] = &[
    "Instantaneous Flow Rate",
    "Total Event Discharge (MG)",
    "Peak Flow Rate in Dry Weather Discharge",
    "Dry Weather Discharge During Test",
    "Continuous Recorder",
    "Grab sample",
    "Composite sample",
    "No discharge this day",
    "Calculated from daily values",
    "Lab reported result below RL",
];

fn tail_unit(name: &str) -> &'static str {
    let l = name.to_ascii_lowercase();
    if l.contains("pcb") || l.contains("dioxin") || l.contains("furan") || l.contains("tcdd") {
        "pg/L"
    } else if l.contains("coliform") || l.contains("coli") || l.contains("enterococ") {
        "MPN/100 mL"
    } else if l.contains("radium")
        || l.contains("radiation")
        || l.contains("uranium")
        || l.contains("tritium")
    {
        "PCi/L"
    } else if l.contains("toxicity") {
        "TUc"
    } else if l.contains("temperature") {
        "Degrees C"
    } else if l.contains("solids")
        || l.contains("hardness")
        || l.contains("alkalinity")
        || l.contains("nitrogen")
        || l.contains("ammonia")
        || l.contains("oxygen")
        || l.contains("chloride")
        || l.contains("sulfate")
        || l.contains("oil")
    {
        "mg/L"
    } else {
        "ug/L"
    }
}

fn params_for(r: &mut Rng, real: &Real, ptype: Option<&str>) -> Vec<(Profile, f64)> {
    let mut v: Vec<(Profile, f64)> = Vec::new();
    let mut add = |name: &str, unit: &str, freq: f64| v.push((profile(name, unit), freq));
    match ptype {
        Some("Influent Monitoring") => {
            add("Flow", "MGD", 10.0);
            add(
                "Biochemical Oxygen Demand (BOD) (5-day @ 20 Deg. C)",
                "mg/L",
                2.0,
            );
            add("Total Suspended Solids (TSS)", "mg/L", 2.0);
            add("pH", "SU", 3.0);
        }
        Some("Receiving Water Monitoring") => {
            add("Dissolved Oxygen", "mg/L", 3.0);
            add("pH", "SU", 3.0);
            add("Temperature", "Degrees C", 3.0);
            add("Electrical Conductivity @ 25 Deg. C", "umhos/cm", 2.0);
            add("Turbidity", "NTU", 2.0);
            add("Fecal Coliform", "MPN/100 mL", 1.0);
        }
        Some("Recycled Water Monitoring") => {
            add("Flow", "MGD", 8.0);
            add("Turbidity", "NTU", 6.0);
            add("Total Coliform", "MPN/100 mL", 4.0);
            add("Chlorine, Total Residual", "mg/L", 4.0);
        }
        Some("Groundwater Monitoring") => {
            add("Nitrate, Total (as N)", "mg/L", 2.0);
            add("Total Dissolved Solids (TDS)", "mg/L", 2.0);
            add("Electrical Conductivity @ 25 Deg. C", "umhos/cm", 2.0);
            add("Depth to Water", "ft", 1.0);
        }
        Some("Biosolids Monitoring") => {
            add("Total Solids (TS)", "%", 2.0);
            add("Arsenic, Total", "mg/kg", 1.0);
            add("Copper, Total", "mg/kg", 1.0);
        }
        _ => {
            add("Flow", "MGD", 14.0);
            add("pH", "SU", 7.0);
            add("Total Coliform", "MPN/100 mL", 4.0);
            add("Chlorine, Total Residual", "mg/L", 4.0);
            add(
                "Biochemical Oxygen Demand (BOD) (5-day @ 20 Deg. C)",
                "mg/L",
                2.0,
            );
            add("Total Suspended Solids (TSS)", "mg/L", 2.0);
            add("Ammonia, Total (as N)", "mg/L", 1.5);
            add("Electrical Conductivity @ 25 Deg. C", "umhos/cm", 1.5);
            add("Temperature", "Degrees C", 2.0);
            add("Turbidity", "NTU", 1.5);
            add("Chloride", "mg/L", 0.5);
            add("Dissolved Oxygen", "mg/L", 1.0);
            add("Oil and Grease", "mg/L", 0.3);
            add("Copper, Total Recoverable", "ug/L", 0.3);
            add("Zinc, Total Recoverable", "ug/L", 0.2);
            add("Chronic Toxicity", "TUc", 0.1);
            add("Mercury, Total Recoverable", "mg/L", 0.15);
            add("Cyanide, Total (as CN)", "mg/L", 0.2);
            add("Chromium (VI)", "mg/L", 0.1);
        }
    }
    // A permit monitors 20 to 40 parameters at a location: rare ones from the real eSMR parameter
    // list (priority-pollutant scans, metals, organics) fill the location's routine ones up.
    if !real.esmr_params.is_empty() {
        let want = r.random_range(20..=40usize);
        while v.len() < want {
            let name = pick_ref(r, &real.esmr_params).clone();
            let unit = tail_unit(&name);
            v.push((profile(&name, unit), 0.02));
        }
    }
    v
}

const FAC_KIND: &[&str] = &[
    "WWTP",
    "Wastewater Treatment Plant",
    "Water Reclamation Plant",
    "WRP",
    "WPCF",
    "Water Pollution Control Facility",
    "WWTF",
    "Sanitation District",
    "Power Plant",
    "Generating Station",
    "Water Treatment Plant",
    "Fish Hatchery",
    "Refinery",
    "Groundwater Treatment System",
];

const DESC: &[&str] = &[
    "At any point in the outfall where all waste tributaries to that outfall are present",
    "Final disinfected tertiary-treated effluent, prior to discharge to the percolation ponds",
    "A sampling station shall be established where representative samples of reclaimed water can be obtained.",
    "Influent to the headworks, upstream of any in-plant return flows",
    "Receiving water 100 feet upstream of the discharge point",
    "Receiving water 500 feet downstream of the discharge point",
    "Effluent sampling station following disinfection",
    "Monitoring well located downgradient of the ponds",
];

/// The sampling years the publisher splits eSMR into: 2006 (older rows are excluded) to the
/// current year.
pub const YEARS: RangeInclusive<i32> = 2006..=2026;

/// The last sampling day of the current year's file: a generated set stands for an export made
/// in early December 2026.
const LAST_DAY: (i32, u32, u32) = (2026, 11, 30);

/// Rows of the 2006 file at scale 1.0.
const FIRST_ROWS: f64 = 450_000.0;

/// Rows of the 2025 file at scale 1.0: the real 2025 CSV was 613 MB (DATASETS.md, eSMR), and
/// this generator writes about 395 bytes an eSMR row.
const ROWS_2025: f64 = 1_550_000.0;

/// NPDES facilities reporting eSMR at scale 1.0, over all the years.
const FACILITIES: f64 = 2_000.0;

/// Facilities at any scale, so that a small set still has several.
const MIN_FACILITIES: usize = 5;

/// Facilities of a set at `scale`.
pub fn facilities(scale: f64) -> usize {
    ((FACILITIES * scale).round() as usize).max(MIN_FACILITIES)
}

/// The first and last sampling day of `year`'s file.
fn days(year: i32) -> (chrono::NaiveDate, chrono::NaiveDate) {
    let (y, m, d) = LAST_DAY;
    let last = if year == y {
        ymd(y, m, d)
    } else {
        ymd(year, 12, 31)
    };
    (ymd(year, 1, 1), last)
}

/// Rows of `year`'s file at `scale`: a ramp from [`FIRST_ROWS`] in 2006 through [`ROWS_2025`]
/// (more facilities report and each reports more), for the days the file covers (the current
/// year's runs to [`LAST_DAY`]). At scale 1.0 the years total about 21 million rows, the real
/// record's order (over 18 million in 2022).
pub fn rows(year: i32, scale: f64) -> u64 {
    let t = f64::from(year - YEARS.start()) / f64::from(2025 - YEARS.start());
    let full_year = FIRST_ROWS + (ROWS_2025 - FIRST_ROWS) * t;
    let (first, last) = days(year);
    let covered = (day_num(last) - day_num(first) + 1) as f64
        / (day_num(ymd(year + 1, 1, 1)) - day_num(first)) as f64;
    crate::scaled((full_year * covered).round() as u64, scale)
}

/// One facility with its monitoring locations, the same in every year it reports.
struct Fac {
    region: &'static str,
    name: String,
    place_id: u64,
    quarterly: bool,
    /// The sampling years it reports in.
    years: RangeInclusive<i32>,
    /// Its share of a year's rows.
    weight: f64,
    /// Its results' level against a parameter's typical value.
    site: f64,
    locs: Vec<Loc>,
    /// (location index, parameter index) of every monitored parameter, and their cumulative
    /// frequency.
    pairs: Vec<(usize, usize)>,
    cum: Vec<f64>,
}

/// The eSMR facilities of a generated set, shared by its yearly files.
pub struct Universe {
    facs: Vec<Fac>,
}

/// `n_fac` facilities with their locations, place ids and the years each reports in.
pub fn universe(r: &mut Rng, real: &Real, n_fac: usize) -> Universe {
    let mut used_ids: HashSet<u64> = HashSet::new();
    let mut fresh = |r: &mut Rng, lo: u64, hi: u64| loop {
        let v = r.random_range(lo..hi);
        if used_ids.insert(v) {
            break v;
        }
    };
    let facs = (0..n_fac)
        .map(|i| {
            let d = &real.donors[pick(r, &real.located)];
            let region = esmr_region(d.region.as_deref().unwrap_or("9"));
            let city = d.city.clone().unwrap_or_else(|| "Valley".to_string());
            let name = format!("{city} {}", pick(r, FAC_KIND));
            let name = if chance(r, 0.01) {
                with_fffd(r, &name)
            } else {
                name
            };
            let place_id = fresh(r, 200_000, 900_000);
            let quarterly = chance(r, 0.2);
            // Fewer than half reported from the first year; most still report. The first facility
            // reports in every year, so that no year is without one.
            let (start, end) = (*YEARS.start(), *YEARS.end());
            let first = if i == 0 || chance(r, 0.45) {
                start
            } else {
                r.random_range(start + 1..end - 1)
            };
            let last = if i == 0 || chance(r, 0.8) {
                end
            } else {
                r.random_range(first..end)
            };
            let weight = lognormal(r, 1.0, 0.9);
            let mut locs: Vec<Loc> = Vec::new();
            let mk = |r: &mut Rng, code: String, ptype: Option<&'static str>| {
                let (lat, lon) = match (d.lat, d.lon) {
                    (Some(a), Some(b)) if chance(r, 0.2) => {
                        let mut la = round_dp(a + (r.random::<f64>() - 0.5) * 0.01, 6);
                        let mut lo = round_dp(b + (r.random::<f64>() - 0.5) * 0.01, 6);
                        if chance(r, 0.08) {
                            lo = -lo; // sign error seen in real files
                        }
                        if chance(r, 0.02) {
                            la = round_dp(la / 100.0, 6);
                        }
                        (Some(la), Some(lo))
                    }
                    _ => (None, None),
                };
                let receiving = (ptype == Some("Receiving Water Monitoring") && chance(r, 0.6))
                    .then(|| pick(r, RECEIVING_WATERS).to_string());
                let desc = if chance(r, 0.87) {
                    let mut s = pick(r, DESC).to_string();
                    if let (Some(a), Some(b)) = (lat, lon)
                        && chance(r, 0.4)
                    {
                        // coordinates in the text with the degree sign lost to U+FFFD
                        s = format!(
                            "{s} ({}\u{FFFD} {:02}' N, {}\u{FFFD} {:02}' W)",
                            a.abs().floor(),
                            r.random_range(0..60u32),
                            b.abs().floor(),
                            r.random_range(0..60u32)
                        );
                    }
                    Some(s)
                } else {
                    None
                };
                let params = params_for(r, real, ptype);
                Loc {
                    code,
                    place_id: 0,
                    ptype,
                    lat,
                    lon,
                    receiving,
                    desc,
                    params,
                }
            };
            let eff = if chance(r, 0.8) {
                "EFF-001".to_string()
            } else {
                pick(r, &["E-001", "EFF001 WRR", "EFF-001A", "M-001"]).to_string()
            };
            locs.push(mk(r, eff, Some("Effluent Monitoring")));
            if chance(r, 0.7) {
                locs.push(mk(r, "INF-001".to_string(), Some("Influent Monitoring")));
            }
            if chance(r, 0.25) {
                locs.push(mk(r, "EFF-002".to_string(), Some("Effluent Monitoring")));
            }
            if chance(r, 0.4) {
                locs.push(mk(
                    r,
                    "RSW-001".to_string(),
                    Some("Receiving Water Monitoring"),
                ));
                locs.push(mk(
                    r,
                    "RSW-002".to_string(),
                    Some("Receiving Water Monitoring"),
                ));
            }
            if chance(r, 0.2) {
                locs.push(mk(
                    r,
                    "REC-001".to_string(),
                    Some("Recycled Water Monitoring"),
                ));
            }
            if chance(r, 0.1) {
                locs.push(mk(r, "GW-001".to_string(), Some("Groundwater Monitoring")));
            }
            if chance(r, 0.05) {
                locs.push(mk(r, "BIO-001".to_string(), Some("Biosolids Monitoring")));
            }
            if chance(r, 0.1) {
                locs.push(mk(r, "INT-001".to_string(), Some("Internal Monitoring")));
            }
            if chance(r, 0.03) {
                locs.push(mk(r, "SPL-001".to_string(), None));
            }
            for l in &mut locs {
                l.place_id = fresh(r, 700_000, 1_700_000);
            }
            let mut pairs: Vec<(usize, usize)> = Vec::new();
            let mut cum: Vec<f64> = Vec::new();
            let mut acc = 0.0;
            for (li, l) in locs.iter().enumerate() {
                for (pi, (_, f)) in l.params.iter().enumerate() {
                    acc += f;
                    pairs.push((li, pi));
                    cum.push(acc);
                }
            }
            let site = lognormal(r, 1.0, 0.4);
            Fac {
                region,
                name,
                place_id,
                quarterly,
                years: first..=last,
                weight,
                site,
                locs,
                pairs,
                cum,
            }
        })
        .collect();
    Universe { facs }
}

/// smr_document_id of the first report: every (year, facility, month or quarter) is one report.
const FIRST_DOCUMENT: u64 = 1_000_000;

/// Writes exactly `target` rows sampled in `year`, shared among the facilities reporting that
/// year by their weight, each facility's spread evenly over the days the file covers.
pub fn write_year<W: Write>(
    o: &mut Out<W>,
    r: &mut Rng,
    u: &Universe,
    year: i32,
    target: u64,
) -> io::Result<()> {
    let (first, last) = days(year);
    let year_lo = day_num(first);
    let span = (day_num(last) - year_lo + 1) as u64;
    let reporting: Vec<(usize, &Fac)> = u
        .facs
        .iter()
        .enumerate()
        .filter(|(_, f)| f.years.contains(&year))
        .collect();
    let weights: Vec<f64> = reporting.iter().map(|(_, f)| f.weight).collect();
    let year_docs = (year - YEARS.start()) as u64 * u.facs.len() as u64;
    for ((fi, f), quota) in reporting.into_iter().zip(quotas(&weights, target)) {
        let docs = FIRST_DOCUMENT + (year_docs + fi as u64) * 12;
        let acc = f.cum.last().copied().unwrap_or(0.0);
        for k in 0..quota {
            let day = year_lo + ((k * span) / quota.max(1)) as i64;
            let date = from_day_num(day);
            let x = r.random::<f64>() * acc;
            let j = f.cum.partition_point(|c| *c <= x).min(f.pairs.len() - 1);
            let (li, pi) = f.pairs[j];
            let l = &f.locs[li];
            let p = &l.params[pi].0;
            let mut m = measure(r, p, f.site);
            let conc = p.kind == PKind::Conc;
            if conc && m.qualifier == "=" {
                if chance(r, 0.25) {
                    m.qualifier = "ND";
                    m.result = f64::NAN;
                } else if chance(r, 0.1) {
                    m.qualifier = "<";
                    m.result = f64::NAN;
                }
            }
            o.t(f.region);
            o.t(&l.code);
            o.id(l.place_id);
            o.ot(l.ptype);
            o.t(&p.name);
            if chance(r, 0.4) {
                let (code, desc) = pick(r, p.methods);
                o.t(code);
                o.t(desc);
            } else {
                o.na();
                o.na();
            }
            o.ot(chance(r, 0.6).then(|| wpick(r, CALC)));
            o.t(m.qualifier);
            o.n(m.result);
            o.t(&p.unit);
            let nd = m.qualifier == "ND";
            let (mdl, rl) = if conc {
                let base = crate::util::round_sig(
                    p.median * 10f64.powf(-1.7 + 0.9 * r.random::<f64>()),
                    2,
                );
                let rl = crate::util::round_sig(base * (2.0 + 3.0 * r.random::<f64>()), 2);
                (
                    if nd || chance(r, 0.45) {
                        base
                    } else {
                        f64::NAN
                    },
                    if chance(r, 0.33) { rl } else { f64::NAN },
                )
            } else if chance(r, 0.03) {
                (pick(r, &[0.1, 0.01, 1.0]), f64::NAN)
            } else {
                (f64::NAN, f64::NAN)
            };
            o.n(mdl);
            o.n(if chance(r, 0.005) {
                pick(r, &[1.0, 5.0, 0.1, 0.2, 10.0])
            } else {
                f64::NAN
            });
            o.n(rl);
            o.d(Some(date));
            o.t(&format!(
                "{:02}:{:02}:00",
                r.random_range(0..24u32),
                pick(r, &[0u32, 0, 15, 20, 30, 40, 45, 58, 2])
            ));
            let ad = add_days(date, pick(r, &[0i64, 0, 0, 1, 2, 5]));
            o.d(Some(if chance(r, 0.00005) {
                junk_year(r, ad)
            } else {
                ad
            }));
            o.t(if chance(r, 0.9) {
                "00:00:00"
            } else {
                "13:48:00"
            });
            match r.random_range(0..100u32) {
                0..=73 => o.na(),
                74..=93 => o.t("N"),
                _ => o.t("Y"),
            }
            o.ot(chance(r, 0.0003).then(|| pick(r, &["D", "FO", "GB"])));
            o.ot(chance(r, 0.07).then(|| pick(r, COMMENTS)));
            o.t(&f.name);
            o.id(f.place_id);
            let month0 = date.month0() as usize;
            let (slot, rname) = if f.quarterly {
                let qn = month0 / 3;
                (
                    qn,
                    format!("Quarterly SMR ( MONRPT ) report for Q{} {year}", qn + 1),
                )
            } else {
                (
                    month0,
                    format!(
                        "Monthly SMR ( MONNPDES ) report for {} {year}",
                        MONTH_NAMES[month0]
                    ),
                )
            };
            o.t(&rname);
            o.on(l.lat);
            o.on(l.lon);
            o.ot(l.receiving.as_deref());
            o.id(docs + slot as u64);
            o.ot(l.desc.as_deref());
            o.end()?;
        }
    }
    Ok(())
}
