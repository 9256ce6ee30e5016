//! `GET /api/dashboard`: the overview a watchdog opens first, for the whole state or one
//! `county` / `region`, over a `dateFrom`..`dateTo` period (any part of the record's date in
//! the range; everything when absent).
//!
//! Sections: `summary` (counts and money), `violations` (computed exceedance events by
//! severity, type, source, pollutant), `enforcement` (by type, active, assessed, received),
//! `recentActivity` (the 20 newest dated records of any kind), `topOffenders` (10 facilities
//! with the most open exceedance events) and `timeline` (per month: events, SMARTS violations,
//! inspections, enforcement actions, penalties assessed).
//!
//! Area: events by their canonical facility's county/region; SMARTS records by the county and
//! regional board the publisher attached to them.
//!
//! Without a date range, the statewide, per-county and per-region dashboards are read from
//! `dashboard_snapshot`, computed by [`refresh_snapshots`] at the end of each sync (and for the
//! scopes a review action touches) with the same code as the live path.

use super::list::{self, Arg, Conditions, HOT};
use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use futures_util::{StreamExt, TryStreamExt};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use sqlx::{Postgres, QueryBuilder};

/// Handles the request.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    list::respond(state, &req, "dashboard", HOT, None, |q| dashboard(state, q)).await
}

/// Where and when a dashboard looks.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub county: Option<String>,
    pub region: Option<String>,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
}

impl Scope {
    /// The `dashboard_snapshot` key of a scope that has one (no dates; not county and region
    /// together).
    fn snapshot_key(&self) -> Option<String> {
        if self.from.is_some() || self.to.is_some() {
            return None;
        }
        match (&self.county, &self.region) {
            (None, None) => Some(String::new()),
            (Some(c), None) => Some(format!("county:{}", c.to_lowercase())),
            (None, Some(r)) => Some(format!("region:{}", r.to_uppercase())),
            (Some(_), Some(_)) => None,
        }
    }

    /// Conditions on a SMARTS table `t` dated by `date`.
    fn smarts(&self, date: &str) -> Conditions {
        let mut c = Conditions::default();
        c.always("t.withdrawn_run_id is null")
            .when(
                "lower(t.place_county) = lower(",
                self.county.clone().map(Arg::Text),
                ")",
            )
            .when(
                "upper(t.regional_board) = upper(",
                self.region.clone().map(Arg::Text),
                ")",
            )
            .when(&format!("{date} >= "), self.from.map(Arg::Date), "")
            .when(&format!("{date} <= "), self.to.map(Arg::Date), "");
        c
    }

    /// Conditions on violation events `t` joined to their facility `f`.
    fn events(&self) -> Conditions {
        let mut c = Conditions::default();
        c.always("t.retracted_at is null")
            .when(
                "lower(f.county) = lower(",
                self.county.clone().map(Arg::Text),
                ")",
            )
            .when(
                "upper(f.region) = upper(",
                self.region.clone().map(Arg::Text),
                ")",
            )
            .when("t.last_date >= ", self.from.map(Arg::Date), "")
            .when("t.first_date <= ", self.to.map(Arg::Date), "");
        c
    }
}

/// `with name as materialized (select t.* from from where true <conditions>)`, appended.
fn cte(qb: &mut QueryBuilder<Postgres>, name: &str, select: &str, from: &str, c: &Conditions) {
    qb.push(format!(
        "{name} as materialized (select {select} from {from} where true"
    ));
    c.push_to(qb);
    qb.push(")");
}

async fn dashboard(state: &ApiState, q: Query) -> Result<Value, ApiError> {
    let (from, to) = list::date_range(&q)?;
    let scope = Scope {
        county: q.text("county")?,
        region: q.text("region")?,
        from,
        to,
    };
    let snapshot = match scope.snapshot_key() {
        Some(key) => sqlx::query!(
            "select body, computed_at from dashboard_snapshot where scope = $1",
            key
        )
        .fetch_optional(&state.pool)
        .await?
        .map(|r| (r.body, r.computed_at)),
        None => None,
    };
    let (data, snapshot_at) = match snapshot {
        Some((body, at)) => (body, Some(at)),
        None => (compute(&state.pool, &scope).await?, None),
    };
    Ok(json!({
        "data": data,
        "meta": {
            "scope": { "county": scope.county, "region": scope.region,
                       "dateFrom": scope.from, "dateTo": scope.to },
            "snapshotAt": snapshot_at,
            "freshness": freshness(&state.pool).await?,
        },
    }))
}

