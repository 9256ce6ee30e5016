//! "Next week": the files of a later download of the same portal, derived from a generated set
//! (`generate --next-week-of BASE`). data.ca.gov republishes whole files; between two weekly
//! downloads a few rows change, a few are added and a few go. Of each base file (the SMARTS files
//! and every eSMR yearly file the base holds), every row is kept byte for byte except that, seeded
//! by `--seed` and the file:
//!
//! - [`CHANGED`] of the rows get a new value in one stored column (a monitoring result, an
//!   operator's name, a description, …), in the field's own quoting;
//! - [`ADDED`] of the rows are followed by a copy with a fresh identifier (a new sample, record,
//!   violation, …), so added rows sit among the old ones as in the publisher's order, and every
//!   later row moves;
//! - [`REMOVED`] of the rows are left out.
//!
//! A row is at most one of these. eSMR rows have no identifier but their whole content, so a
//! changed eSMR row is, to the importer, one row gone and one row added.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use rand::RngExt;

use crate::schema::{DataFile, FileSpec};
use crate::util::{Rng, parallel, rng_for, workers};

/// Share of the base rows whose stored value changes.
pub const CHANGED: f64 = 0.01;
/// Share of the base rows followed by a new row.
pub const ADDED: f64 = 0.005;
/// Share of the base rows left out.
pub const REMOVED: f64 = 0.001;

/// Fresh identifiers of added rows start here (above every identifier the generator writes).
const FRESH_ID: u64 = 990_000_000;

/// What one file of the next week holds against its base file.
pub struct Delta {
    pub file: DataFile,
    pub rows: u64,
    pub changed: u64,
    pub added: u64,
    pub removed: u64,
}

/// The column a change rewrites and the column an added row gets a fresh value in.
fn columns(spec: &FileSpec) -> (&'static str, &'static str) {
    match spec.dataset {
        "smarts_industrial_facilities" => ("OPERATOR_NAME", "APP_ID"),
        "smarts_construction_facilities" => ("OWNER_NAME", "APP_ID"),
        "smarts_industrial_monitoring" | "smarts_construction_monitoring" => {
            ("RESULT", "SAMPLE_ID")
        }
        "smarts_violations" => ("DESCRIPTION", "VIOLATION_ID"),
        "smarts_enforcement_actions" => ("DESCRIPTION", "ENFORCEMENT_ID"),
        "smarts_inspections" => ("INSPECTOR_NAME", "INSPECTION_ID"),
        // eSMR: the whole row is its identity.
        _ => ("result", "comments"),
    }
}

/// Writes the next week of every file of `base` into `out`; returns the deltas in manifest
/// order. Each file is read whole, so a few at a time.
pub fn write(base: &Path, out: &Path, seed: u64) -> io::Result<Vec<Delta>> {
    fs::create_dir_all(out)?;
    let files = files_of(base)?;
    parallel(&files, workers(), |file| evolve(base, out, file, seed))
}

/// The files of the generated set in `dir`, in manifest order: every SMARTS file, then the eSMR
/// yearly files it holds, oldest first.
fn files_of(dir: &Path) -> io::Result<Vec<DataFile>> {
    let mut esmr = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Some(f) = entry?.file_name().to_str().and_then(DataFile::esmr_named) {
            esmr.push(f);
        }
    }
    esmr.sort_by_key(|f| f.year);
    Ok(crate::BASE
        .iter()
        .map(|(spec, _)| DataFile::smarts(spec))
        .chain(esmr)
        .collect())
}

fn evolve(base: &Path, out: &Path, file: &DataFile, seed: u64) -> io::Result<Delta> {
    let spec = file.spec;
    let bytes = fs::read(base.join(&file.name))?;
    let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(out.join(&file.name))?);
    let mut rng = rng_for(seed, &format!("next_week:{}", file.name));
    let (changed_col, fresh_col) = columns(spec);
    let index = |name: &str| {
        spec.cols
            .iter()
            .position(|(c, _)| *c == name)
            .ok_or_else(|| io::Error::other(format!("{} has no column {name}", file.name)))
    };
    let (changed_at, fresh_at) = (index(changed_col)?, index(fresh_col)?);
    let records = split_records(&bytes);
    let Some((header, rows)) = records.split_first() else {
        return Err(io::Error::other(format!("{} is empty", file.name)));
    };
    w.write_all(header)?;
    let mut d = Delta {
        file: file.clone(),
        rows: 0,
        changed: 0,
        added: 0,
        removed: 0,
    };
    for (n, row) in rows.iter().enumerate() {
        let roll: f64 = rng.random();
        if roll < REMOVED {
            d.removed += 1;
            continue;
        }
        if roll < REMOVED + CHANGED {
            let fields = field_spans(row);
            let new = changed_value(&row[fields[changed_at].clone()], &mut rng);
            w.write_all(&replace(row, &fields, changed_at, &new))?;
            d.changed += 1;
            d.rows += 1;
            continue;
        }
        w.write_all(row)?;
        d.rows += 1;
        if roll < REMOVED + CHANGED + ADDED {
            let fields = field_spans(row);
            let fresh = if spec.dataset == "esmr" {
                quoted(&format!("added in the next week ({n})"))
            } else {
                let raw = &row[fields[fresh_at].clone()];
                let id = (FRESH_ID + d.added).to_string();
                if raw.first() == Some(&b'"') {
                    quoted(&id)
                } else {
                    id.into_bytes()
                }
            };
            w.write_all(&replace(row, &fields, fresh_at, &fresh))?;
            d.added += 1;
            d.rows += 1;
        }
    }
    w.flush()?;
    Ok(d)
}

