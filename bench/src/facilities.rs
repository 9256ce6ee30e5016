//! Industrial and construction facility records (kept in memory: every other SMARTS file references them).

use std::collections::HashSet;
use std::io::Write;

use chrono::NaiveDate;
use rand::RngExt;

use crate::out::Out;
use crate::real::{Donor, Real};
use crate::util::{
    PROJECT_WORDS, RECEIVING_WATERS, Rng, STREETS, TITLES, add_days, chance, county_code, email,
    full_name, junk_year, person, phone, pick, pick_ref, rand_date, range, round_dp, round_sig,
    with_fffd, wpick, ymd,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FacKind {
    Industrial,
    Construction,
}

/// How a row relates to the row before it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dup {
    None,
    /// Byte-identical copy of the previous row.
    Exact,
    /// Same (APP_ID, WDID) as another row, different STATUS / dates / contact.
    Key,
}

#[derive(Clone, Debug)]
pub struct Facility {
    pub kind: FacKind,
    pub permit_type: String,
    pub app_id: u64,
    pub wdid: String,
    pub status: String,
    pub noi_date: Option<NaiveDate>,
    pub not_date: Option<NaiveDate>,
    pub region: Option<String>,
    pub county: Option<String>,
    pub operator: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub place_county: Option<String>,
    pub contact_first: Option<String>,
    pub contact_last: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub total_size: Option<f64>,
    pub size_unit: Option<String>,
    pub area: Option<f64>,
    pub area_unit: Option<String>,
    pub pct_imperv: Option<f64>,
    pub sic: [Option<String>; 3],
    pub receiving: Option<String>,
    pub indirectly: Option<String>,
    pub directly: Option<String>,
    pub certifier_by: Option<String>,
    pub certifier_title: Option<String>,
    pub cert_date: Option<NaiveDate>,
    pub tmdl: Option<&'static str>,
    pub dup: Dup,
    /// The WDID is junk (`NA`, `2 XXIN601201`, …).
    pub junk_wdid: bool,
    /// Reports sampling results (has a monitoring window).
    pub monitors: bool,
    /// Person who certifies monitoring reports.
    pub certifier_name: String,
}

impl Facility {
    /// The (APP_ID, WDID) row can be matched by the portal's PLACE join (`filter(!is.na(APP_ID) & !is.na(WDID))`).
    pub fn joinable(&self) -> bool {
        self.wdid != "NA"
    }

    /// Monitoring window clipped to `[lo, hi]`.
    pub fn window(&self, lo: NaiveDate, hi: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        let start = self.noi_date.filter(|d| *d > lo).unwrap_or(lo);
        let end = self.not_date.filter(|d| *d < hi).unwrap_or(hi);
        (end > start).then_some((start, end))
    }
}

pub const DATA_END: NaiveDate = match NaiveDate::from_ymd_opt(2025, 11, 15) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

fn wdid_prefix(region: Option<&str>) -> String {
    match region {
        Some(r) if r.len() == 1 => format!("{r} "),
        Some(r) if r.len() == 2 => r.to_string(),
        _ => "4 ".to_string(),
    }
}

pub struct WdidAlloc {
    used: HashSet<String>,
}

impl WdidAlloc {
    pub fn new() -> Self {
        WdidAlloc {
            used: HashSet::new(),
        }
    }

    /// A fresh, well-formed WDID: region, county code, type code, 6-digit serial (rarely 5).
    pub fn make(
        &mut self,
        r: &mut Rng,
        region: Option<&str>,
        county: Option<&str>,
        ty: &str,
    ) -> String {
        let prefix = wdid_prefix(region);
        let cc = match county_code(county) {
            Some(c) if !chance(r, 0.0007) => format!("{c:02}"),
            _ => "XX".to_string(),
        };
        loop {
            let serial = if chance(r, 0.002) {
                format!("{:05}", r.random_range(10_000..100_000u32))
            } else if ty == "C" {
                format!("{:06}", r.random_range(300_000..500_000u32))
            } else {
                format!("{:06}", r.random_range(1_000..700_000u32))
            };
            let w = format!("{prefix}{cc}{ty}{serial}");
            if self.used.insert(w.clone()) {
                return w;
            }
        }
    }

