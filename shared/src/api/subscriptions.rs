//! Alert subscriptions (credentials required for every method):
//! * `POST /api/subscriptions` creates one (201);
//! * `GET /api/subscriptions` lists the caller's;
//! * `DELETE /api/subscriptions/{id}` deactivates one of the caller's (its alerts stay).
//!
//! Body of POST (camelCase): `name`, `mode` (`polygon` | `buffer` | `jurisdiction`), `polygon`
//! (GeoJSON Polygon / MultiPolygon), `center` `{lat, lon}` + `radiusM`, `counties`, `regions`,
//! `minRatio`, `repeatThreshold`, `minSeverity`, `level` (`level_1` | `level_2`), `delivery`
//! (`email` | `webhook`), `email`, `webhookUrl`, `webhookSecret`. The secret is never returned.

use super::ApiState;
use crate::alerts::{area, deliver};
use crate::http::{ApiError, json_body, json_response, path_id};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

const PREFIX: &str = "/api/subscriptions/";
const SEVERITIES: &[&str] = &["low", "moderate", "high", "critical"];

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

/// Routes on method and path.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    let result = async {
        let actor = crate::auth::authenticate(&state.pool, &req).await?;
        let path = req.uri().path().trim_end_matches('/');
        match *req.method() {
            Method::POST if path == "/api/subscriptions" => create(state, &req, &actor.0)
                .await
                .map(|v| (StatusCode::CREATED, v)),
            Method::GET if path == "/api/subscriptions" => {
                list(state, &actor.0).await.map(|v| (StatusCode::OK, v))
            }
            Method::DELETE if path.starts_with(PREFIX) => {
                let id = path_id(path, PREFIX)?;
                deactivate(state, id, &actor.0)
                    .await
                    .map(|v| (StatusCode::OK, v))
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }
    .await;
    match result {
        Ok((status, body)) => json_response(status, &body, "no-store"),
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

fn validate(s: &NewSubscription) -> Result<(), ApiError> {
    if s.name.trim().is_empty() || s.name.len() > 200 {
        return Err(ApiError::bad("name", "1 to 200 characters"));
    }
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
            deliver::check_email(to).map_err(|e| ApiError::bad("email", e.to_string()))?;
        }
        "webhook" => {
            let url = s
                .webhook_url
                .as_deref()
                .ok_or_else(|| ApiError::bad("webhookUrl", "required for delivery webhook"))?;
            deliver::check_webhook_url(url)
                .map_err(|e| ApiError::bad("webhookUrl", e.to_string()))?;
            if s.webhook_secret.as_ref().is_some_and(|k| k.len() < 16) {
                return Err(ApiError::bad("webhookSecret", "at least 16 characters"));
            }
        }
        _ => return Err(ApiError::bad("delivery", "must be one of: email, webhook")),
    }
    Ok(())
}

async fn create(state: &ApiState, req: &Request, actor: &str) -> Result<Value, ApiError> {
    let s: NewSubscription = json_body(req)?;
    validate(&s)?;
    let mut tx = state.pool.begin().await?;
    let row: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "insert into subscription (name, owner, mode, polygon, center_lat, center_lon, radius_m,
                                   counties, regions, min_ratio, repeat_threshold, min_severity,
                                   level, delivery, email, webhook_url, webhook_secret)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::float8::numeric, $11, $12, $13, $14,
                 $15, $16, $17)
         returning {COLUMNS}"
    )))
    .bind(s.name.trim())
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

async fn list(state: &ApiState, actor: &str) -> Result<Value, ApiError> {
    let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from subscription where owner = $1 order by id"
    )))
    .bind(actor)
    .fetch_all(&state.pool)
    .await?;
    Ok(json!({ "data": rows }))
}

async fn deactivate(state: &ApiState, id: i64, actor: &str) -> Result<Value, ApiError> {
    let mut tx = state.pool.begin().await?;
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
