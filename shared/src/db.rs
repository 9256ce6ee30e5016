//! The Postgres pool, built once per execution environment, and the embedded migrations.

use crate::config::Config;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// The migrations in `migrations/`, embedded at compile time. They are applied by the
/// `migrate` function or `xtask migrate`, never at a function's cold start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A small lazy pool: connecting happens on first use, so a cold start never fails because
/// the database blinked, and the first query reports the problem as a normal error.
pub fn pool(cfg: &Config) -> Result<PgPool, sqlx::Error> {
    // Bulk merges legitimately take seconds: only statements slower than 10 s are worth a
    // warning, and statements themselves are logged at debug.
    let options = PgConnectOptions::from_str(cfg.database_url.expose_secret())?
        .application_name("stormwater-watch")
        .log_statements(log::LevelFilter::Debug)
        .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(10));
    Ok(PgPoolOptions::new()
        .max_connections(cfg.db_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
