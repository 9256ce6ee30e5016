//! Reporting units of stormwater results, parsed once at the boundary.
//!
//! Every IGP Table 2 NAL is in mg/L except pH (pH units), and the aquatic-life criteria in
//! `shared/data/benchmarks/aquatic_and_drinking.csv` are in µg/L (see
//! `shared/data/benchmarks/README.md`, sections 1 and 6). SMARTS / eSMR results arrive in
//! mg/L, µg/L, ng/L and pg/L (the same parameter is often reported in several of them,
//! `shared/data/real/NAS-Stormwater-Tool/Parameters_Units_List.csv`), so mass
//! concentrations are converted to mg/L before any comparison.
//!
//! Rules:
//! * matching is case-insensitive and ignores whitespace; both micro signs (U+00B5 `µ`,
//!   U+03BC `μ`) and `mc` (`mcg/L`) mean micro;
//! * `ppm` is taken as mg/L and `ppb` as µg/L (dilute aqueous samples); `ppt` is ambiguous
//!   (thousand or trillion) and is **not** recognised;
//! * a trailing elemental basis `as N` / `as P` (`mg/L as N`, as in `igp_nals.csv`) is
//!   accepted, because the pollutant keys that carry a basis (ammonia, nitrate, nitrite,
//!   nitrate + nitrite, phosphorus) are themselves defined "as N" / "as P"; any other basis
//!   (`as CaCO3`, `as NO3`) changes the quantity and is rejected;
//! * a unit that is not recognised is `None`: a factor is never guessed.

/// A parsed reporting unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// A mass concentration in water; multiplying a value by `to_mg_per_l` gives mg/L.
    MassConc {
        /// Factor from this unit to mg/L (`ug/L` → `0.001`).
        to_mg_per_l: f64,
    },
    /// pH in standard units (`SU`, `pH units`, `std units`).
    Ph,
    /// A recognised non-concentration unit, by its canonical spelling (`"NTU"`,
    /// `"umhos/cm"`, `"MPN/100 mL"`, …). Never converted to mg/L.
    Other(&'static str),
}

/// Compact form used for matching: lowercase, no whitespace, micro signs as `u`.
fn compact(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c == '\u{b5}' || c == '\u{3bc}' {
                'u'
            } else {
                c
            }
        })
        .collect()
}

/// Parses a reporting unit as written by SMARTS / eSMR / the benchmark tables.
///
/// Returns `None` for anything not recognised (see the module docs); never guesses.
pub fn parse_unit(raw: &str) -> Option<Unit> {
    let c = compact(raw);
    let c = c
        .strip_suffix("asn")
        .or_else(|| c.strip_suffix("asp"))
        .filter(|s| s.ends_with("/l") || *s == "ppm" || *s == "ppb")
        .unwrap_or(&c);
    let mass = |f: f64| Some(Unit::MassConc { to_mg_per_l: f });
    match c {
        "g/l" => mass(1000.0),
        "mg/l" | "ppm" => mass(1.0),
        "ug/l" | "mcg/l" | "ppb" => mass(1e-3),
        "ng/l" => mass(1e-6),
        "pg/l" => mass(1e-9),
        "su" | "s.u." | "phunits" | "phunit" | "stdunits" | "std.units" | "standardunits" => {
            Some(Unit::Ph)
        }
        "umhos/cm" | "umho/cm" => Some(Unit::Other("umhos/cm")),
        "us/cm" => Some(Unit::Other("uS/cm")),
        "ntu" => Some(Unit::Other("NTU")),
        "mpn/100ml" => Some(Unit::Other("MPN/100 mL")),
        "cfu/100ml" => Some(Unit::Other("CFU/100 mL")),
        "degreesc" | "degc" | "°c" => Some(Unit::Other("Degrees C")),
        "%" | "percent" => Some(Unit::Other("%")),
        "tuc" => Some(Unit::Other("TUc")),
        "tua" => Some(Unit::Other("TUa")),
        "pci/l" => Some(Unit::Other("pCi/L")),
        "ml/l" => Some(Unit::Other("mL/L")),
        "mgd" => Some(Unit::Other("MGD")),
        _ => None,
    }
}

