//! Facility and operator names normalized for matching (facility linking).
//!
//! The same site is written "Portosan Co LLC", "PORTOSAN CO., L.L.C." or "Portosan Company";
//! a trading name follows "dba" ("KSSM LLC dba Michel-Schlumberger"). Normalization:
//! * lowercase; `&` and `+` become "and"; every other non-alphanumeric character separates words
//!   (so "L.L.C." and "D/B/A" become letter runs that are joined back below);
//! * runs of single letters are joined ("l l c" → "llc", "d b a" → "dba", "u s" → "us");
//! * a leading "the" and trailing legal-form words (inc, incorporated, llc, llp, lp, ltd, corp,
//!   corporation, co, company, pc, plc) are dropped, repeatedly ("Foo Co LLC" → "foo");
//! * "dba" splits the name: [`normalize`] keeps the trading name (what the site is known by),
//!   [`variants`] returns both.
//!
//! The result is meant for trigram similarity (pg_trgm) and equality, never for display.

const LEGAL_FORMS: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lp",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "pc",
    "plc",
];

fn words(raw: &str) -> Vec<String> {
    let mut s = String::with_capacity(raw.len() + 8);
    for c in raw.chars().flat_map(char::to_lowercase) {
        match c {
            '&' | '+' => s.push_str(" and "),
            c if c.is_alphanumeric() => s.push(c),
            _ => s.push(' '),
        }
    }
    // Join runs of single letters: "l l c" -> "llc", "d b a" -> "dba", "l & r" -> "lr".
    let single = |w: &str| w.chars().count() == 1 && w.chars().all(char::is_alphabetic);
    let tokens: Vec<&str> = s.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut run = String::new();
    for (i, &w) in tokens.iter().enumerate() {
        if single(w) {
            run.push_str(w);
            continue;
        }
        if w == "and" && !run.is_empty() && tokens.get(i + 1).is_some_and(|n| single(n)) {
            continue;
        }
        let w = expand(w);
        if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
        out.extend(w.split(' ').map(str::to_owned));
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// Abbreviations that sources write both ways ("WWTP" / "Wastewater Treatment Plant").
fn expand(w: &str) -> &str {
    match w {
        "wwtp" => "wastewater treatment plant",
        "wtp" => "water treatment plant",
        "wpcf" => "water pollution control facility",
        "wpcp" => "water pollution control plant",
        "wrf" => "water reclamation facility",
        "wrp" => "water reclamation plant",
        "stp" => "sewage treatment plant",
        "mfg" => "manufacturing",
        "intl" => "international",
        "ctr" => "center",
        "svc" | "svcs" => "services",
        "dist" => "distribution",
        "natl" => "national",
        other => other,
    }
}

/// Words too common in facility names to tell sites apart (`reference/generic_name_words.txt`).
static GENERIC: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| {
        include_str!("../../reference/generic_name_words.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    });

/// The distinctive part of a name for matching: [`normalize`] without the words that many
/// unrelated sites share ("auto", "recycling", "services", "san", "fedex", …). "Japanese Auto
/// Wrecking" and "Montana Auto Wrecking" share half their letters but no distinctive word.
/// A name made only of common words keeps them all.
pub fn core(raw: &str) -> String {
    let n = normalize(raw);
    let kept: Vec<&str> = n
        .split(' ')
        .filter(|w| !w.is_empty() && !GENERIC.contains(w))
        .collect();
    if kept.is_empty() { n } else { kept.join(" ") }
}

/// A street address reduced to house number and street name for comparison:
/// "802 E ONTARIO BLVD" and "802 Ontario Blvd." give "802 ontario"; "1034 Cristobal St # D"
/// gives "1034 cristobal". Directions, street types and unit designators are dropped. `None`
/// without a leading house number (a road name alone does not place a site).
pub fn street_key(raw: &str) -> Option<String> {
    const DROP: &[&str] = &[
        "n",
        "s",
        "e",
        "w",
        "north",
        "south",
        "east",
        "west",
        "ne",
        "nw",
        "se",
        "sw",
        "st",
        "street",
        "ave",
        "av",
        "avenue",
        "rd",
        "road",
        "blvd",
        "boulevard",
        "dr",
        "drive",
        "way",
        "wy",
        "ln",
        "lane",
        "hwy",
        "highway",
        "ct",
        "court",
        "pl",
        "place",
        "pkwy",
        "parkway",
        "cir",
        "circle",
        "ter",
        "terrace",
    ];
    const UNIT: &[&str] = &[
        "ste", "suite", "unit", "apt", "bldg", "building", "rear", "space", "spc",
    ];
    let lower = raw.to_lowercase();
    let cut = lower.split('#').next().unwrap_or_default();
    let mut tokens = cut
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty());
    let number = tokens.next()?;
    if !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let street: Vec<&str> = tokens
        .take_while(|t| !UNIT.contains(t))
        .filter(|t| !DROP.contains(t))
        .collect();
    if street.is_empty() {
        return None;
    }
    Some(format!("{number} {}", street.join(" ")))
}

fn strip(mut w: Vec<String>) -> String {
    if w.first().is_some_and(|f| f == "the") && w.len() > 1 {
        w.remove(0);
    }
    while w.len() > 1 && w.last().is_some_and(|l| LEGAL_FORMS.contains(&l.as_str())) {
        w.pop();
    }
    w.join(" ")
}

/// Both names of "X dba Y" (the legal name first), or the one name; each normalized.
pub fn variants(raw: &str) -> Vec<String> {
    let w = words(raw);
    let mut parts: Vec<Vec<String>> = vec![vec![]];
    for word in w {
        if word == "dba" {
            parts.push(vec![]);
        } else if let Some(last) = parts.last_mut() {
            last.push(word);
        }
    }
    let mut out: Vec<String> = parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(strip)
        .filter(|s| !s.is_empty())
        .collect();
    out.dedup();
    out
}

/// The normalized name to match on: the trading name of "X dba Y", else the name.
pub fn normalize(raw: &str) -> String {
    variants(raw).pop().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_forms_punctuation_and_case_do_not_matter() {
        let same = [
            "Portosan Co LLC",
            "PORTOSAN CO., L.L.C.",
            "Portosan Company",
            "portosan, inc.",
            "The Portosan Corporation",
        ];
        for s in same {
            assert_eq!(normalize(s), "portosan", "{s}");
        }
        assert_eq!(
            normalize("Williams  Selyem Winery LLC"),
            "williams selyem winery"
        );
        assert_eq!(
            normalize("United States Pipe and Foundry Co LLC"),
            "united states pipe and foundry"
        );
        assert_eq!(normalize("A & B Metals"), "ab metals");
        assert_eq!(normalize("L&R PALLETS INC"), normalize("L R Pallets"));
        assert_eq!(normalize("Sand and Gravel"), "sand and gravel");
        assert_eq!(
            normalize("City of Lodi WWTP"),
            "city of lodi wastewater treatment plant"
        );
        assert_eq!(normalize("U.S. Steel"), "us steel");
    }

    #[test]
    fn dba_keeps_the_trading_name_and_variants_keep_both() {
        assert_eq!(
            normalize("KSSM LLC dba Michel-Schlumberger"),
            "michel schlumberger"
        );
        assert_eq!(
            variants("KSSM LLC D/B/A Michel-Schlumberger"),
            vec!["kssm".to_owned(), "michel schlumberger".to_owned()]
        );
        assert_eq!(variants("Mi LLC"), vec!["mi".to_owned()]);
    }

    #[test]
    fn core_drops_words_many_sites_share() {
        assert_eq!(core("Montana Auto Wrecking Inc."), "montana");
        assert_eq!(core("Japanese Auto Wrecking"), "japanese");
        // Only common words: all of them stay.
        assert_eq!(core("Pacific Auto Wrecking"), "pacific auto wrecking");
        assert_eq!(core("Auto Recycling"), "auto recycling");
        assert_eq!(core("Hambro Forest Products"), "hambro forest");
        assert_eq!(core("FedEx Freight"), "fedex freight");
    }

    #[test]
    fn street_keys_ignore_direction_type_and_unit() {
        assert_eq!(
            street_key("802 E ONTARIO BLVD").as_deref(),
            Some("802 ontario")
        );
        assert_eq!(
            street_key("802 Ontario Blvd.").as_deref(),
            Some("802 ontario")
        );
        assert_eq!(
            street_key("1034 Cristobal St # D").as_deref(),
            Some("1034 cristobal")
        );
        assert_eq!(
            street_key("1034 Cristobal Ave").as_deref(),
            Some("1034 cristobal")
        );
        assert_eq!(
            street_key("775 Energy Wy Ste A").as_deref(),
            Some("775 energy")
        );
        assert_eq!(
            street_key("12319 Branford St Rear Unit").as_deref(),
            Some("12319 branford")
        );
        assert_eq!(street_key("End Of Hights Access Road"), None);
        assert_eq!(street_key("445"), None);
        assert_ne!(
            street_key("939 HERITAGE ROAD"),
            street_key("941 Heritage Rd")
        );
    }

    #[test]
    fn a_name_that_is_only_a_legal_form_survives() {
        assert_eq!(normalize("Co"), "co");
        assert_eq!(normalize("   "), "");
        assert_eq!(normalize("The"), "the");
    }
}