/// A new raw value for a changed field: a number moves (a missing one becomes 1), text gets a
/// suffix; the field keeps its quoting.
fn changed_value(raw: &[u8], rng: &mut Rng) -> Vec<u8> {
    let is_quoted = raw.first() == Some(&b'"');
    let text = if is_quoted {
        String::from_utf8_lossy(&raw[1..raw.len() - 1]).replace("\"\"", "\"")
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    let new = match text.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            let factor = 1.0 + f64::from(rng.random_range(1..=9u32)) / 10.0;
            format!("{}", (v * factor * 1000.0).round() / 1000.0 + 0.001)
        }
        Ok(_) => "1".to_owned(),
        Err(_) if text == "NA" || text.is_empty() => "revised".to_owned(),
        Err(_) => format!("{text} (revised)"),
    };
    if is_quoted {
        quoted(&new)
    } else {
        new.into_bytes()
    }
}

fn quoted(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    crate::out::push_quoted(&mut out, s);
    out
}

/// `row` with field `at` (a byte range of `fields`) replaced by `value`.
fn replace(row: &[u8], fields: &[std::ops::Range<usize>], at: usize, value: &[u8]) -> Vec<u8> {
    let span = fields[at].clone();
    let mut out = Vec::with_capacity(row.len() + value.len());
    out.extend_from_slice(&row[..span.start]);
    out.extend_from_slice(value);
    out.extend_from_slice(&row[span.end..]);
    out
}

/// The records of a CSV file as raw byte slices, each with its line ending (a quoted field
/// may hold a newline). Scanned here because the csv crate yields parsed fields, not the bytes
/// (quotes, escapes) that must be copied unchanged; the unit test below and the multiset test in
/// tests.rs read the result back with the csv crate.
fn split_records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                out.push(&bytes[start..=i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < bytes.len() {
        out.push(&bytes[start..]);
    }
    out
}

/// The raw byte range of each field of one record (quotes included, line ending excluded).
fn field_spans(row: &[u8]) -> Vec<std::ops::Range<usize>> {
    let end = row.len()
        - row
            .iter()
            .rev()
            .take_while(|b| **b == b'\n' || **b == b'\r')
            .count();
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, b) in row[..end].iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(start..i);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(start..end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_quotes_and_a_replaced_field_only_changes_itself() {
        let row = b"\"a,b\",NaN,\"say \"\"hi\"\"\",3.5\r\n";
        let f = field_spans(row);
        assert_eq!(f.len(), 4);
        assert_eq!(&row[f[0].clone()], b"\"a,b\"");
        assert_eq!(&row[f[2].clone()], b"\"say \"\"hi\"\"\"");
        let out = replace(row, &f, 1, b"1");
        assert_eq!(out, b"\"a,b\",1,\"say \"\"hi\"\"\",3.5\r\n");
        let mut rng = rng_for(1, "t");
        assert_eq!(changed_value(b"\"NA\"", &mut rng), b"\"revised\"");
        assert_eq!(
            changed_value(b"\"Acme \"\"East\"\"\"", &mut rng),
            b"\"Acme \"\"East\"\" (revised)\""
        );
        let moved = changed_value(b"2.5", &mut rng);
        assert!(moved.first() != Some(&b'"') && moved != b"2.5");
        assert_eq!(changed_value(b"NaN", &mut rng), b"1");
    }

    #[test]
    fn records_split_at_newlines_outside_quotes() {
        let file = b"h1,h2\n\"x\ny\",1\n\"z\",2";
        let r = split_records(file);
        assert_eq!(
            r,
            vec![&b"h1,h2\n"[..], &b"\"x\ny\",1\n"[..], &b"\"z\",2"[..]]
        );
    }
}
