//! How sure the linker is that two source records are the same site (docs/LINKING.md).
//!
//! Evidence adds up: the name gives at most 0.6 (0.6 × the pg_trgm similarity of the two
//! names' distinctive words, `names::core`), the place at most 0.4 (coordinates within a
//! quarter of the radius or the same street address 0.4, within the radius 0.3, the same city
//! 0.15, the same regional board 0.05). Disagreement vetoes: another regional board or county,
//! coordinates more than ten radii apart, or two different street addresses cap the
//! confidence at 0.2, whatever the name says ("same name at another address"). A link at or
//! above the threshold is made automatically; below it, down to the floor, it is only
//! proposed for review.

pub use crate::config::LinkSettings as Settings;

/// Identifies the scoring rules and settings: a change rescores every pair.
pub fn fingerprint(s: &Settings) -> String {
    format!(
        "score-v{SCORER_VERSION}:r{}:t{}:f{}",
        s.radius_m, s.threshold, s.floor
    )
}

/// Bumped whenever the rules below (or the name normalization) change.
pub const SCORER_VERSION: u32 = 1;

/// Whether two records agree on an attribute both may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Same,
    Different,
    Unknown,
}

impl Agreement {
    /// Compares two optional values (case-insensitive, trimmed; empty counts as missing).
    pub fn of(a: Option<&str>, b: Option<&str>) -> Self {
        fn clean(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        match (clean(a), clean(b)) {
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => Self::Same,
            (Some(_), Some(_)) => Self::Different,
            _ => Self::Unknown,
        }
    }
}

/// What is known about a candidate pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// pg_trgm `similarity` of the two `match_name`s (0–1).
    pub name_similarity: f32,
    /// Great-circle distance between trusted coordinates.
    pub distance_m: Option<f64>,
    /// `names::street_key` of both addresses.
    pub street: Agreement,
    pub city: Agreement,
    pub county: Agreement,
    pub region: Agreement,
}

/// A candidate's confidence and the words that explain it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub confidence: f32,
    pub reason: String,
}

/// Scores a pair (see the module docs).
pub fn score(f: &Features, s: &Settings) -> Scored {
    let name = 0.6 * f.name_similarity.clamp(0.0, 1.0);
    let mut why = vec![format!("name {:.2}", f.name_similarity)];
    let mut place: f32 = 0.0;
    let mut veto: Option<String> = None;
    if let Some(d) = f.distance_m {
        why.push(distance_words(d));
        if d <= s.radius_m / 4.0 {
            place = 0.4;
        } else if d <= s.radius_m {
            place = 0.3;
        } else if d > 10.0 * s.radius_m {
            veto = Some(format!("{} apart", distance_words(d)));
        }
    }
    match f.street {
        Agreement::Same if f.distance_m.is_none_or(|d| d <= s.radius_m) => {
            place = place.max(0.4);
            why.push("same street address".into());
        }
        Agreement::Same => why.push("same street address".into()),
        Agreement::Different => veto = veto.or(Some("different street addresses".into())),
        Agreement::Unknown => {}
    }
    if f.city == Agreement::Same {
        place = place.max(0.15);
        why.push("same city".into());
    }
    if f.region == Agreement::Same {
        place = place.max(0.05);
    }
    for (agreement, what) in [(f.county, "county"), (f.region, "regional board")] {
        if agreement == Agreement::Different {
            veto = veto.or(Some(format!("another {what}")));
        }
    }
    let mut confidence = (name + place).min(1.0);
    if let Some(v) = veto {
        confidence = confidence.min(0.2);
        why.push(format!("vetoed: {v}"));
    }
    // Two decimals: stored as `real`, compared with thresholds given to two decimals.
    let confidence = (confidence * 100.0).round() / 100.0;
    Scored {
        confidence,
        reason: why.join(", "),
    }
}

