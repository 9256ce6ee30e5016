//! Result values: typical magnitude per parameter/unit, qualifiers, detection limits, analytical methods.

use rand::RngExt;

use crate::util::{Rng, chance, lognormal, normal, pick, round_sig};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PKind {
    Ph,
    Temp,
    Flow,
    Conc,
}

#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub unit: String,
    pub kind: PKind,
    pub median: f64,
    pub sigma: f64,
    pub nd_rate: f64,
    pub methods: &'static [(&'static str, &'static str)],
}

pub struct Measured {
    pub qualifier: &'static str,
    pub result: f64,
    pub mdl: f64,
    pub rl: f64,
}

const M_PH: &[(&str, &str)] = &[
    (
        "A4500HB",
        "Standard Method 4500-H+ B: pH Value, Electrometric",
    ),
    ("E150.1", "pH, Electrometric"),
    ("pH_Paper", "pH Paper"),
];
const M_TSS: &[(&str, &str)] = &[(
    "A2540D",
    "Standard Method 2540 D: Total Suspended Solids Dried at 103-105 deg. C",
)];
const M_OG: &[(&str, &str)] = &[
    (
        "E1664B",
        "HEM and SGT-HEM by Extraction and Gravimetry, Rev. B",
    ),
    (
        "E1664A",
        "HEM and SGT-HEM by Extraction and Gravimetry, Rev. A",
    ),
];
const M_METAL: &[(&str, &str)] = &[
    (
        "E200.7",
        "Inductively Coupled Plasma-Atomic Emission Spectrometry",
    ),
    ("E200.8", "Inductively Coupled Plasma-Mass Spectrometry"),
];
const M_HG: &[(&str, &str)] = &[
    ("E245.1", "Mercury by Cold Vapor Atomic Absorption"),
    ("E1631E", "Mercury by Oxidation, Purge and Trap, and CVAFS"),
];
const M_COD: &[(&str, &str)] = &[
    ("E410.4", "COD by Semi-automated Colorimetry"),
    (
        "A5220D",
        "Standard Method 5220 D: COD Closed Reflux, Colorimetric",
    ),
];
const M_N: &[(&str, &str)] = &[
    ("E300.0", "Inorganic Anions by Ion Chromatography"),
    (
        "E353.2",
        "Nitrate-Nitrite Nitrogen by Automated Colorimetry",
    ),
];
const M_NH3: &[(&str, &str)] = &[
    ("E350.1", "Ammonia Nitrogen by Semi-automated Colorimetry"),
    (
        "A4500NH3D",
        "Standard Method 4500-NH3 D: Ammonia-Selective Electrode",
    ),
];
const M_EC: &[(&str, &str)] = &[(
    "A2510B",
    "Standard Method 2510 B: Conductivity, Laboratory Method",
)];
const M_TURB: &[(&str, &str)] = &[
    ("E180.1", "Turbidity by Nephelometry"),
    (
        "A2130B",
        "Standard Method (19th) 2130 B: Turbidity by Nephelometric Method",
    ),
];
const M_COLI: &[(&str, &str)] = &[
    (
        "A9221B",
        "Standard Method 9221 B: Total Coliform Fermentation Technique",
    ),
    (
        "A9223B",
        "Standard Method 9223 B: Enzyme Substrate Coliform Test",
    ),
];
const M_BOD: &[(&str, &str)] = &[("A5210B", "Standard Method 5210 B: 5-Day BOD Test")];
const M_VOC: &[(&str, &str)] = &[
    ("E624", "Purgeables by GC/MS"),
    ("E8260B", "Volatile Organic Compounds by GC/MS"),
    ("E625", "Base/Neutrals and Acids by GC/MS"),
];
const M_DIOX: &[(&str, &str)] = &[
    (
        "E1613B",
        "Tetra- through Octa-Chlorinated Dioxins and Furans by Isotope Dilution HRGC/HRMS",
    ),
    ("E1668A", "Chlorinated Biphenyl Congeners by HRGC/HRMS"),
];
const M_TOX: &[(&str, &str)] = &[(
    "E821013",
    "Chronic Toxicity of Effluents/ Receiving Water to Freshwater Organisms (EPA-821-R-02-013)",
)];
const M_CL: &[(&str, &str)] = &[(
    "A4500CLG",
    "Standard Method 4500-Cl G: DPD Colorimetric Method",
)];
const M_TEMP: &[(&str, &str)] = &[(
    "A2550B",
    "Standard Method 2550 B: Temperature, Laboratory and Field Methods",
)];
const M_DO: &[(&str, &str)] = &[(
    "A4500OG",
    "Standard Method 4500-O G: Membrane Electrode Method",
)];
const M_TDS: &[(&str, &str)] = &[(
    "A2540C",
    "Standard Method (19th) 2540 C: Total Diss. Solids at 180 deg.",
)];
const M_DU: &[(&str, &str)] = &[("DU", "Data Unavailable")];
const M_RAD: &[(&str, &str)] = &[("E900.0", "Gross Alpha and Gross Beta Radioactivity")];
const M_CALC: &[(&str, &str)] = &[("CALC", "Calculated Value")];

