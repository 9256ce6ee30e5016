//! The dataset registry: every published file is declared here once — its columns by header
//! name (with the aliases older layouts use), their types, the key that identifies a row, and
//! the table it lands in. Staging, importing and validation are driven by these declarations.

use super::datasets;
use super::parse::{self, ValueError};
use crate::domain::wdid;
use Kind::*;

/// How a column's text is read and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A WDID: stored exactly as published; nonstandard shapes are flagged, not refused.
    Wdid,
    Flag,
    Date,
    Time,
    /// Oracle timestamp (raw SMARTS) or an ISO date (portal files convert it).
    Timestamp,
    Numeric,
    Integer,
    Latitude,
    Longitude,
}

impl Kind {
    /// The Postgres type of the staging/target column.
    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Text | Kind::Wdid => "text",
            Kind::Flag => "boolean",
            Kind::Date => "date",
            Kind::Time => "time",
            Kind::Timestamp => "timestamp",
            Kind::Numeric | Kind::Latitude | Kind::Longitude => "numeric",
            Kind::Integer => "bigint",
        }
    }
}

/// One declared column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Target column name: the official dictionary name, lowercased.
    pub name: &'static str,
    /// Other header spellings seen in published layouts (compared case-insensitively).
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    /// `Required`: the file is rejected without it. `Optional`: absent in some real layouts.
    pub presence: Presence,
    /// A row without a value here cannot be identified and is quarantined.
    pub not_null: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
}

/// One published dataset.
#[derive(Debug)]
pub struct Dataset {
    /// Stable name used in manifests, S3 keys, messages and logs.
    pub name: &'static str,
    /// Target table (see migrations/); has the bookkeeping columns described in docs/SCHEMA.md.
    pub table: &'static str,
    pub columns: &'static [Column],
    /// Columns whose values identify a source row (duplicates get increasing `row_ord`).
    pub key: &'static [&'static str],
    /// Dataset-specific steps of the merge (most datasets have none).
    pub merge: Merge,
}

/// Dataset-specific SQL around the generic merge. Statements see the chunk's rows in the
/// temporary table `stage_rows`; `$1` is the run id.
#[derive(Debug, Clone, Copy)]
pub struct Merge {
    /// Run before the merge, in order (e.g. upsert dimension rows derived from the chunk).
    pub before: &'static [&'static str],
    /// Extra target columns computed from the staged row `s` (e.g. resolved foreign keys).
    pub derived: &'static [(&'static str, &'static str)],
    /// For datasets published as several files: which rows a file's scope covers (withdrawal
    /// stays within them).
    pub scope: Option<ScopeRule>,
}

/// Which rows of a dataset published as several files one file covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeRule {
    /// The scope is a year (`2025`): the rows whose date `column` falls in it. Read as a range
    /// of the column (`$2 <= t.column < $3`), so that a year's withdrawal reads that year's rows
    /// through the column's index, not the whole table once per year file.
    Year { column: &'static str },
}

impl ScopeRule {
    /// The predicate over target row `t`, with the bounds as parameters `$2` and `$3`.
    pub fn predicate(self) -> String {
        match self {
            ScopeRule::Year { column } => format!("t.{column} >= $2 and t.{column} < $3"),
        }
    }

    /// The bounds of `scope` (`None`: the scope is not one this rule reads).
    pub fn bounds(self, scope: &str) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
        match self {
            ScopeRule::Year { .. } => {
                let year: i32 = scope
                    .trim()
                    .parse()
                    .ok()
                    .filter(|y| (1000..=9998).contains(y))?;
                Some((
                    chrono::NaiveDate::from_ymd_opt(year, 1, 1)?,
                    chrono::NaiveDate::from_ymd_opt(year + 1, 1, 1)?,
                ))
            }
        }
    }
}

/// No dataset-specific steps.
pub const PLAIN: Merge = Merge {
    before: &[],
    derived: &[],
    scope: None,
};

