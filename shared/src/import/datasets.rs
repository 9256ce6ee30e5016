//! Declarations of the SMARTS and eSMR datasets besides industrial facilities (which lives in
//! `registry.rs`): six SMARTS portal files and the eSMR yearly files.
//!
//! Every declared column is a data column of the target table (see `migrations/`), named as the
//! official data dictionary names it (lowercased, misspellings included) and in the same order.
//! Columns are matched by header name, never by position, so the aliases below cover the other
//! spellings that real layouts use:
//! * raw SMARTS downloads (the `*_SMARTS` dictionaries) spell some headers differently from the
//!   portal files (`CONSTRUCTION_COMMERCIAL`);
//! * the portal renamed the region column of the facility files (`REGION_BOARD`/`REGION`) to
//!   `REGIONAL_BOARD` in the PLACE block it appends to violations, enforcement and inspections;
//!   raw downloads of those three files lack the PLACE block, so it is optional there;
//! * the raw CIWQS eSMR flat file spells `latitude` as `lattitude`.
//!
//! Sources: the dictionaries in `../shared/data/ca-waterboards-data-dictionaries/` and
//! `../shared/data/real/CA-Data-Portal-Uploads/dictionaries/`, and `../shared/docs/DATASETS.md`.

use super::registry::{Column, Dataset, ESMR_MERGE, Kind, PLAIN, Presence};

use Kind::*;

/// A required column.
pub(crate) const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        aliases: &[],
        kind,
        presence: Presence::Required,
        not_null: false,
    }
}

/// A required column that identifies the row: a row without a value here is quarantined.
pub(crate) const fn key(name: &'static str, kind: Kind) -> Column {
    Column {
        not_null: true,
        ..col(name, kind)
    }
}

/// A required column that some layouts spell differently.
pub(crate) const fn alias(
    name: &'static str,
    kind: Kind,
    aliases: &'static [&'static str],
) -> Column {
    Column {
        aliases,
        ..col(name, kind)
    }
}

/// A column that some real layouts lack (stored as NULL there).
pub(crate) const fn optional(name: &'static str, kind: Kind) -> Column {
    Column {
        presence: Presence::Optional,
        ..col(name, kind)
    }
}

/// An optional column that some layouts spell differently.
pub(crate) const fn optional_alias(
    name: &'static str,
    kind: Kind,
    aliases: &'static [&'static str],
) -> Column {
    Column {
        aliases,
        ..optional(name, kind)
    }
}

/// The columns of a violations/enforcement/inspections file: its own columns followed by the
/// 16-column PLACE block the portal appends by joining the facility files on (APP_ID, WDID).
/// Raw SMARTS downloads have no PLACE block, so all 16 are optional. The portal renamed the
/// facility files' REGION_BOARD (industrial) / REGION (construction) to REGIONAL_BOARD.
macro_rules! with_place_block {
    ($($own:expr),* $(,)?) => {
        &[
            $($own,)*
            optional("permit_type", Text),
            optional_alias("regional_board", Text, &["REGION_BOARD", "REGION"]),
            optional("place_name", Text),
            optional("place_address", Text),
            optional("place_address_2", Text),
            optional("place_city", Text),
            optional("place_state", Text),
            optional("place_zip", Text),
            optional("place_latitude", Latitude),
            optional("place_longitude", Longitude),
            optional("place_county", Text),
            optional("place_total_size", Numeric),
            optional("place_total_size_unit", Text),
            optional("receiving_water_name", Text),
            optional("indirectly", Flag),
            optional("directly", Flag),
        ]
    };
}

