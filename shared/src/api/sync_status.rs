//! `GET /api/sync/status` (recent runs) and `GET /api/sync/runs/{id}` (one run with its
//! files and chunks): rows read, inserted, updated, unchanged, quarantined, withdrawn, timings.

use super::ApiState;
use crate::http::{ApiError, Query, json_response};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

/// `GET /api/sync/status`: the recent runs.
pub async fn handle_recent(state: &ApiState, req: Request) -> Response<Body> {
    answer(recent(state, &Query::of(&req)).await)
}

/// `GET /api/sync/runs/{id}`: one run with its files and chunks.
pub async fn handle_run(state: &ApiState, req: Request) -> Response<Body> {
    let id = req.path_parameters().first("id").map(str::parse::<i64>);
    answer(match id {
        Some(Ok(id)) => run(state, id).await,
        _ => Err(ApiError::bad("id", "must be a run id (a whole number)")),
    })
}

fn answer(result: Result<Value, ApiError>) -> Response<Body> {
    match result {
        Ok(body) => json_response(StatusCode::OK, &body, "no-store"),
        Err(e) => e.into_response(),
    }
}

const FILE_COLUMNS: &str = "f.id, f.dataset, f.source_url, f.status, f.checksum, f.chunk_count, f.chunks_done,
    f.rows_read, f.rows_inserted, f.rows_updated, f.rows_unchanged, f.rows_quarantined, f.rows_withdrawn,
    f.extra_columns, f.error, f.started_at, f.finished_at";

async fn files_of(state: &ApiState, run_ids: &[i64]) -> Result<Vec<Value>, ApiError> {
    // Runtime SQL: the file columns are one list (FILE_COLUMNS) shared with the run detail.
    let rows: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select jsonb_build_object('runId', f.run_id, 'file', to_jsonb(x)) from sync_file f
           cross join lateral (select {FILE_COLUMNS}) x
          where f.run_id = any($1) order by f.id"
    )))
    .bind(run_ids)
    .fetch_all(&state.pool)
    .await?;
    Ok(rows)
}

async fn recent(state: &ApiState, q: &Query) -> Result<Value, ApiError> {
    let limit = q.limit(10, 100)?;
    let runs: Vec<Value> = sqlx::query_scalar!(r#"select to_jsonb(r) as "v!" from (select id, trigger, status, started_at, stage_finished_at, finished_at, finalize_step, published_at, error
                                     from sync_run order by id desc limit $1) r"#, limit)
    .fetch_all(&state.pool)
    .await?;
    let ids: Vec<i64> = runs.iter().filter_map(|r| r["id"].as_i64()).collect();
    let files = files_of(state, &ids).await?;
    let runs: Vec<Value> = runs
        .into_iter()
        .map(|mut r| {
            let id = r["id"].as_i64();
            r["files"] = files
                .iter()
                .filter(|f| f["runId"].as_i64() == id)
                .map(|f| f["file"].clone())
                .collect();
            r
        })
        .collect();
    Ok(json!({ "data": runs, "meta": { "freshness": super::freshness(&state.pool).await? } }))
}

async fn run(state: &ApiState, id: i64) -> Result<Value, ApiError> {
    let run: Option<Value> = sqlx::query_scalar!(r#"select to_jsonb(r) as "v!" from (select id, trigger, status, started_at, stage_finished_at, finished_at, finalize_step, published_at, error
                                     from sync_run where id = $1) r"#, id)
    .fetch_optional(&state.pool)
    .await?;
    let Some(mut run) = run else {
        return Err(ApiError::NotFound(format!("no sync run {id}")));
    };
    run["files"] = files_of(state, &[id])
        .await?
        .into_iter()
        .map(|f| f["file"].clone())
        .collect();
    let chunks: Vec<Value> = sqlx::query_scalar!(r#"select to_jsonb(c) as "v!" from (select c.file_id, c.chunk_index, c.s3_key, c.first_line, c.status, c.attempts,
                c.rows_read, c.rows_inserted, c.rows_updated, c.rows_unchanged, c.rows_quarantined,
                c.duration_ms, c.error
           from import_chunk c join sync_file f on f.id = c.file_id where f.run_id = $1
          order by c.file_id, c.chunk_index) c"#, id)
    .fetch_all(&state.pool)
    .await?;
    run["chunks"] = Value::Array(chunks);
    let issues: Vec<Value> = sqlx::query_scalar!(r#"select jsonb_build_object('dataset', dataset, 'action', action, 'reason', reason, 'rows', n)
           as "v!" from (select dataset, action, reason, count(*) n from data_quality_issue where run_id = $1
                  group by 1, 2, 3 order by n desc limit 100) x"#, id)
    .fetch_all(&state.pool)
    .await?;
    run["dataQuality"] = Value::Array(issues);
    Ok(json!({ "data": run, "meta": { "freshness": super::freshness(&state.pool).await? } }))
}