    pub fn junk(&mut self, r: &mut Rng) -> String {
        match r.random_range(0..3u32) {
            0 => "NA".to_string(),
            1 => format!(
                "{} XXIN{:06}",
                r.random_range(1..10u32),
                r.random_range(600_000..602_000u32)
            ),
            _ => format!(
                "5A32{:04}N{:02}",
                r.random_range(1000..9999u32),
                r.random_range(1..20u32)
            ),
        }
    }
}

fn industrial_type(r: &mut Rng, status: &str) -> &'static str {
    match status {
        "NEC Required" => "NEC",
        "NONA Submitted" | "NONA Required" => "NNA",
        _ => wpick(
            r,
            &[
                ("I", 7300),
                ("NEC", 1200),
                ("IN", 1200),
                ("NNA", 60),
                ("MR", 20),
                ("SN", 5),
            ],
        ),
    }
}

fn donor<'a>(r: &mut Rng, real: &'a Real) -> &'a Donor {
    pick_ref(r, &real.donors)
}

fn located<'a>(r: &mut Rng, real: &'a Real) -> &'a Donor {
    &real.donors[pick(r, &real.located)]
}

fn maybe_fffd(r: &mut Rng, s: Option<String>, p: f64) -> Option<String> {
    match s {
        Some(s) if chance(r, p) => Some(with_fffd(r, &s)),
        s => s,
    }
}

fn noi_and_not(
    r: &mut Rng,
    status: &str,
    earliest: NaiveDate,
) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let end = ymd(2025, 11, 10);
    match status {
        "Active" | "NEC Required" | "NOI Filed" => {
            let noi = if chance(r, 0.3) {
                ymd(1992, 3, 20 + r.random_range(0..12u32))
            } else {
                rand_date(r, earliest, end)
            };
            (Some(noi), None)
        }
        "Terminated" | "Expired" => {
            let noi = if chance(r, 0.25) {
                ymd(1992, 3, 20 + r.random_range(0..12u32))
            } else {
                rand_date(r, earliest, ymd(2024, 6, 1))
            };
            let not = rand_date(r, add_days(noi, 90), end);
            (Some(noi), Some(not))
        }
        _ => {
            if chance(r, 0.25) {
                (Some(rand_date(r, earliest, end)), None)
            } else {
                (None, None)
            }
        }
    }
}

fn certifier(r: &mut Rng, f: &mut Facility, lo: NaiveDate) {
    if chance(r, 0.5) {
        let name = match (&f.contact_first, &f.contact_last) {
            (Some(a), Some(b)) if chance(r, 0.7) => format!("{a} {b}"),
            _ => full_name(r),
        };
        f.certifier_by = Some(name);
        f.certifier_title = if chance(r, 0.93) {
            Some(wpick(r, TITLES).to_string())
        } else {
            None
        };
        f.cert_date = if chance(r, 0.97) {
            Some(rand_date(r, lo, ymd(2025, 11, 10)))
        } else {
            None
        };
    }
}

