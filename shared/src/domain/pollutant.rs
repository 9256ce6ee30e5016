//! Maps a published parameter name (SMARTS, eSMR, benchmark tables) to the pollutant key of a
//! benchmark, plus the analytical fraction the name states.
//!
//! Why: `shared/data/benchmarks/README.md` compares results with IGP Table 2 NALs (all metals
//! **total**, everything mg/L except pH, nitrogen "as N", phosphorus "as P"), with aquatic-life
//! criteria that are mostly **dissolved**, and with drinking-water MCLs (section 7). A result may
//! only be compared with a benchmark when it measures the same quantity, so a wrong match (the
//! `canonicalKey` suggestions in `esmr-parameter-mapping.json` map "(as CaCO3)" to arsenic and
//! "Zinc Impact Ratio" to zinc) is worse than no match. The matcher is therefore strict:
//!
//! 1. **Normalise**: lowercase; `&` → `and`, `+` → `plus`, `@` → `at`; every other
//!    non-alphanumeric character is a separator; whitespace collapses.
//! 2. **Derived quantities never match**: a name with any of the tokens in [`DERIVED`]
//!    (`percent removal`, `impact ratio`, `net value`, `load`, `mass`, `lbs/day`, `kg/day`,
//!    `influent`, `daily maximum`, …) is `None`.
//! 3. **Head match**: leading fraction words (`Total`, `Dissolved`, `Recoverable`, `Filtered`,
//!    `Soluble`) are set aside, then the name must *start* with one of a pollutant's synonyms
//!    as whole tokens (the longest synonym wins, so `Nitrate + Nitrite` beats `Nitrate` and
//!    `Chromium (VI)` beats `Chromium`). An element or word inside another phrase never
//!    matches: `Hardness, Total (as CaCO3)`, `Phenol`, `Diesel Oil`, `Methyl Mercury`,
//!    `Carbonaceous BOD` are `None`.
//! 4. **Whitelisted remainder**: every token after the head must be a fraction word, the
//!    pollutant's own abbreviation or qualifier (`(TSS)`, `(O&G)`, `(HEM)`, `5-day @ 20 Deg. C`,
//!    `Nitrogen`), or the pollutant's basis (`as N`, `as P`, `as CN`). Anything else means a
//!    different quantity and gives `None`; in particular species and alternative bases:
//!    * `Ammonia, Unionized` (free NH3, not total ammonia-N);
//!    * `Arsenic (III)` (one redox species, not total arsenic), `Mercury, Methyl`;
//!    * `Cyanide, (WAD)`, `Cyanide, Free Available`, `Cyanide, Amenable` (the NAL is total
//!      cyanide);
//!    * `Phosphorus, Total Organic` (a fraction of P);
//!    * `Nitrate (as NO3)`, `Nitrite (as NO2)` (a ×4.43 / ×3.28 different basis from the
//!      "as N" benchmarks);
//!    * `Acid-Soluble Aluminum` (head is "acid").
//!
//!    `Phosphate…`/`Orthophosphate…` and `Ammonium…` have other heads and are `None`
//!    (ion-specific quantities, not total P / total ammonia-N).
//! 5. **Fraction**: `Total Recoverable` / `Total (Recoverable)` / `Recoverable` →
//!    [`Fraction::TotalRecoverable`]; `Total` → [`Fraction::Total`]; `Dissolved` / `Filtered` /
//!    `Soluble` → [`Fraction::Dissolved`]; none → [`Fraction::Unspecified`]. A name stating both
//!    dissolved and total is contradictory and gives `None`. For non-metals (TSS, O&G, BOD,
//!    phosphorus…) the fraction is informational: `Total Suspended Solids` is `Total`.

/// The analytical fraction a parameter name states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fraction {
    /// "Total" (unfiltered sample, digestion unspecified).
    Total,
    /// "Total Recoverable", "Total (Recoverable)" or "Recoverable".
    TotalRecoverable,
    /// "Dissolved", "Filtered" or "Soluble" (filtered sample).
    Dissolved,
    /// The name states no fraction.
    Unspecified,
}

