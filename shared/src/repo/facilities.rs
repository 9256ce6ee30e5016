//! What the read API shares about records: LIKE escaping and the freshness of each dataset.

use sqlx::PgExecutor;

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Last successful import per dataset, for `meta.freshness`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Freshness {
    pub dataset: String,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub source_url: String,
    pub rows_read: i64,
}

/// The newest succeeded file of every dataset.
pub async fn freshness(db: impl PgExecutor<'_>) -> Result<Vec<Freshness>, sqlx::Error> {
    sqlx::query_as!(
        Freshness,
        "select distinct on (dataset) dataset, finished_at, source_url, rows_read
           from sync_file where status in ('succeeded', 'partial')
          order by dataset, id desc",
    )
    .fetch_all(db)
    .await
}

/// The canonical facility the source record `(source, key)` is linked to, if any.
pub async fn linked_facility(
    pool: &sqlx::PgPool,
    source: &str,
    key: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        "select facility_id from facility_link
          where source = $1 and source_key = $2 and status = 'linked'",
        source,
        key
    )
    .fetch_optional(pool)
    .await
}
