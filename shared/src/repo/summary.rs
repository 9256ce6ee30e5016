//! The stored per-facility summaries (`facility_summary`, migration 20261201150001): what the
//! directory lists, filters and sorts by. Rebuilt set-based from the linked source records,
//! the computed events and the ERA Levels whenever a state is published, and for one facility
//! after a review action. A full rebuild also rebuilds the SMARTS lists' stored stats
//! ([`crate::repo::list_stats`]).

use sqlx::PgPool;

/// Rebuilds the summary rows of `facilities` (every canonical facility when `None`) in one
/// transaction, one rebuild at a time (`db::SUMMARY_LOCK`): rows of merged facilities and of
/// facilities without a current record go, every other facility gets its row.
/// Returns how many rows were written.
pub async fn refresh(pool: &PgPool, facilities: Option<&[i64]>) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", crate::db::SUMMARY_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "delete from facility_summary where $1::bigint[] is null or facility_id = any($1)",
        facilities as _
    )
    .execute(&mut *tx)
    .await?;
    let written = sqlx::query!(
        "with fac as (
           select f.id, f.name, f.county, f.region, f.primary_sic, f.latitude, f.longitude,
                  f.coordinates_trusted from facility f
            where f.merged_into is null and ($1::bigint[] is null or f.id = any($1))),
         links as (
           select l.facility_id, l.source, l.source_key,
                  split_part(l.source_key, '|', 1) as app_id,
                  split_part(l.source_key, '|', 2) as wdid
             from facility_link l join fac on fac.id = l.facility_id
            where l.status = 'linked'),
         -- The current SMARTS records behind the links (a withdrawn record's link is history).
         current as (
           select l.facility_id, l.app_id as key_app_id, l.wdid as key_wdid, s.kind,
                  s.source_id, s.app_id, s.wdid, s.permit_type, s.status
             from links l
             join smarts_facility s on s.source_key = l.source_key and 'smarts_' || s.kind = l.source),
         rec as (
           select facility_id,
                  array_agg(source_id order by source_id)
                      filter (where kind = 'industrial') as industrial,
                  array_agg(source_id order by source_id)
                      filter (where kind = 'construction') as construction,
                  jsonb_agg(jsonb_build_object('id', source_id, 'appId', app_id, 'wdid', wdid)
                            order by source_id) filter (where kind = 'industrial')
                      as industrial_records,
                  jsonb_agg(jsonb_build_object('id', source_id, 'appId', app_id, 'wdid', wdid)
                            order by source_id) filter (where kind = 'construction')
                      as construction_records,
                  array_agg(distinct permit_type) filter (where permit_type is not null)
                      as permit_types,
                  array_agg(distinct status) filter (where status is not null) as statuses
             from current group by 1),
         -- The keys the SMARTS tables are matched by.
         keys as (
           select distinct facility_id, key_app_id as app_id, key_wdid as wdid from current),
         places as (
           select l.facility_id, l.source_key as place_id
             from links l join esmr_facility ef on ef.facility_place_id = l.source_key
            where l.source = 'esmr'),
         kid as (
           select facility_id,
                  array_agg(distinct wdid) filter (where wdid <> '') as wdids,
                  array_agg(distinct app_id) filter (where app_id <> '') as app_ids
             from keys group by 1),
         pid as (
           select facility_id, array_agg(place_id order by place_id) as places
             from places group by 1),
         viol as (
           select k.facility_id, count(*) as n,
                  max(coalesce(t.occurrence_date, t.discovery_date)) as last
             from smarts_violation t
             join keys k on t.wdid = k.wdid and coalesce(t.app_id, '') = k.app_id
            where t.withdrawn_run_id is null group by 1),
         enf as (
           select k.facility_id, count(*) as n, max(t.issuance_date) as last,
                  coalesce(sum(t.total_assessment), 0) as assessed,
                  coalesce(sum(t.received_amount), 0) as paid
             from smarts_enforcement_action t
             join keys k on t.wdid = k.wdid and coalesce(t.app_id, '') = k.app_id
            where t.withdrawn_run_id is null group by 1),
         insp as (
           select k.facility_id, count(*) as n, max(t.inspection_date) as last
             from smarts_inspection t
             join keys k on t.wdid = k.wdid and coalesce(t.app_id, '') = k.app_id
            where t.withdrawn_run_id is null group by 1),
         sampled as (
           select k.facility_id, max(t.sample_date) as last
             from smarts_industrial_monitoring t
             join keys k on t.wdid = k.wdid and coalesce(t.app_id, '') = k.app_id
            where t.withdrawn_run_id is null group by 1
           union all
           select k.facility_id, max(t.sample_date)
             from smarts_construction_monitoring t
             join keys k on t.wdid = k.wdid and coalesce(t.app_id, '') = k.app_id
            where t.withdrawn_run_id is null group by 1
           union all
           select l.facility_id, max(s.sampling_date)
             from esmr_sample s join places l on s.facility_place_id = l.place_id
            where s.withdrawn_run_id is null group by 1),
         samp as (select facility_id, max(last) as last from sampled group by 1),
         ev as (
           select e.facility_id, count(*) as n,
                  count(*) filter (where e.status in ('open', 'under_review')) as open,
                  array_agg(distinct e.pollutant_key) as pollutants,
                  max(e.last_date) as last_date, max(e.reporting_year) as last_year,
                  -- the worst severity of the open events (the map's colour)
                  (array_agg(e.severity order by array_position(
                       array['low', 'moderate', 'high', 'critical'], e.severity) desc nulls last)
                     filter (where e.status in ('open', 'under_review')))[1] as open_severity
             from violation_event e join fac on fac.id = e.facility_id
            where e.retracted_at is null group by 1),
         lvl as (
           select n.facility_id, min(n.level_1_since) as l1, min(n.level_2_since) as l2
             from nal_level n join fac on fac.id = n.facility_id group by 1),
         -- Monitoring completeness: the judged half-years, and those with fewer than two QSEs.
         halves as (
           select h.facility_id, count(*) as judged,
                  array_agg(h.half_start order by h.half_start)
                      filter (where h.sampled_events < 2) as short
             from igp_sampling_halves($1) h join fac on fac.id = h.facility_id group by 1)
         insert into facility_summary (
             facility_id, name, county, region, primary_sic,
             smarts_industrial_ids, smarts_construction_ids, esmr_place_ids, records, wdids, app_ids,
             permit_types, statuses, events, open_events, pollutants, last_exceedance_date,
             last_exceedance_year, level_1_since, level_2_since, smarts_violations,
             enforcement_actions, inspections, penalties_assessed, penalties_paid,
             last_sample_date, last_violation_date, last_inspection_date, last_enforcement_date,
             last_activity_date, sampling_halves, sampling_shortfalls,
             latitude, longitude, coordinates_trusted, max_open_severity)
         select fac.id, fac.name, fac.county, fac.region, fac.primary_sic,
                coalesce(rec.industrial, '{}'), coalesce(rec.construction, '{}'),
                coalesce(pid.places, '{}'),
                jsonb_build_object('smartsIndustrial', coalesce(rec.industrial_records, '[]'),
                    'smartsConstruction', coalesce(rec.construction_records, '[]'),
                    'esmr', to_jsonb(coalesce(pid.places, '{}'))),
                coalesce(kid.wdids, '{}'), coalesce(kid.app_ids, '{}'),
                coalesce(rec.permit_types, '{}'), coalesce(rec.statuses, '{}'),
                coalesce(ev.n, 0), coalesce(ev.open, 0), coalesce(ev.pollutants, '{}'),
                ev.last_date, ev.last_year, lvl.l1, lvl.l2,
                coalesce(viol.n, 0), coalesce(enf.n, 0), coalesce(insp.n, 0),
                coalesce(enf.assessed, 0), coalesce(enf.paid, 0),
                samp.last, viol.last, insp.last, enf.last,
                -- greatest ignores nulls: null only when all four are
                greatest(samp.last, viol.last, insp.last, enf.last),
                coalesce(halves.judged, 0), coalesce(halves.short, '{}'),
                fac.latitude, fac.longitude, fac.coordinates_trusted, ev.open_severity
           from fac
           left join rec on rec.facility_id = fac.id
           left join kid on kid.facility_id = fac.id
           left join pid on pid.facility_id = fac.id
           left join viol on viol.facility_id = fac.id
           left join enf on enf.facility_id = fac.id
           left join insp on insp.facility_id = fac.id
           left join samp on samp.facility_id = fac.id
           left join ev on ev.facility_id = fac.id
           left join lvl on lvl.facility_id = fac.id
           left join halves on halves.facility_id = fac.id
          -- A facility is listed while a current record of it is.
          where rec.facility_id is not null or pid.places is not null",
        facilities as _
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // The directory's item (api::facilities adds the Level as of today and the rebuild time).
    sqlx::query!(
        "update facility_summary s set item = jsonb_build_object(
             'id', f.id, 'name', f.name, 'county', f.county, 'region', f.region,
             'address', jsonb_build_object('street', f.address, 'city', f.city, 'zip', f.zip),
             'location', case when f.latitude is null then null else jsonb_build_object(
                 'latitude', f.latitude, 'longitude', f.longitude,
                 'trusted', f.coordinates_trusted) end,
             'primarySic', f.primary_sic,
             'sources', jsonb_build_object(
                 'smartsIndustrial', cardinality(s.smarts_industrial_ids) > 0,
                 'smartsConstruction', cardinality(s.smarts_construction_ids) > 0,
                 'esmr', cardinality(s.esmr_place_ids) > 0),
             'records', s.records,
             'permitIds', jsonb_build_object(
                 'wdids', s.wdids, 'appIds', s.app_ids, 'esmrPlaceIds', s.esmr_place_ids),
             'permitTypes', s.permit_types, 'statuses', s.statuses,
             'pollutants', s.pollutants,
             'counts', jsonb_build_object(
                 'events', s.events, 'openEvents', s.open_events,
                 'smartsViolations', s.smarts_violations,
                 'enforcementActions', s.enforcement_actions, 'inspections', s.inspections),
             'penalties', jsonb_build_object('assessed', s.penalties_assessed,
                 'paid', s.penalties_paid),
             'dates', jsonb_build_object(
                 'lastSample', s.last_sample_date, 'lastViolation', s.last_violation_date,
                 'lastInspection', s.last_inspection_date,
                 'lastEnforcement', s.last_enforcement_date,
                 'lastExceedance', s.last_exceedance_date,
                 'lastExceedanceReportingYear', s.last_exceedance_year,
                 'lastActivity', s.last_activity_date),
             'sampling', jsonb_build_object('judgedHalfYears', s.sampling_halves,
                 'shortHalfYears', s.sampling_shortfalls))
           from facility f
          where f.id = s.facility_id and ($1::bigint[] is null or s.facility_id = any($1))",
        facilities as _
    )
    .execute(&mut *tx)
    .await?;
    // The area counts (migration 20261201190002) follow the rows, in the same transaction.
    sqlx::query!("delete from facility_area_count")
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "insert into facility_area_count (area, facilities)
         select concat_ws('|', 'county:' || c, 'region:' || r), count(*)
           from (select lower(county) as c, upper(region) as r from facility_summary) s
          group by grouping sets ((), (c), (r), (c, r))
         having (grouping(c) = 1 or c is not null) and (grouping(r) = 1 or r is not null)"
    )
    .execute(&mut *tx)
    .await?;
    // The SMARTS lists' stats follow the records, which only a full rebuild follows.
    if facilities.is_none() {
        crate::repo::list_stats::refresh(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// How many facilities the directory lists in `county` and `region` (either or both absent:
/// any), from the stored area counts; compared as the directory's filters compare them.
pub async fn area_count(
    pool: &PgPool,
    county: Option<&str>,
    region: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select coalesce((select facilities from facility_area_count
                             where area = concat_ws('|', 'county:' || lower($1::text),
                                                    'region:' || upper($2::text))), 0) as "n!""#,
        county,
        region
    )
    .fetch_one(pool)
    .await
}

/// Whether the stored summaries and dashboards are a complete publication of today in `layout`
/// (`crate::api::publish::Rebuild::UnlessUnchanged`).
pub async fn publication_current(pool: &PgPool, layout: i32) -> Result<bool, sqlx::Error> {
    let current = sqlx::query_scalar!(
        r#"select (complete and published_on = current_date and layout = $1) as "v!"
             from publish_state"#,
        layout
    )
    .fetch_optional(pool)
    .await?;
    Ok(current.unwrap_or(false))
}

/// Marks the stored state incomplete while a publication rebuilds it; returns whether it was
/// complete.
pub async fn begin_publication(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let was = sqlx::query_scalar!(
        r#"with old as (select complete from publish_state for update),
                up as (update publish_state set complete = false, updated_at = now())
           select complete as "v!" from old"#
    )
    .fetch_optional(pool)
    .await?;
    Ok(was.unwrap_or(false))
}

/// Records a complete publication of every facility, today, in `layout`.
pub async fn complete_publication(pool: &PgPool, layout: i32) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into publish_state (complete, published_on, layout) values (true, current_date, $1)
         on conflict (singleton) do update
            set complete = true, published_on = current_date, layout = $1, updated_at = now()",
        layout
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that a rebuild of some facilities left a complete publication complete (its day and
/// layout are those of the last whole one).
pub async fn restore_publication(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("update publish_state set complete = true, updated_at = now()")
        .execute(pool)
        .await?;
    Ok(())
}