/// eSMR: each chunk upserts the dimension rows it mentions (regions, facilities, locations,
/// parameters, analytical methods; latest published values win, rows locked in key order so
/// concurrent chunks cannot deadlock), each sample gets its `parameter_id`, and a year file
/// withdraws only rows sampled in its year.
pub const ESMR_MERGE: Merge = Merge {
    before: &[
        r"insert into esmr_region (code, name)
         select distinct on (code) code, name
           from (select substring(region from '^Region\s+(\S+)') as code,
                        substring(region from '\s-\s(.*)$') as name
                   from stage_rows) r
          where code is not null
          order by code
         on conflict (code) do nothing",
        r"insert into esmr_facility (facility_place_id, facility_name, region_code, receiving_water_body, first_run_id, last_run_id)
         select distinct on (facility_place_id)
                facility_place_id, facility_name, substring(region from '^Region\s+(\S+)'), receiving_water_body, $1, $1
           from stage_rows where facility_place_id is not null
          order by facility_place_id, sampling_date desc nulls last
         on conflict (facility_place_id) do update
            set facility_name = coalesce(excluded.facility_name, esmr_facility.facility_name),
                region_code = coalesce(excluded.region_code, esmr_facility.region_code),
                receiving_water_body = coalesce(excluded.receiving_water_body, esmr_facility.receiving_water_body),
                last_run_id = excluded.last_run_id",
        "insert into esmr_location (location_place_id, facility_place_id, location, location_place_type,
                                    latitude, longitude, location_desc, first_run_id, last_run_id)
         select distinct on (location_place_id)
                location_place_id, facility_place_id, location, location_place_type,
                latitude, longitude, location_desc, $1, $1
           from stage_rows where location_place_id is not null
          order by location_place_id, sampling_date desc nulls last
         on conflict (location_place_id) do update
            set location = coalesce(excluded.location, esmr_location.location),
                location_place_type = coalesce(excluded.location_place_type, esmr_location.location_place_type),
                latitude = coalesce(excluded.latitude, esmr_location.latitude),
                longitude = coalesce(excluded.longitude, esmr_location.longitude),
                location_desc = coalesce(excluded.location_desc, esmr_location.location_desc),
                last_run_id = excluded.last_run_id",
        "insert into esmr_parameter (name)
         select distinct parameter from stage_rows where parameter is not null order by 1
         on conflict (name) do nothing",
        "insert into esmr_analytical_method (code, name)
         select distinct on (analytical_method_code) analytical_method_code, analytical_method
           from stage_rows where analytical_method_code is not null
          order by analytical_method_code, analytical_method nulls last
         on conflict (code) do update set name = coalesce(excluded.name, esmr_analytical_method.name)",
    ],
    derived: &[(
        "parameter_id",
        "(select p.id from esmr_parameter p where p.name = s.parameter)",
    )],
    scope: Some(ScopeRule::Year {
        column: "sampling_date",
    }),
};

/// Every dataset the pipeline knows.
pub static DATASETS: &[&Dataset] = &[
    &datasets::SMARTS_INDUSTRIAL_FACILITIES,
    &datasets::SMARTS_CONSTRUCTION_FACILITIES,
    &datasets::SMARTS_INDUSTRIAL_MONITORING,
    &datasets::SMARTS_CONSTRUCTION_MONITORING,
    &datasets::SMARTS_VIOLATIONS,
    &datasets::SMARTS_ENFORCEMENT_ACTIONS,
    &datasets::SMARTS_INSPECTIONS,
    &datasets::ESMR,
];

/// Looks a dataset up by its manifest name.
pub fn dataset(name: &str) -> Option<&'static Dataset> {
    DATASETS.iter().copied().find(|d| d.name == name)
}

/// Header names are compared without BOM, surrounding space or case.
pub fn normalize_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .trim()
        .trim_matches('"')
        .to_ascii_uppercase()
        .replace(' ', "_")
}

/// Where each declared column sits in one file's header.
#[derive(Debug, Clone)]
pub struct HeaderMap {
    /// For each declared column (in declaration order), its index in the source record.
    pub positions: Vec<Option<usize>>,
    /// Source headers that match no declared column (kept in the sync log; their values are not stored).
    pub extra: Vec<String>,
    /// Declared optional columns this layout lacks (stored as NULL).
    pub absent_optional: Vec<&'static str>,
    /// Number of fields in the header.
    pub width: usize,
}

