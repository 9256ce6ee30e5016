//! SMARTS facility records (industrial applications), as served by `GET /api/facilities`.

use chrono::NaiveDate;
use sqlx::{AssertSqlSafe, PgExecutor};

/// Filters of the facility list; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct FacilityFilter {
    pub county: Option<String>,
    pub region: Option<String>,
    pub permit_type: Option<String>,
    pub status: Option<String>,
    /// Substring of the facility or operator name.
    pub q: Option<String>,
    /// SIC code prefix of the primary SIC (`4212`, `42`).
    pub sic: Option<String>,
    pub wdid: Option<String>,
    pub app_id: Option<String>,
}

/// One current (not withdrawn) industrial facility record.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FacilityRow {
    pub id: i64,
    pub app_id: Option<String>,
    pub wdid: Option<String>,
    pub permit_type: Option<String>,
    pub status: Option<String>,
    pub facility_name: Option<String>,
    pub operator_name: Option<String>,
    pub region_board: Option<String>,
    pub county: Option<String>,
    pub facility_address: Option<String>,
    pub facility_address_2: Option<String>,
    pub facility_city: Option<String>,
    pub facility_state: Option<String>,
    pub facility_zip: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub noi_processed_date: Option<NaiveDate>,
    pub not_effective_date: Option<NaiveDate>,
    pub primary_sic: Option<String>,
    pub secondary_sic: Option<String>,
    pub tertiary_sic: Option<String>,
    pub receiving_water_name: Option<String>,
    pub source_line: i64,
    pub changed_run_id: i64,
    /// The canonical facility the record is linked to (set by the violation engine's seeding
    /// at finalize; the key of violation events and ERA Levels).
    pub facility_id: Option<i64>,
    /// Current records with the same APP_ID and WDID (duplicates in the source).
    pub same_key_records: i64,
    /// Current records with the same WDID.
    pub same_wdid_records: i64,
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

// The optional-filter idiom `($n::text is null or …)` keeps one statement for every filter mix.
const FILTER: &str = "
    f.withdrawn_run_id is null
    and ($1::text is null or lower(f.county) = lower($1))
    and ($2::text is null or f.region_board = upper($2))
    and ($3::text is null or lower(f.permit_type) = lower($3))
    and ($4::text is null or f.status = $4)
    and ($5::text is null or lower(f.facility_name) like lower($5) or lower(f.operator_name) like lower($5))
    and ($6::text is null or f.primary_sic like $6)
    and ($7::text is null or f.wdid = $7)
    and ($8::text is null or f.app_id = $8)";

/// Binds `$1`–`$8` of [`FILTER`] (the same order for every query that uses it).
macro_rules! bind_filter {
    ($query:expr, $filter:expr, $q:expr, $sic:expr) => {
        $query
            .bind(&$filter.county)
            .bind(&$filter.region)
            .bind(&$filter.permit_type)
            .bind(&$filter.status)
            .bind($q)
            .bind($sic)
            .bind(&$filter.wdid)
            .bind(&$filter.app_id)
    };
}

fn patterns(filter: &FacilityFilter) -> (Option<String>, Option<String>) {
    (
        filter.q.as_deref().map(|q| format!("%{}%", like_escape(q))),
        filter
            .sic
            .as_deref()
            .map(|s| format!("{}%", like_escape(s))),
    )
}

/// One page of facility records in id order, after `after`.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &FacilityFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<FacilityRow>, sqlx::Error> {
    let (q, sic) = patterns(filter);
    let sql = format!(
        "select f.id, f.app_id, f.wdid, f.permit_type, f.status, f.facility_name, f.operator_name,
                f.region_board, f.county, f.facility_address, f.facility_address_2, f.facility_city,
                f.facility_state, f.facility_zip, f.facility_latitude::float8 as latitude,
                f.facility_longitude::float8 as longitude, f.noi_processed_date, f.not_effective_date,
                f.primary_sic, f.secondary_sic, f.tertiary_sic, f.receiving_water_name,
                f.source_line, f.changed_run_id,
                                (select l.facility_id from facility_link l
                  where l.source = 'smarts_industrial' and l.status = 'linked'
                    and l.source_key = coalesce(f.app_id, '') || '|' || coalesce(f.wdid, '')) as facility_id,
                (select count(*) from smarts_industrial_facility d
                  where d.withdrawn_run_id is null and d.app_id = f.app_id
                    and (d.wdid = f.wdid or (d.wdid is null and f.wdid is null))) as same_key_records,
                (select count(*) from smarts_industrial_facility d
                  where d.withdrawn_run_id is null and d.wdid = f.wdid) as same_wdid_records
           from smarts_industrial_facility f
          where {FILTER} and ($9::bigint is null or f.id > $9)
          order by f.id
          limit $10"
    );
    // Runtime SQL: the filter text (FILTER) is one, shared by the page and its count.
    bind_filter!(sqlx::query_as(AssertSqlSafe(sql)), filter, q, sic)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// How many current records match the filter.
pub async fn count(db: impl PgExecutor<'_>, filter: &FacilityFilter) -> Result<i64, sqlx::Error> {
    let (q, sic) = patterns(filter);
    let sql = format!("select count(*) from smarts_industrial_facility f where {FILTER}");
    // Runtime SQL: the filter text (FILTER) is one, shared by the page and its count.
    bind_filter!(sqlx::query_scalar(AssertSqlSafe(sql)), filter, q, sic)
        .fetch_one(db)
        .await
}

/// Last successful import per dataset, for `meta.freshness`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Freshness {
    pub dataset: String,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub source_url: String,
    pub rows_read: i64,
}

/// The newest succeeded file of every dataset.
pub async fn freshness(db: impl PgExecutor<'_>) -> Result<Vec<Freshness>, sqlx::Error> {
    sqlx::query_as!(
        Freshness,
        "select distinct on (dataset) dataset, finished_at, source_url, rows_read
           from sync_file where status in ('succeeded', 'partial')
          order by dataset, id desc",
    )
    .fetch_all(db)
    .await
}