/// A parameter name recognised as a benchmarked pollutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollutantMatch {
    /// Stable snake_case pollutant key, one of [`KEYS`].
    pub key: &'static str,
    /// The fraction stated by the name.
    pub fraction: Fraction,
}

/// One pollutant: key, synonyms (normalised token sequences the name must start with),
/// extra tokens allowed after the head, and the bases allowed after `as`.
struct Entry {
    key: &'static str,
    synonyms: &'static [&'static str],
    extras: &'static [&'static str],
    bases: &'static [&'static str],
}

const fn metal(key: &'static str, synonyms: &'static [&'static str]) -> Entry {
    Entry {
        key,
        synonyms,
        extras: &[],
        bases: &[],
    }
}

const N_EXTRAS: &[&str] = &["nitrogen", "n"];

/// Every pollutant with a benchmark in `shared/data/benchmarks/` (IGP Table 2 plus the
/// aquatic-life and drinking-water tables), with its synonyms.
const ENTRIES: &[Entry] = &[
    Entry {
        key: "ph",
        synonyms: &["ph"],
        extras: &[],
        bases: &[],
    },
    Entry {
        key: "tss",
        synonyms: &["suspended solids", "tss"],
        extras: &["tss"],
        bases: &[],
    },
    Entry {
        key: "oil_and_grease",
        synonyms: &["oil and grease", "oil grease", "o and g"],
        extras: &["o", "and", "g", "hem"],
        bases: &[],
    },
    metal("aluminum", &["aluminum", "aluminium"]),
    Entry {
        key: "ammonia",
        synonyms: &["ammonia", "nitrogen ammonia"],
        extras: N_EXTRAS,
        bases: &["n"],
    },
    metal("arsenic", &["arsenic"]),
    Entry {
        key: "bod",
        synonyms: &[
            "biochemical oxygen demand",
            "biological oxygen demand",
            "bod",
            "bod5",
        ],
        extras: &["bod", "bod5", "5", "day", "at", "20", "deg", "degrees", "c"],
        bases: &[],
    },
    metal("cadmium", &["cadmium"]),
    Entry {
        key: "cod",
        synonyms: &["chemical oxygen demand", "cod"],
        extras: &["cod"],
        bases: &[],
    },
    metal("copper", &["copper"]),
    Entry {
        key: "cyanide",
        synonyms: &["cyanide"],
        extras: &["cn"],
        bases: &["cn"],
    },
    metal("iron", &["iron"]),
    metal("lead", &["lead"]),
    metal("magnesium", &["magnesium"]),
    Entry {
        key: "mercury",
        synonyms: &["mercury"],
        extras: &["inorganic"],
        bases: &[],
    },
    metal("nickel", &["nickel"]),
    Entry {
        key: "nitrate_nitrite",
        synonyms: &[
            "nitrate plus nitrite",
            "nitrite plus nitrate",
            "nitrate and nitrite",
            "nitrite and nitrate",
            "nitrate nitrite",
            "nitrite nitrate",
            "nitrogen nitrate plus nitrite",
        ],
        extras: &["nitrogen", "n", "plus", "and", "no3", "no2"],
        bases: &["n"],
    },
    Entry {
        key: "nitrate",
        synonyms: &["nitrate", "nitrogen nitrate"],
        extras: N_EXTRAS,
        bases: &["n"],
    },
    Entry {
        key: "nitrite",
        synonyms: &["nitrite", "nitrogen nitrite"],
        extras: N_EXTRAS,
        bases: &["n"],
    },
    Entry {
        key: "phosphorus",
        synonyms: &["phosphorus"],
        extras: &["p"],
        bases: &["p"],
    },
    metal("selenium", &["selenium"]),
    metal("silver", &["silver"]),
    metal("zinc", &["zinc"]),
    metal(
        "chromium_vi",
        &[
            "chromium vi",
            "chromium 6",
            "chromium hexavalent",
            "hexavalent chromium",
        ],
    ),
    metal(
        "chromium_iii",
        &[
            "chromium iii",
            "chromium 3",
            "chromium trivalent",
            "trivalent chromium",
        ],
    ),
    metal("chromium", &["chromium"]),
];

/// Every pollutant key [`classify`] can return.
pub const KEYS: &[&str] = &[
    "ph",
    "tss",
    "oil_and_grease",
    "aluminum",
    "ammonia",
    "arsenic",
    "bod",
    "cadmium",
    "cod",
    "copper",
    "cyanide",
    "iron",
    "lead",
    "magnesium",
    "mercury",
    "nickel",
    "nitrate_nitrite",
    "nitrate",
    "nitrite",
    "phosphorus",
    "selenium",
    "silver",
    "zinc",
    "chromium_vi",
    "chromium_iii",
    "chromium",
];

/// Tokens that mark a derived quantity (a load, a ratio, a removal efficiency, an influent or
/// a statistic) rather than a measured concentration; a name holding any of them is never
/// classified.
pub const DERIVED: &[&str] = &[
    "percent", "removal", "impact", "ratio", "net", "load", "loading", "loads", "mass", "lbs",
    "lb", "kg", "influent", "daily", "maximum", "max", "minimum", "min", "average", "avg",
    "monthly", "weekly", "median", "mean", "geomean", "effluent", "limit",
];

/// Leading / trailing fraction words.
const TOTAL: &str = "total";
const RECOVERABLE: &str = "recoverable";
const DISSOLVED_WORDS: &[&str] = &["dissolved", "filtered", "soluble"];

fn normalise(raw: &str) -> Vec<String> {
    let mut s = String::with_capacity(raw.len() + 8);
    for c in raw.chars().flat_map(char::to_lowercase) {
        match c {
            '&' => s.push_str(" and "),
            '+' => s.push_str(" plus "),
            '@' => s.push_str(" at "),
            c if c.is_alphanumeric() => s.push(c),
            _ => s.push(' '),
        }
    }
    s.split_whitespace().map(str::to_owned).collect()
}

#[derive(Default)]
struct Marks {
    total: bool,
    recoverable: bool,
    dissolved: bool,
}

impl Marks {
    /// Records `token` if it is a fraction word.
    fn take(&mut self, token: &str) -> bool {
        if token == TOTAL {
            self.total = true;
        } else if token == RECOVERABLE {
            self.recoverable = true;
        } else if DISSOLVED_WORDS.contains(&token) {
            self.dissolved = true;
        } else {
            return false;
        }
        true
    }

    fn fraction(&self) -> Option<Fraction> {
        match (self.dissolved, self.total || self.recoverable) {
            (true, true) => None,
            (true, false) => Some(Fraction::Dissolved),
            (false, _) if self.recoverable => Some(Fraction::TotalRecoverable),
            (false, _) if self.total => Some(Fraction::Total),
            _ => Some(Fraction::Unspecified),
        }
    }
}

/// Classifies a published parameter name (see the module docs for the rules).
///
/// `None` when the name is not a benchmarked pollutant, is a derived quantity, a species or
/// basis other than the benchmark's, or is ambiguous.
pub fn classify(parameter: &str) -> Option<PollutantMatch> {
    let tokens = normalise(parameter);
    if tokens.iter().any(|t| DERIVED.contains(&t.as_str())) {
        return None;
    }
    let mut marks = Marks::default();
    let start = tokens.iter().take_while(|t| marks.take(t)).count();
    let body = &tokens[start..];

    let (entry, len) = ENTRIES
        .iter()
        .flat_map(|e| e.synonyms.iter().map(move |s| (e, *s)))
        .filter_map(|(e, syn)| {
            let n = syn.split(' ').count();
            (body.len() >= n && syn.split(' ').zip(body).all(|(a, b)| a == b)).then_some((e, n))
        })
        .max_by_key(|&(_, n)| n)?;

    let mut rest = body[len..].iter();
    while let Some(t) = rest.next() {
        let t = t.as_str();
        if marks.take(t) || entry.extras.contains(&t) {
            continue;
        }
        if t == "as"
            && rest
                .next()
                .is_some_and(|b| entry.bases.contains(&b.as_str()))
        {
            continue;
        }
        return None;
    }
    Some(PollutantMatch {
        key: entry.key,
        fraction: marks.fraction()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn m(key: &'static str, fraction: Fraction) -> Option<PollutantMatch> {
        Some(PollutantMatch { key, fraction })
    }

    fn check(cases: &[(&str, Option<PollutantMatch>)]) {
        for (name, want) in cases {
            assert_eq!(classify(name), *want, "{name:?}");
        }
    }

    use Fraction::{Dissolved, Total, TotalRecoverable, Unspecified};

    #[test]
    fn metals_match_by_head_with_their_fraction() {
        check(&[
            ("Copper, Total (Recoverable)", m("copper", TotalRecoverable)),
            ("Copper, Total Recoverable", m("copper", TotalRecoverable)),
            ("Copper, Recoverable", m("copper", TotalRecoverable)),
            ("Zinc, Total", m("zinc", Total)),
            ("Lead, Dissolved", m("lead", Dissolved)),
            ("Dissolved Copper", m("copper", Dissolved)),
            ("Total Recoverable Copper", m("copper", TotalRecoverable)),
            ("Copper, Filtered", m("copper", Dissolved)),
            ("Copper", m("copper", Unspecified)),
            ("Aluminum, Total", m("aluminum", Total)),
            ("Iron, Total Recoverable", m("iron", TotalRecoverable)),
            ("Magnesium, Dissolved", m("magnesium", Dissolved)),
            ("Mercury, Total", m("mercury", Total)),
            ("Mercury (inorganic)", m("mercury", Unspecified)),
            ("Cyanide, Total (as CN)", m("cyanide", Total)),
            ("Selenium, Total", m("selenium", Total)),
            ("Silver, Total Recoverable", m("silver", TotalRecoverable)),
        ]);
    }

    #[test]
    fn chromium_species_are_kept_apart() {
        check(&[
            ("Chromium, Hexavalent", m("chromium_vi", Unspecified)),
            ("Chromium (VI)", m("chromium_vi", Unspecified)),
            (
                "Hexavalent Chromium, Dissolved",
                m("chromium_vi", Dissolved),
            ),
            (
                "Chromium (VI) Total Recoverable",
                m("chromium_vi", TotalRecoverable),
            ),
            ("Chromium (III)", m("chromium_iii", Unspecified)),
            ("Chromium, Trivalent", m("chromium_iii", Unspecified)),
            ("Chromium (III) Dissolved", m("chromium_iii", Dissolved)),
            ("Chromium, Total", m("chromium", Total)),
            ("Chromium (Total)", m("chromium", Total)),
            ("Chromium, Dissolved", m("chromium", Dissolved)),
        ]);
    }

    #[test]
    fn conventional_pollutants_match_their_spellings() {
        check(&[
            ("pH", m("ph", Unspecified)),
            ("Total Suspended Solids (TSS)", m("tss", Total)),
            ("Suspended Solids, Total", m("tss", Total)),
            ("TSS", m("tss", Unspecified)),
            ("Oil and Grease", m("oil_and_grease", Unspecified)),
            ("Oil & Grease", m("oil_and_grease", Unspecified)),
            ("O&G", m("oil_and_grease", Unspecified)),
            ("Oil and Grease (HEM)", m("oil_and_grease", Unspecified)),
            ("Oil and Grease (O&G)", m("oil_and_grease", Unspecified)),
            ("Biochemical Oxygen Demand (BOD)", m("bod", Unspecified)),
            (
                "Biochemical Oxygen Demand (BOD) (5-day @ 20 Deg. C)",
                m("bod", Unspecified),
            ),
            ("BOD5", m("bod", Unspecified)),
            ("BOD, 5-day", m("bod", Unspecified)),
            ("Chemical Oxygen Demand", m("cod", Unspecified)),
            ("COD", m("cod", Unspecified)),
            ("Chemical Oxygen Demand (COD)", m("cod", Unspecified)),
            ("Soluble Chemical Oxygen Demand", m("cod", Dissolved)),
        ]);
    }

    #[test]
    fn nutrients_match_on_the_as_n_and_as_p_basis_only() {
        check(&[
            (
                "Nitrate + Nitrite Nitrogen",
                m("nitrate_nitrite", Unspecified),
            ),
            (
                "Nitrate + Nitrite Nitrogen (N+N)",
                m("nitrate_nitrite", Unspecified),
            ),
            (
                "Nitrite Plus Nitrate (as N)",
                m("nitrate_nitrite", Unspecified),
            ),
            (
                "Nitrate & Nitrite, Total (as N)",
                m("nitrate_nitrite", Total),
            ),
            ("Nitrate, Total (as N)", m("nitrate", Total)),
            ("Nitrate (as N)", m("nitrate", Unspecified)),
            ("Nitrite, Total (as N)", m("nitrite", Total)),
            ("Nitrite", m("nitrite", Unspecified)),
            ("Ammonia, Total (as N)", m("ammonia", Total)),
            ("Ammonia Nitrogen", m("ammonia", Unspecified)),
            ("Ammonia (as N)", m("ammonia", Unspecified)),
            ("Phosphorus, Total (as P)", m("phosphorus", Total)),
            ("Phosphorus, Dissolved (as P)", m("phosphorus", Dissolved)),
            ("Nitrate, Total (as NO3)", None),
            ("Nitrite, Total (as NO2)", None),
            ("Ammonia, Unionized (as N)", None),
            ("Ammonium as Nitrogen", None),
            ("Phosphate, Total (as P)", None),
            ("Orthophosphate, Dissolved (as P)", None),
            ("Phosphorus, Total Organic (as P)", None),
            ("Nitrogen, Total (as N)", None),
            ("Total Kjeldahl Nitrogen (TKN) (as N)", None),
        ]);
    }

    #[test]
    fn words_inside_other_phrases_never_match() {
        check(&[
            ("Hardness, Total (as CaCO3)", None),
            ("Alkalinity, Total (as CaCO3)", None),
            ("Alkalinity, Bicarbonate (as CaCO3)", None),
            ("Hardness, Mg (as CaCO3)", None),
            ("Bicarbonate as CaCO3", None),
            ("Suspended Sediment Concentration (SSC)", None),
            ("Total Dissolved Solids", None),
            ("Total Dissolved Solids (TDS)", None),
            ("Volatile Suspended Solids (VSS)", None),
            ("Diesel Oil", None),
            ("Motor Oil", None),
            ("TPH as Motor Oil", None),
            ("Phenol", None),
            ("Phenols, Total", None),
            ("Phenanthrene", None),
            ("Carbonaceous BOD", None),
            (
                "Carbonaceous Biochemical Oxygen Demand (CBOD) (5-day @ 20 Deg. C)",
                None,
            ),
            ("Dissolved Oxygen", None),
            ("Indeno (1,2,3-cd) Pyrene", None),
            ("2,4,5-TP (Silvex)", None),
            ("Methyl Mercury", None),
            ("Lead-210", None),
        ]);
    }

    #[test]
    fn species_other_than_the_benchmarked_total_are_none() {
        check(&[
            ("Arsenic (III), Dissolved", None),
            ("Arsenic (III), Total Recoverable", None),
            ("Mercury, Methyl", None),
            ("Cyanide, (WAD)", None),
            ("Cyanide, Free Available", None),
            ("Cyanide, Amenable", None),
            ("Acid-Soluble Aluminum", None),
            ("Copper, Total Dissolved", None),
        ]);
    }

    #[test]
    fn derived_esmr_quantities_are_not_concentrations() {
        check(&[
            ("Total Suspended Solids (TSS), Percent Removal", None),
            ("Total Suspended Solids (TSS), Net Value", None),
            ("BOD5 @ 20 Deg. C, Percent Removal", None),
            ("Zinc Impact Ratio", None),
            ("Nickel Impact Ratio", None),
            ("Ammonia Impact Ratio", None),
            ("Copper, Total Recoverable, lbs/day", None),
            ("Zinc, Total (kg/day)", None),
            ("TSS Load", None),
            ("Copper, Total, Mass", None),
            ("Influent BOD", None),
            ("Copper, Total, Daily Maximum", None),
        ]);
    }

    #[test]
    fn every_returned_key_is_listed_in_keys() {
        let entry_keys: Vec<_> = ENTRIES.iter().map(|e| e.key).collect();
        assert_eq!(entry_keys, KEYS);
    }

    // ---- coverage on the real published name lists ------------------------------------

    fn shared_data(rel: &str) -> PathBuf {
        let base = std::env::var("STORMWATER_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
            });
        let p = base.join(rel);
        assert!(p.exists(), "missing shared data file {}", p.display());
        p
    }

    fn csv_column(rel: &str, column: &str) -> Vec<String> {
        let mut r = csv::Reader::from_path(shared_data(rel)).expect("csv opens");
        let idx = r
            .headers()
            .expect("csv header")
            .iter()
            .position(|h| h == column)
            .expect("column present");
        r.records()
            .map(|rec| rec.expect("csv row")[idx].to_owned())
            .collect()
    }

    /// Independent evidence the matched pollutant is named: every group must have one
    /// phrase present as whole words in the lowercased name.
    fn evidence(key: &str) -> Vec<&'static [&'static str]> {
        match key {
            "ph" => vec![&["ph"]],
            "tss" => vec![&["suspended solids", "tss"]],
            "oil_and_grease" => vec![&["oil", "o and g"], &["grease", "o and g"]],
            "aluminum" => vec![&["aluminum", "aluminium"]],
            "bod" => vec![&[
                "biochemical oxygen demand",
                "biological oxygen demand",
                "bod",
                "bod5",
            ]],
            "cod" => vec![&["chemical oxygen demand", "cod"]],
            "nitrate_nitrite" => vec![&["nitrate", "no3"], &["nitrite", "no2"]],
            "chromium_vi" => vec![&["chromium"], &["vi", "6", "hexavalent"]],
            "chromium_iii" => vec![&["chromium"], &["iii", "3", "trivalent"]],
            "ammonia" => vec![&["ammonia"]],
            "arsenic" => vec![&["arsenic"]],
            "cadmium" => vec![&["cadmium"]],
            "copper" => vec![&["copper"]],
            "cyanide" => vec![&["cyanide"]],
            "iron" => vec![&["iron"]],
            "lead" => vec![&["lead"]],
            "magnesium" => vec![&["magnesium"]],
            "mercury" => vec![&["mercury"]],
            "nickel" => vec![&["nickel"]],
            "nitrate" => vec![&["nitrate"]],
            "nitrite" => vec![&["nitrite"]],
            "phosphorus" => vec![&["phosphorus"]],
            "selenium" => vec![&["selenium"]],
            "silver" => vec![&["silver"]],
            "zinc" => vec![&["zinc"]],
            "chromium" => vec![&["chromium"]],
            other => panic!("no evidence listed for key {other}"),
        }
    }

    fn named_in(key: &str, name: &str) -> bool {
        let words: String = name
            .to_lowercase()
            .replace('&', " and ")
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let padded = format!(
            " {} ",
            words.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        evidence(key)
            .iter()
            .all(|group| group.iter().any(|p| padded.contains(&format!(" {p} "))))
    }

    /// Classifies every name, applies the generic guard, prints coverage, returns the count
    /// of mapped names.
    fn coverage(label: &str, names: &[String]) -> usize {
        let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
        for name in names {
            if let Some(hit) = classify(name) {
                assert!(
                    named_in(hit.key, name),
                    "{label}: {name:?} mapped to {} which it does not name",
                    hit.key
                );
                assert!(
                    !name.to_lowercase().contains("caco3"),
                    "{label}: {name:?} is a CaCO3-basis quantity"
                );
                *per_key.entry(hit.key).or_default() += 1;
            }
        }
        let mapped: usize = per_key.values().sum();
        println!(
            "{label}: {mapped} / {} names map to a pollutant",
            names.len()
        );
        let mut by_count: Vec<_> = per_key.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (key, n) in by_count {
            println!("  {key:<16} {n}");
        }
        mapped
    }

    #[test]
    fn real_smarts_and_esmr_names_map_only_to_pollutants_they_name() {
        let smarts = csv_column(
            "real/NAS-Stormwater-Tool/Parameters_Units_List.csv",
            "PARAMETER",
        );
        let text =
            std::fs::read_to_string(shared_data("stormwater-watch/esmr-parameter-mapping.json"))
                .expect("eSMR mapping reads");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("eSMR JSON parses");
        let esmr: Vec<String> = rows
            .iter()
            .filter_map(|r| r["parameterName"].as_str().map(str::to_owned))
            .collect();

        let smarts_mapped = coverage("SMARTS", &smarts);
        let esmr_mapped = coverage("eSMR", &esmr);
        assert!(smarts.len() >= 400 && esmr.len() >= 850, "lists truncated");
        assert!(
            smarts_mapped >= SMARTS_MIN,
            "SMARTS coverage fell to {smarts_mapped}"
        );
        assert!(
            esmr_mapped >= ESMR_MIN,
            "eSMR coverage fell to {esmr_mapped}"
        );
    }

    /// Measured 2025: 58 of 433 SMARTS names.
    const SMARTS_MIN: usize = 58;
    /// Measured 2025: 62 of 899 eSMR names.
    const ESMR_MIN: usize = 62;

    #[test]
    fn every_benchmark_table_name_maps_to_its_key() {
        let igp = csv_column("benchmarks/igp_nals.csv", "parameter");
        let want_igp = [
            ("pH", "ph"),
            ("Total Suspended Solids (TSS)", "tss"),
            ("Oil and Grease (O&G)", "oil_and_grease"),
            ("Aluminum, Total", "aluminum"),
            ("Ammonia (as N)", "ammonia"),
            ("Arsenic, Total", "arsenic"),
            ("Biochemical Oxygen Demand (BOD5)", "bod"),
            ("Cadmium, Total", "cadmium"),
            ("Chemical Oxygen Demand (COD)", "cod"),
            ("Copper, Total", "copper"),
            ("Cyanide, Total", "cyanide"),
            ("Iron, Total", "iron"),
            ("Lead, Total", "lead"),
            ("Magnesium, Total", "magnesium"),
            ("Mercury, Total", "mercury"),
            ("Nickel, Total", "nickel"),
            ("Nitrate + Nitrite Nitrogen (N+N)", "nitrate_nitrite"),
            ("Phosphorus, Total (as P)", "phosphorus"),
            ("Selenium, Total", "selenium"),
            ("Silver, Total", "silver"),
            ("Zinc, Total", "zinc"),
        ];
        assert_eq!(igp.len(), want_igp.len(), "IGP Table 2 has 21 parameters");
        for (name, (want_name, key)) in igp.iter().zip(want_igp) {
            assert_eq!(name, want_name);
            assert_eq!(classify(name).map(|h| h.key), Some(key), "{name:?}");
        }

        let aquatic = csv_column("benchmarks/aquatic_and_drinking.csv", "pollutant");
        for name in &aquatic {
            let want = match name.as_str() {
                "Chromium (III)" => "chromium_iii".to_owned(),
                "Chromium (VI)" => "chromium_vi".to_owned(),
                "Chromium (total)" => "chromium".to_owned(),
                "Mercury (inorganic)" => "mercury".to_owned(),
                "Nitrate (as N)" => "nitrate".to_owned(),
                other => other.to_lowercase(),
            };
            assert!(
                KEYS.contains(&want.as_str()),
                "unexpected pollutant {name:?}"
            );
            assert_eq!(
                classify(name).map(|h| h.key),
                Some(want.as_str()),
                "{name:?}"
            );
        }
    }
}
