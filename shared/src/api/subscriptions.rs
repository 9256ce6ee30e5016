//! Alert subscriptions (credentials required for every method):
//! * `POST /api/subscriptions` creates one (201); an owner has at most
//!   `MAX_ACTIVE_SUBSCRIPTIONS` (default 100) active ones, a 409 beyond;
//! * `GET /api/subscriptions` lists the caller's active ones, newest first, in pages (`limit`
//!   ≤ 100, `cursor`); `includeInactive=true` lists deactivated ones too;
//! * `DELETE /api/subscriptions/{id}` deactivates one of the caller's (its alerts stay).
//!
//! Body of POST (camelCase, at most 64 KiB): `name`, `mode` (`polygon` | `buffer` |
//! `jurisdiction`), `polygon` (GeoJSON Polygon / MultiPolygon, valid, at most 2,000 positions
//! and 32 KiB), `center` `{lat, lon}` + `radiusM`, `counties` (California counties), `regions`
//! (regional board codes), `minRatio`, `repeatThreshold`, `minSeverity`, `level` (`level_1` |
//! `level_2`), `delivery` (`email` | `webhook`), `email`, `webhookUrl` (https, public
//! addresses only: [`crate::outbound`]), `webhookSecret`. Area fields of another mode and
//! delivery fields of another delivery are a 400. The secret is never returned.

use super::ApiState;
use super::list::{self, Arg, Conditions};
use crate::alerts::{area, deliver};
use crate::http::{ApiError, Query, json_body, json_response, path_id};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

const SEVERITIES: &[&str] = &["low", "moderate", "high", "critical"];
/// Longest `name`, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest `email` (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// `webhookSecret` length, in characters.
pub const SECRET_CHARS: std::ops::RangeInclusive<usize> = 16..=256;
/// Longest county or region entry.
const MAX_PLACE_BYTES: usize = 100;
/// Page size of the list: default and most.
const LIST_LIMIT: (i64, i64) = (50, 100);

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Center {
    lat: f64,
    lon: f64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewSubscription {
    name: String,
    mode: String,
    polygon: Option<Value>,
    center: Option<Center>,
    radius_m: Option<f64>,
    counties: Option<Vec<String>>,
    regions: Option<Vec<String>>,
    min_ratio: Option<f64>,
    repeat_threshold: Option<i32>,
    min_severity: Option<String>,
    level: Option<String>,
    delivery: String,
    email: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
}

/// `POST /api/subscriptions`: a new subscription of the caller's.
pub async fn handle_create(state: &ApiState, req: Request) -> Response<Body> {
    answer(state, req, StatusCode::CREATED, |req, actor| async move {
        create(state, &req, &actor).await
    })
    .await
}

/// `GET /api/subscriptions`: the caller's subscriptions.
pub async fn handle_list(state: &ApiState, req: Request) -> Response<Body> {
    answer(state, req, StatusCode::OK, |req, actor| async move {
        owned(state, &req, &actor).await
    })
    .await
}

/// `DELETE /api/subscriptions/{id}`: deactivates one of the caller's subscriptions.
pub async fn handle_delete(state: &ApiState, req: Request) -> Response<Body> {
    answer(state, req, StatusCode::OK, |req, actor| async move {
        deactivate(state, path_id(&req)?, &actor).await
    })
    .await
}

/// Authenticates the caller, then answers `status` with what `act` makes for them.
async fn answer<F, Fut>(
    state: &ApiState,
    req: Request,
    status: StatusCode,
    act: F,
) -> Response<Body>
where
    F: FnOnce(Request, String) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let result = match crate::auth::authenticate(&state.pool, &req).await {
        Ok(actor) => act(req, actor.0).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(body) => json_response(status, &body, "no-store"),
        Err(e) => e.into_response(),
    }
}

const COLUMNS: &str = "jsonb_build_object('id', id, 'name', name, 'owner', owner, 'mode', mode,
    'polygon', polygon, 'center', case when center_lat is not null
        then jsonb_build_object('lat', center_lat, 'lon', center_lon) end,
    'radiusM', radius_m, 'counties', counties, 'regions', regions, 'minRatio', min_ratio,
    'repeatThreshold', repeat_threshold, 'minSeverity', min_severity, 'level', level,
    'delivery', delivery, 'email', email, 'webhookUrl', webhook_url,
    'hasWebhookSecret', webhook_secret is not null, 'active', active, 'createdAt', created_at)";

