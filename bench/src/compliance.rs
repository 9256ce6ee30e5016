//! Inspections, Violations and Enforcement_Actions. A small in-memory plan (ids, facility, date) is built first
//! so that violations can point at inspection ids and counts agree; the rows themselves are streamed.

use std::io::{self, Write};

use chrono::{Datelike, NaiveDate};
use rand::RngExt;

use crate::facilities::{Dup, Facility};
use crate::out::Out;
use crate::util::{
    Rng, add_days, chance, full_name, lognormal, pick, pick_ref, rand_date, range, round_sig,
    with_fffd, wpick, ymd,
};

#[derive(Clone, Copy, Debug)]
pub struct FacRef(pub usize);

pub struct Universe<'a> {
    pub ind: &'a [Facility],
    pub con: &'a [Facility],
}

impl Universe<'_> {
    pub fn get(&self, r: FacRef) -> &Facility {
        if r.0 < self.ind.len() {
            &self.ind[r.0]
        } else {
            &self.con[r.0 - self.ind.len()]
        }
    }
    fn len(&self) -> usize {
        self.ind.len() + self.con.len()
    }
}

pub struct InspPlan {
    pub id: u64,
    pub fac: FacRef,
    pub date: NaiveDate,
    pub n_viol: u32,
}

pub struct ViolPlan {
    pub id: u64,
    pub fac: FacRef,
    pub date: NaiveDate,
    pub source: &'static str,
    pub source_id: Option<u64>,
    pub linked: bool,
}

pub struct EnfPlan {
    pub id: u64,
    pub fac: FacRef,
    pub date: NaiveDate,
    pub n_viol: Option<u32>,
}

pub struct Plan {
    pub insp: Vec<InspPlan>,
    pub viol: Vec<ViolPlan>,
    pub enf: Vec<EnfPlan>,
}

/// Weighted facility sampler (cumulative weights + binary search).
struct Sampler {
    cum: Vec<f64>,
    idx: Vec<usize>,
}

impl Sampler {
    fn new(r: &mut Rng, u: &Universe) -> Sampler {
        let mut cum = Vec::with_capacity(u.len());
        let mut idx = Vec::with_capacity(u.len());
        let mut acc = 0.0;
        for i in 0..u.len() {
            let f = u.get(FacRef(i));
            if f.dup == Dup::Exact {
                continue;
            }
            let base = match f.kind {
                crate::facilities::FacKind::Industrial => 4.0,
                crate::facilities::FacKind::Construction => 1.0,
            };
            let active = if f.status == "Active" { 1.5 } else { 1.0 };
            acc += base * active * lognormal(r, 1.0, 0.9);
            cum.push(acc);
            idx.push(i);
        }
        Sampler { cum, idx }
    }

    fn pick(&self, r: &mut Rng) -> FacRef {
        let total = *self.cum.last().unwrap_or(&1.0);
        let x = r.random::<f64>() * total;
        let k = self
            .cum
            .partition_point(|c| *c <= x)
            .min(self.idx.len().saturating_sub(1));
        FacRef(self.idx.get(k).copied().unwrap_or(0))
    }
}

fn date_for(r: &mut Rng, f: &Facility) -> NaiveDate {
    let lo = f
        .noi_date
        .filter(|d| d.year() >= 2004)
        .unwrap_or(ymd(2005, 1, 1))
        .max(ymd(2005, 1, 1));
    let hi = f
        .not_date
        .map(|d| add_days(d, 365))
        .unwrap_or(ymd(2025, 11, 10))
        .min(ymd(2025, 11, 10));
    if hi <= lo {
        rand_date(r, ymd(2008, 1, 1), ymd(2025, 11, 10))
    } else {
        rand_date(r, lo, hi)
    }
}