/// SMARTS industrial facilities ("Industrial_Application_Specific_Data"): the 2019 portal CSV,
/// the current portal CSV and the raw SMARTS TSV all match these by header name.
pub static SMARTS_INDUSTRIAL_FACILITIES: Dataset = Dataset {
    name: "smarts_industrial_facilities",
    table: "smarts_industrial_facility",
    key: &["app_id", "wdid"],
    merge: PLAIN,
    columns: &[
        col("permit_type", Text),
        key("app_id", Text),
        col("wdid", Wdid),
        col("status", Text),
        col("noi_processed_date", Date),
        col("not_effective_date", Date),
        alias("region_board", Text, &["REGION", "REGIONAL_BOARD"]),
        col("county", Text),
        col("operator_name", Text),
        col("facility_name", Text),
        col("facility_address", Text),
        col("facility_address_2", Text),
        col("facility_city", Text),
        col("facility_state", Text),
        col("facility_zip", Text),
        col("facility_latitude", Latitude),
        col("facility_longitude", Longitude),
        col("facility_county", Text),
        col("facility_contact_first_name", Text),
        col("facility_contact_last_name", Text),
        col("facility_title", Text),
        col("facility_phone", Text),
        col("facility_email", Text),
        col("facility_total_size", Numeric),
        col("facility_total_size_unit", Text),
        col("facility_area_activity", Numeric),
        col("facility_area_activity_unit", Text),
        col("percent_of_site_imperviousness", Numeric),
        col("primary_sic", Text),
        col("secondary_sic", Text),
        col("tertiary_sic", Text),
        col("receiving_water_name", Text),
        col("indirectly", Flag),
        col("directly", Flag),
        col("certifier_by", Text),
        col("certifier_title", Text),
        col("certification_date", Timestamp),
        optional("question_tmdl_answer", Text),
    ],
};

/// SMARTS construction sites ("Construction_Application_Specific_Data", 80 columns). The raw
/// SMARTS sheet spells the commercial flag CONSTRUCTION_COMMERCIAL (the portal keeps the
/// publisher's CONSTRUCTION_COMMERTIAL) and adds OWNER_ADDRESS … OWNER_EMAIL, which are not stored.
pub static SMARTS_CONSTRUCTION_FACILITIES: Dataset = Dataset {
    name: "smarts_construction_facilities",
    table: "smarts_construction_facility",
    key: &["app_id", "wdid"],
    merge: PLAIN,
    columns: &[
        col("permit_type", Text),
        key("app_id", Text),
        col("wdid", Wdid),
        col("status", Text),
        col("noi_processed_date", Date),
        col("not_effective_date", Date),
        alias("region", Text, &["REGION_BOARD", "REGIONAL_BOARD"]),
        col("county", Text),
        col("owner_name", Text),
        col("developer_name", Text),
        col("developer_address", Text),
        col("developer_address_2", Text),
        col("developer_city", Text),
        col("developer_state", Text),
        col("developer_zip", Text),
        col("developer_contact_first_name", Text),
        col("developer_contact_last_name", Text),
        col("developer_title", Text),
        col("developer_phone", Text),
        col("developer_email", Text),
        col("site_name", Text),
        col("site_address", Text),
        col("site_address_2", Text),
        col("site_city", Text),
        col("site_state", Text),
        col("site_zip", Text),
        col("site_latitude", Latitude),
        col("site_longitude", Longitude),
        col("site_county", Text),
        col("site_contact_first_name", Text),
        col("site_contact_last_name", Text),
        col("site_title", Text),
        col("site_phone", Text),
        col("site_email", Text),
        col("site_total_size", Numeric),
        col("site_total_size_unit", Text),
        col("site_total_disturbed_acreage", Numeric),
        col("total_disturbed_acreage_unit", Text),
        col("percent_total_disturbed", Numeric),
        col("imperviousness_before", Numeric),
        col("imperviousness_after", Numeric),
        col("tract_numbers", Text),
        col("mile_post_marker", Text),
        col("part_of_a_larger_common_plan", Flag),
        col("name_of_plan_or_development", Text),
        col("construction_commencement_date", Date),
        col("complete_grading_date", Date),
        col("complete_project_date", Date),
        col("type_of_construction", Text),
        col("construction_residential", Flag),
        alias(
            "construction_commertial",
            Flag,
            &["CONSTRUCTION_COMMERCIAL"],
        ),
        col("construction_industrial", Flag),
        col("construction_reconstruction", Flag),
        col("construction_transportation", Flag),
        col("type_of_construction_utility", Flag),
        col("construction_other", Flag),
        col("construction_other_desription", Text),
        col("construction_above_ground", Flag),
        col("construction_below_ground", Flag),
        col("construction_gas_line", Flag),
        col("construction_water_sewer_line", Flag),
        col("cons_communication_line", Flag),
        col("cons_cable_line", Flag),
        col("cons_electrical_line", Flag),
        col("r_factor", Numeric),
        col("k_factor", Numeric),
        col("ls_factor", Numeric),
        col("watershed_erosion_estimate", Numeric),
        col("site_sediment_risk_factor", Text),
        col("receiving_water_risk", Text),
        col("project_combined_risk", Text),
        col("receiving_water_name", Text),
        col("indirectly", Flag),
        col("directly", Flag),
        col("qsd_first_name", Text),
        col("qsd_last_name", Text),
        col("qsd_certification_number", Text),
        col("certifier_by", Text),
        col("certifier_title", Text),
        col("certification_date", Timestamp),
    ],
};

