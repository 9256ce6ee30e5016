//! Hot keys preloaded at the end of a sync: the first request after a sync should not pay for
//! the new cache generation. The answers are computed by the endpoints' own handlers (through
//! the route table), so a preloaded entry is exactly what a request would have cached.

use super::ApiState;
use super::routes;
use lambda_http::{Body, Request, RequestExt};
use std::collections::HashMap;

/// The default views every client opens first.
const HOT_PATHS: &[&str] = &[
    "/api/dashboard",
    "/api/violations",
    "/api/violations/stats",
    "/api/violations?source=smarts",
    "/api/violations?source=esmr",
    "/api/smarts/violations",
    "/api/smarts/enforcement",
    "/api/smarts/inspections",
    "/api/smarts/facilities",
    "/api/facilities.geojson?withViolations=true",
];

/// How many of the facilities with the most open exceedance events get their pages preloaded.
const TOP_FACILITIES: i64 = 20;

/// Computes and caches the hot keys of the current generation; returns how many were stored.
/// Failures are logged and skipped: preloading only ever saves time.
pub async fn hot_keys(state: &ApiState) -> usize {
    let started = std::time::Instant::now();
    let top: Vec<i64> = sqlx::query_scalar!(
        "select facility_id from violation_event
          where retracted_at is null and status in ('open', 'under_review')
          group by facility_id order by count(*) desc, facility_id limit $1",
        TOP_FACILITIES
    )
    .fetch_all(&state.pool)
    .await
    .inspect_err(|e| tracing::warn!(error = %e, "preload: top facilities unavailable"))
    .unwrap_or_default();
    let mut paths: Vec<String> = HOT_PATHS.iter().map(|p| (*p).to_owned()).collect();
    for id in top {
        paths.push(format!("/api/facilities/{id}"));
        paths.push(format!("/api/facilities/{id}/complete"));
        paths.push(format!("/api/facilities/{id}/timeline"));
    }
    let mut stored = 0;
    for path in &paths {
        let Some(req) = request(path) else { continue };
        let Some((function, _)) = routes::resolve("GET", req.uri().path()) else {
            continue;
        };
        let resp = function.handle(state, req).await;
        if resp.status().is_success() {
            stored += 1;
        } else {
            tracing::warn!(path, status = resp.status().as_u16(), "preload failed");
        }
    }
    tracing::info!(
        stored,
        ms = started.elapsed().as_millis() as u64,
        "hot keys preloaded"
    );
    stored
}

/// A GET request for `path_and_query` as API Gateway presents it.
fn request(path_and_query: &str) -> Option<Request> {
    let req = lambda_http::http::Request::builder()
        .method("GET")
        .uri(path_and_query)
        .body(Body::Empty)
        .ok()?;
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Some(req.with_query_string_parameters(query))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hot_path_is_a_routed_get() {
        for path in HOT_PATHS {
            let req = request(path).unwrap();
            assert!(routes::resolve("GET", req.uri().path()).is_some(), "{path}");
        }
        let req = request("/api/violations?source=smarts").unwrap();
        assert_eq!(
            req.query_string_parameters().first("source"),
            Some("smarts")
        );
    }
}
