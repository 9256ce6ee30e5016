//! Distributions learned from the real samples in `shared/data/real/` (read at run time; built-in fallbacks
//! when the directory is missing).

use std::path::Path;

use crate::util::{CITIES_FALLBACK, RECEIVING_WATERS, sanitize};

/// One row of the real 2019 industrial facility file, used as a donor of realistic values.
#[derive(Clone, Debug, Default)]
pub struct Donor {
    pub permit_type: String,
    pub status: String,
    pub region: Option<String>,
    pub county: Option<String>,
    pub operator: Option<String>,
    pub name: Option<String>,
    pub address: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub total_size: Option<f64>,
    pub size_unit: Option<String>,
    pub area: Option<f64>,
    pub area_unit: Option<String>,
    pub pct_imperv: Option<f64>,
    pub sic: [Option<String>; 3],
    pub receiving: Option<String>,
    pub indirectly: Option<String>,
    pub directly: Option<String>,
}

/// A monitoring parameter and the unit spellings seen for it (most frequent first).
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub units: Vec<String>,
}

pub struct Real {
    pub donors: Vec<Donor>,
    /// Donors with a region and a county (location donors).
    pub located: Vec<usize>,
    pub params: Vec<Param>,
    /// eSMR parameter names (from esmr-parameter-mapping.json).
    pub esmr_params: Vec<String>,
    pub sources: Vec<String>,
}

fn opt(s: Option<&str>) -> Option<String> {
    let s = s?;
    let t = sanitize(s);
    if t.is_empty() || t == "NA" {
        None
    } else {
        Some(t)
    }
}

