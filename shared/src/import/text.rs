//! Field bytes to text that Postgres will store.
//!
//! The published files are UTF-8, but re-exports and hand edits bring Windows-1252 bytes
//! (`caf\xE9`), and NUL bytes, which Postgres refuses in `text`. Neither may fail a chunk or
//! a run: a field that is not valid UTF-8 is decoded with the declared fallback encoding
//! ([`FALLBACK`]), NUL bytes are removed, and the caller reports both with line and column.

use std::borrow::Cow;

/// The encoding a field that is not valid UTF-8 is read as. Windows-1252 maps every byte
/// (its five undefined bytes decode to the C1 controls, as WHATWG specifies), so decoding
/// never fails and never loses a byte's identity.
pub static FALLBACK: &encoding_rs::Encoding = encoding_rs::WINDOWS_1252;

/// One field as text, with what had to be done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    /// The bytes were not valid UTF-8 and were decoded as [`FALLBACK`].
    pub fallback: bool,
    /// NUL characters removed.
    pub nuls: usize,
}

impl Decoded<'_> {
    /// Whether the text differs from the bytes read as UTF-8.
    pub fn changed(&self) -> bool {
        self.fallback || self.nuls > 0
    }

    /// What was done, for a data-quality issue (`None` when nothing was).
    pub fn remark(&self) -> Option<String> {
        match (self.fallback, self.nuls) {
            (false, 0) => None,
            (true, 0) => Some(format!("not valid UTF-8: decoded as {}", FALLBACK.name())),
            (false, n) => Some(format!("{n} NUL byte(s) removed")),
            (true, n) => Some(format!(
                "not valid UTF-8: decoded as {}; {n} NUL byte(s) removed",
                FALLBACK.name()
            )),
        }
    }
}

/// Decodes one field: UTF-8 when valid, else [`FALLBACK`]; NUL removed either way.
pub fn decode(bytes: &[u8]) -> Decoded<'_> {
    let (text, fallback) = match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (FALLBACK.decode_without_bom_handling(bytes).0, true),
    };
    let nuls = text.matches('\0').count();
    let text = if nuls > 0 {
        Cow::Owned(text.replace('\0', ""))
    } else {
        text
    };
    Decoded {
        text,
        fallback,
        nuls,
    }
}

/// Text with NUL removed (for messages and raw records built from decoded fields).
pub fn without_nul(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_borrowed_unchanged() {
        let d = decode("Café Ñandú".as_bytes());
        assert!(matches!(d.text, Cow::Borrowed("Café Ñandú")));
        assert!(!d.changed());
        assert_eq!(d.remark(), None);
    }

    #[test]
    fn windows_1252_bytes_decode_to_their_characters() {
        // 0xE9 é, 0x93/0x94 curly quotes, 0x80 euro sign: Windows-1252, not Latin-1.
        let d = decode(b"caf\xE9 \x93ok\x94 \x80");
        assert_eq!(d.text, "café \u{201C}ok\u{201D} €");
        assert!(d.fallback);
        assert_eq!(
            d.remark().unwrap(),
            "not valid UTF-8: decoded as windows-1252"
        );
    }

    #[test]
    fn nul_bytes_are_removed_and_counted() {
        let d = decode(b"AB\0C\0");
        assert_eq!(d.text, "ABC");
        assert_eq!(d.nuls, 2);
        assert_eq!(d.remark().unwrap(), "2 NUL byte(s) removed");
        let both = decode(b"\xE9\0");
        assert_eq!(both.text, "é");
        assert!(both.fallback && both.nuls == 1);
    }
}
