//! The Postgres pool, built once per execution environment, and the embedded migrations.
//!
//! The pool is built for a database that can go away: a request waits at most
//! `DB_ACQUIRE_TIMEOUT_MS` for a connection, every pooled connection is checked with a bounded
//! ping before it is handed out (so one left over from a restarted, failed-over or unreachable
//! server is replaced instead of failing the request), and [`is_unavailable`] tells such
//! outages (answered 503 with `Retry-After`) from errors of the query itself (500).

use crate::config::Config;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The migrations in `migrations/`, embedded at compile time. They are applied by the
/// `migrate` function or `xtask migrate`, never at a function's cold start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// How long the health check of a pooled connection may take. A live server answers a ping in
/// about a millisecond; a connection whose server went away without closing it (a host that
/// failed over, a proxy or NAT that dropped its state, an environment frozen across a restart)
/// never answers, and sqlx's own check would wait for it as long as the acquire timeout allows.
pub const PING_TIMEOUT: Duration = Duration::from_millis(250);

/// A small lazy pool: connecting happens on first use, so a cold start never fails because
/// the database blinked, and the first query reports the problem as a normal error.
pub fn pool(cfg: &Config) -> Result<PgPool, sqlx::Error> {
    // Bulk merges legitimately take seconds: only statements slower than 10 s are worth a
    // warning, and statements themselves are logged at debug.
    let options = PgConnectOptions::from_str(cfg.database_url.expose_secret())?
        .application_name("stormwater-watch")
        .log_statements(log::LevelFilter::Debug)
        .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(10));
    // When a pooled connection last failed its ping (see `before_acquire` below).
    let last_failure: Arc<Mutex<Option<Instant>>> = Arc::default();
    Ok(PgPoolOptions::new()
        .max_connections(cfg.db_max_connections)
        // Also bounds connecting: while the server refuses connections sqlx retries until
        // this deadline, then the request is answered 503.
        .acquire_timeout(cfg.db_acquire_timeout)
        // sqlx's built-in check pings without a time limit; this one gives up after
        // PING_TIMEOUT, and a connection that fails it is closed and replaced within the
        // same acquire.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let last_failure = last_failure.clone();
            Box::pin(async move {
                // A ping that went unanswered means the server went away for every connection
                // idle since then too: those are closed at once instead of each costing its
                // own PING_TIMEOUT (a full pool of them would outlast the acquire timeout).
                let idle_since = Instant::now().checked_sub(meta.idle_for);
                let failed = *last_failure.lock().unwrap_or_else(|e| e.into_inner());
                if let (Some(idle_since), Some(failed)) = (idle_since, failed)
                    && idle_since <= failed
                {
                    return Ok(false);
                }
                match tokio::time::timeout(PING_TIMEOUT, conn.ping()).await {
                    Ok(result) => result.map(|()| true),
                    Err(_) => {
                        *last_failure.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(Instant::now());
                        Err(sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "pooled connection did not answer a ping",
                        )))
                    }
                }
            })
        })
        .connect_lazy_with(options))
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// The advisory lock that facility seeding, linking and the violation engine share, so they
/// never interleave.
pub const LINKING_LOCK: i64 = 7243001;

/// The advisory lock of facility summary rebuilds (`repo::summary`), so a full rebuild at
/// publish and one facility's after a review never write the same rows at once.
pub const SUMMARY_LOCK: i64 = 7243002;

/// `true` when `e` says the database cannot serve right now (no connection within the acquire
/// timeout, a connection refused, reset or cut, the server shutting down or starting up, too
/// many connections), not that the statement was wrong: the request may succeed when retried.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // 08: connection exception; 57P01..57P03: admin / crash shutdown, cannot connect
            // now (starting up, in recovery); 53300: too many connections.
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_query_errors() {
        let io = |kind| sqlx::Error::Io(std::io::Error::new(kind, "x"));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(is_unavailable(&io(std::io::ErrorKind::ConnectionRefused)));
        assert!(is_unavailable(&io(std::io::ErrorKind::UnexpectedEof)));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::ColumnNotFound("x".into())));
        assert!(!is_unavailable(&sqlx::Error::Protocol(
            "unexpected message".into()
        )));
    }
}