/// SMARTS industrial monitoring results ("Industrial_Ad_Hoc_Reports_-_Parameter_Data", 27
/// columns): one row per parameter of one sample. The portal file and the 2025 raw SMARTS TSV
/// share this layout; REPORT_YEAR (the construction spelling) is accepted for REPORTING_YEAR.
pub static SMARTS_INDUSTRIAL_MONITORING: Dataset = Dataset {
    name: "smarts_industrial_monitoring",
    table: "smarts_industrial_monitoring",
    key: &["app_id", "wdid", "report_id", "sample_id", "parameter"],
    merge: PLAIN,
    columns: &[
        col("permit_type", Text),
        col("wdid", Wdid),
        key("app_id", Text),
        alias("reporting_year", Integer, &["REPORT_YEAR"]),
        col("report_id", Text),
        col("event_type", Text),
        col("monitoring_location_name", Text),
        col("monitoring_location_type", Text),
        col("monitor_location_description", Text),
        col("monitoring_latitude", Latitude),
        col("monitoring_longitude", Longitude),
        col("sample_id", Text),
        col("sample_date", Date),
        col("sample_time", Time),
        col("discharge_start_date", Date),
        col("discharge_start_time", Time),
        col("parameter", Text),
        col("result_qualifier", Text),
        col("result", Numeric),
        col("units", Text),
        col("analytical_method", Text),
        col("mdl", Numeric),
        col("rl", Numeric),
        col("discharge_end_date", Date),
        col("discharge_end_time", Time),
        col("certifier_name", Text),
        col("certified_date", Timestamp),
    ],
};

/// SMARTS construction monitoring results ("Construction_Ad_Hoc_Reports_-_Parameter_Data", 30
/// columns). REPORTING_YEAR (the industrial spelling) is accepted for REPORT_YEAR.
pub static SMARTS_CONSTRUCTION_MONITORING: Dataset = Dataset {
    name: "smarts_construction_monitoring",
    table: "smarts_construction_monitoring",
    key: &["app_id", "wdid", "report_id", "sample_id", "parameter"],
    merge: PLAIN,
    columns: &[
        col("permit_type", Text),
        col("wdid", Wdid),
        key("app_id", Text),
        alias("report_year", Integer, &["REPORTING_YEAR"]),
        col("report_id", Text),
        col("event_type", Text),
        col("event_start_date", Date),
        col("event_end_date", Date),
        col("rainfall_amount", Numeric),
        col("business_days", Integer),
        col("monitoring_location_name", Text),
        col("monitoring_location_type", Text),
        col("monitor_location_description", Text),
        col("monitoring_latitude", Latitude),
        col("monitoring_longitude", Longitude),
        col("sample_id", Text),
        col("sample_date", Date),
        col("sample_time", Time),
        col("percent_of_total_discharge", Numeric),
        col("qsp", Text),
        col("parameter", Text),
        col("result_qualifier", Text),
        col("result", Numeric),
        col("units", Text),
        col("analytical_method", Text),
        col("mdl", Numeric),
        col("rl", Numeric),
        col("analyzed_by", Text),
        col("certifier_name", Text),
        col("certified_date", Timestamp),
    ],
};