/// Generates exactly `n` industrial facility rows.
pub fn gen_industrial(r: &mut Rng, real: &Real, n: usize, wd: &mut WdidAlloc) -> Vec<Facility> {
    let mut out: Vec<Facility> = Vec::with_capacity(n);
    let mut app_id: u64 = 150_000;
    while out.len() < n {
        app_id += range(r, 1, 22);
        let loc = located(r, real);
        let who = donor(r, real);
        let status = donor(r, real).status.clone();
        let region = loc.region.clone();
        let county = loc.county.clone();
        let permit_type = if region.as_deref() == Some("8") && chance(r, 0.015) {
            "Region 8 - Scrap Metal Permit".to_string()
        } else {
            who.permit_type.clone()
        };
        let ty = industrial_type(r, &status);
        let junk = chance(r, 0.0005);
        let wdid = if junk {
            wd.junk(r)
        } else {
            wd.make(r, region.as_deref(), county.as_deref(), ty)
        };
        let (noi, not) = noi_and_not(r, &status, ymd(1992, 3, 1));
        let noi = match noi {
            Some(d) if chance(r, 0.0002) => Some(junk_year(r, d)),
            d => d,
        };
        let (first, last) = person(r);
        let has_contact = chance(r, 0.94);
        let org = who
            .operator
            .clone()
            .or_else(|| who.name.clone())
            .unwrap_or_else(|| "company".to_string());
        let mut f = Facility {
            kind: FacKind::Industrial,
            permit_type,
            app_id,
            wdid,
            status: status.clone(),
            noi_date: noi,
            not_date: not,
            region,
            county: county.clone(),
            operator: maybe_fffd(r, who.operator.clone(), 0.0008),
            name: maybe_fffd(r, who.name.clone(), 0.001),
            address: who.address.clone(),
            address2: who.address2.clone(),
            city: loc.city.clone(),
            state: if chance(r, 0.9996) {
                Some("CA".to_string())
            } else {
                None
            },
            zip: loc.zip.clone(),
            lat: loc.lat,
            lon: loc.lon,
            place_county: county,
            contact_first: has_contact.then(|| first.clone()),
            contact_last: has_contact.then(|| last.clone()),
            title: if chance(r, 0.41) {
                Some(wpick(r, TITLES).to_string())
            } else {
                None
            },
            phone: if chance(r, 0.92) {
                Some(phone(r))
            } else {
                None
            },
            email: if chance(r, 0.53) {
                Some(email(r, &first, &last, &org))
            } else {
                None
            },
            total_size: who.total_size,
            size_unit: who.size_unit.clone(),
            area: who.area,
            area_unit: who.area_unit.clone(),
            pct_imperv: who.pct_imperv,
            sic: who.sic.clone(),
            receiving: loc.receiving.clone(),
            indirectly: who.indirectly.clone(),
            directly: who.directly.clone(),
            certifier_by: None,
            certifier_title: None,
            cert_date: None,
            tmdl: Some(wpick(r, &[("NA", 55), ("N", 35), ("Y", 10)])).filter(|s| *s != "NA"),
            dup: Dup::None,
            junk_wdid: junk,
            monitors: false,
            certifier_name: format!("{first} {last}"),
        };
        certifier(r, &mut f, noi.unwrap_or(ymd(2004, 1, 1)));
        f.monitors = !junk
            && matches!(ty, "I" | "IN")
            && matches!(f.status.as_str(), "Active" | "Terminated")
            && f.window(ymd(2015, 7, 1), DATA_END).is_some();
        let conv = chance(r, 0.01) && f.status == "Active" && ty == "I" && !junk;
        out.push(f);
        let orig = out.len() - 1;
        let nec = if conv {
            // an I -> NEC conversion keeps the APP_ID and gets a new WDID
            let mut d = out[orig].clone();
            let noi = out[orig].noi_date.unwrap_or(ymd(2010, 1, 1));
            let switch = rand_date(r, add_days(noi, 200), ymd(2025, 10, 1));
            out[orig].status = "Terminated".to_string();
            out[orig].not_date = Some(switch);
            out[orig].monitors = out[orig].window(ymd(2015, 7, 1), DATA_END).is_some();
            d.wdid = wd.make(r, d.region.as_deref(), d.county.as_deref(), "NEC");
            d.noi_date = Some(add_days(switch, 1));
            d.monitors = false;
            Some(d)
        } else {
            None
        };
        if out.len() < n && chance(r, 0.0003) {
            let mut d = out[orig].clone();
            d.dup = Dup::Exact;
            out.push(d);
        }
        if out.len() < n && chance(r, 0.0002) {
            let mut d = out[orig].clone();
            d.dup = Dup::Key;
            d.status = if d.status == "Active" {
                "Terminated".to_string()
            } else {
                "Active".to_string()
            };
            let (noi, not) = noi_and_not(r, &d.status, ymd(1992, 3, 1));
            d.noi_date = noi;
            d.not_date = not;
            d.phone = Some(phone(r));
            d.monitors = false;
            out.push(d);
        }
        if let Some(d) = nec
            && out.len() < n
        {
            out.push(d);
        }
    }
    out.truncate(n);
    out
}

