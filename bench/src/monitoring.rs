//! Industrial and construction monitoring ("Ad Hoc Reports - Parameter Data") files, streamed per facility.

use std::io::{self, Write};

use chrono::NaiveDate;
use rand::RngExt;

use crate::facilities::{DATA_END, Facility};
use crate::out::Out;
use crate::real::Real;
use crate::util::{
    Rng, add_days, chance, full_name, hhmm, junk_year, lognormal, oracle_ts, pick, pick_ref,
    rand_wet_date, reporting_year, round_dp, wpick, ymd,
};
use crate::values::{Measured, Profile, measure, method_code, profile};

/// Splits `total` rows over facilities proportionally to `weights`, exactly.
pub fn quotas(weights: &[f64], total: u64) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if sum <= 0.0 {
        let mut q = vec![0; weights.len()];
        q[0] = total;
        return q;
    }
    let mut out = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    let mut given = 0u64;
    for w in weights {
        acc += w;
        let upto = ((acc / sum) * total as f64).round() as u64;
        let upto = upto.min(total);
        out.push(upto - given);
        given = upto;
    }
    if given < total
        && let Some(last) = out.last_mut()
    {
        *last += total - given;
    }
    out
}

struct Loc {
    name: String,
    ltype: &'static str,
    desc: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
}

impl Loc {
    /// The location's name, type, description and coordinates.
    fn write<W: Write>(&self, o: &mut Out<W>) {
        o.t(&self.name);
        o.t(self.ltype);
        o.ot(self.desc.as_deref());
        o.on(self.lat);
        o.on(self.lon);
    }
}

/// The leading columns shared by both monitoring files: permit type, WDID, APP_ID, reporting year, report id
/// and event type.
fn write_head<W: Write>(o: &mut Out<W>, f: &Facility, ry: f64, report: &str, event_type: &str) {
    o.t(&f.permit_type);
    o.t(&f.wdid);
    o.id(f.app_id);
    o.n(ry);
    o.t(report);
    o.t(event_type);
}

