//! `GET /api/health`: is the database reachable, is the cache.

use super::ApiState;
use crate::http::json_response;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

/// 200 when Postgres answers (Redis is optional: reported, never fatal); 503 otherwise.
pub async fn handle(state: &ApiState, _req: Request) -> Response<Body> {
    let db = sqlx::query_scalar::<_, i32>("select 1")
        .fetch_one(&state.pool)
        .await;
    let cache = state.cache.ping().await;
    let fresh = match &db {
        Ok(_) => super::freshness(&state.pool).await.ok(),
        Err(_) => None,
    };
    let db_ok = db.is_ok();
    if let Err(e) = &db {
        tracing::error!(error = %e, "health: database unreachable");
    }
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({
            "status": if db_ok { "ok" } else { "unavailable" },
            "database": if db_ok { "ok" } else { "unavailable" },
            "cache": if cache { "ok" } else { "unavailable" },
                        "version": env!("CARGO_PKG_VERSION"),
            "meta": { "freshness": fresh },
        }),
        "no-store",
    )
}