const CON_STATUS: &[(&str, u32)] = &[
    ("Terminated", 760),
    ("Active", 190),
    ("Expired", 20),
    ("Submitted", 15),
    ("Not Active", 15),
];

fn site_name(r: &mut Rng, city: &str, street: &str, caltrans: bool) -> String {
    if caltrans {
        let route = pick(
            r,
            &[
                1u32, 5, 10, 15, 46, 58, 80, 99, 101, 108, 152, 170, 210, 405, 580, 680, 880,
            ],
        );
        return format!(
            "{} Route {route} {}",
            pick(r, &["SR", "I-", "US"]),
            pick(
                r,
                &[
                    "Rehabilitation",
                    "Widening",
                    "Pavement Rehab",
                    "Bridge Replacement",
                    "Drainage Improvements"
                ]
            )
        );
    }
    match r.random_range(0..6u32) {
        0 => format!("Tract {}", r.random_range(10_000..40_000u32)),
        1 => format!(
            "{city} {} Phase {}",
            pick(r, PROJECT_WORDS),
            r.random_range(1..5u32)
        ),
        2 => format!(
            "{} {}",
            street.split(' ').next().unwrap_or("Oak"),
            pick(r, PROJECT_WORDS)
        ),
        3 => format!("{} Residence", pick(r, crate::util::LAST_NAMES)),
        4 => format!(
            "{} {}",
            pick(
                r,
                &[
                    "The Villages at",
                    "Sierra Vista",
                    "Vista del Mar",
                    "Harvest",
                    "Parkside",
                    "Riverwalk",
                    "Canyon Oaks",
                    "Meadowbrook"
                ]
            ),
            city
        ),
        _ => format!("{city} {}", pick(r, PROJECT_WORDS)),
    }
}

