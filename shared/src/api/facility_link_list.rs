//! `GET /api/facility-links`: links between source records and canonical facilities, for
//! review, newest first (`sort`: `createdAt`, `confidence`, `verifiedAt`, `id`). By default the pending ones (`status=proposed`);
//! `status=linked&method=fuzzy` lists automatic links to spot-check,
//! `status=rejected` the reviewers' unlinks. Decisions go to `POST /api/facilities/{id}/links`.

use super::list::{self, Arg, Conditions};
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

/// Sorts of the links: the newest proposal first by default.
pub static SORTS: list::Sorts = list::Sorts {
    fields: &[
        list::SortField::required("createdAt", "l.created_at", "timestamptz"),
        list::SortField::required("confidence", "l.confidence", "real"),
        list::SortField::nullable("verifiedAt", "l.verified_at", "timestamptz"),
        list::SortField::required("id", "l.id", "bigint"),
    ],
    default: "-createdAt",
};

const ITEM: &str = "jsonb_build_object(
        'id', l.id, 'source', l.source, 'sourceKey', l.source_key,
        'record', case when o.id is null then null else jsonb_build_object(
            'facilityId', o.id, 'name', o.own_name, 'address', o.own_address,
            'city', o.own_city, 'county', o.own_county, 'region', o.own_region) end,
        'facility', jsonb_build_object('id', f.id, 'name', f.name,
            'address', f.address, 'city', f.city, 'county', f.county,
            'region', f.region),
        'method', l.method, 'confidence', l.confidence, 'status', l.status,
        'notes', l.notes, 'verifiedBy', l.verified_by, 'verifiedAt', l.verified_at,
        'createdAt', l.created_at)";

const FROM: &str = "facility_link l
        join facility f on f.id = l.facility_id
        left join facility o on o.origin_source = l.source and o.origin_key = l.source_key";

async fn respond(state: &ApiState, q: Query) -> Result<Value, ApiError> {
    let limit = q.limit(100, 1000)?;
    let status = q.one_of("status", STATUSES)?.unwrap_or("proposed");
    let text = |v: Option<&str>| v.map(|s| Arg::Text(s.to_owned()));
    let min_confidence = match q.text("minConfidence")? {
        Some(v) => Some(
            v.parse::<f32>()
                .ok()
                .filter(|c| (0.0..=1.0).contains(c))
                .ok_or_else(|| ApiError::bad("minConfidence", "a number from 0 to 1"))?,
        ),
        None => None,
    };
    let mut conditions = Conditions::default();
    conditions
        .when("l.status = ", text(Some(status)), "")
        .when("l.method = ", text(q.one_of("method", METHODS)?), "")
        .when(
            "l.source = ",
            text(q.one_of("source", super::facility_links::SOURCES)?),
            "",
        )
        .when(
            "l.confidence >= ",
            min_confidence.map(|c| Arg::Float(f64::from(c))),
            "",
        )
        .when(
            "l.facility_id = ",
            q.int("facilityId", 1..=i64::MAX)?.map(Arg::Int),
            "",
        )
        .facility_area(&q, "f")?;
    let listing = list::Listing {
        route: "GET /api/facility-links",
        item: ITEM,
        from: FROM,
        id: "l.id",
        sort: SORTS.parse(&q)?,
        conditions: &conditions,
        limit,
        known_total: None,
    };
    let (data, page) = list::page(state, &listing, &q).await?;
    Ok(json!({
        "data": data,
        "page": page,
        "meta": { "freshness": freshness(&state.pool).await? },
    }))
}
