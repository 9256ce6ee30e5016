//! Streaming CSV writer reproducing the byte format of the published portal files.
//!
//! * SMARTS (`readr::write_excel_csv(na = 'NaN')`, vroom writer): UTF-8 BOM, `,`, `\n`; the header and every
//!   character column double-quoted; numeric columns bare, formatted by vroom's `dtoa_grisu3`; missing numbers a
//!   bare `NaN`; missing text the quoted string `"NA"`; missing dates `""`.
//! * eSMR (`write_excel_csv`, numeric columns pre-converted with `as.character()`): BOM, everything quoted,
//!   numbers are quoted strings in R's `as.character` format (`"1e-04"`, `"NaN"`), missing text a bare `NA`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use chrono::{Datelike, NaiveDate};

use crate::schema::{Col, Kind};

pub const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    Smarts,
    Esmr,
}

pub struct Out<W: Write> {
    w: W,
    line: Vec<u8>,
    prev: Vec<u8>,
    kinds: Vec<Kind>,
    col: usize,
    rows: u64,
    flavor: Flavor,
    scratch: String,
}

impl Out<BufWriter<File>> {
    pub fn create(path: &Path, cols: &[Col], flavor: Flavor) -> io::Result<Self> {
        let f = File::create(path)?;
        Out::new(BufWriter::with_capacity(1 << 20, f), cols, flavor)
    }
}

impl<W: Write> Out<W> {
    /// Writes the BOM and the quoted header line.
    pub fn new(mut w: W, cols: &[Col], flavor: Flavor) -> io::Result<Self> {
        let mut header = Vec::with_capacity(1024);
        header.extend_from_slice(BOM);
        for (i, (name, _)) in cols.iter().enumerate() {
            if i > 0 {
                header.push(b',');
            }
            push_quoted(&mut header, name);
        }
        header.push(b'\n');
        w.write_all(&header)?;
        Ok(Out {
            w,
            line: Vec::with_capacity(1024),
            prev: Vec::with_capacity(1024),
            kinds: cols.iter().map(|c| c.1).collect(),
            col: 0,
            rows: 0,
            flavor,
            scratch: String::with_capacity(64),
        })
    }

    #[inline]
    fn sep(&mut self, k: Kind) {
        debug_assert!(self.col < self.kinds.len(), "too many fields in a row");
        debug_assert_eq!(
            self.kinds[self.col], k,
            "column {} written with the wrong kind",
            self.col
        );
        if self.col > 0 {
            self.line.push(b',');
        }
        self.col += 1;
    }

    /// A present text value (always quoted; `"` doubled).
    #[inline]
    pub fn t(&mut self, s: &str) {
        self.sep(Kind::Text);
        push_quoted(&mut self.line, s);
    }

    /// A missing text value.
    #[inline]
    pub fn na(&mut self) {
        self.sep(Kind::Text);
        match self.flavor {
            Flavor::Smarts => self.line.extend_from_slice(b"\"NA\""),
            Flavor::Esmr => self.line.extend_from_slice(b"NA"),
        }
    }

