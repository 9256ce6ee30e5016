//! SMARTS facility records (industrial applications), as served by `GET /api/facilities`.

use serde_json::Value;
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

/// One page of current facility records in id order, after `after`: each record's id and its
/// API item (`GET /api/facilities`), built here in SQL as every read response is.
pub async fn page(
    db: impl PgExecutor<'_>,
    filter: &FacilityFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, Value)>, sqlx::Error> {
    let (q, sic) = patterns(filter);
    let sql = format!(
        "select f.id, jsonb_build_object(
                'id', f.id::text,
                'facilityId', (select l.facility_id from facility_link l
                                where l.source = 'smarts_industrial' and l.status = 'linked'
                                  and l.source_key = coalesce(f.app_id, '') || '|' || coalesce(f.wdid, '')),
                'appId', f.app_id,
                'wdid', f.wdid,
                -- The standard WDID shape (domain::wdid::is_standard).
                'wdidStandard', coalesce(f.wdid ~ '^[0-9][ A-Z][0-9]{{2}}[A-Z]+[0-9]{{5,6}}$', false),
                'name', f.facility_name,
                'operator', f.operator_name,
                'permitType', f.permit_type,
                'status', f.status,
                'region', f.region_board,
                'county', f.county,
                'address', jsonb_build_object('street', f.facility_address,
                    'street2', f.facility_address_2, 'city', f.facility_city,
                    'state', f.facility_state, 'zip', f.facility_zip),
                'location', case when f.facility_latitude is not null and f.facility_longitude is not null
                                 then jsonb_build_object('latitude', f.facility_latitude::float8,
                                                         'longitude', f.facility_longitude::float8) end,
                'sic', jsonb_build_object('primary', f.primary_sic, 'secondary', f.secondary_sic,
                                          'tertiary', f.tertiary_sic),
                'noiProcessedDate', f.noi_processed_date,
                'notEffectiveDate', f.not_effective_date,
                'receivingWater', f.receiving_water_name,
                'sources', jsonb_build_object('smartsIndustrial', true, 'smartsConstruction', false,
                                              'esmr', false),
                'counts', jsonb_build_object(
                    'recordsWithSameAppIdAndWdid', (select count(*) from smarts_industrial_facility d
                        where d.withdrawn_run_id is null and d.app_id = f.app_id
                          and (d.wdid = f.wdid or (d.wdid is null and f.wdid is null))),
                    'recordsWithSameWdid', (select count(*) from smarts_industrial_facility d
                        where d.withdrawn_run_id is null and d.wdid = f.wdid)),
                'provenance', jsonb_build_object('dataset', 'smarts_industrial_facilities',
                    'sourceLine', f.source_line, 'changedInRun', f.changed_run_id))
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