/// How many scopes [`refresh_snapshots`] computes at once.
const SCOPES_AT_ONCE: usize = 4;

/// Recomputes the stored dashboards and violation stats: every scope, or (`facility_id`) the
/// statewide one and those of the facility's county and region. The new rows replace the old
/// ones in one transaction, so readers see either set, never a gap. Returns how many scopes.
pub async fn refresh_snapshots(
    pool: &sqlx::PgPool,
    facility_id: Option<i64>,
) -> Result<usize, ApiError> {
    let started = std::time::Instant::now();
    let scopes: Vec<(Option<String>, Option<String>)> = match facility_id {
        None => {
            sqlx::query!(
                "select null::text as county, null::text as region
                 union select distinct lower(c), null from (
                     select county as c from facility union select place_county from smarts_violation
                     union select place_county from smarts_inspection
                     union select place_county from smarts_enforcement_action) x where c is not null
                 union select distinct null, upper(r) from (
                     select region as r from facility union select regional_board from smarts_violation
                     union select regional_board from smarts_inspection
                     union select regional_board from smarts_enforcement_action) y where r is not null",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| (r.county, r.region))
            .collect()
        }
        Some(id) => {
            sqlx::query!(
                "select null::text as county, null::text as region
                 union all select lower(county), null from facility where id = $1 and county is not null
                 union all select null, upper(region) from facility where id = $1 and region is not null",
                id
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| (r.county, r.region))
            .collect()
        }
    };
    // Scopes are independent: a few at a time, each on its own connection (the statewide one
    // alone takes as long as many counties).
    // (Owned scopes and pool handles: the futures borrow nothing, which keeps them `Send`
    // for every lifetime the API router asks for.)
    let computed: Vec<Vec<(String, Value)>> = futures_util::stream::iter(scopes.clone())
        .map(|(county, region)| {
            let pool = pool.clone();
            async move {
                let scope = Scope {
                    county: county.clone(),
                    region: region.clone(),
                    from: None,
                    to: None,
                };
                let key = scope.snapshot_key().unwrap_or_default();
                let mut rows = vec![(key.clone(), compute(&pool, &scope).await?)];
                rows.extend(
                    super::violation_list::stats_to_store(
                        &pool,
                        &key,
                        county.as_deref(),
                        region.as_deref(),
                    )
                    .await?,
                );
                Ok::<_, ApiError>(rows)
            }
        })
        .buffer_unordered(SCOPES_AT_ONCE)
        .try_collect()
        .await?;
    let rows: Vec<(String, Value)> = computed.into_iter().flatten().collect();
    let mut tx = pool.begin().await?;
    if facility_id.is_none() {
        sqlx::query!("delete from dashboard_snapshot")
            .execute(&mut *tx)
            .await?;
    }
    for (key, body) in rows {
        sqlx::query!(
            "insert into dashboard_snapshot (scope, body) values ($1, $2)
             on conflict (scope) do update set body = excluded.body, computed_at = now()",
            key,
            body
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(
        scopes = scopes.len(),
        ms = started.elapsed().as_millis() as u64,
        "dashboard snapshots refreshed"
    );
    Ok(scopes.len())
}

/// The dashboard's `data` for `scope`, computed from the tables.
pub async fn compute(pool: &sqlx::PgPool, scope: &Scope) -> Result<Value, sqlx::Error> {
    let mut qb = QueryBuilder::<Postgres>::new("with ");
    cte(
        &mut qb,
        "ev",
        "t.*, f.name as facility_name",
        "violation_event t join facility f on f.id = t.facility_id",
        &scope.events(),
    );
    qb.push(", ");
    cte(
        &mut qb,
        "sv",
        "t.*",
        "smarts_violation t",
        &scope.smarts("t.occurrence_date"),
    );
    qb.push(", ");
    cte(
        &mut qb,
        "si",
        "t.*",
        "smarts_inspection t",
        &scope.smarts("t.inspection_date"),
    );
    qb.push(", ");
    cte(
        &mut qb,
        "se",
        "t.*",
        "smarts_enforcement_action t",
        &scope.smarts("t.issuance_date"),
    );
    qb.push(", ");
    let mut fc = Conditions::default();
    // Canonical facilities only: one merged into another is the same site.
    fc.always("t.merged_into is null")
        .when(
            "lower(t.county) = lower(",
            scope.county.clone().map(Arg::Text),
            ")",
        )
        .when(
            "upper(t.region) = upper(",
            scope.region.clone().map(Arg::Text),
            ")",
        );
    cte(&mut qb, "fa", "t.id", "facility t", &fc);
    // The canonical facilities of the scope's enforcement actions (through the link of their
    // APP_ID|WDID).
    qb.push(
        ", enforced as materialized (select distinct l.facility_id from se
             join facility_link l on l.status = 'linked'
              and l.source in ('smarts_industrial', 'smarts_construction')
              and l.source_key = coalesce(se.app_id, '') || '|' || se.wdid)",
    );
    qb.push(format!(
        " select jsonb_build_object(
           'summary', jsonb_build_object(
               'facilities', (select count(*) from fa),
               -- By the sources of their current records (a facility with records of
               -- several programs counts under each, and once under linked).
               'facilitiesBySource', (select jsonb_build_object(
                   'smartsIndustrial', count(*) filter (where cardinality(s.smarts_industrial_ids) > 0),
                   'smartsConstruction', count(*) filter (where cardinality(s.smarts_construction_ids) > 0),
                   'esmr', count(*) filter (where cardinality(s.esmr_place_ids) > 0),
                   'linked', count(*) filter (where (cardinality(s.smarts_industrial_ids) > 0)::int
                                                   + (cardinality(s.smarts_construction_ids) > 0)::int
                                                   + (cardinality(s.esmr_place_ids) > 0)::int > 1))
                 from fa join facility_summary s on s.facility_id = fa.id),
               'facilitiesWithEnforcement', (select count(*) from enforced),
               'facilitiesWithOpenViolations', (select count(distinct facility_id) from ev
                   where status in ('open', 'under_review')),
               'violationEvents', (select count(*) from ev),
               'openViolationEvents', (select count(*) from ev where status in ('open', 'under_review')),
               'smartsViolations', (select count(*) from sv),
               'seriousSmartsViolations', (select count(*) from sv where serious_violation),
               'inspections', (select count(*) from si),
               'enforcementActions', (select count(*) from se),
               'penaltiesAssessed', (select coalesce(sum(total_assessment), 0) from se),
               'penaltiesReceived', (select coalesce(sum(received_amount), 0) from se)),
           'violations', jsonb_build_object(
               'bySeverity', {sev}, 'byType', {kind}, 'bySource', {source}, 'byStatus', {status},
               'topPollutants', coalesce((select jsonb_agg(jsonb_build_object('pollutant', k, 'events', n)
                    order by n desc, k) from (select pollutant_key k, count(*) n from ev
                    group by 1 order by 2 desc, 1 limit 10) x), '[]')),
           'enforcement', jsonb_build_object(
               'byType', {etype},
               'active', (select count(*) from se where lower(enforcement_status) = 'active'),
               'historical', (select count(*) from se
                               where lower(enforcement_status) is distinct from 'active'),
               'facilities', (select count(*) from enforced),
               'totalAssessed', (select coalesce(sum(total_assessment), 0) from se),
               'totalReceived', (select coalesce(sum(received_amount), 0) from se)),
           'recentActivity', coalesce((select jsonb_agg(a order by a->>'date' desc, a->>'kind', (a->>'id')::bigint desc)
               from (select * from (
                   (select jsonb_build_object('date', first_date, 'kind', 'exceedance', 'id', id,
                        'facilityId', facility_id, 'facilityName', facility_name,
                        'summary', pollutant_key || ' ' || benchmark_type || ' ' || reporting_year) a
                      from ev where first_date is not null order by first_date desc, id desc limit 20)
                   union all
                   (select jsonb_build_object('date', occurrence_date, 'kind', 'violation', 'id', id,
                        'wdid', wdid, 'facilityName', place_name, 'summary', violation_type) a
                      from sv where occurrence_date is not null order by occurrence_date desc, id desc limit 20)
                   union all
                   (select jsonb_build_object('date', inspection_date, 'kind', 'inspection', 'id', id,
                        'wdid', wdid, 'facilityName', place_name, 'summary', inspection_purpose) a
                      from si where inspection_date is not null order by inspection_date desc, id desc limit 20)
                   union all
                   (select jsonb_build_object('date', issuance_date, 'kind', 'enforcement', 'id', id,
                        'wdid', wdid, 'facilityName', place_name, 'summary', enforcement_type) a
                      from se where issuance_date is not null order by issuance_date desc, id desc limit 20)
                 ) u order by a->>'date' desc, a->>'kind', (a->>'id')::bigint desc limit 20) r), '[]'),
           'topOffenders', coalesce((select jsonb_agg(x || jsonb_build_object(
                       -- The facility's whole record (not only the scope's dates).
                       'enforcementActions', coalesce(s.enforcement_actions, 0),
                       'penaltiesAssessed', coalesce(s.penalties_assessed, 0),
                       'smartsViolations', coalesce(s.smarts_violations, 0),
                       'inspections', coalesce(s.inspections, 0))
                   order by (x->>'openViolationEvents')::bigint desc, (x->>'facilityId')::bigint)
               from (select facility_id, jsonb_build_object('facilityId', facility_id, 'name', min(facility_name),
                        'openViolationEvents', count(*),
                        'critical', count(*) filter (where severity = 'critical'),
                        'high', count(*) filter (where severity = 'high'),
                        'maxRatio', max(max_ratio),
                        'pollutants', count(distinct pollutant_key)) x
                       from ev where status in ('open', 'under_review')
                      group by facility_id order by count(*) desc, facility_id limit 10) t
               left join facility_summary s on s.facility_id = t.facility_id), '[]'),
           'timeline', coalesce((select jsonb_agg(jsonb_build_object('month', to_char(m, 'YYYY-MM'),
                   'violationEvents', coalesce(e, 0), 'smartsViolations', coalesce(v, 0),
                   'inspections', coalesce(i, 0), 'enforcementActions', coalesce(a, 0),
                   'penaltiesAssessed', coalesce(p, 0)) order by m)
               from (select m, sum(e) e, sum(v) v, sum(i) i, sum(a) a, sum(p) p from (
                   select date_trunc('month', first_date) m, count(*) e, 0 v, 0 i, 0 a, 0 p
                     from ev where first_date is not null group by 1
                   union all select date_trunc('month', occurrence_date), 0, count(*), 0, 0, 0
                     from sv where occurrence_date is not null group by 1
                   union all select date_trunc('month', inspection_date), 0, 0, count(*), 0, 0
                     from si where inspection_date is not null group by 1
                   union all select date_trunc('month', issuance_date), 0, 0, 0, count(*),
                          coalesce(sum(total_assessment), 0)
                     from se where issuance_date is not null group by 1) u group by m) t), '[]'))",
        sev = list::counts_by("ev", "severity"),
        kind = list::counts_by("ev", "benchmark_type"),
        source = list::counts_by("ev", "source"),
        status = list::counts_by("ev", "status"),
        etype = list::counts_by("se", "enforcement_type"),
    ));
    // Planned for its values (the date range) each time, as the lists are (`list::aggregate`).
    qb.build_query_scalar()
        .persistent(false)
        .fetch_one(pool)
        .await
}
