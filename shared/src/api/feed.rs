//! `GET /api/feed.atom`: an Atom feed (RFC 4287) of what is new, for following an area without
//! polling the lists: exceedance events as they are first computed (`new`) and when their
//! severity rises (`escalated`), and SMARTS enforcement actions as a sync first loads them.
//! Each entry links to the API document it summarises.
//!
//! The area: statewide, `county`, `region`, or `subscription` (the id of one of the caller's
//! subscriptions, credentials required: its polygon, buffer or jurisdiction, matched as alerts
//! are). Events are placed by their canonical facility, enforcement actions by the county and
//! regional board SMARTS publishes with them (coordinates: their facility's). Newest first,
//! `limit` entries (at most [`MAX_LIMIT`]).

use super::ApiState;
use crate::alerts::area::{self, Area, Place};
use crate::http::{ApiError, Query};
use atom_syndication::{Entry, Feed, FixedDateTime, Link, Person, Text};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use sqlx::{Postgres, QueryBuilder};

/// Most entries one feed carries.
pub const MAX_LIMIT: i64 = 200;
/// How many of the newest candidates inside a subscription's bounding box are matched
/// against its exact area.
const SUBSCRIPTION_CANDIDATES: i64 = 5_000;
/// The authority of the feed's tag URIs (RFC 4151).
const TAG: &str = "tag:stormwater-watch,2026";

/// Where the feed looks.
enum Scope {
    State,
    County(String),
    Region(String),
    Subscription { id: i64, name: String, area: Area },
}

impl Scope {
    /// The part of the feed id and title that names the scope.
    fn key(&self) -> String {
        match self {
            Self::State => "california".into(),
            Self::County(c) => format!("county/{}", area::normalize_county(c).replace(' ', "-")),
            Self::Region(r) => format!("region/{}", area::normalize_region(r)),
            Self::Subscription { id, .. } => format!("subscription/{id}"),
        }
    }

    fn title(&self) -> String {
        match self {
            Self::State => "California".into(),
            Self::County(c) => format!("{c} County"),
            Self::Region(r) => format!("Regional Water Board {r}"),
            Self::Subscription { name, .. } => format!("subscription \u{201c}{name}\u{201d}"),
        }
    }
}

/// One row of the feed.
#[derive(sqlx::FromRow)]
struct Item {
    kind: String,
    id: i64,
    at: chrono::DateTime<chrono::Utc>,
    title: String,
    summary: String,
    href: String,
    latitude: Option<f64>,
    longitude: Option<f64>,
    county: Option<String>,
    region: Option<String>,
}

/// Handles the request.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return ApiError::MethodNotAllowed.into_response();
    }
    let result = async {
        let q = Query::of(&req);
        let limit = q.limit(50, MAX_LIMIT)?;
        let scope = scope(state, &req, &q).await?;
        let items = items(state, &scope, limit).await?;
        let private = matches!(scope, Scope::Subscription { .. });
        Ok::<_, ApiError>((feed(&req, &scope, items).to_string(), private))
    }
    .await;
    match result {
        Ok((xml, private)) => {
            let mut resp = Response::new(Body::Text(xml));
            *resp.status_mut() = StatusCode::OK;
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/atom+xml; charset=utf-8"),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(if private {
                    "private, no-store"
                } else {
                    super::list::HOT
                }),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// The request's scope: at most one of `county`, `region`, `subscription`.
async fn scope(state: &ApiState, req: &Request, q: &Query) -> Result<Scope, ApiError> {
    let county = q.text("county")?;
    let region = q.text("region")?;
    let subscription = q.int("subscription", 1..=i64::MAX)?;
    match (county, region, subscription) {
        (None, None, None) => Ok(Scope::State),
        (Some(c), None, None) => area::canonical_county(&c)
            .map(|c| Scope::County(c.to_owned()))
            .ok_or_else(|| ApiError::bad("county", "not a California county")),
        (None, Some(r), None) => area::canonical_region(&r)
            .map(|r| Scope::Region(r.to_owned()))
            .ok_or_else(|| ApiError::bad("region", "not a regional board code")),
        (None, None, Some(id)) => {
            let caller = crate::auth::authenticate(&state.pool, req).await?;
            let row = sqlx::query!(
                r#"select name, mode, polygon, center_lat, center_lon, radius_m, counties, regions
                     from subscription where id = $1 and owner = $2 and active"#,
                id,
                caller.0
            )
            .fetch_optional(&state.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("you have no active subscription {id}")))?;
            let area = area::from_stored(
                &row.mode,
                row.polygon.as_ref(),
                row.center_lat.zip(row.center_lon),
                row.radius_m,
                row.counties.as_deref(),
                row.regions.as_deref(),
            )
            .ok_or_else(|| ApiError::Conflict(format!("subscription {id} has no valid area")))?;
            Ok(Scope::Subscription {
                id,
                name: row.name,
                area,
            })
        }
        _ => Err(ApiError::bad(
            "subscription",
            "give at most one of county, region and subscription",
        )),
    }
}

