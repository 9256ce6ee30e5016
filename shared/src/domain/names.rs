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
    // Join runs of single letters: "l l c" -> "llc", "d b a" -> "dba".
    let mut out: Vec<String> = Vec::new();
    let mut run = String::new();
    for w in s.split_whitespace() {
        if w.chars().count() == 1 && w.chars().all(char::is_alphabetic) {
            run.push_str(w);
            continue;
        }
        if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
        out.push(w.to_owned());
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
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
        assert_eq!(normalize("A & B Metals"), "a and b metals");
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
    fn a_name_that_is_only_a_legal_form_survives() {
        assert_eq!(normalize("Co"), "co");
        assert_eq!(normalize("   "), "");
        assert_eq!(normalize("The"), "the");
    }
}
