//! `GET /api/nal-levels`: IGP ERA Level status per facility x pollutant, computed from the
//! monitoring results ("who is in Level 2 for copper in Region 4?":
//! `?pollutant=copper&region=4&level=level_2`; one facility: `?facilityId=…`).
//!
//! Only facility x pollutant pairs that ever exceeded an NAL have a row; everything else is at
//! Baseline. Levels are computed by this service from the published results (SMARTS assigns the
//! official ones); return to Baseline after ERA completion is not modelled.

use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

const LEVELS: &[&str] = &["baseline", "level_1", "level_2"];

/// Handles the request.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    super::list::uncached(&req, "public, max-age=300", |q| respond(state, q)).await
}

async fn respond(state: &ApiState, q: Query) -> Result<Value, ApiError> {
    let limit = q.limit(100, 1000)?;
    let cursors = state
        .cursors("GET /api/nal-levels by facility and pollutant ascending")
        .await?;
    let after = cursors.after(&q)?;
    let pollutant = q.text("pollutant")?.map(|p| p.to_lowercase());
    if let Some(p) = &pollutant
        && !crate::domain::pollutant::KEYS.contains(&p.as_str())
    {
        return Err(ApiError::bad(
            "pollutant",
            format!(
                "unknown pollutant key; one of: {}",
                crate::domain::pollutant::KEYS.join(", ")
            ),
        ));
    }
    let level = q.one_of("level", LEVELS)?;
    let facility_id = q.int("facilityId", 1..=i64::MAX)?;
    let region = q.text("region")?;
    let county = q.text("county")?;
    // Paging key: a synthetic row number would shift between pages; (facility_id, pollutant)
    // is unique, encoded as facility_id * 64 + pollutant ordinal.
    let rows: Vec<(i64, Value)> = sqlx::query!(
        r#"select l.facility_id * 64 + array_position($7::text[], l.pollutant_key) as "k!",
                jsonb_build_object(
                    'facility', jsonb_build_object('id', f.id, 'name', f.name, 'county', f.county,
                                                   'region', f.region),
                    'pollutant', l.pollutant_key, 'level', l.level,
                    'level1Since', l.level_1_since, 'level2Since', l.level_2_since,
                    'exceedanceYears', l.exceedance_years,
                    'events', (select jsonb_agg(jsonb_build_object('id', e.id,
                                   'reportingYear', e.reporting_year, 'type', e.benchmark_type,
                                   'value', e.value, 'severity', e.severity, 'status', e.status)
                                   order by e.reporting_year, e.benchmark_type)
                               from violation_event e
                               where e.facility_id = l.facility_id
                                 and e.pollutant_key = l.pollutant_key
                                 and e.source = 'smarts_industrial' and e.retracted_at is null
                                 and e.benchmark_type in ('NAL_ANNUAL', 'NAL_INSTANT')))
                  as "item!"
         from nal_level_current l
         join facility f on f.id = l.facility_id
         where ($1::text is null or l.pollutant_key = $1)
           and ($2::text is null or l.level = $2)
           and ($3::bigint is null or l.facility_id = $3)
           and ($4::text is null or upper(f.region) = upper($4))
           and ($5::text is null or lower(f.county) = lower($5))
           and ($6::bigint is null
                or l.facility_id * 64 + array_position($7::text[], l.pollutant_key) > $6)
         order by 1
         limit $8"#,
        pollutant,
        level,
        facility_id,
        region,
        county,
        after,
        crate::domain::pollutant::KEYS as _,
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.k, r.item))
    .collect();
    let (data, page) = super::list::keyed_page(&cursors, rows, limit);
    Ok(json!({
        "data": data,
        "page": page,
        "meta": {
            "note": "computed from published results (SMARTS assigns the official Level); baseline rows exceeded in a year whose Level change starts next July 1; see docs/VIOLATION_SCHEMA_MIGRATION.md",
            "freshness": freshness(&state.pool).await?,
        },
    }))
}