/// Checks a new subscription and puts it in stored form: trimmed name, counties and regions
/// spelled as the data spells them (duplicates dropped), the webhook URL as parsed.
async fn validate(state: &ApiState, s: &mut NewSubscription) -> Result<(), ApiError> {
    let name = s.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::bad(
            "name",
            format!("1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad("name", "must not contain control characters"));
    }
    s.name = name.to_owned();
    match s.mode.as_str() {
        "polygon" => {
            let p = s
                .polygon
                .as_ref()
                .ok_or_else(|| ApiError::bad("polygon", "required for mode polygon"))?;
            area::parse_polygon(p).map_err(|e| ApiError::bad("polygon", e.to_string()))?;
        }
        "buffer" => {
            let c = s
                .center
                .as_ref()
                .ok_or_else(|| ApiError::bad("center", "required for mode buffer"))?;
            let r = s
                .radius_m
                .ok_or_else(|| ApiError::bad("radiusM", "required for mode buffer"))?;
            area::buffer(c.lat, c.lon, r).map_err(|e| ApiError::bad("center", e.to_string()))?;
        }
        "jurisdiction" => {
            if let Some(counties) = &s.counties {
                s.counties = Some(places(
                    "counties",
                    counties,
                    area::COUNTIES.len(),
                    area::canonical_county,
                    "a California county such as \"Los Angeles\"",
                )?);
            }
            if let Some(regions) = &s.regions {
                s.regions = Some(places(
                    "regions",
                    regions,
                    area::REGIONS.len(),
                    area::canonical_region,
                    &format!("a regional board code: {}", area::REGIONS.join(", ")),
                )?);
            }
            let n =
                s.counties.as_ref().map_or(0, Vec::len) + s.regions.as_ref().map_or(0, Vec::len);
            if n == 0 {
                return Err(ApiError::bad(
                    "counties",
                    "mode jurisdiction needs at least one county or region",
                ));
            }
        }
        _ => {
            return Err(ApiError::bad(
                "mode",
                "must be one of: polygon, buffer, jurisdiction",
            ));
        }
    }
    let unused = [
        (
            "polygon",
            s.polygon.is_some() && s.mode != "polygon",
            "polygon",
        ),
        ("center", s.center.is_some() && s.mode != "buffer", "buffer"),
        (
            "radiusM",
            s.radius_m.is_some() && s.mode != "buffer",
            "buffer",
        ),
        (
            "counties",
            s.counties.is_some() && s.mode != "jurisdiction",
            "jurisdiction",
        ),
        (
            "regions",
            s.regions.is_some() && s.mode != "jurisdiction",
            "jurisdiction",
        ),
    ];
    if let Some((field, _, mode)) = unused.iter().find(|(_, given, _)| *given) {
        return Err(ApiError::bad(field, format!("only used with mode {mode}")));
    }
    if s.min_ratio.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(ApiError::bad("minRatio", "must be a number greater than 0"));
    }
    if s.repeat_threshold.is_some_and(|r| r < 1) {
        return Err(ApiError::bad("repeatThreshold", "must be at least 1"));
    }
    if let Some(sev) = &s.min_severity
        && !SEVERITIES.contains(&sev.as_str())
    {
        return Err(ApiError::bad(
            "minSeverity",
            format!("must be one of: {}", SEVERITIES.join(", ")),
        ));
    }
    if let Some(l) = &s.level
        && !matches!(l.as_str(), "level_1" | "level_2")
    {
        return Err(ApiError::bad("level", "must be one of: level_1, level_2"));
    }
    match s.delivery.as_str() {
        "email" => {
            let to = s
                .email
                .as_deref()
                .ok_or_else(|| ApiError::bad("email", "required for delivery email"))?;
            if to.len() > MAX_EMAIL_BYTES {
                return Err(ApiError::bad(
                    "email",
                    format!("at most {MAX_EMAIL_BYTES} characters"),
                ));
            }
            deliver::check_email(to).map_err(|e| ApiError::bad("email", e.to_string()))?;
            for (field, given) in [
                ("webhookUrl", s.webhook_url.is_some()),
                ("webhookSecret", s.webhook_secret.is_some()),
            ] {
                if given {
                    return Err(ApiError::bad(field, "only used with delivery webhook"));
                }
            }
        }
        "webhook" => {
            let url = s
                .webhook_url
                .as_deref()
                .ok_or_else(|| ApiError::bad("webhookUrl", "required for delivery webhook"))?;
            let checked = state
                .writes
                .outbound
                .check_url_resolving(url)
                .await
                .map_err(|e| ApiError::bad("webhookUrl", e.to_string()))?;
            s.webhook_url = Some(checked.to_string());
            if s.webhook_secret
                .as_ref()
                .is_some_and(|k| !SECRET_CHARS.contains(&k.chars().count()))
            {
                return Err(ApiError::bad(
                    "webhookSecret",
                    format!(
                        "{} to {} characters",
                        SECRET_CHARS.start(),
                        SECRET_CHARS.end()
                    ),
                ));
            }
            if s.email.is_some() {
                return Err(ApiError::bad("email", "only used with delivery email"));
            }
        }
        _ => return Err(ApiError::bad("delivery", "must be one of: email, webhook")),
    }
    Ok(())
}