fn distance_words(d: f64) -> String {
    if d < 1000.0 {
        format!("{d:.0} m")
    } else {
        format!("{:.1} km", d / 1000.0)
    }
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Agreement::*;

    fn f(name: f32, d: Option<f64>) -> Features {
        Features {
            name_similarity: name,
            distance_m: d,
            street: Unknown,
            city: Unknown,
            county: Unknown,
            region: Same,
        }
    }

    #[test]
    fn the_same_name_at_the_same_place_links() {
        let s = Settings::default();
        assert_eq!(score(&f(1.0, Some(0.0)), &s).confidence, 1.0);
        assert_eq!(score(&f(1.0, Some(60.0)), &s).confidence, 0.9);
        // 0.75 similarity within 25 m is exactly the threshold.
        assert_eq!(score(&f(0.75, Some(20.0)), &s).confidence, 0.85);
        let mut same_street = f(0.8, None);
        same_street.street = Same;
        assert_eq!(score(&same_street, &s).confidence, 0.88);
    }

    #[test]
    fn a_name_alone_is_only_a_proposal() {
        let s = Settings::default();
        // eSMR facilities have no address: identical name, same board, no coordinates.
        let c = score(&f(1.0, None), &s).confidence;
        assert_eq!(c, 0.65);
        assert!(c < s.threshold && c >= s.floor);
        let mut city = f(1.0, None);
        city.city = Same;
        assert_eq!(score(&city, &s).confidence, 0.75);
    }

    #[test]
    fn disagreement_vetoes_whatever_the_name() {
        let s = Settings::default();
        let far = score(&f(1.0, Some(5_000.0)), &s);
        assert_eq!(far.confidence, 0.2);
        assert!(far.reason.contains("5.0 km apart"), "{}", far.reason);
        // Between the radius and ten radii: the place neither helps nor vetoes.
        assert_eq!(score(&f(1.0, Some(400.0)), &s).confidence, 0.65);
        let mut street = f(1.0, Some(10.0));
        street.street = Different;
        assert_eq!(score(&street, &s).confidence, 0.2);
        let mut county = f(1.0, Some(10.0));
        county.county = Different;
        assert!(score(&county, &s).reason.contains("another county"));
        let mut region = f(1.0, None);
        region.region = Different;
        assert_eq!(score(&region, &s).confidence, 0.2);
    }

    #[test]
    fn neighbours_with_unrelated_names_are_not_candidates() {
        let s = Settings::default();
        // Two businesses in one yard: the place is all they share.
        let c = score(&f(0.1, Some(0.0)), &s).confidence;
        assert_eq!(c, 0.46);
        assert!(c < s.floor);
    }

    #[test]
    fn a_wider_radius_counts_farther_coordinates() {
        let wide = Settings {
            radius_m: 400.0,
            ..Settings::default()
        };
        assert_eq!(score(&f(1.0, Some(90.0)), &wide).confidence, 1.0);
        assert_eq!(score(&f(1.0, Some(300.0)), &wide).confidence, 0.9);
        assert!(fingerprint(&wide) != fingerprint(&Settings::default()));
    }

    #[test]
    fn settings_are_checked() {
        assert!(Settings::default().validate().is_ok());
        let bad = Settings {
            floor: 0.9,
            ..Settings::default()
        };
        assert!(bad.validate().is_err());
        let bad = Settings {
            radius_m: 0.0,
            ..Settings::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn agreement_ignores_case_and_blanks() {
        assert_eq!(Agreement::of(Some("Del Norte"), Some("DEL NORTE ")), Same);
        assert_eq!(Agreement::of(Some("Napa"), Some("Sonoma")), Different);
        assert_eq!(Agreement::of(Some(""), Some("Sonoma")), Unknown);
        assert_eq!(Agreement::of(None, None), Unknown);
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // One thousandth of a degree of latitude is about 111 m.
        let d = haversine_m(38.0, -121.0, 38.001, -121.0);
        assert!((d - 111.2).abs() < 0.5, "{d}");
    }
}
