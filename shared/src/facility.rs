//! Canonical facilities (`facility`, `facility_link`).
//!
//! Seeding gives every source record that has none a facility of its own: each SMARTS
//! application (`'APP_ID|WDID'`, from the facility files or, when a site reports monitoring
//! without a facility row, from the monitoring rows) and each eSMR facility (CIWQS
//! `facility_place_id`). The link has method `seed`. Merging records that are the same real site
//! is the linker's job; seeding never merges and never overrides a manual decision.
//!
//! Coordinates are kept only when they fall inside California's bounding box: the sources carry
//! wrong signs and 0,0 placeholders, which must not be plotted or used for distance matching.

use sqlx::{Postgres, Transaction};

/// What seeding did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Seeded {
    pub created: u64,
    pub refreshed: u64,
    /// Facilities whose `normalized_name` was (re)computed.
    pub normalized: u64,
}

/// California's bounding box (with a little margin), as SQL over `lat` / `lon` expressions.
const IN_CALIFORNIA: &str = "between 32.4 and 42.1";
const IN_CALIFORNIA_LON: &str = "between -124.6 and -114.0";

/// Creates the missing canonical facilities and refreshes seeded facilities from the source
/// record they were built from, looking only at source rows changed after `after_run` (all
/// when `None`): an unchanged record already has its facility, with its current values.
pub async fn seed(
    tx: &mut Transaction<'_, Postgres>,
    after_run: Option<i64>,
) -> Result<Seeded, sqlx::Error> {
    let changed = "($1::bigint is null or m.changed_run_id > $1)";
    let source_rows = format!(
        "select 'smarts_' || s.kind as source, s.source_key,
                coalesce(nullif(btrim(s.facility_name), ''), 'WDID ' || s.wdid, 'APP_ID ' || s.app_id) as name,
                s.address, s.city, s.county, s.region, s.zip,
                case when s.latitude {IN_CALIFORNIA} and s.longitude {IN_CALIFORNIA_LON}
                     then s.latitude::float8 end as latitude,
                case when s.latitude {IN_CALIFORNIA} and s.longitude {IN_CALIFORNIA_LON}
                     then s.longitude::float8 end as longitude,
                                0 as rank
         from smarts_facility s
         where ($1::bigint is null or s.changed_run_id > $1)
         union all
         select 'smarts_industrial', coalesce(m.app_id, '') || '|' || coalesce(m.wdid, ''),
                coalesce('WDID ' || m.wdid, 'APP_ID ' || m.app_id), null, null, null, null, null, null, null, 1
         from (select distinct m.app_id, m.wdid from smarts_industrial_monitoring m where {changed}) m
         union all
         select 'smarts_construction', coalesce(m.app_id, '') || '|' || coalesce(m.wdid, ''),
                coalesce('WDID ' || m.wdid, 'APP_ID ' || m.app_id), null, null, null, null, null, null, null, 1
         from (select distinct m.app_id, m.wdid from smarts_construction_monitoring m where {changed}) m
         union all
         select 'esmr', e.facility_place_id,
                coalesce(nullif(btrim(e.facility_name), ''), 'CIWQS place ' || e.facility_place_id),
                null, null, null, e.region_code, null, c.latitude, c.longitude, 0
         from esmr_facility e
         -- The mean of the facility's monitoring locations that lie in California; a location
         -- with a sign error or a 0,0 placeholder falls outside and is not used.
         left join lateral (
             select avg(l.latitude)::float8 as latitude, avg(l.longitude)::float8 as longitude
             from esmr_location l
             where l.facility_place_id = e.facility_place_id
               and l.latitude {IN_CALIFORNIA} and l.longitude {IN_CALIFORNIA_LON}) c on true
         where ($1::bigint is null or e.last_run_id > $1)"
    );
    let created = sqlx::query(sqlx::AssertSqlSafe(format!(
        "with src as (
             select distinct on (source, source_key) *
             from ({source_rows}) s
             order by source, source_key, rank
         ), fresh as (
             select * from src
             where not exists (select 1 from facility f
                               where f.origin_source = src.source and f.origin_key = src.source_key)
         ), ins as (
             insert into facility (name, address, city, county, region, zip, latitude, longitude,
                                   coordinates_trusted, origin_source, origin_key)
             select name, address, city, county, region, zip, latitude, longitude,
                    latitude is not null, source, source_key
             from fresh
             returning id, origin_source, origin_key
         )
         insert into facility_link (facility_id, source, source_key, method, confidence, status, notes)
         select id, origin_source, origin_key, 'seed', 1, 'linked', 'one facility per source record'
         from ins
         -- A record already linked elsewhere (a manual decision made before it was seeded)
         -- keeps that link; the linker marks its new facility as merged.
         where not exists (select 1 from facility_link l where l.source = ins.origin_source
                             and l.source_key = ins.origin_key and l.status = 'linked')"
    )))
    .bind(after_run)
    .execute(&mut **tx)
    .await?
    .rows_affected();

    let refreshed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "with src as (
             select distinct on (source, source_key) *
             from ({source_rows}) s
             where s.rank = 0
             order by source, source_key
         )
         update facility f
                        set name = src.name,
                normalized_name = case when (f.name, f.address) is distinct from (src.name, src.address)
                                       then null else f.normalized_name end,
                address = src.address, city = src.city, county = src.county,
                region = src.region, zip = src.zip, latitude = src.latitude,
                longitude = src.longitude, coordinates_trusted = src.latitude is not null
           from src
          where f.origin_source = src.source and f.origin_key = src.source_key
            and (f.name, f.address, f.city, f.county, f.region, f.zip, f.latitude, f.longitude)
                is distinct from
                (src.name, src.address, src.city, src.county, src.region, src.zip, src.latitude, src.longitude)"
    )))
    .bind(after_run)
    .execute(&mut **tx)
        .await?
    .rows_affected();
    let normalized = fill_normalized_names(tx).await?;
    Ok(Seeded {
        created,
        refreshed,
        normalized,
    })
}

/// Sets the match features (`domain::names`: `normalized_name`, `match_name`, `street_key`)
/// where `normalized_name` is missing (new facilities, renamed ones, a changed normalization).
async fn fill_normalized_names(tx: &mut Transaction<'_, Postgres>) -> Result<u64, sqlx::Error> {
    use crate::domain::names;
    let rows: Vec<(i64, String, Option<String>)> =
        sqlx::query_as("select id, name, address from facility where normalized_name is null")
            .fetch_all(&mut **tx)
            .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut normalized = Vec::with_capacity(rows.len());
    let mut cores = Vec::with_capacity(rows.len());
    let mut streets = Vec::with_capacity(rows.len());
    for (id, name, address) in rows {
        ids.push(id);
        normalized.push(names::normalize(&name));
        cores.push(names::core(&name));
        streets.push(address.as_deref().and_then(names::street_key));
    }
    Ok(sqlx::query(
        "update facility f set normalized_name = x.n, match_name = x.m, street_key = x.s
         from unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) as x(id, n, m, s)
         where f.id = x.id",
    )
    .bind(&ids)
    .bind(&normalized)
    .bind(&cores)
    .bind(&streets)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