fn optf(s: Option<&str>) -> Option<f64> {
    let s = s?.trim();
    if s.is_empty() || s == "NA" {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `loaded` if it holds anything, else `fallback()`; notes in `sources` which one was used (`found` gets the
/// number of loaded items).
fn loaded_or<T>(
    sources: &mut Vec<String>,
    loaded: Option<Vec<T>>,
    found: impl FnOnce(usize) -> String,
    missing: &str,
    fallback: impl FnOnce() -> Vec<T>,
) -> Vec<T> {
    match loaded {
        Some(v) if !v.is_empty() => {
            sources.push(found(v.len()));
            v
        }
        _ => {
            sources.push(missing.to_string());
            fallback()
        }
    }
}

/// A CSV reader for `path` that tolerates rows of varying length.
fn csv_reader(path: &Path) -> Option<csv::Reader<std::fs::File>> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .ok()
}

impl Real {
    pub fn load(dir: &Path) -> Real {
        let mut sources = Vec::new();
        let donors =
            loaded_or(
                &mut sources,
                load_donors(&dir.join(
                    "NAS-Stormwater-Tool/Industrial_Application_Specific_Data_2019-03-12.csv",
                )),
                |n| format!("facilities: {n} rows of the real 2019 industrial facility file"),
                "facilities: built-in fallback (real 2019 facility file not found)",
                fallback_donors,
            );
        let params = loaded_or(
            &mut sources,
            load_params(&dir.join("NAS-Stormwater-Tool/Parameters_Units_List.csv")),
            |n| format!("parameters: {n} from Parameters_Units_List.csv"),
            "parameters: built-in fallback",
            fallback_params,
        );
        let esmr_params = loaded_or(
            &mut sources,
            load_esmr_params(&dir.join("../stormwater-watch/esmr-parameter-mapping.json")),
            |n| format!("esmr parameters: {n} from esmr-parameter-mapping.json"),
            "esmr parameters: built-in fallback",
            Vec::new,
        );
        let located = donors
            .iter()
            .enumerate()
            .filter(|(_, d)| d.region.is_some() && d.county.is_some() && d.city.is_some())
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        let located = if located.is_empty() {
            (0..donors.len()).collect()
        } else {
            located
        };
        Real {
            donors,
            located,
            params,
            esmr_params,
            sources,
        }
    }
}

fn load_donors(path: &Path) -> Option<Vec<Donor>> {
    let mut rd = csv_reader(path)?;
    let headers = rd.headers().ok()?.clone();
    let idx = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{FEFF}') == name)
    };
    let cols = [
        "PERMIT_TYPE",
        "STATUS",
        "REGION_BOARD",
        "COUNTY",
        "OPERATOR_NAME",
        "FACILITY_NAME",
        "FACILITY_ADDRESS",
        "FACILITY_ADDRESS_2",
        "FACILITY_CITY",
        "FACILITY_ZIP",
        "FACILITY_LATITUDE",
        "FACILITY_LONGITUDE",
        "FACILITY_TOTAL_SIZE",
        "FACILITY_TOTAL_SIZE_UNIT",
        "FACILITY_AREA_ACTIVITY",
        "FACILITY_AREA_ACTIVITY_UNIT",
        "PERCENT_OF_SITE_IMPERVIOUSNESS",
        "PRIMARY_SIC",
        "SECONDARY_SIC",
        "TERTIARY_SIC",
        "RECEIVING_WATER_NAME",
        "INDIRECTLY",
        "DIRECTLY",
    ];
    let ix: Vec<Option<usize>> = cols.iter().map(|c| idx(c)).collect();
    if ix[0].is_none() || ix[5].is_none() {
        return None;
    }
    let mut out = Vec::with_capacity(40_000);
    for rec in rd.records() {
        let Ok(rec) = rec else { continue };
        let g = |k: usize| ix[k].and_then(|i| rec.get(i));
        out.push(Donor {
            permit_type: opt(g(0)).unwrap_or_else(|| "Industrial".to_string()),
            status: opt(g(1)).unwrap_or_else(|| "Active".to_string()),
            region: opt(g(2)),
            county: opt(g(3)),
            operator: opt(g(4)),
            name: opt(g(5)),
            address: opt(g(6)),
            address2: opt(g(7)),
            city: opt(g(8)),
            zip: opt(g(9)),
            lat: optf(g(10)),
            lon: optf(g(11)),
            total_size: optf(g(12)),
            size_unit: opt(g(13)),
            area: optf(g(14)),
            area_unit: opt(g(15)),
            pct_imperv: optf(g(16)),
            sic: [opt(g(17)), opt(g(18)), opt(g(19))],
            receiving: opt(g(20)),
            indirectly: opt(g(21)),
            directly: opt(g(22)),
        });
    }
    Some(out)
}

fn load_params(path: &Path) -> Option<Vec<Param>> {
    let mut rd = csv_reader(path)?;
    let mut out = Vec::new();
    for rec in rd.records() {
        let Ok(rec) = rec else { continue };
        let Some(name) = opt(rec.get(0)) else {
            continue;
        };
        let units: Vec<String> = (2..6).filter_map(|i| opt(rec.get(i))).collect();
        if !units.is_empty() {
            out.push(Param { name, units });
        }
    }
    Some(out)
}

/// Pulls every `"parameterName": "…"` value out of the mapping JSON (no JSON dependency needed).
fn load_esmr_params(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let key = "\"parameterName\"";
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(p) = rest.find(key) {
        rest = &rest[p + key.len()..];
        let Some(q1) = rest.find('"') else { break };
        let after = &rest[q1 + 1..];
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(n);
                    }
                }
                '"' => {
                    end = i;
                    break;
                }
                c => val.push(c),
            }
        }
        rest = &after[end.min(after.len())..];
        let v = sanitize(&val);
        if !v.is_empty() {
            out.push(v);
        }
    }
    Some(out)
}