/// Converts `value` in `unit` to mg/L.
///
/// `None` when the unit is not a mass concentration (pH, NTU, …) or the value is not
/// finite.
pub fn to_mg_per_l(value: f64, unit: &Unit) -> Option<f64> {
    match unit {
        Unit::MassConc { to_mg_per_l } if value.is_finite() => Some(value * to_mg_per_l),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(raw: &str) -> Option<f64> {
        match parse_unit(raw)? {
            Unit::MassConc { to_mg_per_l } => Some(to_mg_per_l),
            _ => None,
        }
    }

    #[test]
    fn mass_concentrations_convert_to_mg_per_l() {
        for (raw, f) in [
            ("mg/L", 1.0),
            ("MG/L", 1.0),
            (" mg / l ", 1.0),
            ("ppm", 1.0),
            ("ug/L", 1e-3),
            ("UG/L", 1e-3),
            ("\u{b5}g/L", 1e-3),
            ("\u{3bc}g/L", 1e-3),
            ("mcg/L", 1e-3),
            ("ppb", 1e-3),
            ("ng/L", 1e-6),
            ("pg/L", 1e-9),
            ("g/L", 1000.0),
            ("mg/L as N", 1.0),
            ("mg/L as P", 1.0),
        ] {
            assert_eq!(factor(raw), Some(f), "{raw}");
        }
    }

    #[test]
    fn ug_per_l_value_is_divided_by_a_thousand() {
        let ug = parse_unit("ug/L").unwrap();
        let mg = to_mg_per_l(33.2, &ug).unwrap();
        assert!((mg - 0.0332).abs() < 1e-12);
        assert_eq!(to_mg_per_l(5.0, &parse_unit("pg/L").unwrap()), Some(5e-9));
    }

    #[test]
    fn ph_spellings_are_ph() {
        for raw in [
            "SU",
            "su",
            "S.U.",
            "pH units",
            "pH Units",
            "std units",
            "Standard Units",
        ] {
            assert_eq!(parse_unit(raw), Some(Unit::Ph), "{raw}");
        }
        assert_eq!(to_mg_per_l(7.0, &Unit::Ph), None);
    }

    #[test]
    fn other_units_are_recognised_but_never_converted() {
        for (raw, canon) in [
            ("umhos/cm", "umhos/cm"),
            ("NTU", "NTU"),
            ("MPN/100 mL", "MPN/100 mL"),
            ("CFU/100 mL", "CFU/100 mL"),
            ("Degrees C", "Degrees C"),
            ("%", "%"),
            ("TUc", "TUc"),
            ("PCi/L", "pCi/L"),
            ("ml/L", "mL/L"),
            ("MGD", "MGD"),
        ] {
            let u = parse_unit(raw);
            assert_eq!(u, Some(Unit::Other(canon)), "{raw}");
            assert_eq!(to_mg_per_l(1.0, &u.unwrap()), None);
        }
    }

    #[test]
    fn unknown_or_ambiguous_units_are_none() {
        for raw in [
            "",
            "NA",
            "mg/kg",
            "ppt",
            "lbs/day",
            "kg/day",
            "mg/L as CaCO3",
            "mg/L as NO3",
            "SqFt",
            "mg",
            "l/mg",
        ] {
            assert_eq!(parse_unit(raw), None, "{raw}");
        }
    }

    #[test]
    fn non_finite_values_do_not_convert() {
        let mg = Unit::MassConc { to_mg_per_l: 1.0 };
        assert_eq!(to_mg_per_l(f64::NAN, &mg), None);
        assert_eq!(to_mg_per_l(f64::INFINITY, &mg), None);
    }
}
