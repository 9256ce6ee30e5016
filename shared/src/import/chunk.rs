//! Staged chunks as the importer reads them: each chunk is a CSV whose first three columns
//! ([`CHUNK_PREFIX`]) carry the source line, row key and ordinal the stager gave the record,
//! followed by the source fields; [`parse_record`] reads one record through the dataset's
//! typed parsers.

use super::issue::{DataIssue, IssueAction};
use super::registry::{self, Dataset, Presence};
use super::text;

/// Chunk files carry three bookkeeping columns before the source fields.
pub const CHUNK_PREFIX: [&str; 3] = ["__line", "__key", "__ord"];

/// Identifies a chunk for loading and for data-quality records.
pub struct ChunkSource<'a> {
    pub dataset: &'static Dataset,
    pub run_id: i64,
    pub file_id: i64,
    /// The source file (URL) the chunk came from, as recorded on quarantined rows.
    pub source_file: &'a str,
    pub s3_key: &'a str,
    /// Insert without comparing and keep no seen-set (`crate::import::first_load`).
    pub first_load: bool,
}

/// One parsed chunk record, ready to be written to COPY or quarantined.
pub(crate) enum Parsed {
    Row {
        line: i64,
        key: i64,
        ord: i32,
        values: Vec<registry::Normalized>,
        issues: Vec<DataIssue>,
    },
    Quarantined(DataIssue),
}

/// Maps a chunk header to the dataset's columns.
pub(crate) fn chunk_header_map(
    dataset: &Dataset,
    header: &[String],
) -> Result<registry::HeaderMap, String> {
    if header.len() < CHUNK_PREFIX.len() || header[..CHUNK_PREFIX.len()] != CHUNK_PREFIX {
        return Err(format!(
            "chunk header must start with {}",
            CHUNK_PREFIX.join(",")
        ));
    }
    dataset
        .map_header(&header[CHUNK_PREFIX.len()..])
        .map_err(|e| e.to_string())
}

/// Reads one chunk record: bookkeeping prefix, then every declared column through its parser.
/// A record is quarantined when it cannot be stored faithfully (wrong field count, a key
/// column missing or unreadable); a bad value elsewhere is stored as NULL and reported.
pub(crate) fn parse_record(
    dataset: &Dataset,
    map: &registry::HeaderMap,
    record: &csv_async::ByteRecord,
) -> Result<Parsed, String> {
    let field = |i: usize| {
        record
            .get(i)
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
    };
    let prefix: Vec<String> = (0..CHUNK_PREFIX.len())
        .map(|i| field(i).into_owned())
        .collect();
    let (Ok(line), Ok(key), Ok(ord)) = (
        prefix[0].parse::<i64>(),
        prefix[1].parse::<i64>(),
        prefix[2].parse::<i32>(),
    ) else {
        return Err(format!(
            "chunk record has a malformed bookkeeping prefix {prefix:?}"
        ));
    };
    // Every field as text Postgres stores: not valid UTF-8 → the declared fallback encoding,
    // NUL removed; reported below for the declared columns it happened in.
    let decoded: Vec<text::Decoded<'_>> = record
        .iter()
        .skip(CHUNK_PREFIX.len())
        .map(text::decode)
        .collect();
    let source_fields: Vec<&str> = decoded.iter().map(|d| d.text.as_ref()).collect();
    let raw = || raw_text(&source_fields);
    let issue = |column: Option<&str>, action, reason: String, value: Option<String>| DataIssue {
        line,
        column: column.map(str::to_owned),
        action,
        reason,
        value,
        raw: Some(raw()),
    };
    if source_fields.len() != map.width {
        return Ok(Parsed::Quarantined(issue(
            None,
            IssueAction::RowQuarantined,
            format!(
                "expected {} fields, found {}",
                map.width,
                source_fields.len()
            ),
            None,
        )));
    }
    let mut issues = Vec::new();
    let mut values = Vec::with_capacity(dataset.columns.len());
    for (column, pos) in dataset.columns.iter().zip(&map.positions) {
        let raw_value = pos.map(|p| source_fields[p]).unwrap_or_default();
        if let Some(remark) = pos.and_then(|p| decoded[p].remark()) {
            issues.push(issue(
                Some(column.name),
                IssueAction::ValueFlagged,
                remark,
                Some(raw_value.to_owned()),
            ));
        }
        let value = match registry::normalize(column, raw_value) {
            Ok(v) => v,
            Err(e) if column.not_null => {
                return Ok(Parsed::Quarantined(issue(
                    Some(column.name),
                    IssueAction::RowQuarantined,
                    e.to_string(),
                    Some(raw_value.to_owned()),
                )));
            }
            Err(e) => {
                issues.push(issue(
                    Some(column.name),
                    IssueAction::ValueNulled,
                    e.to_string(),
                    Some(raw_value.to_owned()),
                ));
                None
            }
        };
        match &value {
            None if column.not_null => {
                return Ok(Parsed::Quarantined(issue(
                    Some(column.name),
                    IssueAction::RowQuarantined,
                    format!(
                        "{} is missing: the row cannot be identified",
                        column.name.to_ascii_uppercase()
                    ),
                    Some(raw_value.to_owned()),
                )));
            }
            None if column.kind == registry::Kind::Wdid
                && column.presence == Presence::Required =>
            {
                issues.push(issue(
                    Some(column.name),
                    IssueAction::ValueFlagged,
                    "WDID is missing".into(),
                    Some(raw_value.to_owned()),
                ));
            }
            Some(v) => {
                if let Some(reason) = registry::remark(column, v) {
                    issues.push(issue(
                        Some(column.name),
                        IssueAction::ValueFlagged,
                        reason,
                        Some(v.clone()),
                    ));
                }
            }
            None => {}
        }
        values.push(value);
    }
    Ok(Parsed::Row {
        line,
        key,
        ord,
        values,
        issues,
    })
}

/// The record as text, for the data-quality table: the source fields as CSV.
fn raw_text(fields: &[&str]) -> String {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    if w.write_record(fields.iter().map(|f| f.as_bytes())).is_err() {
        return fields.join(",");
    }
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).trim_end().to_owned())
        .unwrap_or_default()
}
