//! `GET /api/health`: is the database reachable, is the cache.

use super::ApiState;
use crate::http::json_response;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;

/// 200 when Postgres answers (Redis is optional: reported, never fatal); 503 with
/// `Retry-After` otherwise, within the pool's acquire timeout (`DB_ACQUIRE_TIMEOUT_MS`).
pub async fn handle(state: &ApiState, _req: Request) -> Response<Body> {
    // Both at once: a slow cache never adds to the time a database outage takes to report.
    let (db, cache) = tokio::join!(
        sqlx::query_scalar!("select 1").fetch_one(&state.pool),
        state.cache.ping()
    );
    let fresh = match &db {
        Ok(_) => super::freshness(&state.pool).await.ok(),
        Err(_) => None,
    };
    let db_ok = db.is_ok();
    if let Err(e) = &db {
        tracing::warn!(error = %e, "health: database unreachable");
    }
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = json_response(
        status,
        &json!({
            "status": if db_ok { "ok" } else { "unavailable" },
            "database": if db_ok { "ok" } else { "unavailable" },
            "cache": if cache { "ok" } else { "unavailable" },
            "version": env!("CARGO_PKG_VERSION"),
            "meta": { "freshness": fresh },
        }),
        "no-store",
    );
    if !db_ok {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(crate::http::ApiError::RETRY_AFTER_SECS),
        );
    }
    resp
}