/// The newest `limit` items of the scope.
async fn items(state: &ApiState, scope: &Scope, limit: i64) -> Result<Vec<Item>, ApiError> {
    let take = match scope {
        Scope::Subscription { .. } => SUBSCRIPTION_CANDIDATES,
        _ => limit,
    };
    // Runtime SQL: the same three parts each get the scope's conditions on their own columns.
    let mut qb = QueryBuilder::<Postgres>::new("select * from (");
    let parts = [
        ("new", "e.detected_at", "true"),
        (
            "escalated",
            "e.escalated_at",
            "e.escalated_at > e.detected_at",
        ),
    ];
    for (i, (kind, at, when)) in parts.iter().enumerate() {
        if i > 0 {
            qb.push(" union all ");
        }
        qb.push(format!(
            "(select '{kind}'::text as kind, e.id, {at} as at,
                     initcap('{kind}') || ': ' || p.name || ' ' || replace(e.benchmark_type, '_', ' ')
                       || ' at ' || f.name || ' (reporting year ' || e.reporting_year || '-'
                       || (e.reporting_year + 1) % 100 || ')' as title,
                     coalesce(trim_scale(round(e.value, 6))::text || ' ' || coalesce(e.unit, ''), 'no value')
                       || coalesce(', ' || round(e.max_ratio, 2) || 'x the benchmark', '')
                       || coalesce(', severity ' || e.severity, '') || ', ' || e.sample_count
                       || ' sample(s) from ' || coalesce(e.first_date::text, '?') || ' to '
                       || coalesce(e.last_date::text, '?') || '; source ' || e.source
                       || '; review status ' || e.status as summary,
                     '/api/violations/' || e.id as href,
                     f.latitude::float8 as latitude, f.longitude::float8 as longitude,
                     f.county, f.region
                from violation_event e
                join facility f on f.id = e.facility_id
                join pollutant p on p.key = e.pollutant_key
               where e.retracted_at is null and {at} is not null and {when}"
        ));
        push_area(
            &mut qb,
            scope,
            "f.county",
            "f.region",
            "f.latitude",
            "f.longitude",
        );
        qb.push(format!(" order by {at} desc, e.id desc limit "))
            .push_bind(take)
            .push(")");
    }
    qb.push(
        " union all (select 'enforcement'::text, t.id, r.started_at,
                 'Enforcement: ' || coalesce(t.enforcement_type, 'action') || ' to '
                   || coalesce(nullif(t.place_name, ''), t.wdid, 'a facility')
                   || coalesce(' (issued ' || t.issuance_date || ')', ''),
                 coalesce(t.enforcement_status, 'status unknown')
                   || coalesce('; assessed ' || t.total_assessment, '')
                   || coalesce('; received ' || t.received_amount, '')
                   || coalesce('; ' || left(t.description, 500), '')
                   || '; WDID ' || coalesce(t.wdid, '?'),
                 '/api/smarts/enforcement?enforcementId=' || t.enforcement_id,
                 coalesce(rf.latitude, t.place_latitude)::float8,
                 coalesce(rf.longitude, t.place_longitude)::float8,
                 t.place_county, t.regional_board
            from smarts_enforcement_action t
            join sync_run r on r.id = t.first_run_id
            left join lateral (
              select f.latitude, f.longitude from facility_link l join facility f on f.id = l.facility_id
               where l.status = 'linked' and l.source in ('smarts_industrial', 'smarts_construction')
                 and l.source_key = coalesce(t.app_id, '') || '|' || coalesce(t.wdid, '')
               order by l.source desc limit 1) rf on true
           where t.withdrawn_run_id is null and t.enforcement_id is not null",
    );
    push_area(
        &mut qb,
        scope,
        "t.place_county",
        "t.regional_board",
        "coalesce(rf.latitude, t.place_latitude)",
        "coalesce(rf.longitude, t.place_longitude)",
    );
    qb.push(" order by r.started_at desc, t.id desc limit ")
        .push_bind(take)
        .push(")) x order by at desc, kind, id desc limit ")
        .push_bind(take);
    // Planned for its values each time, as the lists are (`list::aggregate`).
    let rows: Vec<Item> = qb
        .build_query_as()
        .persistent(false)
        .fetch_all(&state.pool)
        .await?;
    Ok(match scope {
        Scope::Subscription { area, .. } => rows
            .into_iter()
            .filter(|i| {
                area.contains(&Place {
                    lat: i.latitude,
                    lon: i.longitude,
                    county: i.county.as_deref(),
                    region: i.region.as_deref(),
                })
            })
            .take(limit as usize)
            .collect(),
        _ => rows,
    })
}