pub fn plan(r: &mut Rng, u: &Universe, n_insp: u64, n_viol: u64, n_enf: u64) -> Plan {
    let s = Sampler::new(r, u);
    // inspections
    let mut insp: Vec<InspPlan> = (0..n_insp)
        .map(|_| {
            let fac = s.pick(r);
            let date = date_for(r, u.get(fac));
            let n_viol = if chance(r, 0.12) {
                r.random_range(1..=3u32)
            } else {
                0
            };
            InspPlan {
                id: 0,
                fac,
                date,
                n_viol,
            }
        })
        .collect();
    insp.sort_by_key(|p| (p.date, p.fac.0));
    let mut id = 7_900u64;
    for p in &mut insp {
        id += range(r, 1, 25);
        p.id = id;
    }
    // cap inspection-derived violations at ~45% of the violation total
    let cap = (n_viol as f64 * 0.45) as u64;
    let mut s_total: u64 = insp.iter().map(|p| u64::from(p.n_viol)).sum();
    for p in insp.iter_mut().rev() {
        if s_total <= cap {
            break;
        }
        s_total -= u64::from(p.n_viol);
        p.n_viol = 0;
    }
    // violations
    let mut viol: Vec<ViolPlan> = Vec::with_capacity(n_viol as usize);
    for p in &insp {
        for _ in 0..p.n_viol {
            viol.push(ViolPlan {
                id: 0,
                fac: p.fac,
                date: add_days(p.date, -r.random_range(0..30i64)),
                source: "Inspection",
                source_id: Some(p.id),
                linked: false,
            });
        }
    }
    while (viol.len() as u64) < n_viol {
        let fac = s.pick(r);
        let date = date_for(r, u.get(fac));
        let source = wpick(
            r,
            &[
                ("Annual Report", 35),
                ("Report", 40),
                ("Internal Report", 15),
                ("Referral", 5),
                ("Undetermined", 5),
            ],
        );
        let source_id = if matches!(source, "Annual Report" | "Report") && chance(r, 0.6) {
            Some(range(r, 300_000, 3_500_000))
        } else {
            None
        };
        viol.push(ViolPlan {
            id: 0,
            fac,
            date,
            source,
            source_id,
            linked: false,
        });
    }
    viol.truncate(n_viol as usize);
    viol.sort_by_key(|v| (v.date, v.fac.0));
    let mut id = 600_000u64;
    for v in &mut viol {
        id += range(r, 1, 12);
        v.id = id;
    }
    // enforcement
    let mut enf: Vec<EnfPlan> = Vec::with_capacity(n_enf as usize);
    for _ in 0..n_enf {
        if !viol.is_empty() && chance(r, 0.65) {
            let k = r.random_range(0..viol.len());
            viol[k].linked = true;
            let date = add_days(viol[k].date, r.random_range(0..120i64)).min(ymd(2025, 11, 10));
            let n = if chance(r, 0.1) {
                None
            } else {
                Some(1 + u32::from(chance(r, 0.3)) + u32::from(chance(r, 0.1)))
            };
            enf.push(EnfPlan {
                id: 0,
                fac: viol[k].fac,
                date,
                n_viol: n,
            });
        } else {
            let fac = s.pick(r);
            let date = date_for(r, u.get(fac));
            enf.push(EnfPlan {
                id: 0,
                fac,
                date,
                n_viol: if chance(r, 0.5) { Some(0) } else { None },
            });
        }
    }
    enf.sort_by_key(|e| (e.date, e.fac.0));
    let mut id = 200_000u64;
    for e in &mut enf {
        id += range(r, 1, 14);
        e.id = id;
    }
    Plan { insp, viol, enf }
}

/// The 16 PLACE_* columns appended by the portal's left join on (APP_ID, WDID).
fn place<W: Write>(o: &mut Out<W>, r: &mut Rng, f: &Facility) {
    // the join needs a non-NA WDID; a few rows also miss because the facility snapshot and the
    // violation/inspection snapshot were downloaded at different times
    if !f.joinable() || chance(r, 0.003) {
        for k in 0..16 {
            if matches!(k, 8 | 9 | 11) {
                o.nan()
            } else {
                o.na()
            }
        }
        return;
    }
    o.t(&f.permit_type);
    o.ot(f.region.as_deref());
    o.ot(f.name.as_deref());
    o.ot(f.address.as_deref());
    o.ot(f.address2.as_deref());
    o.ot(f.city.as_deref());
    o.ot(f.state.as_deref());
    o.ot(f.zip.as_deref());
    o.on(f.lat);
    o.on(f.lon);
    o.ot(f.place_county.as_deref());
    o.on(f.total_size);
    o.ot(f.size_unit.as_deref());
    o.ot(f.receiving.as_deref());
    o.ot(f.indirectly.as_deref());
    o.ot(f.directly.as_deref());
}

fn inspectors(r: &mut Rng) -> Vec<String> {
    (0..150).map(|_| full_name(r)).collect()
}