fn locations(r: &mut Rng, f: &Facility, n: usize, types: &[(&'static str, u32)]) -> Vec<Loc> {
    let style = pick(
        r,
        &[
            "SP-{}",
            "CL-{}",
            "DP-{}",
            "Outfall {}",
            "OF-{}",
            "SW-{}",
            "DP00{}",
            "Drain Inlet {}",
            "Discharge Point {}",
            "Location {}",
        ],
    );
    (1..=n)
        .map(|i| {
            let name = style.replace("{}", &i.to_string());
            let (lat, lon) = match (f.lat, f.lon) {
                (Some(a), Some(b)) if a != 0.0 && chance(r, 0.55) => {
                    let dp = pick(r, &[4, 5, 6, 6, 6, 7]);
                    (
                        Some(round_dp(a + (r.random::<f64>() - 0.5) * 0.004, dp)),
                        Some(round_dp(b + (r.random::<f64>() - 0.5) * 0.004, dp)),
                    )
                }
                _ => (None, None),
            };
            let desc = if chance(r, 0.15) {
                Some(format!(
                    "{} {}",
                    pick(
                        r,
                        &[
                            "Drop inlet at",
                            "Sheet flow at",
                            "Discharge point at",
                            "Catch basin near",
                            "Outfall at",
                            "Sample point at"
                        ]
                    ),
                    pick(
                        r,
                        &[
                            "northeast corner of yard",
                            "main gate",
                            "southwest corner",
                            "loading dock",
                            "rear of building",
                            "driveway entrance",
                            "east property line"
                        ]
                    )
                ))
            } else {
                None
            };
            Loc {
                name,
                ltype: wpick(r, types),
                desc,
                lat,
                lon,
            }
        })
        .collect()
}

/// Industrial parameter set: pH, TSS, O&G plus sector parameters, 5–10 per sample event.
fn industrial_params(r: &mut Rng, real: &Real) -> Vec<Profile> {
    let mut names: Vec<(String, String)> = vec![
        ("pH".to_string(), "SU".to_string()),
        (
            "Total Suspended Solids (TSS)".to_string(),
            "mg/L".to_string(),
        ),
    ];
    if chance(r, 0.92) {
        names.push(("Oil and Grease".to_string(), "mg/L".to_string()));
    }
    let extras: &[(&str, f64)] = &[
        ("Zinc, Total", 0.55),
        ("Iron, Total Recoverable", 0.3),
        ("Aluminum, Total Recoverable", 0.3),
        ("Lead, Total", 0.3),
        ("Copper, Total", 0.25),
        ("Chemical Oxygen Demand (COD)", 0.25),
        ("Nitrite Plus Nitrate (as N)", 0.2),
        ("Iron, Total", 0.12),
        ("Aluminum, Total", 0.1),
        ("Electrical Conductivity @ 25 Deg. C", 0.08),
        ("Ammonia, Total (as N)", 0.07),
        ("Magnesium, Total", 0.05),
        ("Biochemical Oxygen Demand (BOD) (5-day @ 20 Deg. C)", 0.05),
        ("Nickel, Total", 0.04),
        ("Turbidity", 0.04),
    ];
    for (n, p) in extras {
        if chance(r, *p) {
            let unit = if n.contains(',') && chance(r, 0.12) {
                "ug/L"
            } else {
                "mg/L"
            };
            let unit = match *n {
                "Electrical Conductivity @ 25 Deg. C" => "umhos/cm",
                "Turbidity" => "NTU",
                _ => unit,
            };
            names.push((n.to_string(), unit.to_string()));
        }
    }
    let want = r.random_range(5..=10usize);
    let mut guard = 0;
    while names.len() < want && guard < 50 {
        guard += 1;
        let p = pick_ref(r, &real.params);
        if names.iter().any(|(n, _)| *n == p.name) {
            continue;
        }
        let unit = if p.units.len() > 1 && chance(r, 0.15) {
            &p.units[1]
        } else {
            &p.units[0]
        };
        names.push((p.name.clone(), unit.clone()));
    }
    names.truncate(10);
    names.iter().map(|(n, u)| profile(n, u)).collect()
}

fn event_dates(r: &mut Rng, n: usize, lo: NaiveDate, hi: NaiveDate) -> Vec<NaiveDate> {
    let mut v: Vec<NaiveDate> = (0..n).map(|_| rand_wet_date(r, lo, hi)).collect();
    v.sort();
    v
}

/// Facilities that get monitoring rows (the monitoring ones, else the first with a usable WDID) and the share
/// of `target` rows each gets: weight = lognormal(1, `sigma`) × `years`(length of its window in years).
fn plan_quotas(
    r: &mut Rng,
    facs: &[Facility],
    lo: NaiveDate,
    target: u64,
    sigma: f64,
    years: impl Fn(f64) -> f64,
) -> Option<(Vec<usize>, Vec<u64>)> {
    let mut elig: Vec<usize> = facs
        .iter()
        .enumerate()
        .filter(|(_, f)| f.monitors)
        .map(|(i, _)| i)
        .collect();
    if elig.is_empty() {
        elig = facs
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.junk_wdid)
            .map(|(i, _)| i)
            .take(1)
            .collect();
    }
    if elig.is_empty() || target == 0 {
        return None;
    }
    let weights: Vec<f64> = elig
        .iter()
        .map(|&i| {
            let (a, b) = facs[i].window(lo, DATA_END).unwrap_or((lo, DATA_END));
            let years = years((b - a).num_days() as f64 / 365.0);
            lognormal(r, 1.0, sigma) * years
        })
        .collect();
    let q = quotas(&weights, target);
    Some((elig, q))
}

/// What one facility's sample events repeat: its locations, its parameters, its site level and its row quota.
struct Events<'a> {
    locs: &'a [Loc],
    params: &'a [Profile],
    site: f64,
    quota: u64,
}

impl Events<'_> {
    /// Writes one sample event's rows: a new sample id per location, one row per parameter (`row` writes the
    /// fields of a row but does not end it), stopping at the quota; now and then an exact duplicate row.
    fn write<W: Write>(
        &self,
        o: &mut Out<W>,
        r: &mut Rng,
        written: &mut u64,
        sample_id: &mut u64,
        mut row: impl FnMut(&mut Out<W>, &mut Rng, &Loc, u64, &Profile, &Measured),
    ) -> io::Result<()> {
        for loc in self.locs {
            if *written >= self.quota {
                break;
            }
            *sample_id += r.random_range(1..3u64);
            for p in self.params {
                if *written >= self.quota {
                    break;
                }
                let m = measure(r, p, self.site);
                row(o, r, loc, *sample_id, p, &m);
                o.end()?;
                *written += 1;
                if *written < self.quota && chance(r, 0.0001) {
                    o.dup_prev()?;
                    *written += 1;
                }
            }
        }
        Ok(())
    }
}

/// Who certified a facility's reports: its own certifier with probability `p_own`, else a random name.
fn certifier(r: &mut Rng, f: &Facility, p_own: f64) -> String {
    if chance(r, p_own) {
        f.certifier_name.clone()
    } else {
        full_name(r)
    }
}

