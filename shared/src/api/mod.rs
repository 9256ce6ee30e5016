//! HTTP handlers: [`routes::FUNCTIONS`] names each route's handler and its OpenAPI operation;
//! [`publish`] makes a new computed state visible to them.

pub mod dashboard;
pub mod doc;
pub mod evidence;
pub mod facilities;
pub mod facility;
pub mod facility_link_list;
pub mod facility_links;
pub mod feed;
pub mod geojson;
pub mod health;
pub mod list;
pub mod nal_levels;
pub mod openapi;
pub mod preload;
pub mod publish;
pub mod routes;
pub mod smarts;
pub mod subscriptions;
pub mod sync_status;
pub mod violation_list;
pub mod violations;

use crate::cache::Cache;
use crate::config::Config;
use crate::repo;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// State of the read API, built once per execution environment.
pub struct ApiState {
    pub pool: sqlx::PgPool,
    pub cache: Cache,
    /// What write endpoints need to recompute after a change.
    pub writes: WriteSettings,
    /// The deployment's cursor signing key, read on first use ([`Self::cursor_key`]).
    pub cursor_key: tokio::sync::OnceCell<crate::http::CursorKey>,
}

/// Settings of the write endpoints: the computations they trigger (a manual facility link
/// reruns the linker and the violation engine) and the limits they enforce.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    pub link: crate::linking::Settings,
    pub nd_policy: crate::violations::NdPolicy,
    /// What webhook URLs may point at besides public addresses (`OUTBOUND_ALLOW_HOSTS`).
    pub outbound: crate::outbound::Policy,
    /// Active subscriptions per owner (`MAX_ACTIVE_SUBSCRIPTIONS`).
    pub max_active_subscriptions: u32,
}

impl Default for WriteSettings {
    fn default() -> Self {
        Self {
            link: crate::linking::Settings::default(),
            nd_policy: crate::violations::NdPolicy::default(),
            outbound: crate::outbound::Policy::default(),
            max_active_subscriptions: 100,
        }
    }
}

impl WriteSettings {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            link: cfg.link,
            nd_policy: cfg.nd_policy,
            outbound: cfg.outbound.clone(),
            max_active_subscriptions: cfg.max_active_subscriptions,
        }
    }
}

impl ApiState {
    /// Builds the lazy pool and the cache handle.
    pub fn init(cfg: &Config) -> Result<Self, sqlx::Error> {
        Ok(Self::new(
            crate::db::pool(cfg)?,
            Cache::new(cfg.redis_url.as_deref()),
            WriteSettings::from_config(cfg),
        ))
    }

    /// The state over an existing pool and cache (the cursor key is read on first use).
    pub fn new(pool: sqlx::PgPool, cache: Cache, writes: WriteSettings) -> Self {
        Self {
            pool,
            cache,
            writes,
            cursor_key: Default::default(),
        }
    }

    /// The key that signs list cursors: the deployment's own, generated in its database by the
    /// migrations (`signing_key`) and read once per execution environment.
    pub async fn cursor_key(&self) -> Result<&crate::http::CursorKey, crate::http::ApiError> {
        self.cursor_key
            .get_or_try_init(|| async {
                let key: Option<Vec<u8>> =
                    sqlx::query_scalar!("select key from signing_key where purpose = 'cursor'")
                        .fetch_optional(&self.pool)
                        .await?;
                key.and_then(crate::http::CursorKey::new).ok_or_else(|| {
                    crate::http::ApiError::Internal(
                        "no cursor signing key in signing_key: apply the migrations".into(),
                    )
                })
            })
            .await
    }

    /// The cursors of the list `list` (route and order, see [`crate::http::CursorKey::list`]).
    pub async fn cursors(
        &self,
        list: impl Into<String>,
    ) -> Result<crate::http::ListCursors<'_>, crate::http::ApiError> {
        Ok(self.cursor_key().await?.list(list))
    }
}

static EXTRACT_DATE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(\d{4}-\d{2}-\d{2})[^/]*$").expect("date pattern compiles")
});

/// `meta.freshness`: per dataset, the last successful sync and the source extract date
/// (the publisher puts it in the file name).
pub async fn freshness(pool: &sqlx::PgPool) -> Result<Value, sqlx::Error> {
    let rows = repo::facilities::freshness(pool).await?;
    let mut out = Map::new();
    for r in rows {
        let extract = EXTRACT_DATE
            .captures(&r.source_url)
            .map(|c| c[1].to_owned());
        out.insert(
            r.dataset,
            json!({
                "lastSuccessfulSync": r.finished_at,
                "sourceUrl": r.source_url,
                "sourceExtractDate": extract,
                "rows": r.rows_read,
            }),
        );
    }
    Ok(Value::Object(out))
}