fn has(name: &str, words: &[&str]) -> bool {
    words.iter().any(|w| name.contains(w))
}

/// Typical magnitude, detect rate and methods for a parameter reported in `unit`.
pub fn profile(name: &str, unit: &str) -> Profile {
    let lname = name.to_ascii_lowercase();
    let mut p = Profile {
        name: name.to_string(),
        unit: unit.to_string(),
        kind: PKind::Conc,
        median: 1.0,
        sigma: 1.3,
        nd_rate: 0.35,
        methods: M_DU,
    };
    if name == "pH" {
        p.kind = PKind::Ph;
        p.nd_rate = 0.0;
        p.methods = M_PH;
        return p;
    }
    if unit == "Degrees C" || unit == "Degrees F" || lname.starts_with("temperature") {
        p.kind = PKind::Temp;
        p.nd_rate = 0.0;
        p.median = if unit == "Degrees F" { 68.0 } else { 20.0 };
        p.methods = M_TEMP;
        return p;
    }
    if lname == "flow" || unit == "MGD" || unit == "MGM" || unit == "gpd" {
        p.kind = PKind::Flow;
        p.nd_rate = 0.0;
        p.median = if unit == "MGM" {
            60.0
        } else if unit == "gpd" {
            20_000.0
        } else {
            2.0
        };
        p.sigma = 1.4;
        p.methods = M_DU;
        return p;
    }
    let metal = has(
        &lname,
        &[
            "zinc",
            "lead",
            "copper",
            "iron",
            "aluminum",
            "nickel",
            "cadmium",
            "chromium",
            "arsenic",
            "magnesium",
            "silver",
            "selenium",
            "antimony",
            "beryllium",
            "thallium",
            "barium",
            "boron",
            "manganese",
            "cobalt",
            "molybdenum",
            "vanadium",
        ],
    );
    let per_mg = match unit {
        "ug/L" => 1000.0,
        "ng/L" => 1_000_000.0,
        "pg/L" => 1_000_000_000.0,
        _ => 1.0,
    };
    match () {
        _ if lname.contains("total suspended solids") => {
            p.median = 35.0;
            p.nd_rate = 0.12;
            p.methods = M_TSS;
        }
        _ if lname.contains("oil and grease") => {
            p.median = 2.0;
            p.sigma = 0.9;
            p.nd_rate = 0.55;
            p.methods = M_OG;
        }
        _ if lname.contains("mercury") => {
            p.median = 0.0001 * per_mg;
            p.nd_rate = 0.6;
            p.methods = M_HG;
        }
        _ if metal => {
            let base = if has(&lname, &["iron", "aluminum", "magnesium"]) {
                1.0
            } else if lname.contains("zinc") {
                0.15
            } else if lname.contains("copper") {
                0.02
            } else {
                0.006
            };
            p.median = base * per_mg;
            p.nd_rate = if base >= 0.1 { 0.12 } else { 0.45 };
            p.methods = M_METAL;
        }
        _ if lname.contains("chemical oxygen demand") => {
            p.median = 45.0;
            p.nd_rate = 0.12;
            p.methods = M_COD;
        }
        _ if lname.contains("biochemical oxygen demand") || lname.contains("cbod") => {
            p.median = 8.0;
            p.nd_rate = 0.2;
            p.methods = M_BOD;
        }
        _ if lname.contains("ammonia") => {
            p.median = 0.4;
            p.nd_rate = 0.35;
            p.methods = M_NH3;
        }
        _ if has(&lname, &["nitrate", "nitrite", "nitrogen"]) => {
            p.median = 0.8 * per_mg;
            p.nd_rate = 0.15;
            p.methods = M_N;
        }
        _ if unit == "umhos/cm" || lname.contains("conductivity") => {
            p.median = 150.0;
            p.sigma = 0.9;
            p.nd_rate = 0.0;
            p.methods = M_EC;
        }
        _ if unit == "NTU" || lname.contains("turbidity") => {
            p.median = 20.0;
            p.sigma = 1.3;
            p.nd_rate = 0.03;
            p.methods = M_TURB;
        }
        _ if unit.contains("/100 mL")
            || lname.contains("coliform")
            || lname.contains("coli")
            || lname.contains("enterococ") =>
        {
            p.median = 300.0;
            p.sigma = 1.9;
            p.nd_rate = 0.2;
            p.methods = M_COLI;
        }
        _ if lname.contains("chlorine") => {
            p.median = 0.05;
            p.nd_rate = 0.5;
            p.methods = M_CL;
        }
        _ if lname.contains("dissolved oxygen") => {
            p.median = 8.0;
            p.sigma = 0.25;
            p.nd_rate = 0.0;
            p.methods = M_DO;
        }
        _ if lname.contains("dissolved solids")
            || lname.contains("hardness")
            || lname.contains("chloride")
            || lname.contains("sulfate")
            || lname.contains("alkalinity") =>
        {
            p.median = 400.0 * per_mg;
            p.sigma = 0.7;
            p.nd_rate = 0.02;
            p.methods = M_TDS;
        }
        _ if unit == "TUc" || lname.contains("toxicity") => {
            p.median = 1.2;
            p.sigma = 0.5;
            p.nd_rate = 0.05;
            p.methods = M_TOX;
        }
        _ if unit == "PCi/L" => {
            p.median = 3.0;
            p.nd_rate = 0.3;
            p.methods = M_RAD;
        }
        _ if unit == "pg/L" => {
            p.median = 15.0;
            p.sigma = 1.6;
            p.nd_rate = 0.6;
            p.methods = M_DIOX;
        }
        _ if unit == "%" || unit == "ratio" || lname.contains("ratio") => {
            p.median = 60.0;
            p.sigma = 0.4;
            p.nd_rate = 0.0;
            p.methods = M_CALC;
        }
        _ if unit == "ml/L" || unit == "mL/L" => {
            p.median = 0.2;
            p.nd_rate = 0.5;
            p.methods = M_TSS;
        }
        _ if unit == "ug/L" || unit == "ng/L" => {
            p.median = 0.8;
            p.sigma = 1.5;
            p.nd_rate = 0.7;
            p.methods = M_VOC;
        }
        _ => {
            p.median = 0.3 * per_mg;
            p.nd_rate = 0.3;
            p.methods = M_METAL;
        }
    }
    p
}