/// SMARTS violations ("Violations", 32 columns = 16 own + the optional PLACE block). Raw SMARTS
/// downloads start VIOLATION_ID, WDID, APP_ID and have no PLACE block; matching is by name.
pub static SMARTS_VIOLATIONS: Dataset = Dataset {
    name: "smarts_violations",
    table: "smarts_violation",
    key: &["app_id", "wdid", "violation_id"],
    merge: PLAIN,
    columns: with_place_block![
        col("wdid", Wdid),
        key("app_id", Text),
        key("violation_id", Text),
        col("violation_source", Text),
        col("violation_source_id", Text),
        col("violation_type", Text),
        col("serious_violation", Flag),
        col("violation_priority", Text),
        col("occurrence_date", Date),
        col("discovery_date", Date),
        col("determined_by", Text),
        col("exempt_from_mmp", Flag),
        col("memo", Text),
        col("description", Text),
        col("violation_status", Text),
        col("linked_enforcement_action", Flag),
    ],
};

/// SMARTS enforcement actions ("Enforcement_Actions", 41 columns = 25 own + the optional PLACE
/// block). The source carries no violation id; links to violations are derived elsewhere.
pub static SMARTS_ENFORCEMENT_ACTIONS: Dataset = Dataset {
    name: "smarts_enforcement_actions",
    table: "smarts_enforcement_action",
    key: &["app_id", "wdid", "enforcement_id"],
    merge: PLAIN,
    columns: with_place_block![
        col("wdid", Wdid),
        key("app_id", Text),
        key("enforcement_id", Text),
        col("enforcement_type", Text),
        col("enforcement_status", Text),
        col("issuance_date", Date),
        col("due_date", Date),
        col("description", Text),
        col("corrective_action", Text),
        col("order_number", Text),
        col("economic_benefits", Numeric),
        col("total_max_liability", Numeric),
        col("staff_costs", Numeric),
        col("initial_assessment", Numeric),
        col("total_assessment", Numeric),
        col("received_amount", Numeric),
        col("spent_amount", Numeric),
        col("balance_due", Numeric),
        col("acl_complaint_issuance_date", Date),
        col("adoption_date", Date),
        col("compliance_date", Date),
        col("epl_issuance_date", Date),
        col("received_date", Date),
        col("waiver_received_date", Date),
        col("count_of_violations", Integer),
    ],
};

/// SMARTS inspections ("Inspections", 35 columns = 19 own + the optional PLACE block). The raw
/// SMARTS download starts with a REGION column, which is read as `regional_board` when the file
/// has no PLACE block. Start/end times and the report upload date stay text (format unknown).
pub static SMARTS_INSPECTIONS: Dataset = Dataset {
    name: "smarts_inspections",
    table: "smarts_inspection",
    key: &["app_id", "wdid", "inspection_id"],
    merge: PLAIN,
    columns: with_place_block![
        col("wdid", Wdid),
        key("app_id", Text),
        key("inspection_id", Text),
        col("inspection_classification", Text),
        col("inspection_start_time", Text),
        col("inspection_end_time", Text),
        col("inspection_status", Text),
        col("inspection_purpose", Text),
        col("inspection_date", Date),
        col("inspection_contact", Text),
        col("inspector_type", Text),
        col("inspector_name", Text),
        col("agency_name", Text),
        col("agency_inspector_name", Text),
        col("follow_up_action", Text),
        col("general_notes", Text),
        col("virtual_inspection", Flag),
        col("count_of_violations", Integer),
        col("final_insp_rpt_upload_date", Text),
    ],
};

