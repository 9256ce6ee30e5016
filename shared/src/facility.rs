//! Canonical facilities (`facility`, `facility_link`).
//!
//! Seeding gives every source record that has none a facility of its own: each SMARTS
//! application (`'APP_ID|WDID'`, from the facility files or, when a site reports monitoring
//! without a facility row, from the monitoring rows) and each eSMR facility (CIWQS
//! `facility_place_id`). The link has method `seed`. Merging records that are the same real site
//! is the linker's job; seeding never merges and never overrides a manual decision.
//!
//! A facility row carries two things:
//! - `own_*`: the values of the record it was built from (name, address, city, county,
//!   regional board, zip, coordinates, primary SIC), refreshed whenever that record changes. The
//!   linker compares records by these (and by the match features computed from them).
//! - the served fields (`name`, `address`, `city`, `county`, `region`, `zip`, `latitude`,
//!   `longitude`, `coordinates_trusted`, `primary_sic`): what the API shows, derived by
//!   [`derive`] from the records linked to the facility: each field from its own record when
//!   that has it, else from the first linked record that does (SMARTS industrial, then
//!   construction, then eSMR; the oldest first); coordinates as a pair; a placeholder name
//!   (`WDID …`, a site known only from monitoring rows) gives way to a real one. A facility
//!   merged into another shows its own record.
//!
//! Coordinates are kept only when they fall inside California's bounding box: the sources carry
//! wrong signs and 0,0 placeholders, which must not be plotted or used for distance matching.
//! Of duplicate rows of one SMARTS key, the first in the file (`row_ord` 0) is the record.

use sqlx::{Postgres, Transaction};

/// What seeding did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Seeded {
    pub created: u64,
    pub refreshed: u64,
    /// Facilities whose `normalized_name` was (re)computed.
    pub normalized: u64,
    /// Facilities whose served fields changed ([`derive`]).
    pub derived: u64,
}

/// California's bounding box (with a little margin), as SQL over `lat` / `lon` expressions.
const IN_CALIFORNIA: &str = "between 32.4 and 42.1";
const IN_CALIFORNIA_LON: &str = "between -124.6 and -114.0";

/// The facility fields of every source record changed after the run `$1` (all when null; for
/// a SMARTS key, all its current rows): `source`,
/// `source_key`, `name`, `address`, `city`, `county`, `region`, `zip`, `latitude`, `longitude`,
/// `primary_sic`, and `rank` (0: a facility row, 1: known only from monitoring rows), `ord` and
/// `source_id` (of duplicate rows of one key, the first in the file: `row_ord` 0).
fn source_rows() -> String {
    let after = "$1";
    let changed = format!("({after}::bigint is null or m.changed_run_id > {after})");
    format!(
        "select 'smarts_' || s.kind as source, s.source_key,
                coalesce(nullif(btrim(s.facility_name), ''), 'WDID ' || s.wdid, 'APP_ID ' || s.app_id) as name,
                s.address, s.city, s.county, s.region, s.zip,
                case when s.latitude {IN_CALIFORNIA} and s.longitude {IN_CALIFORNIA_LON}
                     then s.latitude::float8 end as latitude,
                case when s.latitude {IN_CALIFORNIA} and s.longitude {IN_CALIFORNIA_LON}
                     then s.longitude::float8 end as longitude,
                nullif(btrim(s.primary_sic), '') as primary_sic,
                0 as rank, s.row_ord as ord, s.source_id
         from smarts_facility s
         -- Every current row of a key with a changed row: the record is the key's first row,
         -- which need not be the changed one.
         where ({after}::bigint is null
                or (s.kind, s.source_key) in (select c.kind, c.source_key from smarts_facility c
                                               where c.changed_run_id > {after}))
         union all
         select 'smarts_industrial', coalesce(m.app_id, '') || '|' || coalesce(m.wdid, ''),
                coalesce('WDID ' || m.wdid, 'APP_ID ' || m.app_id), null, null, null, null, null, null, null,
                null, 1, null, null
         from (select distinct m.app_id, m.wdid from smarts_industrial_monitoring m where {changed}) m
         union all
         select 'smarts_construction', coalesce(m.app_id, '') || '|' || coalesce(m.wdid, ''),
                coalesce('WDID ' || m.wdid, 'APP_ID ' || m.app_id), null, null, null, null, null, null, null,
                null, 1, null, null
         from (select distinct m.app_id, m.wdid from smarts_construction_monitoring m where {changed}) m
         union all
         select 'esmr', e.facility_place_id,
                coalesce(nullif(btrim(e.facility_name), ''), 'CIWQS place ' || e.facility_place_id),
                null, null, null, e.region_code, null, c.latitude, c.longitude, null, 0, null, null
         from esmr_facility e
         -- The mean of the facility's monitoring locations that lie in California; a location
         -- with a sign error or a 0,0 placeholder falls outside and is not used.
         left join lateral (
             select avg(l.latitude)::float8 as latitude, avg(l.longitude)::float8 as longitude
             from esmr_location l
             where l.facility_place_id = e.facility_place_id
               and l.latitude {IN_CALIFORNIA} and l.longitude {IN_CALIFORNIA_LON}) c on true
         where ({after}::bigint is null or e.last_run_id > {after})"
    )
}