/// The layout does not carry the dataset, or carries it ambiguously.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Names every missing required column.
    #[error("{dataset}: header lacks required column(s) {}", missing.join(", "))]
    Missing {
        dataset: &'static str,
        missing: Vec<String>,
    },
    /// A key column is named twice: which field identifies the row cannot be told.
    #[error("{dataset}: header names key column {column} more than once (fields {})",
            fields.iter().map(usize::to_string).collect::<Vec<_>>().join(" and "))]
    DuplicateKey {
        dataset: &'static str,
        column: String,
        /// 1-based field positions.
        fields: Vec<usize>,
    },
}

impl Dataset {
    /// Matches a file's header against the declared columns, by name and alias.
    pub fn map_header<S: AsRef<str>>(&self, header: &[S]) -> Result<HeaderMap, LayoutError> {
        let names: Vec<String> = header
            .iter()
            .map(|h| normalize_header(h.as_ref()))
            .collect();
        for k in self.key {
            let fields: Vec<usize> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.eq_ignore_ascii_case(k))
                .map(|(i, _)| i + 1)
                .collect();
            if fields.len() > 1 {
                return Err(LayoutError::DuplicateKey {
                    dataset: self.name,
                    column: k.to_ascii_uppercase(),
                    fields,
                });
            }
        }
        let mut used = vec![false; names.len()];
        let mut positions = Vec::with_capacity(self.columns.len());
        let mut missing = Vec::new();
        let mut absent_optional = Vec::new();
        for c in self.columns {
            let wanted = std::iter::once(c.name.to_ascii_uppercase())
                .chain(c.aliases.iter().map(|a| a.to_ascii_uppercase()));
            let pos = wanted
                .filter_map(|w| names.iter().position(|n| *n == w))
                .find(|&p| !used[p]);
            match (pos, c.presence) {
                (Some(p), _) => {
                    used[p] = true;
                    positions.push(Some(p));
                }
                (None, Presence::Optional) => {
                    absent_optional.push(c.name);
                    positions.push(None);
                }
                (None, Presence::Required) => {
                    missing.push(c.name.to_ascii_uppercase());
                    positions.push(None);
                }
            }
        }
        if !missing.is_empty() {
            return Err(LayoutError::Missing {
                dataset: self.name,
                missing,
            });
        }
        let extra = names
            .iter()
            .zip(&used)
            .filter(|(n, u)| !**u && !n.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        Ok(HeaderMap {
            positions,
            extra,
            absent_optional,
            width: names.len(),
        })
    }

    /// The column whose value identifies a row's record to a reader of the raw line (the
    /// first identifying text column: APP_ID, or the eSMR facility): a row whose value occurs
    /// in no unreadable line of a file is provably not among them.
    pub fn identity_column(&self) -> &'static str {
        self.columns
            .iter()
            .find(|c| c.not_null && c.kind == Kind::Text)
            .map(|c| c.name)
            .unwrap_or_else(|| panic!("{}: no identifying text column", self.name))
    }

    /// Indexes (into `columns`) of the key columns.
    pub fn key_indexes(&self) -> Vec<usize> {
        self.key
            .iter()
            .map(|k| {
                self.columns
                    .iter()
                    .position(|c| c.name == *k)
                    .unwrap_or_else(|| panic!("{}: key column {k} is not declared", self.name))
            })
            .collect()
    }
}

/// A column value after typed parsing, as text ready for COPY (`None` is SQL NULL).
pub type Normalized = Option<String>;

/// Reads one raw field as the column's kind. Value problems come back as errors; the caller
/// decides whether that nulls the value (and flags it) or quarantines the row.
pub fn normalize(column: &Column, raw: &str) -> Result<Normalized, ValueError> {
    Ok(match column.kind {
        Text | Wdid => parse::text(raw).map(str::to_owned),
        Flag => parse::flag(raw)?.map(|b| if b { "t" } else { "f" }.to_owned()),
        Date => parse::date(raw)?.map(|d| d.to_string()),
        Time => parse::time_of_day(raw)?,
        Timestamp => parse::oracle_timestamp(raw)?.map(|t| t.to_string()),
        Numeric => parse::number(raw)?.map(str::to_owned),
        Integer => parse::integer(raw)?.map(|i| i.to_string()),
        Latitude => parse::latitude(raw)?.map(str::to_owned),
        Longitude => parse::longitude(raw)?.map(str::to_owned),
    })
}