/// Writes exactly `target` industrial monitoring rows.
pub fn write_industrial<W: Write>(
    o: &mut Out<W>,
    r: &mut Rng,
    real: &Real,
    facs: &[Facility],
    target: u64,
) -> io::Result<()> {
    let lo = ymd(2015, 7, 1);
    let Some((elig, q)) = plan_quotas(r, facs, lo, target, 0.7, |y| y.max(0.3)) else {
        return Ok(());
    };
    let mut report_id: u64 = 850_000;
    let mut sample_id: u64 = 2_140_000;
    for (k, &fi) in elig.iter().enumerate() {
        let quota = q[k];
        if quota == 0 {
            continue;
        }
        let f = &facs[fi];
        let (a, b) = f.window(lo, DATA_END).unwrap_or((lo, DATA_END));
        let nloc = wpick(r, &[(1usize, 60), (2, 25), (3, 10), (4, 5)]);
        let locs = locations(
            r,
            f,
            nloc,
            &[("Effluent Monitoring", 97), ("Run-On Monitoring", 3)],
        );
        let params = industrial_params(r, real);
        let site = lognormal(r, 1.0, 0.5);
        let per_event = (nloc * params.len()) as u64;
        let n_events = quota.div_ceil(per_event).max(1) as usize;
        let dates = event_dates(r, n_events, a, b);
        let certifier = certifier(r, f, 0.85);
        let ev = Events {
            locs: &locs,
            params: &params,
            site,
            quota,
        };
        let mut written = 0u64;
        let mut last_ry = i32::MIN;
        let mut events_in_report = 0;
        for d in dates {
            if written >= quota {
                break;
            }
            let ry = reporting_year(d);
            if ry != last_ry || events_in_report >= 2 || !chance(r, 0.15) {
                report_id += r.random_range(1..4u64);
                events_in_report = 0;
            }
            events_in_report += 1;
            last_ry = ry;
            let event_type = wpick(
                r,
                &[
                    ("Qualifying Storm Event", 95),
                    ("Non-Qualifying Storm Event", 3),
                    ("Non-Stormwater Discharge", 2),
                ],
            );
            let sample_time = if chance(r, 0.001) {
                "24:00".to_string()
            } else {
                hhmm(r, 6, 16)
            };
            let ds_date = if chance(r, 0.3) { add_days(d, -1) } else { d };
            let ds_date = if chance(r, 0.00003) {
                junk_year(r, ds_date)
            } else {
                ds_date
            };
            let ds_time = if chance(r, 0.15) {
                None
            } else if chance(r, 0.03) {
                Some("24:00".to_string())
            } else {
                Some(hhmm(r, 0, 20))
            };
            let has_end = chance(r, 0.4);
            let de_date = has_end.then(|| add_days(d, r.random_range(0..2i64)));
            let de_time = if has_end { Some(hhmm(r, 8, 23)) } else { None };
            let cert_d = add_days(d, r.random_range(5..150i64)).min(ymd(2025, 11, 20));
            let certified = oracle_ts(r, cert_d);
            let report_s = report_id.to_string();
            let ry_f = f64::from(ry);
            ev.write(
                o,
                r,
                &mut written,
                &mut sample_id,
                |o, r, loc, sample_id, p, m| {
                    write_head(o, f, ry_f, &report_s, event_type);
                    loc.write(o);
                    o.id(sample_id);
                    o.d(Some(d));
                    o.t(&sample_time);
                    o.d(Some(ds_date));
                    o.ot(ds_time.as_deref());
                    o.t(&p.name);
                    o.t(m.qualifier);
                    o.n(m.result);
                    o.t(&p.unit);
                    if chance(r, 0.02) {
                        o.na()
                    } else {
                        o.t(method_code(r, p))
                    }
                    o.n(m.mdl);
                    o.n(m.rl);
                    o.d(de_date);
                    o.ot(de_time.as_deref());
                    o.t(&certifier);
                    o.t(&certified);
                },
            )?;
        }
        debug_assert_eq!(written, quota);
    }
    Ok(())
}

fn construction_params(r: &mut Rng) -> Vec<Profile> {
    let mut v = vec![profile("pH", "SU"), profile("Turbidity", "NTU")];
    if chance(r, 0.06) {
        v.push(profile("Total Suspended Solids (TSS)", "mg/L"));
    }
    if chance(r, 0.02) {
        v.push(profile("Suspended Sediment Concentration (SSC)", "mg/L"));
    }
    if chance(r, 0.01) {
        v.push(profile("Oil and Grease", "mg/L"));
    }
    v
}