/// Creates the missing canonical facilities and refreshes each facility's `own_*` fields from
/// the source record it was built from, looking only at source rows changed after `after_run`
/// (all when `None`): an unchanged record already has its facility, with its current values.
/// Then the served fields of every facility follow its records ([`derive`]).
pub async fn seed(
    tx: &mut Transaction<'_, Postgres>,
    after_run: Option<i64>,
) -> Result<Seeded, sqlx::Error> {
    let source_rows = source_rows();
    // Runtime SQL: the source records are a union built from the registry's datasets.
    let created = sqlx::query(sqlx::AssertSqlSafe(format!(
        "with src as (
             select distinct on (source, source_key) *
             from ({source_rows}) s
             order by source, source_key, rank, ord nulls last, source_id
         ), fresh as (
             select * from src
             where not exists (select 1 from facility f
                               where f.origin_source = src.source and f.origin_key = src.source_key)
         ), ins as (
             insert into facility (name, address, city, county, region, zip, latitude, longitude,
                                   coordinates_trusted, primary_sic,
                                   own_name, own_address, own_city, own_county, own_region,
                                   own_zip, own_latitude, own_longitude, own_primary_sic,
                                   origin_source, origin_key)
             select name, address, city, county, region, zip, latitude, longitude,
                    latitude is not null, primary_sic,
                    name, address, city, county, region, zip, latitude, longitude, primary_sic,
                    source, source_key
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

    // Runtime SQL: the source records are a union built from the registry's datasets.
    let refreshed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "with src as (
             select distinct on (source, source_key) *
             from ({source_rows}) s
             where s.rank = 0
             order by source, source_key, ord nulls last, source_id
         )
         update facility f
            set normalized_name = case when (f.own_name, f.own_address)
                                            is distinct from (src.name, src.address)
                                       then null else f.normalized_name end,
                own_name = src.name, own_address = src.address, own_city = src.city,
                own_county = src.county, own_region = src.region, own_zip = src.zip,
                own_latitude = src.latitude, own_longitude = src.longitude,
                own_primary_sic = src.primary_sic
           from src
          where f.origin_source = src.source and f.origin_key = src.source_key
            and (f.own_name, f.own_address, f.own_city, f.own_county, f.own_region, f.own_zip,
                 f.own_latitude, f.own_longitude, f.own_primary_sic)
                is distinct from
                (src.name, src.address, src.city, src.county, src.region, src.zip, src.latitude,
                 src.longitude, src.primary_sic)"
    )))
    .bind(after_run)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let normalized = fill_normalized_names(tx).await?;
    let derived = derive(tx).await?;
    Ok(Seeded {
        created,
        refreshed,
        normalized,
        derived,
    })
}