const NOTES: &[&str] = &[
    "BMPs in place and functioning.",
    "Observed uncovered materials stored outdoors; discussed covering with the facility contact.",
    "SWPPP not available on site at the time of inspection.",
    "Sediment tracking observed at the site entrance.",
    "No discharge observed at the time of inspection.",
    "Housekeeping needs improvement; oil staining near the fueling area.",
    "Facility has ceased industrial activities.",
    "Site is stabilized; NOT recommended.",
    "Inlet protection missing at two storm drain inlets.",
    "Annual report not submitted; discussed monitoring requirements.",
    "Sampling not conducted during qualifying storm events.",
    "Non-filer; facility operates under SIC code requiring coverage.",
];

pub fn write_inspections<W: Write>(
    o: &mut Out<W>,
    r: &mut Rng,
    u: &Universe,
    plan: &Plan,
) -> io::Result<()> {
    let staff = inspectors(r);
    for p in &plan.insp {
        let f = u.get(p.fac);
        o.t(&f.wdid);
        o.id(f.app_id);
        o.id(p.id);
        o.t(wpick(
            r,
            &[
                ("Compliance Inspection", 70),
                ("Complaint Investigation", 10),
                ("Follow-up Inspection", 12),
                ("Reconnaissance", 8),
            ],
        ));
        let timed = chance(r, 0.4);
        if timed {
            let h = r.random_range(8..15u32);
            o.t(&format!("{h:02}:{:02}", pick(r, &[0u32, 15, 30, 45])));
            o.t(&format!(
                "{:02}:{:02}",
                h + r.random_range(1..3u32),
                pick(r, &[0u32, 15, 30, 45])
            ));
        } else {
            o.na();
            o.na();
        }
        o.t(wpick(
            r,
            &[("Complete", 92), ("Incomplete", 5), ("Draft", 3)],
        ));
        o.t(wpick(
            r,
            &[
                ("B Type compliance", 45),
                ("A Type Compliance", 15),
                ("Complaint", 8),
                ("Enforcement Follow-up", 6),
                ("Non-Compliance Follow-up", 8),
                ("Inspection from Vehicle", 4),
                ("NEC", 3),
                ("NOT", 6),
                ("Non-Filer/NONA", 5),
            ],
        ));
        o.d(Some(p.date));
        o.ot(chance(r, 0.7).then(|| full_name(r)).as_deref());
        let itype = wpick(
            r,
            &[
                ("Regional Board", 85),
                ("Third Party", 10),
                ("State Board", 5),
            ],
        );
        o.t(itype);
        o.t(pick_ref(r, &staff).as_str());
        if itype == "Third Party" {
            o.t(pick(
                r,
                &[
                    "Tetra Tech",
                    "City of Los Angeles",
                    "County of San Diego",
                    "Larry Walker Associates",
                    "Geosyntec",
                ],
            ));
            o.t(&full_name(r));
        } else {
            o.na();
            o.na();
        }
        o.t(wpick(
            r,
            &[
                ("No Further Action", 60),
                ("Follow-up Inspection Needed", 20),
                ("Additional Info Required", 20),
            ],
        ));
        if chance(r, 0.8) {
            let mut s = pick(r, NOTES).to_string();
            if chance(r, 0.3) {
                s = format!("{s} {}", pick(r, NOTES));
            }
            if chance(r, 0.005) {
                s = with_fffd(r, &s);
            }
            o.t(&s);
        } else {
            o.na();
        }
        if p.date.year() >= 2020 {
            o.t(if chance(r, 0.08) { "Y" } else { "N" })
        } else {
            o.na()
        }
        o.n(f64::from(p.n_viol));
        o.ot(chance(r, 0.45)
            .then(|| {
                let d = add_days(p.date, r.random_range(1..60i64));
                format!("{:02}/{:02}/{}", d.month(), d.day(), d.year())
            })
            .as_deref());
        place(o, r, f);
        o.end()?;
        if chance(r, 0.0002) {
            o.dup_prev()?;
        }
    }
    Ok(())
}

const VTYPES: &[(&str, u32)] = &[
    ("Late Report", 24),
    ("Deficient Report", 14),
    ("Deficient BMP", 20),
    ("Deficient SWPPP", 12),
    ("Failure to Obtain Permit", 6),
    ("Unauthorized NSWD", 5),
    ("Monitoring", 9),
    ("Failure to Pay Fees", 5),
    ("Effluent", 3),
    ("Other Requirement", 2),
];