/// Writes exactly `target` construction monitoring rows.
pub fn write_construction<W: Write>(
    o: &mut Out<W>,
    r: &mut Rng,
    facs: &[Facility],
    target: u64,
) -> io::Result<()> {
    let lo = ymd(2012, 7, 1);
    let Some((elig, q)) = plan_quotas(r, facs, lo, target, 0.8, |y| y.clamp(0.2, 4.0)) else {
        return Ok(());
    };
    let mut report_id: u64 = 4_100_000;
    let mut sample_id: u64 = 9_300_000;
    for (k, &fi) in elig.iter().enumerate() {
        let quota = q[k];
        if quota == 0 {
            continue;
        }
        let f = &facs[fi];
        let (a, b) = f.window(lo, DATA_END).unwrap_or((lo, DATA_END));
        let b = b.min(add_days(a, 365 * 4));
        let nloc = wpick(r, &[(1usize, 45), (2, 30), (3, 15), (4, 10)]);
        let locs = locations(
            r,
            f,
            nloc,
            &[
                ("Effluent Monitoring", 85),
                ("Run-On Monitoring", 8),
                ("Receiving Water Monitoring", 7),
            ],
        );
        let params = construction_params(r);
        let site = lognormal(r, 1.0, 0.7);
        let per_event = (nloc * params.len()) as u64;
        let n_events = quota.div_ceil(per_event).max(1) as usize;
        let dates = event_dates(r, n_events, a, b);
        let qsp = full_name(r);
        let analyzed_by = if chance(r, 0.7) {
            qsp.clone()
        } else {
            format!(
                "{} Laboratories",
                pick(
                    r,
                    &[
                        "Pacific", "BC", "Enthalpy", "Eurofins", "Alpha", "Babcock", "Montrose"
                    ]
                )
            )
        };
        let certifier = certifier(r, f, 0.8);
        let ev = Events {
            locs: &locs,
            params: &params,
            site,
            quota,
        };
        let mut written = 0u64;
        let mut last_ry = i32::MIN;
        for d in dates {
            if written >= quota {
                break;
            }
            let ry = reporting_year(d);
            if ry != last_ry || !chance(r, 0.5) {
                report_id += r.random_range(1..3u64);
            }
            last_ry = ry;
            let event_type = wpick(
                r,
                &[
                    ("Qualifying Rain Event", 85),
                    ("Non-Qualifying Rain Event", 8),
                    ("Non-Stormwater Discharge", 5),
                    ("Active Treatment System Discharge", 2),
                ],
            );
            let ev_start = add_days(d, -r.random_range(0..2i64));
            let ev_end = if chance(r, 0.85) {
                Some(add_days(d, r.random_range(0..3i64)))
            } else {
                None
            };
            let rain = if chance(r, 0.8) {
                round_dp(lognormal(r, 0.6, 0.8), 2)
            } else {
                f64::NAN
            };
            let bdays = if chance(r, 0.3) {
                f64::from(r.random_range(1..4u32))
            } else {
                f64::NAN
            };
            let time = format!("{}:00", hhmm(r, 6, 17));
            let pct = if chance(r, 0.15) {
                round_dp(r.random::<f64>() * 100.0, 0)
            } else {
                f64::NAN
            };
            let cert_d = add_days(d, r.random_range(3..120i64)).min(ymd(2025, 11, 20));
            let certified = oracle_ts(r, cert_d);
            let report_s = report_id.to_string();
            let ry_f = f64::from(ry);
            ev.write(
                o,
                r,
                &mut written,
                &mut sample_id,
                |o, r, loc, sample_id, p, m| {
                    write_head(o, f, ry_f, &report_s, event_type);
                    o.d(Some(ev_start));
                    o.d(ev_end);
                    o.n(rain);
                    o.n(bdays);
                    loc.write(o);
                    o.id(sample_id);
                    o.d(Some(d));
                    o.t(&time);
                    o.n(pct);
                    o.t(&qsp);
                    o.t(&p.name);
                    o.t(m.qualifier);
                    o.n(m.result);
                    o.t(&p.unit);
                    if chance(r, 0.1) {
                        o.na();
                    } else if p.name == "pH" && chance(r, 0.3) {
                        o.t("pH Meter");
                    } else {
                        o.t(method_code(r, p));
                    }
                    o.n(m.mdl);
                    o.n(m.rl);
                    o.t(&analyzed_by);
                    o.t(&certifier);
                    o.t(&certified);
                },
            )?;
        }
        debug_assert_eq!(written, quota);
    }
    Ok(())
}
