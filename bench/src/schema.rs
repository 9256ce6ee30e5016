//! Column layouts of every generated file, in the published order of the official portal dictionaries
//! (`shared/data/ca-waterboards-data-dictionaries/*.csv`). The unit tests compare these lists with the
//! dictionaries at test time.

/// Column type as given by the dictionary's `type` column.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `text`: always double-quoted.
    Text,
    /// `numeric`: bare number / bare `NaN` in SMARTS files, quoted string in eSMR files.
    Num,
    /// `timestamp`: ISO `YYYY-MM-DD` in quotes, missing is `""`.
    Date,
}

pub type Col = (&'static str, Kind);

const T: Kind = Kind::Text;
const N: Kind = Kind::Num;
const D: Kind = Kind::Date;

/// The layout of a generated portal file.
pub struct FileSpec {
    /// The file's name; eSMR's is the pattern of its yearly files, `YYYY` standing for the
    /// sampling year ([`DataFile::esmr`]).
    pub file: &'static str,
    pub dataset: &'static str,
    /// Dictionary file name under `shared/data/ca-waterboards-data-dictionaries/`.
    pub dictionary: &'static str,
    pub cols: &'static [Col],
}

pub const IND_FAC: FileSpec = FileSpec {
    file: "Industrial_Application_Specific_Data.csv",
    dataset: "smarts_industrial_facilities",
    dictionary: "Stormwater_Industrial_Facilities_DataDictionary.csv",
    cols: &[
        ("PERMIT_TYPE", T),
        ("APP_ID", T),
        ("WDID", T),
        ("STATUS", T),
        ("NOI_PROCESSED_DATE", D),
        ("NOT_EFFECTIVE_DATE", D),
        ("REGION_BOARD", T),
        ("COUNTY", T),
        ("OPERATOR_NAME", T),
        ("FACILITY_NAME", T),
        ("FACILITY_ADDRESS", T),
        ("FACILITY_ADDRESS_2", T),
        ("FACILITY_CITY", T),
        ("FACILITY_STATE", T),
        ("FACILITY_ZIP", T),
        ("FACILITY_LATITUDE", N),
        ("FACILITY_LONGITUDE", N),
        ("FACILITY_COUNTY", T),
        ("FACILITY_CONTACT_FIRST_NAME", T),
        ("FACILITY_CONTACT_LAST_NAME", T),
        ("FACILITY_TITLE", T),
        ("FACILITY_PHONE", T),
        ("FACILITY_EMAIL", T),
        ("FACILITY_TOTAL_SIZE", N),
        ("FACILITY_TOTAL_SIZE_UNIT", T),
        ("FACILITY_AREA_ACTIVITY", N),
        ("FACILITY_AREA_ACTIVITY_UNIT", T),
        ("PERCENT_OF_SITE_IMPERVIOUSNESS", N),
        ("PRIMARY_SIC", T),
        ("SECONDARY_SIC", T),
        ("TERTIARY_SIC", T),
        ("RECEIVING_WATER_NAME", T),
        ("INDIRECTLY", T),
        ("DIRECTLY", T),
        ("CERTIFIER_BY", T),
        ("CERTIFIER_TITLE", T),
        ("CERTIFICATION_DATE", D),
        ("QUESTION_TMDL_ANSWER", T),
    ],
};

pub const CON_FAC: FileSpec = FileSpec {
    file: "Construction_Application_Specific_Data.csv",
    dataset: "smarts_construction_facilities",
    dictionary: "Stormwater_Construction_Facilities_DataDictionary.csv",
    cols: &[
        ("PERMIT_TYPE", T),
        ("APP_ID", T),
        ("WDID", T),
        ("STATUS", T),
        ("NOI_PROCESSED_DATE", D),
        ("NOT_EFFECTIVE_DATE", D),
        ("REGION", T),
        ("COUNTY", T),
        ("OWNER_NAME", T),
        ("DEVELOPER_NAME", T),
        ("DEVELOPER_ADDRESS", T),
        ("DEVELOPER_ADDRESS_2", T),
        ("DEVELOPER_CITY", T),
        ("DEVELOPER_STATE", T),
        ("DEVELOPER_ZIP", T),
        ("DEVELOPER_CONTACT_FIRST_NAME", T),
        ("DEVELOPER_CONTACT_LAST_NAME", T),
        ("DEVELOPER_TITLE", T),
        ("DEVELOPER_PHONE", T),
        ("DEVELOPER_EMAIL", T),
        ("SITE_NAME", T),
        ("SITE_ADDRESS", T),
        ("SITE_ADDRESS_2", T),
        ("SITE_CITY", T),
        ("SITE_STATE", T),
        ("SITE_ZIP", T),
        ("SITE_LATITUDE", N),
        ("SITE_LONGITUDE", N),
        ("SITE_COUNTY", T),
        ("SITE_CONTACT_FIRST_NAME", T),
        ("SITE_CONTACT_LAST_NAME", T),
        ("SITE_TITLE", T),
        ("SITE_PHONE", T),
        ("SITE_EMAIL", T),
        ("SITE_TOTAL_SIZE", N),
        ("SITE_TOTAL_SIZE_UNIT", T),
        ("SITE_TOTAL_DISTURBED_ACREAGE", N),
        ("TOTAL_DISTURBED_ACREAGE_UNIT", T),
        ("PERCENT_TOTAL_DISTURBED", N),
        ("IMPERVIOUSNESS_BEFORE", N),
        ("IMPERVIOUSNESS_AFTER", N),
        ("TRACT_NUMBERS", T),
        ("MILE_POST_MARKER", T),
        ("PART_OF_A_LARGER_COMMON_PLAN", T),
        ("NAME_OF_PLAN_OR_DEVELOPMENT", T),
        ("CONSTRUCTION_COMMENCEMENT_DATE", D),
        ("COMPLETE_GRADING_DATE", D),
        ("COMPLETE_PROJECT_DATE", D),
        ("TYPE_OF_CONSTRUCTION", T),
        ("CONSTRUCTION_RESIDENTIAL", T),
        ("CONSTRUCTION_COMMERTIAL", T),
        ("CONSTRUCTION_INDUSTRIAL", T),
        ("CONSTRUCTION_RECONSTRUCTION", T),
        ("CONSTRUCTION_TRANSPORTATION", T),
        ("TYPE_OF_CONSTRUCTION_UTILITY", T),
        ("CONSTRUCTION_OTHER", T),
        ("CONSTRUCTION_OTHER_DESRIPTION", T),
        ("CONSTRUCTION_ABOVE_GROUND", T),
        ("CONSTRUCTION_BELOW_GROUND", T),
        ("CONSTRUCTION_GAS_LINE", T),
        ("CONSTRUCTION_WATER_SEWER_LINE", T),
        ("CONS_COMMUNICATION_LINE", T),
        ("CONS_CABLE_LINE", T),
        ("CONS_ELECTRICAL_LINE", T),
        ("R_FACTOR", N),
        ("K_FACTOR", N),
        ("LS_FACTOR", N),
        ("WATERSHED_EROSION_ESTIMATE", N),
        ("SITE_SEDIMENT_RISK_FACTOR", T),
        ("RECEIVING_WATER_RISK", T),
        ("PROJECT_COMBINED_RISK", T),
        ("RECEIVING_WATER_NAME", T),
        ("INDIRECTLY", T),
        ("DIRECTLY", T),
        ("QSD_FIRST_NAME", T),
        ("QSD_LAST_NAME", T),
        ("QSD_CERTIFICATION_NUMBER", T),
        ("CERTIFIER_BY", T),
        ("CERTIFIER_TITLE", T),
        ("CERTIFICATION_DATE", D),
    ],
};

pub const IND_MON: FileSpec = FileSpec {
    file: "Industrial_Ad_Hoc_Reports_-_Parameter_Data.csv",
    dataset: "smarts_industrial_monitoring",
    dictionary: "Stormwater_Industrial_Monitoring_DataDictionary.csv",
    cols: &[
        ("PERMIT_TYPE", T),
        ("WDID", T),
        ("APP_ID", T),
        ("REPORTING_YEAR", N),
        ("REPORT_ID", T),
        ("EVENT_TYPE", T),
        ("MONITORING_LOCATION_NAME", T),
        ("MONITORING_LOCATION_TYPE", T),
        ("MONITOR_LOCATION_DESCRIPTION", T),
        ("MONITORING_LATITUDE", N),
        ("MONITORING_LONGITUDE", N),
        ("SAMPLE_ID", T),
        ("SAMPLE_DATE", D),
        ("SAMPLE_TIME", T),
        ("DISCHARGE_START_DATE", D),
        ("DISCHARGE_START_TIME", T),
        ("PARAMETER", T),
        ("RESULT_QUALIFIER", T),
        ("RESULT", N),
        ("UNITS", T),
        ("ANALYTICAL_METHOD", T),
        ("MDL", N),
        ("RL", N),
        ("DISCHARGE_END_DATE", D),
        ("DISCHARGE_END_TIME", T),
        ("CERTIFIER_NAME", T),
        ("CERTIFIED_DATE", T),
    ],
};

pub const CON_MON: FileSpec = FileSpec {
    file: "Construction_Ad_Hoc_Reports_-_Parameter_Data.csv",
    dataset: "smarts_construction_monitoring",
    dictionary: "Stormwater_Construction_Monitoring_DataDictionary.csv",
    cols: &[
        ("PERMIT_TYPE", T),
        ("WDID", T),
        ("APP_ID", T),
        ("REPORT_YEAR", N),
        ("REPORT_ID", T),
        ("EVENT_TYPE", T),
        ("EVENT_START_DATE", D),
        ("EVENT_END_DATE", D),
        ("RAINFALL_AMOUNT", N),
        ("BUSINESS_DAYS", N),
        ("MONITORING_LOCATION_NAME", T),
        ("MONITORING_LOCATION_TYPE", T),
        ("MONITOR_LOCATION_DESCRIPTION", T),
        ("MONITORING_LATITUDE", N),
        ("MONITORING_LONGITUDE", N),
        ("SAMPLE_ID", T),
        ("SAMPLE_DATE", D),
        ("SAMPLE_TIME", T),
        ("PERCENT_OF_TOTAL_DISCHARGE", N),
        ("QSP", T),
        ("PARAMETER", T),
        ("RESULT_QUALIFIER", T),
        ("RESULT", N),
        ("UNITS", T),
        ("ANALYTICAL_METHOD", T),
        ("MDL", N),
        ("RL", N),
        ("ANALYZED_BY", T),
        ("CERTIFIER_NAME", T),
        ("CERTIFIED_DATE", T),
    ],
};

/// `&[cols..., <the 16 PLACE columns>]`: the compliance files (violations, enforcement, inspections) end with
/// the same facility "place" block (written by `compliance::place`).
macro_rules! with_place_cols {
    ($($col:expr),* $(,)?) => {
        &[
            $($col,)*
            ("PERMIT_TYPE", T),
            ("REGIONAL_BOARD", T),
            ("PLACE_NAME", T),
            ("PLACE_ADDRESS", T),
            ("PLACE_ADDRESS_2", T),
            ("PLACE_CITY", T),
            ("PLACE_STATE", T),
            ("PLACE_ZIP", T),
            ("PLACE_LATITUDE", N),
            ("PLACE_LONGITUDE", N),
            ("PLACE_COUNTY", T),
            ("PLACE_TOTAL_SIZE", N),
            ("PLACE_TOTAL_SIZE_UNIT", T),
            ("RECEIVING_WATER_NAME", T),
            ("INDIRECTLY", T),
            ("DIRECTLY", T),
        ]
    };
}

pub const VIOLATIONS: FileSpec = FileSpec {
    file: "Violations.csv",
    dataset: "smarts_violations",
    dictionary: "Stormwater_Violations_DataDictionary.csv",
    cols: with_place_cols!(
        ("WDID", T),
        ("APP_ID", T),
        ("VIOLATION_ID", T),
        ("VIOLATION_SOURCE", T),
        ("VIOLATION_SOURCE_ID", T),
        ("VIOLATION_TYPE", T),
        ("SERIOUS_VIOLATION", T),
        ("VIOLATION_PRIORITY", T),
        ("OCCURRENCE_DATE", D),
        ("DISCOVERY_DATE", D),
        ("DETERMINED_BY", T),
        ("EXEMPT_FROM_MMP", T),
        ("MEMO", T),
        ("DESCRIPTION", T),
        ("VIOLATION_STATUS", T),
        ("LINKED_ENFORCEMENT_ACTION", T),
    ),
};

pub const ENFORCEMENT: FileSpec = FileSpec {
    file: "Enforcement_Actions.csv",
    dataset: "smarts_enforcement_actions",
    dictionary: "Stormwater_EnforcementActions_DataDictionary.csv",
    cols: with_place_cols!(
        ("WDID", T),
        ("APP_ID", T),
        ("ENFORCEMENT_ID", T),
        ("ENFORCEMENT_TYPE", T),
        ("ENFORCEMENT_STATUS", T),
        ("ISSUANCE_DATE", D),
        ("DUE_DATE", D),
        ("DESCRIPTION", T),
        ("CORRECTIVE_ACTION", T),
        ("ORDER_NUMBER", T),
        ("ECONOMIC_BENEFITS", N),
        ("TOTAL_MAX_LIABILITY", N),
        ("STAFF_COSTS", N),
        ("INITIAL_ASSESSMENT", N),
        ("TOTAL_ASSESSMENT", N),
        ("RECEIVED_AMOUNT", N),
        ("SPENT_AMOUNT", N),
        ("BALANCE_DUE", N),
        ("ACL_COMPLAINT_ISSUANCE_DATE", D),
        ("ADOPTION_DATE", D),
        ("COMPLIANCE_DATE", D),
        ("EPL_ISSUANCE_DATE", D),
        ("RECEIVED_DATE", D),
        ("WAIVER_RECEIVED_DATE", D),
        ("COUNT_OF_VIOLATIONS", N),
    ),
};

pub const INSPECTIONS: FileSpec = FileSpec {
    file: "Inspections.csv",
    dataset: "smarts_inspections",
    dictionary: "Stormwater_Inspections_DataDictionary.csv",
    cols: with_place_cols!(
        ("WDID", T),
        ("APP_ID", T),
        ("INSPECTION_ID", T),
        ("INSPECTION_CLASSIFICATION", T),
        ("INSPECTION_START_TIME", T),
        ("INSPECTION_END_TIME", T),
        ("INSPECTION_STATUS", T),
        ("INSPECTION_PURPOSE", T),
        ("INSPECTION_DATE", D),
        ("INSPECTION_CONTACT", T),
        ("INSPECTOR_TYPE", T),
        ("INSPECTOR_NAME", T),
        ("AGENCY_NAME", T),
        ("AGENCY_INSPECTOR_NAME", T),
        ("FOLLOW_UP_ACTION", T),
        ("GENERAL_NOTES", T),
        ("VIRTUAL_INSPECTION", T),
        ("COUNT_OF_VIOLATIONS", N),
        ("FINAL_INSP_RPT_UPLOAD_DATE", T),
    ),
};

pub const ESMR: FileSpec = FileSpec {
    file: "esmr-analytical-export_year-YYYY.csv",
    dataset: "esmr",
    dictionary: "eSMR_Data_Dictionary_API.csv",
    cols: &[
        ("region", T),
        ("location", T),
        ("location_place_id", T),
        ("location_place_type", T),
        ("parameter", T),
        ("analytical_method_code", T),
        ("analytical_method", T),
        ("calculated_method", T),
        ("qualifier", T),
        ("result", N),
        ("units", T),
        ("mdl", N),
        ("ml", N),
        ("rl", N),
        ("sampling_date", D),
        ("sampling_time", T),
        ("analysis_date", D),
        ("analysis_time", T),
        ("review_priority_indicator", T),
        ("qa_codes", T),
        ("comments", T),
        ("facility_name", T),
        ("facility_place_id", T),
        ("report_name", T),
        ("latitude", N),
        ("longitude", N),
        ("receiving_water_body", T),
        ("smr_document_id", T),
        ("location_desc", T),
    ],
};

/// Every layout: the SMARTS files in manifest order, then eSMR's (one layout for all its yearly
/// files). The unit tests check each against its dictionary.
#[cfg(test)]
pub const ALL: [&FileSpec; 8] = [
    &IND_FAC,
    &CON_FAC,
    &IND_MON,
    &CON_MON,
    &VIOLATIONS,
    &ENFORCEMENT,
    &INSPECTIONS,
    &ESMR,
];

/// One file of a generated set: its layout, its name and, of an eSMR yearly file, its sampling
/// year (its scope: the part of the dataset the file covers, as the publisher splits eSMR).
#[derive(Clone)]
pub struct DataFile {
    pub spec: &'static FileSpec,
    pub name: String,
    pub year: Option<i32>,
}

impl DataFile {
    /// A SMARTS file: one per dataset, named by its layout.
    pub fn smarts(spec: &'static FileSpec) -> DataFile {
        DataFile {
            spec,
            name: spec.file.to_owned(),
            year: None,
        }
    }

    /// The eSMR file of sampling year `year`, named as the publisher names its yearly CSVs.
    pub fn esmr(year: i32) -> DataFile {
        DataFile {
            spec: &ESMR,
            name: ESMR.file.replace("YYYY", &year.to_string()),
            year: Some(year),
        }
    }

    /// The eSMR yearly file called `name`, if that is one.
    pub fn esmr_named(name: &str) -> Option<DataFile> {
        let (before, after) = ESMR.file.split_once("YYYY")?;
        let year = name.strip_prefix(before)?.strip_suffix(after)?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(DataFile::esmr(year.parse().ok()?))
    }
}