/// eSMR analytical results (CIWQS electronic self-monitoring reports, the data.ca.gov yearly
/// CSVs; 29 columns). The key is every column: a row's identity is its whole published content,
/// so two rows differing only in e.g. `calculated_method` are two rows, and only exact
/// duplicates share a key. The raw CIWQS flat file spells `latitude` as `lattitude`. The merge
/// (`ESMR_MERGE`) upserts the dimension tables and fills the derived `parameter_id`.
pub static ESMR: Dataset = Dataset {
    name: "esmr",
    table: "esmr_sample",
    key: &[
        "region",
        "location",
        "location_place_id",
        "location_place_type",
        "parameter",
        "analytical_method_code",
        "analytical_method",
        "calculated_method",
        "qualifier",
        "result",
        "units",
        "mdl",
        "ml",
        "rl",
        "sampling_date",
        "sampling_time",
        "analysis_date",
        "analysis_time",
        "review_priority_indicator",
        "qa_codes",
        "comments",
        "facility_name",
        "facility_place_id",
        "report_name",
        "latitude",
        "longitude",
        "receiving_water_body",
        "smr_document_id",
        "location_desc",
    ],
    merge: ESMR_MERGE,
    columns: &[
        col("region", Text),
        col("location", Text),
        col("location_place_id", Text),
        col("location_place_type", Text),
        col("parameter", Text),
        col("analytical_method_code", Text),
        col("analytical_method", Text),
        col("calculated_method", Text),
        col("qualifier", Text),
        col("result", Numeric),
        col("units", Text),
        col("mdl", Numeric),
        col("ml", Numeric),
        col("rl", Numeric),
        key("sampling_date", Date),
        col("sampling_time", Time),
        col("analysis_date", Date),
        col("analysis_time", Time),
        col("review_priority_indicator", Flag),
        col("qa_codes", Text),
        col("comments", Text),
        col("facility_name", Text),
        key("facility_place_id", Text),
        col("report_name", Text),
        alias("latitude", Latitude, &["LATTITUDE"]),
        col("longitude", Longitude),
        col("receiving_water_body", Text),
        col("smr_document_id", Text),
        col("location_desc", Text),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::registry::DATASETS;

    /// The datasets the publisher's portal dictionaries and the migrations 2 and 3 describe:
    /// every registered one but the industrial facilities (whose three published layouts
    /// `registry.rs` and the pipeline tests check).
    static ALL: &[&Dataset] = &[
        &SMARTS_CONSTRUCTION_FACILITIES,
        &SMARTS_INDUSTRIAL_MONITORING,
        &SMARTS_CONSTRUCTION_MONITORING,
        &SMARTS_VIOLATIONS,
        &SMARTS_ENFORCEMENT_ACTIONS,
        &SMARTS_INSPECTIONS,
        &ESMR,
    ];

    #[test]
    fn the_dictionary_datasets_are_the_registry_but_the_industrial_facilities() {
        let registered: Vec<&str> = DATASETS
            .iter()
            .map(|d| d.name)
            .filter(|n| *n != SMARTS_INDUSTRIAL_FACILITIES.name)
            .collect();
        let here: Vec<&str> = ALL.iter().map(|d| d.name).collect();
        assert_eq!(here, registered);
    }
    use std::path::PathBuf;

    const SMARTS_SQL: &str = include_str!("../../../migrations/20261122000002_smarts.sql");
    const ESMR_SQL: &str = include_str!("../../../migrations/20261122000003_esmr.sql");

    /// The importer's own columns at the start of every source-row table.
    const BOOKKEEPING: [&str; 8] = [
        "id",
        "row_key",
        "row_ord",
        "row_hash",
        "source_line",
        "first_run_id",
        "changed_run_id",
        "withdrawn_run_id",
    ];

    const PLACE_BLOCK: [&str; 16] = [
        "permit_type",
        "regional_board",
        "place_name",
        "place_address",
        "place_address_2",
        "place_city",
        "place_state",
        "place_zip",
        "place_latitude",
        "place_longitude",
        "place_county",
        "place_total_size",
        "place_total_size_unit",
        "receiving_water_name",
        "indirectly",
        "directly",
    ];

    /// (name, SQL type) of every column of `create table <table> (`, in DDL order.
    fn ddl_columns(table: &str) -> Vec<(String, String)> {
        let head = format!("create table {table} (");
        let sql = [SMARTS_SQL, ESMR_SQL]
            .into_iter()
            .find(|s| s.contains(&head))
            .unwrap_or_else(|| panic!("no `{head}` in the migrations"));
        let body = &sql[sql.find(&head).unwrap() + head.len()..];
        let body = &body[..body.find("\n);").expect("end of create table")];
        body.lines()
            .map(|l| l.split("--").next().unwrap().trim())
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let name = words.next()?;
                if matches!(
                    name,
                    "unique" | "primary" | "constraint" | "check" | "foreign" | "exclude"
                ) {
                    return None;
                }
                let ty = words.next()?.trim_end_matches(',');
                Some((name.to_owned(), ty.to_owned()))
            })
            .collect()
    }

    /// The type family of a Postgres type name (integer widths are one family).
    fn family(sql_type: &str) -> &str {
        match sql_type {
            "integer" | "bigint" | "smallint" => "integer",
            other => other,
        }
    }

    /// The real files and dictionaries beside the checkout (`../shared/data`), or
    /// `$STORMWATER_SHARED_DATA`.
    fn shared_data(rel: &str) -> PathBuf {
        let base = std::env::var("STORMWATER_SHARED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
            });
        let p = base.join(rel);
        assert!(p.exists(), "missing shared data file {}", p.display());
        p
    }

    /// The column names a dictionary lists: the first field of each row after its header row.
    fn dictionary_names(rel: &str) -> Vec<String> {
        let path = shared_data(rel);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        reader
            .records()
            .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .filter_map(|r| r.get(0).map(|f| f.trim().to_owned()))
            .filter(|f| !f.is_empty())
            .collect()
    }

    fn portal_dictionary(d: &Dataset) -> &'static str {
        match d.name {
            "smarts_construction_facilities" => {
                "Stormwater_Construction_Facilities_DataDictionary.csv"
            }
            "smarts_industrial_monitoring" => "Stormwater_Industrial_Monitoring_DataDictionary.csv",
            "smarts_construction_monitoring" => {
                "Stormwater_Construction_Monitoring_DataDictionary.csv"
            }
            "smarts_violations" => "Stormwater_Violations_DataDictionary.csv",
            "smarts_enforcement_actions" => "Stormwater_EnforcementActions_DataDictionary.csv",
            "smarts_inspections" => "Stormwater_Inspections_DataDictionary.csv",
            "esmr" => "eSMR_Data_Dictionary_API.csv",
            other => panic!("no portal dictionary known for {other}"),
        }
    }

    fn names(d: &Dataset) -> Vec<&'static str> {
        d.columns.iter().map(|c| c.name).collect()
    }

    #[test]
    fn every_declared_column_exists_in_the_migration_in_order() {
        for d in ALL {
            let ddl = ddl_columns(d.table);
            let (bookkeeping, data) = ddl.split_at(BOOKKEEPING.len().min(ddl.len()));
            let bookkeeping: Vec<&str> = bookkeeping.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(bookkeeping, BOOKKEEPING, "{}: bookkeeping columns", d.table);
            // Columns the merge computes (esmr_sample.parameter_id) are not source columns.
            let derived: Vec<&str> = d.merge.derived.iter().map(|(n, _)| *n).collect();
            for n in &derived {
                assert!(
                    data.iter().any(|(c, _)| c == n),
                    "{}: derived column {n} is not in the DDL",
                    d.table
                );
            }
            let data: Vec<&(String, String)> = data
                .iter()
                .filter(|(n, _)| !derived.contains(&n.as_str()))
                .collect();
            let ddl_names: Vec<&str> = data.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names(d), ddl_names, "{}: columns vs {}", d.name, d.table);
            for (c, (n, ty)) in d.columns.iter().zip(&data) {
                assert_eq!(
                    family(c.kind.sql_type()),
                    family(ty),
                    "{}.{n}: declared {:?}, DDL says {ty}",
                    d.table,
                    c.kind
                );
            }
        }
    }

    #[test]
    fn wdid_and_coordinate_columns_use_their_special_kinds() {
        for d in ALL {
            for c in d.columns {
                let expected = if c.name == "wdid" {
                    Some(Wdid)
                } else if c.name.ends_with("latitude") {
                    Some(Latitude)
                } else if c.name.ends_with("longitude") {
                    Some(Longitude)
                } else {
                    None
                };
                match expected {
                    Some(k) => assert_eq!(c.kind, k, "{}.{}", d.name, c.name),
                    None => assert!(
                        !matches!(c.kind, Wdid | Latitude | Longitude),
                        "{}.{} is {:?}",
                        d.name,
                        c.name,
                        c.kind
                    ),
                }
            }
        }
    }

    #[test]
    fn every_dataset_maps_its_official_portal_dictionary_without_gaps() {
        for d in ALL {
            let file = portal_dictionary(d);
            let header = dictionary_names(&format!("ca-waterboards-data-dictionaries/{file}"));
            let m = d
                .map_header(&header)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(m.positions.iter().all(Option::is_some), "{file}: {m:?}");
            assert!(m.absent_optional.is_empty(), "{file}: {m:?}");
            assert!(m.extra.is_empty(), "{file}: unmatched {:?}", m.extra);
            assert_eq!(m.width, d.columns.len(), "{file}");
        }
    }

    #[test]
    fn the_raw_construction_sheet_maps_through_the_commercial_alias() {
        let header = dictionary_names(
            "real/CA-Data-Portal-Uploads/dictionaries/Stormwater_Construction_Facilities_DataDictionary__Construction_App_Spec_SMARTS.csv",
        );
        let d = &SMARTS_CONSTRUCTION_FACILITIES;
        let m = d.map_header(&header).unwrap();
        let i = names(d)
            .iter()
            .position(|n| *n == "construction_commertial")
            .unwrap();
        let raw = header
            .iter()
            .position(|h| h == "CONSTRUCTION_COMMERCIAL")
            .unwrap();
        assert_eq!(m.positions[i], Some(raw));
        assert!(m.positions.iter().all(Option::is_some));
        // The raw sheet's OWNER_* block is not published on the portal and is not stored.
        assert!(m.extra.iter().all(|e| e.starts_with("OWNER_")), "{m:?}");
        assert_eq!(m.extra.len(), 11);
    }

    #[test]
    fn raw_violation_and_enforcement_downloads_lack_only_the_place_block() {
        for (d, file) in [
            (
                &SMARTS_VIOLATIONS,
                "Stormwater_Violations_DataDictionary__Viol_SMARTS.csv",
            ),
            (
                &SMARTS_ENFORCEMENT_ACTIONS,
                "Stormwater_EnforcementActions_DataDictionary__Enf_SMARTS.csv",
            ),
        ] {
            let header =
                dictionary_names(&format!("real/CA-Data-Portal-Uploads/dictionaries/{file}"));
            let m = d
                .map_header(&header)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(m.absent_optional, PLACE_BLOCK, "{file}");
            assert!(m.extra.is_empty(), "{file}: {:?}", m.extra);
        }
    }

    #[test]
    fn the_place_block_is_optional_and_only_the_place_block() {
        for d in [
            &SMARTS_VIOLATIONS,
            &SMARTS_ENFORCEMENT_ACTIONS,
            &SMARTS_INSPECTIONS,
        ] {
            let optional: Vec<&str> = d
                .columns
                .iter()
                .filter(|c| c.presence == Presence::Optional)
                .map(|c| c.name)
                .collect();
            assert_eq!(optional, PLACE_BLOCK, "{}", d.name);
            assert_eq!(&names(d)[d.columns.len() - 16..], PLACE_BLOCK, "{}", d.name);
        }
        for d in [
            &SMARTS_CONSTRUCTION_FACILITIES,
            &SMARTS_INDUSTRIAL_MONITORING,
            &SMARTS_CONSTRUCTION_MONITORING,
            &ESMR,
        ] {
            assert!(
                d.columns.iter().all(|c| c.presence == Presence::Required),
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn alternative_spellings_map_to_the_declared_columns() {
        let cases: [(&Dataset, &str, &str); 8] = [
            (&SMARTS_CONSTRUCTION_FACILITIES, "REGION", "REGION_BOARD"),
            (&SMARTS_CONSTRUCTION_FACILITIES, "REGION", "REGIONAL_BOARD"),
            (
                &SMARTS_INDUSTRIAL_MONITORING,
                "REPORTING_YEAR",
                "REPORT_YEAR",
            ),
            (
                &SMARTS_CONSTRUCTION_MONITORING,
                "REPORT_YEAR",
                "REPORTING_YEAR",
            ),
            (&SMARTS_VIOLATIONS, "REGIONAL_BOARD", "REGION_BOARD"),
            (&SMARTS_ENFORCEMENT_ACTIONS, "REGIONAL_BOARD", "REGION"),
            (&SMARTS_INSPECTIONS, "REGIONAL_BOARD", "REGION"),
            (&ESMR, "latitude", "lattitude"),
        ];
        for (d, official, other) in cases {
            let mut header: Vec<String> = names(d).iter().map(|n| n.to_ascii_uppercase()).collect();
            let i = header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(official))
                .unwrap();
            header[i] = other.to_owned();
            let m = d
                .map_header(&header)
                .unwrap_or_else(|e| panic!("{} with {other}: {e}", d.name));
            assert_eq!(m.positions[i], Some(i), "{} with {other}", d.name);
            assert!(m.extra.is_empty() && m.absent_optional.is_empty());
        }
    }

    #[test]
    fn real_published_headers_map_completely() {
        // 2025 eSMR portal CSV: BOM and every name quoted.
        let text =
            std::fs::read_to_string(shared_data("real/stormwater-watch/esmr_columns_header.txt"))
                .unwrap();
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let m = ESMR.map_header(&header).unwrap();
        assert!(m.positions.iter().all(Option::is_some) && m.extra.is_empty());

        // 2025 raw SMARTS industrial monitoring TSV.
        let text = std::fs::read_to_string(shared_data(
            "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_Ad_Hoc_Reports_-_Parameter_Data.txt",
        ))
        .unwrap();
        let header: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
        let m = SMARTS_INDUSTRIAL_MONITORING.map_header(&header).unwrap();
        assert!(m.positions.iter().all(Option::is_some) && m.extra.is_empty());
    }

    #[test]
    fn every_key_column_is_declared() {
        for d in ALL {
            assert_eq!(d.key_indexes().len(), d.key.len(), "{}", d.name);
            let mut key = d.key.to_vec();
            key.sort_unstable();
            key.dedup();
            assert_eq!(key.len(), d.key.len(), "{}: repeated key column", d.name);
        }
    }

    #[test]
    fn esmr_identity_is_the_whole_published_row() {
        assert_eq!(ESMR.key, names(&ESMR).as_slice());
        assert_eq!(ESMR.columns.len(), 29);
    }

    #[test]
    fn only_identifying_columns_quarantine_rows_without_a_value() {
        let not_null: Vec<(&str, &str)> = ALL
            .iter()
            .flat_map(|d| {
                d.columns
                    .iter()
                    .filter(|c| c.not_null)
                    .map(|c| (d.name, c.name))
            })
            .collect();
        assert_eq!(
            not_null,
            [
                ("smarts_construction_facilities", "app_id"),
                ("smarts_industrial_monitoring", "app_id"),
                ("smarts_construction_monitoring", "app_id"),
                ("smarts_violations", "app_id"),
                ("smarts_violations", "violation_id"),
                ("smarts_enforcement_actions", "app_id"),
                ("smarts_enforcement_actions", "enforcement_id"),
                ("smarts_inspections", "app_id"),
                ("smarts_inspections", "inspection_id"),
                ("esmr", "sampling_date"),
                ("esmr", "facility_place_id"),
            ]
        );
    }

    #[test]
    fn dataset_names_and_tables_are_unique_across_the_registry() {
        let all: Vec<&Dataset> = DATASETS.to_vec();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.table, b.table);
            }
            let mut cols = names(a);
            cols.sort_unstable();
            cols.dedup();
            assert_eq!(cols.len(), a.columns.len(), "{}: repeated column", a.name);
        }
    }
}