/// Generates exactly `n` construction site rows.
pub fn gen_construction(r: &mut Rng, real: &Real, n: usize, wd: &mut WdidAlloc) -> Vec<Facility> {
    let mut out: Vec<Facility> = Vec::with_capacity(n);
    let mut app_id: u64 = 520_000;
    while out.len() < n {
        app_id += range(r, 1, 6);
        let loc = located(r, real);
        let owner_src = donor(r, real);
        let caltrans = chance(r, 0.03);
        let status = wpick(r, CON_STATUS).to_string();
        let region = loc.region.clone();
        let county = loc.county.clone();
        let junk = chance(r, 0.0005);
        let wdid = if junk {
            wd.junk(r)
        } else {
            wd.make(r, region.as_deref(), county.as_deref(), "C")
        };
        let noi = rand_date(r, ymd(2009, 9, 1), ymd(2025, 10, 31));
        let noi_out = if matches!(status.as_str(), "Submitted" | "Not Active") && chance(r, 0.7) {
            None
        } else if chance(r, 0.0002) {
            Some(junk_year(r, noi))
        } else {
            Some(noi)
        };
        let not = if matches!(status.as_str(), "Terminated" | "Expired") {
            Some(rand_date(r, add_days(noi, 60), add_days(noi, 365 * 4)).min(ymd(2025, 11, 10)))
        } else {
            None
        };
        let city = loc.city.clone().unwrap_or_else(|| "Sacramento".to_string());
        let street = pick(r, STREETS).to_string();
        let name = site_name(r, &city, &street, caltrans);
        let owner = if caltrans {
            Some("Caltrans".to_string())
        } else if chance(r, 0.15) {
            Some(format!("City of {city}"))
        } else if chance(r, 0.3) {
            Some(format!("{} Homes LLC", pick(r, crate::util::LAST_NAMES)))
        } else {
            owner_src.operator.clone()
        };
        let (first, last) = person(r);
        let (lat, lon) = match (loc.lat, loc.lon) {
            (Some(a), Some(b)) if a != 0.0 && chance(r, 0.96) => {
                let la = round_dp(a + (r.random::<f64>() - 0.5) * 0.08, 6);
                let mut lo = round_dp(b + (r.random::<f64>() - 0.5) * 0.08, 6);
                if chance(r, 0.002) {
                    lo = -lo; // sign error
                }
                (Some(la), Some(lo))
            }
            (Some(_), Some(_)) if chance(r, 0.03) => (Some(0.0), Some(0.0)),
            _ => (None, None),
        };
        let acres = round_sig(crate::util::lognormal(r, 4.0, 1.3).max(0.05), 3);
        let (size, unit) = if chance(r, 0.85) {
            (Some(acres), Some("Acres".to_string()))
        } else {
            (
                Some(round_dp(acres * 43_560.0, 0)),
                Some(if chance(r, 0.5) { "SqFt" } else { "Sqft" }.to_string()),
            )
        };
        let org = owner.clone().unwrap_or_else(|| "builder".to_string());
        let mut f = Facility {
            kind: FacKind::Construction,
            permit_type: if caltrans {
                "Caltrans Construction"
            } else {
                "Construction"
            }
            .to_string(),
            app_id,
            wdid,
            status,
            noi_date: noi_out,
            not_date: not,
            region,
            county: county.clone(),
            operator: owner,
            name: maybe_fffd(r, Some(name), 0.001),
            address: Some(if chance(r, 0.1) {
                format!("{street} and {}", pick(r, STREETS))
            } else {
                format!("{} {street}", r.random_range(1..30_000u32))
            }),
            address2: if chance(r, 0.05) {
                Some(format!(
                    "APN {}-{:03}-{:03}",
                    r.random_range(100..999u32),
                    r.random_range(0..999u32),
                    r.random_range(0..99u32)
                ))
            } else {
                None
            },
            city: Some(city),
            state: Some("CA".to_string()),
            zip: loc.zip.clone(),
            lat,
            lon,
            place_county: county,
            contact_first: Some(first.clone()),
            contact_last: Some(last.clone()),
            title: if chance(r, 0.7) {
                Some(
                    pick(
                        r,
                        &[
                            "Project Manager",
                            "Superintendent",
                            "Construction Manager",
                            "Owner",
                            "Site Supervisor",
                            "QSP",
                        ],
                    )
                    .to_string(),
                )
            } else {
                None
            },
            phone: if chance(r, 0.97) {
                Some(phone(r))
            } else {
                None
            },
            email: if chance(r, 0.9) {
                Some(email(r, &first, &last, &org))
            } else {
                None
            },
            total_size: size,
            size_unit: unit,
            area: Some(round_sig(acres * (0.3 + 0.7 * r.random::<f64>()), 3)),
            area_unit: Some("Acres".to_string()),
            pct_imperv: None,
            sic: [None, None, None],
            receiving: if chance(r, 0.8) {
                Some(pick(r, RECEIVING_WATERS).to_string()).or(loc.receiving.clone())
            } else {
                loc.receiving.clone()
            },
            indirectly: Some(if chance(r, 0.8) { "Y" } else { "N" }.to_string()),
            directly: Some(if chance(r, 0.15) { "Y" } else { "N" }.to_string()),
            certifier_by: None,
            certifier_title: None,
            cert_date: None,
            tmdl: None,
            dup: Dup::None,
            junk_wdid: junk,
            monitors: false,
            certifier_name: format!("{first} {last}"),
        };
        f.certifier_by = Some(if chance(r, 0.6) {
            format!("{first} {last}")
        } else {
            full_name(r)
        });
        f.certifier_title = if chance(r, 0.9) {
            Some(
                pick(
                    r,
                    &[
                        "Owner",
                        "President",
                        "Vice President",
                        "Project Manager",
                        "Director of Construction",
                        "Authorized Signatory",
                        "Manager",
                    ],
                )
                .to_string(),
            )
        } else {
            None
        };
        f.cert_date = if chance(r, 0.97) {
            Some(add_days(noi, -r.random_range(0..20i64)))
        } else {
            None
        };
        f.monitors = !junk
            && matches!(f.status.as_str(), "Active" | "Terminated")
            && chance(r, 0.5)
            && f.window(ymd(2012, 7, 1), DATA_END).is_some();
        out.push(f);
        if out.len() < n && chance(r, 0.0003) {
            let mut d = out[out.len() - 1].clone();
            d.dup = Dup::Exact;
            out.push(d);
        }
        if out.len() < n && chance(r, 0.0002) {
            let mut d = out[out.len() - 1].clone();
            d.dup = Dup::Key;
            d.status = if d.status == "Active" {
                "Terminated".to_string()
            } else {
                "Active".to_string()
            };
            d.not_date = (d.status == "Terminated").then(|| ymd(2025, 3, 1));
            d.monitors = false;
            out.push(d);
        }
    }
    out.truncate(n);
    out
}