fn vdesc(r: &mut Rng, t: &str, d: NaiveDate) -> String {
    let y = d.year();
    match t {
        "Late Report" => format!("{}-{} Annual Report not submitted by the July 15 deadline.", y - 1, y),
        "Deficient Report" => "Annual report incomplete; sampling results missing for one or more qualifying storm events.".to_string(),
        "Deficient BMP" => pick(r, &["Inadequate BMPs; exposed materials and sediment observed.", "Perimeter controls not maintained.", "Inlet protection not installed."]).to_string(),
        "Deficient SWPPP" => "SWPPP not updated to reflect current site conditions.".to_string(),
        "Failure to Obtain Permit" => "Facility operating without permit coverage.".to_string(),
        "Unauthorized NSWD" => "Unauthorized non-storm water discharge observed leaving the site.".to_string(),
        "Monitoring" => "Failure to collect and analyze samples as required.".to_string(),
        "Failure to Pay Fees" => format!("Annual fee for fiscal year {y}-{} not paid.", (y + 1) % 100),
        _ => "Exceedance of an effluent limitation.".to_string(),
    }
}

pub fn write_violations<W: Write>(
    o: &mut Out<W>,
    r: &mut Rng,
    u: &Universe,
    plan: &Plan,
) -> io::Result<()> {
    for v in &plan.viol {
        let f = u.get(v.fac);
        o.t(&f.wdid);
        o.id(f.app_id);
        o.id(v.id);
        o.t(v.source);
        match v.source_id {
            Some(id) => o.id(id),
            None => o.na(),
        }
        let t = wpick(r, VTYPES);
        o.t(t);
        o.t(wpick(r, &[("N", 85), ("Y", 5), ("NA", 10)]));
        o.t(wpick(
            r,
            &[
                ("3", 45),
                ("2", 30),
                ("1", 5),
                ("No", 8),
                ("Yes", 2),
                ("Not Authorized to Assign Rank", 3),
                ("NA", 7),
            ],
        ));
        let occ = if chance(r, 0.0005) {
            crate::util::junk_year(r, v.date)
        } else {
            v.date
        };
        o.d(Some(occ));
        o.d(if chance(r, 0.4) {
            Some(add_days(v.date, r.random_range(0..45i64)))
        } else {
            None
        });
        o.t(wpick(
            r,
            &[
                ("Regional Board", 75),
                ("State Board", 20),
                ("discharger", 5),
            ],
        ));
        o.t(wpick(r, &[("N", 55), ("Y", 35), ("NA", 10)]));
        o.ot(chance(r, 0.15).then(|| {
            pick(
                r,
                &[
                    "See inspection report.",
                    "Discharger notified by letter.",
                    "Resolved after follow-up.",
                    "Referred to enforcement unit.",
                ],
            )
        }));
        let mut d = vdesc(r, t, v.date);
        if chance(r, 0.005) {
            d = with_fffd(r, &d);
        }
        o.t(&d);
        o.t(wpick(
            r,
            &[("Violation", 80), ("Potential", 12), ("Dismissed", 8)],
        ));
        o.t(if v.linked { "Y" } else { "N" });
        place(o, r, f);
        o.end()?;
        if chance(r, 0.0002) {
            o.dup_prev()?;
        }
    }
    Ok(())
}

const ETYPES: &[(&str, u32)] = &[
    ("NNC", 30),
    ("NOV", 22),
    ("SEL", 12),
    ("13267 Letter", 10),
    ("Verbal Communication", 12),
    ("Notice to Comply", 4),
    ("Expedited Payment Letter", 5),
    ("Admin Civil Liability", 3),
    ("CAO", 2),
];