    #[inline]
    pub fn ot(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.t(s),
            None => self.na(),
        }
    }

    /// An integer identifier published as text (`"178203"`).
    #[inline]
    pub fn id(&mut self, v: u64) {
        self.sep(Kind::Text);
        self.line.push(b'"');
        push_u64(&mut self.line, v);
        self.line.push(b'"');
    }

    /// A numeric value; NaN is written as missing.
    #[inline]
    pub fn n(&mut self, v: f64) {
        if v.is_nan() {
            self.nan();
            return;
        }
        self.sep(Kind::Num);
        match self.flavor {
            Flavor::Smarts => fmt_vroom(v, &mut self.line, &mut self.scratch),
            Flavor::Esmr => {
                self.line.push(b'"');
                fmt_r(v, &mut self.line, &mut self.scratch);
                self.line.push(b'"');
            }
        }
    }

    #[inline]
    pub fn on(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.n(v),
            None => self.nan(),
        }
    }

    /// A missing numeric value.
    #[inline]
    pub fn nan(&mut self) {
        self.sep(Kind::Num);
        match self.flavor {
            Flavor::Smarts => self.line.extend_from_slice(b"NaN"),
            Flavor::Esmr => self.line.extend_from_slice(b"\"NaN\""),
        }
    }

    /// A date column: `"YYYY-MM-DD"` (years below 1000 zero-padded) or `""`.
    #[inline]
    pub fn d(&mut self, d: Option<NaiveDate>) {
        self.sep(Kind::Date);
        self.line.push(b'"');
        if let Some(d) = d {
            push_date(&mut self.line, d);
        }
        self.line.push(b'"');
    }

    /// Ends the current record.
    pub fn end(&mut self) -> io::Result<()> {
        assert_eq!(
            self.col,
            self.kinds.len(),
            "row has {} of {} fields",
            self.col,
            self.kinds.len()
        );
        self.line.push(b'\n');
        self.w.write_all(&self.line)?;
        std::mem::swap(&mut self.line, &mut self.prev);
        self.line.clear();
        self.col = 0;
        self.rows += 1;
        Ok(())
    }

    /// Writes the previous record again (an exact duplicate row).
    pub fn dup_prev(&mut self) -> io::Result<()> {
        assert_eq!(self.col, 0, "dup_prev in the middle of a row");
        if self.prev.is_empty() {
            return Ok(());
        }
        self.w.write_all(&self.prev)?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<(W, u64)> {
        assert_eq!(self.col, 0, "unfinished row");
        self.w.flush()?;
        Ok((self.w, self.rows))
    }
}