/// `given` in the data's spelling, without duplicates; a 400 naming `field` for an entry that
/// is too long or names nothing known, or for more than `max` entries.
fn places(
    field: &str,
    given: &[String],
    max: usize,
    canonical: fn(&str) -> Option<&'static str>,
    expected: &str,
) -> Result<Vec<String>, ApiError> {
    if given.len() > max {
        return Err(ApiError::bad(field, format!("at most {max} entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(given.len());
    for (i, g) in given.iter().enumerate() {
        if g.len() > MAX_PLACE_BYTES {
            return Err(ApiError::bad(
                field,
                format!("entry {i} is longer than {MAX_PLACE_BYTES} characters"),
            ));
        }
        let Some(known) = canonical(g) else {
            return Err(ApiError::bad(
                field,
                format!("entry {i} ({g:?}) is not {expected}"),
            ));
        };
        if !out.iter().any(|o| o == known) {
            out.push(known.to_owned());
        }
    }
    Ok(out)
}

async fn create(state: &ApiState, req: &Request, actor: &str) -> Result<Value, ApiError> {
    let mut s: NewSubscription = json_body(req)?;
    validate(state, &mut s).await?;
    let mut tx = state.pool.begin().await?;
    // One create at a time per owner, so concurrent requests cannot pass the cap together.
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('subscription.owner:' || $1, 0))",
        actor
    )
    .execute(&mut *tx)
    .await?;
    let active: i64 = sqlx::query_scalar!(
        r#"select count(*) as "v!" from subscription where owner = $1 and active"#,
        actor
    )
    .fetch_one(&mut *tx)
    .await?;
    let max = state.writes.max_active_subscriptions;
    if active >= i64::from(max) {
        return Err(ApiError::Conflict(format!(
            "you already have {active} active subscriptions, the most allowed is {max}; \
             deactivate one (DELETE /api/subscriptions/{{id}}) before creating another"
        )));
    }
    // Runtime SQL: the returned columns are one list (COLUMNS) shared by every subscription answer.
    let row: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "insert into subscription (name, owner, mode, polygon, center_lat, center_lon, radius_m,
                                   counties, regions, min_ratio, repeat_threshold, min_severity,
                                   level, delivery, email, webhook_url, webhook_secret)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::float8::numeric, $11, $12, $13, $14,
                 $15, $16, $17)
         returning {COLUMNS}"
    )))
    .bind(&s.name)
    .bind(actor)
    .bind(&s.mode)
    .bind(&s.polygon)
    .bind(s.center.as_ref().map(|c| c.lat))
    .bind(s.center.as_ref().map(|c| c.lon))
    .bind(s.radius_m)
    .bind(&s.counties)
    .bind(&s.regions)
    .bind(s.min_ratio)
    .bind(s.repeat_threshold)
    .bind(&s.min_severity)
    .bind(&s.level)
    .bind(&s.delivery)
    .bind(&s.email)
    .bind(&s.webhook_url)
    .bind(&s.webhook_secret)
    .fetch_one(&mut *tx)
    .await?;
    let mut details = row.clone();
    if let Some(o) = details.as_object_mut() {
        o.remove("polygon");
    }
    crate::auth::audit(
        &mut tx,
        actor,
        "subscription.create",
        "subscription",
        &row["id"].to_string(),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "data": row }))
}

/// The sorts of the caller's subscriptions: newest first by default.
pub(crate) static SORTS: list::Sorts = list::Sorts {
    fields: &[
        list::SortField::required("createdAt", "created_at", "timestamptz"),
        list::SortField::required("name", "name", "text"),
        list::SortField::required("id", "id", "bigint"),
    ],
    default: "-createdAt",
};

/// The caller's subscriptions, newest first: active ones unless `includeInactive=true`.
async fn owned(state: &ApiState, req: &Request, actor: &str) -> Result<Value, ApiError> {
    let q = Query::of(req);
    let limit = q.limit(LIST_LIMIT.0, LIST_LIMIT.1)?;
    let include_inactive = list::flag(&q, "includeInactive")?.unwrap_or(false);
    let mut conditions = Conditions::default();
    conditions.when("owner = ", Some(Arg::Text(actor.to_owned())), "");
    if !include_inactive {
        conditions.always("active");
    }
    let listing = list::Listing {
        route: "/api/subscriptions",
        item: COLUMNS,
        from: "subscription",
        id: "id",
        sort: SORTS.parse(&q)?,
        conditions: &conditions,
        limit,
        known_total: None,
    };
    let (rows, page) = list::page(state, &listing, &q).await?;
    Ok(json!({ "data": rows, "page": page }))
}

async fn deactivate(state: &ApiState, id: i64, actor: &str) -> Result<Value, ApiError> {
    let mut tx = state.pool.begin().await?;
    // Runtime SQL: the returned columns are one list (COLUMNS) shared by every subscription answer.
    let row: Option<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "update subscription set active = false where id = $1 and owner = $2 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(ApiError::NotFound(format!(
            "subscription {id} does not exist or is not yours"
        )));
    };
    crate::auth::audit(
        &mut tx,
        actor,
        "subscription.deactivate",
        "subscription",
        &id.to_string(),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "data": row }))
}
