//! `GET /api/facility-links`: links between source records and canonical facilities, for
//! review, in link id order. By default the pending ones (`status=proposed`);
//! `status=linked&method=fuzzy` lists automatic links to spot-check,
//! `status=rejected` the reviewers' unlinks. Decisions go to `POST /api/facilities/{id}/links`.

use super::{ApiState, freshness};
use crate::http::{ApiError, Query};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// Link statuses and methods a request may filter on.
pub const STATUSES: &[&str] = &["proposed", "linked", "rejected"];
pub const METHODS: &[&str] = &["exact", "fuzzy", "manual", "seed", "unlinked"];

/// Handles the request.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    super::list::uncached(&req, "no-store", |q| respond(state, q)).await
}

async fn respond(state: &ApiState, q: Query) -> Result<Value, ApiError> {
    let limit = q.limit(100, 1000)?;
    let cursors = state
        .cursors("GET /api/facility-links by l.id ascending")
        .await?;
    let after = cursors.after(&q)?;
    let status = q.one_of("status", STATUSES)?.unwrap_or("proposed");
    let method = q.one_of("method", METHODS)?;
    let source = q.one_of("source", super::facility_links::SOURCES)?;
    let min_confidence = match q.text("minConfidence")? {
        Some(v) => Some(
            v.parse::<f32>()
                .ok()
                .filter(|c| (0.0..=1.0).contains(c))
                .ok_or_else(|| ApiError::bad("minConfidence", "a number from 0 to 1"))?,
        ),
        None => None,
    };
    let facility_id = q.int("facilityId", 1..=i64::MAX)?;
    let region = q.text("region")?;
    let county = q.text("county")?;
    let rows: Vec<(i64, Value)> = sqlx::query!(
        r#"select l.id, jsonb_build_object(
                    'id', l.id, 'source', l.source, 'sourceKey', l.source_key,
                    'record', case when o.id is null then null else jsonb_build_object(
                        'facilityId', o.id, 'name', o.own_name, 'address', o.own_address,
                        'city', o.own_city, 'county', o.own_county, 'region', o.own_region) end,
                    'facility', jsonb_build_object('id', f.id, 'name', f.name,
                        'address', f.address, 'city', f.city, 'county', f.county,
                        'region', f.region),
                    'method', l.method, 'confidence', l.confidence, 'status', l.status,
                    'notes', l.notes, 'verifiedBy', l.verified_by, 'verifiedAt', l.verified_at)
                  as "item!"
         from facility_link l
         join facility f on f.id = l.facility_id
         left join facility o on o.origin_source = l.source and o.origin_key = l.source_key
         where l.status = $1
           and ($2::text is null or l.method = $2)
           and ($3::text is null or l.source = $3)
           and ($4::real is null or l.confidence >= $4)
           and ($5::bigint is null or l.facility_id = $5)
           and ($6::text is null or upper(f.region) = upper($6))
           and ($7::text is null or lower(f.county) = lower($7))
           and ($8::bigint is null or l.id > $8)
         order by l.id
         limit $9"#,
        status,
        method,
        source,
        min_confidence,
        facility_id,
        region,
        county,
        after,
        limit + 1
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.item))
    .collect();
    let (data, page) = super::list::keyed_page(&cursors, rows, limit);
    Ok(json!({
        "data": data,
        "page": page,
        "meta": { "freshness": freshness(&state.pool).await? },
    }))
}