/// Sets the served fields of every facility from the records linked to it (see the module
/// docs); only rows whose fields change are written. Run by [`seed`], by the linker after it
/// moved links, and by `migrate` (so a deploy that changes the rule applies it at once).
pub async fn derive(db: &mut sqlx::PgConnection) -> Result<u64, sqlx::Error> {
    // `first(x)`: of the linked records that have x, the facility's own record first, then by
    // source (SMARTS industrial, construction, eSMR), then the oldest.
    let first = |x: &str| {
        format!(
            "(array_agg({x} order by r.own desc, r.rank, r.oid) filter (where {x} is not null))[1]"
        )
    };
    let sql = format!(
        "with r as (
             select l.facility_id as fid, o.id as oid, o.id = l.facility_id as own,
                    case o.origin_source when 'smarts_industrial' then 0
                         when 'smarts_construction' then 1 else 2 end as rank,
                    case when o.own_name !~ '^(WDID|APP_ID|CIWQS place) ' then o.own_name end
                        as real_name,
                    o.own_address, o.own_city, o.own_county, o.own_region, o.own_zip,
                    o.own_primary_sic,
                    case when o.own_latitude is not null then o.id end as placed
             from facility_link l
             join facility o on o.origin_source = l.source and o.origin_key = l.source_key
             where l.status = 'linked'
         ), linked as (
             select fid, {name} as name, {address} as address, {city} as city,
                    {county} as county, {region} as region, {zip} as zip, {sic} as primary_sic,
                    {placed} as placed
             from r group by fid
         ), want as (
             select f.id, coalesce(w.name, f.own_name) as name,
                    case when w.fid is null then f.own_address else w.address end as address,
                    case when w.fid is null then f.own_city else w.city end as city,
                    case when w.fid is null then f.own_county else w.county end as county,
                    case when w.fid is null then f.own_region else w.region end as region,
                    case when w.fid is null then f.own_zip else w.zip end as zip,
                    case when w.fid is null then f.own_primary_sic else w.primary_sic end as primary_sic,
                    coalesce(p.own_latitude, case when w.fid is null then f.own_latitude end) as latitude,
                    coalesce(p.own_longitude, case when w.fid is null then f.own_longitude end) as longitude
             from facility f
             left join linked w on w.fid = f.id
             left join facility p on p.id = w.placed
         )
         update facility f
            set name = w.name, address = w.address, city = w.city, county = w.county,
                region = w.region, zip = w.zip, primary_sic = w.primary_sic,
                latitude = w.latitude, longitude = w.longitude,
                coordinates_trusted = w.latitude is not null
           from want w
          where w.id = f.id
            and (f.name, f.address, f.city, f.county, f.region, f.zip, f.primary_sic, f.latitude,
                 f.longitude, f.coordinates_trusted)
                is distinct from
                (w.name, w.address, w.city, w.county, w.region, w.zip, w.primary_sic, w.latitude,
                 w.longitude, w.latitude is not null)",
        name = first("r.real_name"),
        address = first("r.own_address"),
        city = first("r.own_city"),
        county = first("r.own_county"),
        region = first("r.own_region"),
        zip = first("r.own_zip"),
        sic = first("r.own_primary_sic"),
        placed = first("r.placed"),
    );
    // Runtime SQL: the derived fields are built per field from the records' priority rule.
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(db)
        .await?
        .rows_affected())
}

/// [`derive`] on its own, in a transaction holding the linker's lock (`migrate` runs it after
/// applying migrations); returns how many facilities changed.
pub async fn refresh(pool: &sqlx::PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", crate::db::LINKING_LOCK)
        .execute(&mut *tx)
        .await?;
    let n = derive(&mut tx).await?;
    tx.commit().await?;
    Ok(n)
}

/// Sets the match features (`domain::names`: `normalized_name`, `match_name`, `street_key`)
/// where `normalized_name` is missing (new facilities, renamed ones, a changed normalization).
async fn fill_normalized_names(tx: &mut Transaction<'_, Postgres>) -> Result<u64, sqlx::Error> {
    use crate::domain::names;
    let rows = sqlx::query!(
        r#"select id, own_name as "own_name!", own_address from facility where normalized_name is null"#,
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.id, r.own_name, r.own_address));
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
    Ok(sqlx::query!(
        "update facility f set normalized_name = x.n, match_name = x.m, street_key = x.s
         from unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) as x(id, n, m, s)
         where f.id = x.id",
        &ids,
        &normalized,
        &cores,
        &streets as _
    )
    .execute(&mut **tx)
    .await?
    .rows_affected())
}