/// The scope's conditions on one part's columns (a subscription's polygon or buffer as its
/// bounding box; the exact test follows in Rust).
fn push_area(
    qb: &mut QueryBuilder<Postgres>,
    scope: &Scope,
    county: &str,
    region: &str,
    lat: &str,
    lon: &str,
) {
    match scope {
        Scope::State => {}
        Scope::County(c) => {
            qb.push(format!(
                " and regexp_replace(lower(trim({county})), '\\s+county$', '') = "
            ))
            .push_bind(area::normalize_county(c));
        }
        Scope::Region(r) => {
            qb.push(format!(" and upper(trim({region})) = upper("))
                .push_bind(r.clone())
                .push(")");
        }
        Scope::Subscription { area, .. } => {
            if let Some((min_lat, max_lat, min_lon, max_lon)) = area.bounds() {
                qb.push(format!(" and {lat} between "))
                    .push_bind(min_lat)
                    .push(" and ")
                    .push_bind(max_lat)
                    .push(format!(" and {lon} between "))
                    .push_bind(min_lon)
                    .push(" and ")
                    .push_bind(max_lon);
            }
        }
    }
}

/// `https://host` (or `http://` on a loopback host) of the request: API Gateway's domain name,
/// else a `Host` header that is a plain host name (anything else is not echoed).
fn origin(req: &Request) -> String {
    let from_context = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    };
    let host = from_context
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        })
        .unwrap_or_else(|| "localhost".into());
    let loopback = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .any(|l| host == *l || host.starts_with(&format!("{l}:")));
    format!("{}://{host}", if loopback { "http" } else { "https" })
}

fn fixed(t: chrono::DateTime<chrono::Utc>) -> FixedDateTime {
    t.fixed_offset()
}

/// The Atom document.
fn feed(req: &Request, scope: &Scope, items: Vec<Item>) -> Feed {
    let origin = origin(req);
    let self_href = format!(
        "{origin}{}{}",
        req.uri().path(),
        req.uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    let updated = items
        .iter()
        .map(|i| i.at)
        .max()
        .unwrap_or_else(chrono::Utc::now);
    let link = |href: String, rel: &str, mime: &str| Link {
        href,
        rel: rel.into(),
        mime_type: Some(mime.into()),
        ..Link::default()
    };
    let entries = items
        .into_iter()
        .map(|i| Entry {
            id: match i.kind.as_str() {
                "new" => format!("{TAG}:violation-event/{}", i.id),
                "escalated" => format!(
                    "{TAG}:violation-event/{}/escalated/{}",
                    i.id,
                    i.at.timestamp_micros()
                ),
                _ => format!("{TAG}:smarts-enforcement-action/{}", i.id),
            },
            title: Text::plain(i.title),
            updated: fixed(i.at),
            published: Some(fixed(i.at)),
            summary: Some(Text::plain(i.summary)),
            links: vec![link(
                format!("{origin}{}", i.href),
                "alternate",
                "application/json",
            )],
            categories: vec![atom_syndication::Category {
                term: i.kind,
                scheme: Some(format!("{origin}/api/openapi.json#feed-kinds")),
                ..atom_syndication::Category::default()
            }],
            ..Entry::default()
        })
        .collect();
    Feed {
        id: format!("{TAG}:feed/{}", scope.key()),
        title: Text::plain(format!(
            "Stormwater Watch: new exceedances and enforcement, {}",
            scope.title()
        )),
        subtitle: Some(Text::plain(
            "Exceedance events computed from SMARTS and eSMR monitoring results as they are \
             detected or escalate, and SMARTS enforcement actions as they are published",
        )),
        updated: fixed(updated),
        authors: vec![Person {
            name: "Stormwater Watch".into(),
            uri: Some(format!("{origin}/api/openapi.json")),
            ..Person::default()
        }],
        links: vec![link(self_href, "self", "application/atom+xml")],
        entries,
        ..Feed::default()
    }
}