pub fn push_quoted(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    if s.as_bytes().contains(&b'"') {
        for &b in s.as_bytes() {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
    buf.push(b'"');
}

pub fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// `YYYY-MM-DD`, the year zero-padded to 4 digits (R's `str_pad(width = 10, pad = '0')` gives `0201-05-04`).
pub fn push_date(buf: &mut Vec<u8>, d: NaiveDate) {
    let y = d.year().clamp(0, 9999) as u32;
    push_2(buf, y / 100);
    push_2(buf, y % 100);
    buf.push(b'-');
    push_2(buf, d.month());
    buf.push(b'-');
    push_2(buf, d.day());
}

/// Shortest round-trip decimal digits of a finite positive `v`, and the exponent `e` with `v = digits * 10^e`.
fn shortest(v: f64, scratch: &mut String) -> ([u8; 24], usize, i32) {
    scratch.clear();
    let _ = write!(scratch, "{v:e}");
    let (mant, exp) = scratch.split_once('e').unwrap_or((scratch.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = [0u8; 24];
    let mut len = 0;
    for &b in mant.as_bytes() {
        if b.is_ascii_digit() && len < digits.len() {
            digits[len] = b;
            len += 1;
        }
    }
    (digits, len, exp - (len as i32 - 1))
}

fn push_i32(buf: &mut Vec<u8>, v: i32) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, u64::from(v.unsigned_abs()));
}

/// Shared start of both number formats: zero and non-finite values are written as `0` (`None`); otherwise the
/// sign of a negative value is written and the magnitude returned.
fn push_sign(v: f64, buf: &mut Vec<u8>) -> Option<f64> {
    if v == 0.0 || !v.is_finite() {
        buf.push(b'0');
        return None;
    }
    if v < 0.0 {
        buf.push(b'-');
        Some(-v)
    } else {
        Some(v)
    }
}

/// vroom's `dtoa_grisu3` layout (vroom/src/grisu3.c): shortest digits; whole numbers below 10^15 written in
/// full; `0.0057`; `1.2e-4`; `1e-4`. (vroom falls back to `%.17g` in the rare cases grisu3 cannot decide; that
/// fallback is not reproduced.)
pub fn fmt_vroom(v: f64, buf: &mut Vec<u8>, scratch: &mut String) {
    let Some(v) = push_sign(v, buf) else {
        return;
    };
    let (digits, len, d_exp) = shortest(v, scratch);
    let len_i = len as i32;
    let d = &digits[..len];
    if d_exp >= 0 && d_exp <= 2.max(15 - len_i) {
        buf.extend_from_slice(d);
        for _ in 0..d_exp {
            buf.push(b'0');
        }
    } else if d_exp < 0 && len_i + d_exp > -3 && len_i <= -d_exp {
        buf.extend_from_slice(b"0.");
        for _ in 0..(-d_exp - len_i) {
            buf.push(b'0');
        }
        buf.extend_from_slice(d);
    } else if d_exp < 0 && len > 1 {
        let decimals = (-d_exp).min(1.max(len_i - 1)) as usize;
        buf.extend_from_slice(&d[..len - decimals]);
        buf.push(b'.');
        buf.extend_from_slice(&d[len - decimals..]);
        let e = d_exp + decimals as i32;
        if e != 0 {
            buf.push(b'e');
            push_i32(buf, e);
        }
    } else {
        buf.extend_from_slice(d);
        buf.push(b'e');
        push_i32(buf, d_exp);
    }
}

/// R's `as.character(<double>)`: 15 significant digits, fixed notation unless scientific is strictly
/// narrower (`1e-04`, `1e+05`, `0.00012`, `123456`).
pub fn fmt_r(v: f64, buf: &mut Vec<u8>, scratch: &mut String) {
    let Some(v) = push_sign(v, buf) else {
        return;
    };
    scratch.clear();
    let _ = write!(scratch, "{v:.14e}");
    let (mant, exp) = scratch.split_once('e').unwrap_or((scratch.as_str(), "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let nsig = digits.len() as i32;
    let fixed_width = if e >= 0 {
        let int = e + 1;
        let frac = (nsig - int).max(0);
        int + if frac > 0 { 1 + frac } else { 0 }
    } else {
        2 + (-e - 1) + nsig
    };
    let sci_width = nsig + i32::from(nsig > 1) + 2 + if e.abs() >= 100 { 3 } else { 2 };
    if fixed_width <= sci_width {
        if e >= 0 {
            let int = (e + 1) as usize;
            if digits.len() <= int {
                buf.extend_from_slice(&digits);
                for _ in digits.len()..int {
                    buf.push(b'0');
                }
            } else {
                buf.extend_from_slice(&digits[..int]);
                buf.push(b'.');
                buf.extend_from_slice(&digits[int..]);
            }
        } else {
            buf.extend_from_slice(b"0.");
            for _ in 0..(-e - 1) {
                buf.push(b'0');
            }
            buf.extend_from_slice(&digits);
        }
    } else {
        buf.push(digits[0]);
        if digits.len() > 1 {
            buf.push(b'.');
            buf.extend_from_slice(&digits[1..]);
        }
        buf.push(b'e');
        buf.push(if e < 0 { b'-' } else { b'+' });
        let a = e.unsigned_abs();
        if a < 10 {
            buf.push(b'0');
        }
        push_u64(buf, u64::from(a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f64) -> String {
        let mut b = Vec::new();
        fmt_vroom(x, &mut b, &mut String::new());
        String::from_utf8(b).unwrap()
    }

    fn r(x: f64) -> String {
        let mut b = Vec::new();
        fmt_r(x, &mut b, &mut String::new());
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn vroom_number_layout() {
        assert_eq!(v(6.5), "6.5");
        assert_eq!(v(11.0), "11");
        assert_eq!(v(3000.0), "3000");
        assert_eq!(v(100000.0), "100000");
        assert_eq!(v(0.0057), "0.0057");
        assert_eq!(v(0.001), "0.001");
        assert_eq!(v(0.0001), "1e-4");
        assert_eq!(v(0.00012), "1.2e-4");
        assert_eq!(v(0.98), "0.98");
        assert_eq!(v(-124.17697), "-124.17697");
        assert_eq!(v(41.746537), "41.746537");
        assert_eq!(v(123456.7), "123456.7");
        assert_eq!(v(1e20), "1e20");
        assert_eq!(v(0.0), "0");
    }

    #[test]
    fn r_number_layout() {
        assert_eq!(r(23.0), "23");
        assert_eq!(r(0.0001), "1e-04");
        assert_eq!(r(0.0005), "5e-04");
        assert_eq!(r(0.00012), "0.00012");
        assert_eq!(r(0.001), "0.001");
        assert_eq!(r(100000.0), "1e+05");
        assert_eq!(r(123456.0), "123456");
        assert_eq!(r(1200000.0), "1200000");
        assert_eq!(r(10000.0), "10000");
        assert_eq!(r(4.979), "4.979");
        assert_eq!(r(-119.816944), "-119.816944");
        assert_eq!(r(0.1 + 0.2), "0.3");
        assert_eq!(r(1.5e-7), "1.5e-07");
    }
}