/// A remark on a value that was stored as published but looks wrong (e.g. a nonstandard WDID).
pub fn remark(column: &Column, value: &str) -> Option<String> {
    match column.kind {
        Wdid if !wdid::is_standard(value) => Some(format!("nonstandard WDID {value:?}")),
        _ => None,
    }
}

/// Feeds normalized values to XXH3 unambiguously: NULL and "" differ, and value boundaries
/// cannot shift (`"ab","c"` ≠ `"a","bc"`).
fn hashed<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> xxhash_rust::xxh3::Xxh3 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for v in values {
        match v {
            Some(s) => {
                h.update(&[1]);
                h.update(s.as_bytes());
            }
            None => h.update(&[0]),
        }
        h.update(&[0x1f]);
    }
    h
}

/// The 64-bit key hash of a row: stable across layouts because it hashes normalized values.
pub fn key_hash<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> i64 {
    i64::from_ne_bytes(hashed(values).digest().to_ne_bytes())
}

/// The 128-bit content hash of a row's normalized values (change detection).
pub fn row_hash<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> [u8; 16] {
    hashed(values).digest128().to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_scope_is_the_range_of_its_year_and_any_other_scope_none() {
        let rule = ScopeRule::Year {
            column: "sampling_date",
        };
        let d = |y, m, day| chrono::NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(rule.bounds("2025"), Some((d(2025, 1, 1), d(2026, 1, 1))));
        assert_eq!(rule.bounds(" 2006 "), Some((d(2006, 1, 1), d(2007, 1, 1))));
        for other in ["region-1", "", "25", "2025-01", "99999"] {
            assert_eq!(rule.bounds(other), None, "{other:?}");
        }
        assert_eq!(
            rule.predicate(),
            "t.sampling_date >= $2 and t.sampling_date < $3"
        );
    }
    use crate::import::datasets::{SMARTS_INDUSTRIAL_FACILITIES, col};

    const RAW_2025: &str = "PERMIT_TYPE\tAPP_ID\tWDID\tSTATUS\tNOI_PROCESSED_DATE\tNOT_EFFECTIVE_DATE\tREGION_BOARD\tCOUNTY\tOPERATOR_NAME\tFACILITY_NAME\tFACILITY_ADDRESS\tFACILITY_ADDRESS_2\tFACILITY_CITY\tFACILITY_STATE\tFACILITY_ZIP\tFACILITY_LATITUDE\tFACILITY_LONGITUDE\tFACILITY_COUNTY\tFACILITY_CONTACT_FIRST_NAME\tFACILITY_CONTACT_LAST_NAME\tFACILITY_TITLE\tFACILITY_PHONE\tFACILITY_EMAIL\tFACILITY_TOTAL_SIZE\tFACILITY_TOTAL_SIZE_UNIT\tFACILITY_AREA_ACTIVITY\tFACILITY_AREA_ACTIVITY_UNIT\tPERCENT_OF_SITE_IMPERVIOUSNESS\tPRIMARY_SIC\tSECONDARY_SIC\tTERTIARY_SIC\tRECEIVING_WATER_NAME\tINDIRECTLY\tDIRECTLY\tCERTIFIER_BY\tCERTIFIER_TITLE\tCERTIFICATION_DATE\tQUESTION_TMDL_ANSWER";

    fn header(line: &str, sep: char) -> Vec<String> {
        line.split(sep).map(str::to_owned).collect()
    }

    #[test]
    fn both_real_layouts_map_every_declared_column() {
        let raw = header(RAW_2025, '\t');
        let m = SMARTS_INDUSTRIAL_FACILITIES.map_header(&raw).unwrap();
        assert!(m.positions.iter().all(Option::is_some));
        assert!(m.extra.is_empty());

        // 2019 portal: comma separated, no QUESTION_TMDL_ANSWER, and here with a BOM and quotes.
        let portal: Vec<String> = raw[..37]
            .iter()
            .enumerate()
            .map(|(i, h)| {
                if i == 0 {
                    format!("\u{feff}\"{h}\"")
                } else {
                    format!("\"{h}\"")
                }
            })
            .collect();
        let m = SMARTS_INDUSTRIAL_FACILITIES.map_header(&portal).unwrap();
        assert_eq!(m.absent_optional, vec!["question_tmdl_answer"]);
        assert_eq!(m.positions[1], Some(1));
    }

    #[test]
    fn columns_match_by_name_not_position_and_aliases_count() {
        let mut raw = header(RAW_2025, '\t');
        raw.swap(1, 2);
        raw[6] = "regional_board".into();
        raw.push("SOMETHING_NEW".into());
        let m = SMARTS_INDUSTRIAL_FACILITIES.map_header(&raw).unwrap();
        assert_eq!(m.positions[1], Some(2), "APP_ID found where it moved");
        assert_eq!(
            m.positions[6],
            Some(6),
            "REGIONAL_BOARD is an alias of REGION_BOARD"
        );
        assert_eq!(m.extra, vec!["SOMETHING_NEW".to_string()]);
    }

    #[test]
    fn a_wrong_layout_names_every_missing_column() {
        let err = SMARTS_INDUSTRIAL_FACILITIES
            .map_header(&["WDID", "APP_ID", "PARAMETER", "RESULT"])
            .unwrap_err();
        let LayoutError::Missing { missing, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(missing.contains(&"FACILITY_NAME".to_string()));
        assert!(missing.contains(&"STATUS".to_string()));
        assert!(!missing.contains(&"QUESTION_TMDL_ANSWER".to_string()));
        assert!(err.to_string().starts_with(
            "smarts_industrial_facilities: header lacks required column(s) PERMIT_TYPE, STATUS"
        ));
    }

    #[test]
    fn a_key_column_named_twice_is_a_layout_error() {
        let mut raw = header(RAW_2025, '\t');
        raw.push(" app_id ".into());
        let err = SMARTS_INDUSTRIAL_FACILITIES.map_header(&raw).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "smarts_industrial_facilities: header names key column APP_ID more than once (fields 2 and {})",
                raw.len()
            )
        );
    }

    #[test]
    fn key_hash_ignores_layout_spelling_of_missing_values() {
        let a = key_hash([Some("178202"), Some("1 08I001442")]);
        assert_eq!(a, key_hash([Some("178202"), Some("1 08I001442")]));
        assert_ne!(a, key_hash([Some("178202"), None]));
        assert_ne!(
            key_hash([Some("ab"), Some("c")]),
            key_hash([Some("a"), Some("bc")])
        );
        assert_ne!(key_hash([Some(""), None]), key_hash([None, Some("")]));
    }

    #[test]
    fn normalize_reads_each_kind() {
        let c = |kind| Column {
            kind,
            ..col("x", kind)
        };
        assert_eq!(
            normalize(&c(Date), "03/27/1992").unwrap().as_deref(),
            Some("1992-03-27")
        );
        assert_eq!(
            normalize(&c(Date), "1992-03-27").unwrap().as_deref(),
            Some("1992-03-27")
        );
        assert_eq!(normalize(&c(Flag), "Y").unwrap().as_deref(), Some("t"));
        assert_eq!(
            normalize(&c(Timestamp), "06-FEB-15 03.58.01.815000 PM")
                .unwrap()
                .as_deref(),
            Some("2015-02-06 15:58:01.815")
        );
        assert_eq!(
            normalize(&c(Timestamp), "2015-02-06").unwrap().as_deref(),
            Some("2015-02-06 00:00:00")
        );
        assert_eq!(normalize(&c(Text), "NA").unwrap(), None);
        assert!(normalize(&c(Latitude), "123").is_err());
    }

    #[test]
    fn every_dataset_declares_its_key_columns() {
        for d in DATASETS {
            assert_eq!(d.key_indexes().len(), d.key.len(), "{}", d.name);
        }
    }
}