fn fallback_donors() -> Vec<Donor> {
    let names = [
        (
            "SA Recycling",
            "SA Recycling LLC",
            "5093-Scrap and Waste Materials",
        ),
        (
            "Hambro Forest Products",
            "Hambro Forest Product Inc",
            "2421-Sawmills and Planing Mills, General",
        ),
        (
            "A 1 Auto Wreckers",
            "Bruce Gates",
            "5015-Motor Vehicle Parts, Used",
        ),
        (
            "Roadway Express",
            "Roadway Express Inc",
            "4213-Trucking, Except Local",
        ),
        (
            "Robertsons Ready Mix Plant 12",
            "Robertsons Ready Mix",
            "3273-Ready-Mixed Concrete",
        ),
        (
            "Crescent City Landfill",
            "Del Norte Solid Waste Management Authority",
            "4953-Refuse Systems",
        ),
        (
            "Valley Winery",
            "Valley Wine Co",
            "2084-Wines, Brandy, and Brandy Spirits",
        ),
        (
            "Pacific Plating",
            "Pacific Plating Inc",
            "3471-Electroplating, Plating, Polishing, Anodizing, and Coloring",
        ),
        (
            "Central Asphalt",
            "Central Asphalt Co",
            "2951-Asphalt Paving Mixtures and Blocks",
        ),
        (
            "US Postal Service Vehicle Maintenance",
            "US Postal Service",
            "4311-United States Postal Service",
        ),
        (
            "Local Trucking Yard",
            "Fast Freight LLC",
            "4212-Local Trucking Without Storage",
        ),
    ];
    let mut out = Vec::new();
    for (i, (city, county, region)) in CITIES_FALLBACK.iter().enumerate() {
        let (name, op, sic) = names[i % names.len()];
        out.push(Donor {
            permit_type: "Industrial".to_string(),
            status: if i % 3 == 0 { "Terminated" } else { "Active" }.to_string(),
            region: Some(region.to_string()),
            county: Some(county.to_string()),
            operator: Some(op.to_string()),
            name: Some(format!("{name} {city}")),
            address: Some(format!("{} Industrial Way", 100 + i * 37)),
            address2: None,
            city: Some(city.to_string()),
            zip: Some(format!("9{:04}", 1000 + i * 311)),
            lat: Some(32.7 + (i as f64) * 0.31),
            lon: Some(-117.1 - (i as f64) * 0.17),
            total_size: Some(1.0 + i as f64),
            size_unit: Some("Acres".to_string()),
            area: None,
            area_unit: None,
            pct_imperv: Some(90.0),
            sic: [Some(sic.to_string()), None, None],
            receiving: Some(RECEIVING_WATERS[i % RECEIVING_WATERS.len()].to_string()),
            indirectly: Some("Y".to_string()),
            directly: Some("N".to_string()),
        });
    }
    out
}

fn fallback_params() -> Vec<Param> {
    let p = |n: &str, u: &[&str]| Param {
        name: n.to_string(),
        units: u.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        p("Chemical Oxygen Demand (COD)", &["mg/L"]),
        p("Nitrate + Nitrite Nitrogen", &["mg/L"]),
        p("Copper, Total", &["mg/L", "ug/L"]),
        p("Nickel, Total", &["mg/L", "ug/L"]),
        p("Arsenic, Total", &["mg/L", "ug/L"]),
        p("Cadmium, Total", &["mg/L", "ug/L"]),
        p("Chromium, Total", &["mg/L", "ug/L"]),
        p("Mercury, Total", &["ug/L", "mg/L"]),
        p("Benzene", &["ug/L"]),
        p("Toluene", &["ug/L"]),
        p("Ammonia, Total (as N)", &["mg/L"]),
        p("Phosphorus, Total (as P)", &["mg/L"]),
        p(
            "Biochemical Oxygen Demand (BOD) (5-day @ 20 Deg. C)",
            &["mg/L"],
        ),
        p("Total Dissolved Solids (TDS)", &["mg/L"]),
        p("Fecal Coliform", &["MPN/100 mL"]),
        p("E.coli", &["MPN/100 mL", "CFU/100 mL"]),
        p("Temperature", &["Degrees C"]),
        p("Turbidity", &["NTU"]),
        p("Settleable Solids", &["ml/L"]),
        p("2,3,7,8-TCDD", &["pg/L"]),
        p("Radiation, Gross Alpha", &["PCi/L"]),
        p("Chronic Toxicity", &["TUc"]),
    ]
}