/// One analytical result. `site` shifts the facility's typical level (lognormal factor around 1).
pub fn measure(r: &mut Rng, p: &Profile, site: f64) -> Measured {
    match p.kind {
        PKind::Ph => {
            let v = (7.2 + 0.6 * (site.ln()) + 0.55 * normal(r)).clamp(2.0, 12.5);
            let v = if chance(r, 0.75) {
                crate::util::round_dp(v, 1)
            } else {
                crate::util::round_dp(v, 2)
            };
            Measured {
                qualifier: "=",
                result: v,
                mdl: if chance(r, 0.3) {
                    pick(r, &[0.1, 0.01, 1.0])
                } else {
                    f64::NAN
                },
                rl: if chance(r, 0.12) { 0.1 } else { f64::NAN },
            }
        }
        PKind::Temp => {
            let v = p.median + 3.5 * normal(r) + 2.0 * site.ln();
            Measured {
                qualifier: "=",
                result: crate::util::round_dp(v, 1),
                mdl: f64::NAN,
                rl: f64::NAN,
            }
        }
        PKind::Flow => {
            let v = lognormal(r, p.median * site, 0.25);
            Measured {
                qualifier: "=",
                result: round_sig(v, 4),
                mdl: f64::NAN,
                rl: f64::NAN,
            }
        }
        PKind::Conc => {
            let x = lognormal(r, p.median * site, p.sigma);
            let mdl = round_sig(p.median * 10f64.powf(-1.4 + 0.9 * r.random::<f64>()), 2);
            let rl = round_sig(mdl * (2.0 + 3.0 * r.random::<f64>()), 2);
            if p.nd_rate > 0.0 && (chance(r, p.nd_rate) || x < mdl * 0.5) {
                return Measured {
                    qualifier: "ND",
                    result: f64::NAN,
                    mdl,
                    rl: if chance(r, 0.7) { rl } else { f64::NAN },
                };
            }
            if p.nd_rate > 0.0 && chance(r, 0.05) {
                let v = round_sig(mdl + (rl - mdl) * r.random::<f64>(), 2);
                return Measured {
                    qualifier: "DNQ",
                    result: v,
                    mdl,
                    rl,
                };
            }
            if p.nd_rate > 0.0 && chance(r, 0.025) {
                return Measured {
                    qualifier: "<",
                    result: rl,
                    mdl: if chance(r, 0.5) { mdl } else { f64::NAN },
                    rl,
                };
            }
            if chance(r, 0.002) {
                return Measured {
                    qualifier: ">",
                    result: round_sig(x.max(rl), 2),
                    mdl: f64::NAN,
                    rl: f64::NAN,
                };
            }
            let sig = if chance(r, 0.6) { 2 } else { 3 };
            Measured {
                qualifier: "=",
                result: round_sig(x.max(mdl), sig),
                mdl: if chance(r, 0.85) { mdl } else { f64::NAN },
                rl: if chance(r, 0.6) { rl } else { f64::NAN },
            }
        }
    }
}

pub fn method_code(r: &mut Rng, p: &Profile) -> &'static str {
    pick(r, p.methods).0
}