impl Facility {
    /// PERMIT_TYPE through OPERATOR_NAME, the leading columns of both facility files.
    fn write_head<W: Write>(&self, o: &mut Out<W>) {
        o.t(&self.permit_type);
        o.id(self.app_id);
        o.t(&self.wdid);
        o.t(&self.status);
        o.d(self.noi_date);
        o.d(self.not_date);
        o.ot(self.region.as_deref());
        o.ot(self.county.as_deref());
        o.ot(self.operator.as_deref());
    }

    /// The site block: FACILITY/SITE name, address, coordinates, contact and total size.
    fn write_site<W: Write>(&self, o: &mut Out<W>) {
        o.ot(self.name.as_deref());
        o.ot(self.address.as_deref());
        o.ot(self.address2.as_deref());
        o.ot(self.city.as_deref());
        o.ot(self.state.as_deref());
        o.ot(self.zip.as_deref());
        o.on(self.lat);
        o.on(self.lon);
        o.ot(self.place_county.as_deref());
        o.ot(self.contact_first.as_deref());
        o.ot(self.contact_last.as_deref());
        o.ot(self.title.as_deref());
        o.ot(self.phone.as_deref());
        o.ot(self.email.as_deref());
        o.on(self.total_size);
        o.ot(self.size_unit.as_deref());
    }

    /// RECEIVING_WATER_NAME, INDIRECTLY, DIRECTLY.
    fn write_receiving<W: Write>(&self, o: &mut Out<W>) {
        o.ot(self.receiving.as_deref());
        o.ot(self.indirectly.as_deref());
        o.ot(self.directly.as_deref());
    }

    /// CERTIFIER_BY, CERTIFIER_TITLE, CERTIFICATION_DATE.
    fn write_cert<W: Write>(&self, o: &mut Out<W>) {
        o.ot(self.certifier_by.as_deref());
        o.ot(self.certifier_title.as_deref());
        o.d(self.cert_date);
    }
}

pub fn write_industrial<W: Write>(o: &mut Out<W>, facs: &[Facility]) -> std::io::Result<()> {
    for f in facs {
        if f.dup == Dup::Exact {
            o.dup_prev()?;
            continue;
        }
        f.write_head(o);
        f.write_site(o);
        o.on(f.area);
        o.ot(f.area_unit.as_deref());
        o.on(f.pct_imperv);
        o.ot(f.sic[0].as_deref());
        o.ot(f.sic[1].as_deref());
        o.ot(f.sic[2].as_deref());
        f.write_receiving(o);
        f.write_cert(o);
        o.ot(f.tmdl);
        o.end()?;
    }
    Ok(())
}

fn yn(r: &mut Rng, p_yes: f64, p_na: f64) -> Option<&'static str> {
    if chance(r, p_na) {
        None
    } else if chance(r, p_yes) {
        Some("Y")
    } else {
        Some("N")
    }
}

