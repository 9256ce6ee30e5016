//! WDIDs (Waste Discharger Identification numbers), e.g. `1 08I004046`, `5S34I012345`,
//! `6B36NEC000123`: region digit, a space or sub-office letter, a two-digit county code,
//! a type code (`I`, `NEC`, `C`, …) and a 5–6 digit serial. WDIDs are kept as the text the
//! publisher wrote; this module only tells whether one has the standard shape.

use std::sync::LazyLock;

static STANDARD: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^\d[ A-Z]\d{2}[A-Z]+\d{5,6}$").expect("WDID pattern compiles")
});

/// `true` when the WDID has the standard shape (see the module docs).
pub fn is_standard(wdid: &str) -> bool {
    STANDARD.is_match(wdid)
}

/// The region board code a standard WDID starts with (`1`, `5S`, `6B`, …).
pub fn region(wdid: &str) -> Option<String> {
    if !is_standard(wdid) {
        return None;
    }
    let mut chars = wdid.chars();
    let digit = chars.next()?;
    match chars.next()? {
        ' ' => Some(digit.to_string()),
        letter => Some(format!("{digit}{letter}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_wdid_shapes_are_standard() {
        for w in [
            "1 08I004046",
            "5S34I012345",
            "6B36NEC000123",
            "1 08C317365",
            "4 19I12345",
        ] {
            assert!(is_standard(w), "{w}");
        }
    }

    #[test]
    fn junk_wdids_seen_in_real_files_are_not_standard() {
        for w in ["NA", "5A327021N05", "2 XXIN601201", "", "1 08I0040461234"] {
            assert!(!is_standard(w), "{w}");
        }
    }

    #[test]
    fn region_comes_from_the_first_two_characters() {
        assert_eq!(region("1 08I004046").as_deref(), Some("1"));
        assert_eq!(region("5S34I012345").as_deref(), Some("5S"));
        assert_eq!(region("2 XXIN601201"), None);
    }
}
