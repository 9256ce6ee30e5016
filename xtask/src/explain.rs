//! The database's own time per request: each URL handled in this process (the handler of its
//! route, as `xtask serve` calls it, no cache) over one connection that has Postgres'
//! `auto_explain` log every statement's plan with `ANALYZE` to the client as a notice. sqlx
//! emits notices as tracing events (target `sqlx::postgres::notice`), which [`NoticeCapture`]
//! keeps, so each request's statements and their execution times are read back in order.

use crate::serve::{self, App};
use anyhow::Context as _;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;
use stormwater::api::{ApiState, WriteSettings};
use stormwater::cache::Cache;
use tracing_subscriber::layer::{Context, Layer};

const NOTICE_TARGET: &str = "sqlx::postgres::notice";

/// Notices received since the last [`take`].
static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn take() -> Vec<String> {
    std::mem::take(&mut *NOTICES.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Keeps the message of every Postgres notice.
pub struct NoticeCapture;

impl<S: tracing::Subscriber> Layer<S> for NoticeCapture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != NOTICE_TARGET {
            return;
        }
        struct Message(Option<String>);
        impl tracing::field::Visit for Message {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && self.0.is_none() {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        let mut m = Message(None);
        event.record(&mut m);
        if let Some(text) = m.0 {
            NOTICES.lock().unwrap_or_else(|e| e.into_inner()).push(text);
        }
    }
}

/// The subscriber of `xtask bench-api`: the usual log lines (`RUST_LOG`), and every Postgres
/// notice captured whatever `RUST_LOG` says.
pub fn init_telemetry() {
    use tracing_subscriber::prelude::*;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer().with_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            ),
        )
        .with(
            NoticeCapture.with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(NOTICE_TARGET, tracing::Level::INFO),
            ),
        )
        .init();
}

/// Every statement of the session explained with ANALYZE (row counts and buffers, without
/// per-node timing, which would slow the plan it measures), sent as a notice.
const EXPLAIN_SESSION: &str = "load 'auto_explain';
    set auto_explain.log_min_duration = 0;
    set auto_explain.log_analyze = on;
    set auto_explain.log_timing = off;
    set auto_explain.log_buffers = on;
    set auto_explain.log_format = json;
    set auto_explain.log_nested_statements = off;
    set auto_explain.log_level = notice;
    set client_min_messages = notice";

/// One explained statement.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Execution time (ms), as auto_explain measured it.
    pub ms: f64,
    /// The plan's top node (`Limit`, `Aggregate`, …) and the rows it returned.
    pub node: String,
    pub rows: f64,
    /// Shared buffers hit and read over the whole plan.
    pub buffers: (u64, u64),
    /// The statement's first words, whitespace collapsed.
    pub query: String,
}

/// One URL's request: its time in the handler (median of the measured requests) and the
/// statements of that request.
#[derive(Debug, Clone, Default)]
pub struct Explained {
    pub handler_ms: f64,
    pub statements: Vec<Statement>,
}

impl Explained {
    /// The statement that took longest: the request's main query.
    pub fn main(&self) -> Option<&Statement> {
        self.statements.iter().max_by(|a, b| a.ms.total_cmp(&b.ms))
    }

    /// The database's time over all statements.
    pub fn db_ms(&self) -> f64 {
        self.statements.iter().map(|s| s.ms).sum()
    }
}

/// `duration: 1.234 ms  plan:\n{json}` (auto_explain's notice) as a [`Statement`].
pub fn parse(notice: &str) -> Option<Statement> {
    let rest = notice.strip_prefix("duration: ")?;
    let (ms, rest) = rest.split_once(" ms")?;
    let json = &rest[rest.find('{')?..];
    let v: Value = serde_json::from_str(json).ok()?;
    let plan = &v["Plan"];
    // A node's buffers already count its children's (init plans and sub plans too), so the
    // top node's are the whole statement's.
    let blocks = |key: &str| plan[key].as_u64().unwrap_or(0);
    let buffers = (blocks("Shared Hit Blocks"), blocks("Shared Read Blocks"));
    let query = v["Query Text"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(Statement {
        ms: ms.trim().parse().ok()?,
        node: plan["Node Type"].as_str().unwrap_or("?").to_owned(),
        rows: plan["Actual Rows"].as_f64().unwrap_or(0.0),
        buffers,
        query: query.chars().take(90).collect(),
    })
}

/// Requests each URL of `urls` (paths with their query) `1 + runs` times in this process,
/// through the route's handler, with the database at `db_url`; the first request warms.
pub async fn explain_all(
    db_url: &str,
    urls: &[String],
    runs: usize,
) -> anyhow::Result<Vec<Explained>> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql(EXPLAIN_SESSION).execute(conn).await?;
                Ok(())
            })
        })
        .connect(db_url)
        .await
        .context("connecting with auto_explain (needs a superuser: LOAD)")?;
    let state: &'static ApiState = Box::leak(Box::new(ApiState::new(
        pool,
        Cache::disabled(),
        WriteSettings::default(),
    )));
    let local: SocketAddr = "127.0.0.1:9".parse()?;
    let app = App::new(state, local);
    let mut out = Vec::new();
    for url in urls {
        let mut measured: Vec<Explained> = Vec::new();
        for i in 0..=runs {
            take();
            let req = axum::extract::Request::builder()
                .method("GET")
                .uri(url)
                .header("host", "127.0.0.1")
                .body(axum::body::Body::empty())?;
            let t0 = Instant::now();
            let resp = serve::respond(&app, local, req).await;
            let status = resp.status();
            let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            if !status.is_success() {
                // The load runs already report this URL's status; its plans are left out.
                tracing::warn!(%url, %status, "not explained: the handler did not answer 2xx");
                take();
                break;
            }
            let statements = take().iter().filter_map(|n| parse(n)).collect();
            if i > 0 {
                measured.push(Explained {
                    handler_ms: ms,
                    statements,
                });
            }
        }
        measured.sort_by(|a, b| a.handler_ms.total_cmp(&b.handler_ms));
        out.push(
            measured
                .get(measured.len() / 2)
                .cloned()
                .unwrap_or_default(),
        );
    }
    state.pool.close().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_auto_explain_notice_is_read() {
        let notice = "duration: 12.500 ms  plan:\n{\n  \"Query Text\": \"select  count(*)\\n from   t\",\n  \"Plan\": {\"Node Type\": \"Aggregate\", \"Actual Rows\": 1, \"Shared Hit Blocks\": 40, \"Shared Read Blocks\": 2}\n}";
        let s = parse(notice).unwrap();
        assert_eq!(s.ms, 12.5);
        assert_eq!(s.node, "Aggregate");
        assert_eq!(s.rows, 1.0);
        assert_eq!(s.buffers, (40, 2));
        assert_eq!(s.query, "select count(*) from t");
        assert!(parse("some other notice").is_none());
    }
}
