//! The review workflow of violation events: who moved an event to which status, when and why.
//!
//! ```text
//! open ──► under_review ──► resolved
//!   │          │  ▲  │
//!   │          │  │  └──► dismissed
//!   └──────────┼──┼───────► dismissed
//!              ▼  │
//!             open (back)     resolved / dismissed ──► under_review (reopen)
//! ```
//! Any other change, including "to the status it already has", is a conflict (HTTP 409).
//! Every change writes `violation_status_audit` and `audit_log` in the same transaction.

use sqlx::PgPool;
use std::str::FromStr;

/// A review status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    UnderReview,
    Resolved,
    Dismissed,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Open,
        Status::UnderReview,
        Status::Resolved,
        Status::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::UnderReview => "under_review",
            Status::Resolved => "resolved",
            Status::Dismissed => "dismissed",
        }
    }

    /// Where an event in this status may go next.
    pub fn next(self) -> &'static [Status] {
        match self {
            Status::Open => &[Status::UnderReview, Status::Dismissed],
            Status::UnderReview => &[Status::Resolved, Status::Dismissed, Status::Open],
            Status::Resolved | Status::Dismissed => &[Status::UnderReview],
        }
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| "expected one of open, under_review, resolved, dismissed".to_owned())
    }
}

/// Why a status change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("violation event {0} does not exist")]
    NotFound(i64),
    #[error("{0}")]
    Conflict(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// The event's status after a change.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    pub id: i64,
    pub from: Status,
    pub status: Status,
    pub changed_by: String,
    pub changed_at: chrono::DateTime<chrono::Utc>,
    pub notes: Option<String>,
}

/// Moves event `id` to `to`. With `expected`, the change only happens if the event is still in
/// that status (optimistic concurrency for two reviewers working at once).
pub async fn change_status(
    pool: &PgPool,
    id: i64,
    to: Status,
    actor: &str,
    notes: Option<&str>,
    expected: Option<Status>,
) -> Result<Changed, ReviewError> {
    let mut tx = pool.begin().await?;
    let current: Option<String> = sqlx::query_scalar!(
        "select status from violation_event where id = $1 for update",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let from: Status = current
        .ok_or(ReviewError::NotFound(id))?
        .parse()
        .map_err(ReviewError::Conflict)?;
    if let Some(e) = expected.filter(|e| *e != from) {
        return Err(ReviewError::Conflict(format!(
            "violation event {id} is {}, not {} (changed by someone else?)",
            from.as_str(),
            e.as_str()
        )));
    }
    if !from.next().contains(&to) {
        let allowed: Vec<&str> = from.next().iter().map(|s| s.as_str()).collect();
        return Err(ReviewError::Conflict(format!(
            "cannot change violation event {id} from {} to {}; allowed from {}: {}",
            from.as_str(),
            to.as_str(),
            from.as_str(),
            allowed.join(", ")
        )));
    }
    let changed_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar!(
        r#"update violation_event
            set status = $2, status_changed_by = $3, status_changed_at = now(), status_notes = $4
          where id = $1 returning status_changed_at as "v!""#,
        id,
        to.as_str(),
        actor,
        notes
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!("insert into violation_status_audit (event_id, from_status, to_status, changed_by, changed_at, notes)
         values ($1, $2, $3, $4, $5, $6)", id, from.as_str(), to.as_str(), actor, changed_at, notes)
    .execute(&mut *tx)
    .await?;
    crate::auth::audit(
        &mut tx,
        actor,
        "violation_event.status",
        "violation_event",
        &id.to_string(),
        serde_json::json!({ "from": from, "to": to, "notes": notes }),
    )
    .await?;
    tx.commit().await?;
    Ok(Changed {
        id,
        from,
        status: to,
        changed_by: actor.to_owned(),
        changed_at,
        notes: notes.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_edges() {
        use Status::*;
        assert!(Open.next().contains(&UnderReview));
        assert!(UnderReview.next().contains(&Resolved));
        assert!(
            !Open.next().contains(&Resolved),
            "open must be reviewed first"
        );
        assert!(!Resolved.next().contains(&Dismissed));
        for s in Status::ALL {
            assert!(!s.next().contains(&s), "{s:?} -> itself is a conflict");
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("closed".parse::<Status>().is_err());
    }
}