pub fn write_enforcement<W: Write>(
    o: &mut Out<W>,
    r: &mut Rng,
    u: &Universe,
    plan: &Plan,
) -> io::Result<()> {
    for e in &plan.enf {
        let f = u.get(e.fac);
        let t = wpick(r, ETYPES);
        o.t(&f.wdid);
        o.id(f.app_id);
        o.id(e.id);
        o.t(t);
        let old = e.date < ymd(2023, 1, 1);
        o.t(if old {
            wpick(
                r,
                &[
                    ("Historical", 90),
                    ("Withdrawn", 5),
                    ("Rescinded", 2),
                    ("Active", 3),
                ],
            )
        } else {
            wpick(
                r,
                &[
                    ("Active", 60),
                    ("Historical", 35),
                    ("Draft", 3),
                    ("Withdrawn", 2),
                ],
            )
        });
        o.d(Some(e.date));
        o.d(if chance(r, 0.55) {
            Some(add_days(e.date, pick(r, &[14i64, 30, 30, 45, 60, 90])))
        } else {
            None
        });
        let mut desc = match t {
            "Expedited Payment Letter" => "Expedited payment offer for late annual report (mandatory minimum penalty).".to_string(),
            "Admin Civil Liability" => "Administrative civil liability complaint for discharges in violation of the General Permit.".to_string(),
            "13267 Letter" => "Water Code section 13267 order requiring technical report.".to_string(),
            "Verbal Communication" => "Discussed deficiencies with the discharger by phone.".to_string(),
            _ => format!("{t} issued for {}.", pick(r, &["failure to submit annual report", "deficient BMPs", "failure to obtain permit coverage", "deficient SWPPP", "sampling deficiencies"])),
        };
        if chance(r, 0.004) {
            desc = with_fffd(r, &desc);
        }
        o.t(&desc);
        o.ot(chance(r, 0.4).then(|| {
            pick(
                r,
                &[
                    "Submit annual report.",
                    "Implement BMPs and submit photo documentation.",
                    "Obtain permit coverage or submit NONA.",
                    "Update SWPPP.",
                    "Pay outstanding fees.",
                ],
            )
        }));
        let formal = matches!(t, "Admin Civil Liability" | "CAO");
        let region = f.region.as_deref().unwrap_or("4");
        if formal {
            o.t(&format!(
                "R{}-{}-{:04}",
                region.chars().next().unwrap_or('4'),
                e.date.year(),
                r.random_range(1..200u32)
            ));
        } else {
            o.na();
        }
        // money: ECONOMIC_BENEFITS, TOTAL_MAX_LIABILITY, STAFF_COSTS, INITIAL_ASSESSMENT, TOTAL_ASSESSMENT,
        // RECEIVED_AMOUNT, SPENT_AMOUNT, BALANCE_DUE
        let mut money = [f64::NAN; 8];
        let mut epl = None;
        let mut acl = None;
        let mut adopt = None;
        let mut received = None;
        if t == "Admin Civil Liability" {
            let total = round_sig(lognormal(r, 40_000.0, 1.0), 3);
            money = [
                round_sig(total * 0.1, 2),
                round_sig(total * 8.0, 3),
                round_sig(lognormal(r, 8_000.0, 0.5), 3),
                total,
                total,
                if chance(r, 0.7) { total } else { 0.0 },
                f64::NAN,
                if chance(r, 0.7) { 0.0 } else { total },
            ];
            acl = Some(e.date);
            adopt = chance(r, 0.6).then(|| add_days(e.date, r.random_range(30..200i64)));
            received = (money[5] > 0.0).then(|| add_days(e.date, r.random_range(30..240i64)));
        } else if t == "Expedited Payment Letter" {
            let amt = 3000.0 * f64::from(r.random_range(1..4u32));
            let paid = chance(r, 0.8);
            money[3] = amt;
            money[4] = amt;
            money[5] = if paid { amt } else { 0.0 };
            money[7] = if paid { 0.0 } else { amt };
            epl = Some(e.date);
            received = paid.then(|| add_days(e.date, r.random_range(10..90i64)));
        }
        for m in money {
            o.n(m);
        }
        o.d(acl);
        o.d(adopt);
        o.d(if chance(r, 0.2) {
            Some(add_days(e.date, r.random_range(10..300i64)))
        } else {
            None
        });
        o.d(epl);
        o.d(received);
        o.d(if t == "Expedited Payment Letter" && chance(r, 0.3) {
            Some(add_days(e.date, r.random_range(5..40i64)))
        } else {
            None
        });
        match e.n_viol {
            Some(n) => o.n(f64::from(n)),
            None => o.nan(),
        }
        place(o, r, f);
        o.end()?;
        if chance(r, 0.0002) {
            o.dup_prev()?;
        }
    }
    Ok(())
}