pub fn write_construction<W: Write>(
    o: &mut Out<W>,
    r: &mut Rng,
    real: &Real,
    facs: &[Facility],
) -> std::io::Result<()> {
    for f in facs {
        if f.dup == Dup::Exact {
            o.dup_prev()?;
            continue;
        }
        f.write_head(o);
        // developer block
        let dev_same = chance(r, 0.6);
        let dev_loc = &real.donors[pick(r, &real.located)];
        let developer = if dev_same {
            f.operator.clone()
        } else {
            dev_loc.operator.clone()
        };
        o.ot(developer.as_deref());
        o.t(&format!(
            "{} {}",
            r.random_range(1..20_000u32),
            pick(r, STREETS)
        ));
        o.ot(chance(r, 0.12)
            .then(|| format!("Suite {}", r.random_range(100..500u32)))
            .as_deref());
        o.ot(dev_loc.city.as_deref());
        o.t(if chance(r, 0.97) {
            "CA"
        } else {
            pick(r, &["NV", "AZ", "TX", "WA", "OR"])
        });
        o.ot(dev_loc.zip.as_deref());
        let (df, dl) = person(r);
        o.t(&df);
        o.t(&dl);
        o.ot(chance(r, 0.7).then(|| {
            pick(
                r,
                &[
                    "President",
                    "Project Manager",
                    "Owner",
                    "Vice President",
                    "Manager",
                ],
            )
        }));
        o.t(&phone(r));
        o.ot(chance(r, 0.85)
            .then(|| email(r, &df, &dl, developer.as_deref().unwrap_or("dev")))
            .as_deref());
        // site block
        f.write_site(o);
        let disturbed = f.area.unwrap_or(1.0);
        o.n(disturbed);
        o.t("Acres");
        let acres = match f.size_unit.as_deref() {
            Some("Acres") => f.total_size.unwrap_or(1.0),
            _ => f.total_size.unwrap_or(43_560.0) / 43_560.0,
        };
        o.n(round_dp(
            (100.0 * disturbed / acres.max(0.01)).min(100.0),
            2,
        ));
        let before = round_dp(r.random::<f64>() * 40.0, 0);
        o.n(before);
        o.n(round_dp(before + r.random::<f64>() * (95.0 - before), 0));
        o.ot(chance(r, 0.3)
            .then(|| format!("Tract {}", r.random_range(10_000..40_000u32)))
            .as_deref());
        if f.permit_type == "Caltrans Construction" {
            o.t(&format!(
                "PM {:.1} to {:.1}",
                r.random::<f64>() * 20.0,
                20.0 + r.random::<f64>() * 20.0
            ))
        } else {
            o.na()
        }
        let larger = chance(r, 0.35);
        o.t(if larger { "Y" } else { "N" });
        if larger {
            o.t(&format!(
                "{} {}",
                f.city.as_deref().unwrap_or("Valley"),
                pick(r, PROJECT_WORDS)
            ))
        } else {
            o.na()
        }
        let noi = f.noi_date.unwrap_or(ymd(2015, 1, 1));
        let start = add_days(noi, r.random_range(-20..45i64));
        let grading = add_days(start, r.random_range(30..400i64));
        let complete = add_days(grading, r.random_range(60..900i64));
        o.d(Some(start));
        o.d(if chance(r, 0.9) { Some(grading) } else { None });
        o.d(Some(complete));
        let linear = f.permit_type == "Caltrans Construction" || chance(r, 0.08);
        o.t(if linear { "Linear" } else { "Traditional" });
        for p in [0.55, 0.25, 0.08, 0.05, 0.04, 0.03, 0.05] {
            o.ot(yn(r, if linear { p / 3.0 } else { p }, 0.05));
        }
        o.ot(chance(r, 0.05).then(|| {
            pick(
                r,
                &[
                    "Grading only",
                    "Demolition",
                    "Park improvements",
                    "Solar array",
                    "Parking lot",
                    "School",
                ],
            )
        }));
        for _ in 0..7 {
            o.ot(yn(r, if linear { 0.4 } else { 0.02 }, 0.1));
        }
        let rf = round_dp(crate::util::lognormal(r, 30.0, 0.8), 2);
        let kf = round_dp(0.1 + r.random::<f64>() * 0.4, 2);
        let ls = round_dp(crate::util::lognormal(r, 1.0, 0.9), 2);
        o.n(rf);
        o.n(kf);
        o.n(ls);
        o.n(round_dp(rf * kf * ls, 2));
        o.t(pick(r, &["Low", "Medium", "High"]));
        o.t(pick(r, &["Low", "High"]));
        o.t(wpick(
            r,
            &[
                ("Risk Level 1", 45),
                ("Risk Level 2", 45),
                ("Risk Level 3", 5),
                ("LUP Type 1", 3),
                ("LUP Type 2", 2),
            ],
        ));
        f.write_receiving(o);
        let (qf, ql) = person(r);
        o.t(&qf);
        o.t(&ql);
        o.t(&format!("{}", r.random_range(20_000..30_000u32)));
        f.write_cert(o);
        o.end()?;
    }
    Ok(())
}
