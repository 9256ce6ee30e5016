//! Credentials for the write endpoints, and the audit log.
//!
//! Two ways in:
//! * behind API Gateway, the route's JWT authorizer (template.yaml) has already verified the
//!   token; the function reads the verified `sub` claim from the request context;
//! * an API key in the `x-api-key` header, checked against `api_key` (only a SHA-256 of each key
//!   is stored; the key itself is shown once, when created). This is how the local API, scripts
//!   and tests authenticate.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};

/// The header carrying an API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Who is making a change: `key:<name>` or `jwt:<sub>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// Why a request is not authenticated (HTTP 401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send an API key in the x-api-key header or a bearer token")]
    Missing,
    #[error("the API key is not valid or has been revoked")]
    InvalidKey,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The verified JWT subject put in the request context by API Gateway's JWT authorizer.
fn jwt_subject(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx
            .authorizer
            .as_ref()?
            .jwt
            .as_ref()?
            .claims
            .get("sub")
            .filter(|s| !s.is_empty())
            .cloned(),
        _ => None,
    }
}

/// Authenticates a request (see the module docs).
pub async fn authenticate(pool: &PgPool, req: &Request) -> Result<Actor, AuthError> {
    if let Some(sub) = jwt_subject(req) {
        return Ok(Actor(format!("jwt:{sub}")));
    }
    let key = req
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(AuthError::Missing)?;
    let name: Option<String> = sqlx::query_scalar!(
        "select name from api_key where key_hash = $1 and revoked_at is null",
        hash(key)
    )
    .fetch_optional(pool)
    .await?;
    name.map(|n| Actor(format!("key:{n}")))
        .ok_or(AuthError::InvalidKey)
}

/// Creates an API key named `name` and returns it (the only time it is visible).
pub async fn create_key(pool: &PgPool, name: &str, actor: &str) -> Result<String, sqlx::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| sqlx::Error::Protocol(format!("no randomness for the key: {e}")))?;
    let key = format!("sw_{}", hex::encode(bytes));
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar!(
        "insert into api_key (name, key_hash) values ($1, $2) returning id",
        name,
        hash(&key)
    )
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        actor,
        "api_key.create",
        "api_key",
        &id.to_string(),
        serde_json::json!({ "name": name }),
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// Appends to `audit_log` inside the caller's transaction.
pub async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: &str,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!("insert into audit_log (actor, action, entity, entity_id, details) values ($1, $2, $3, $4, $5)", actor, action, entity, entity_id, details)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
