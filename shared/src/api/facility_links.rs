//! `POST /api/facilities/{id}/links`: a reviewer's decision that a source record is (`link`)
//! or is not (`unlink`) the site of facility `id`. Credentials required.
//!
//! The decision is stored in `facility_link_decision` (one current decision per record and
//! facility; the audit log keeps history), then the linker runs, so the answer shows the links
//! as they now are. Every later linker run replays the decision: a manual decision always wins
//! over automatic matching and survives re-imports.

use super::ApiState;
use super::publish::Relinked;
use crate::http::{ApiError, json_body, json_response, path_id};
use crate::linking::{LinkError, Options};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// The sources a decision may name.
pub const SOURCES: &[&str] = &["smarts_industrial", "smarts_construction", "esmr"];

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DecisionBody {
    action: String,
    source: String,
    source_key: String,
    notes: Option<String>,
}

/// `POST /api/facilities/{id}/links`: `{"action": "link"|"unlink", "source", "sourceKey",
/// "notes"?}`. 401 without credentials, 404 for an unknown facility or source record, 409 for
/// unlinking a record from the facility built from it.
pub async fn handle(state: &ApiState, req: Request) -> Response<Body> {
    if req.method() != Method::POST {
        return ApiError::MethodNotAllowed.into_response();
    }
    match decide(state, &req).await {
        Ok(body) => json_response(StatusCode::OK, &body, "no-store"),
        Err(e) => e.into_response(),
    }
}

async fn decide(state: &ApiState, req: &Request) -> Result<Value, ApiError> {
    let actor = crate::auth::authenticate(&state.pool, req).await?;
    let facility = path_id(req)?;
    let body: DecisionBody = json_body(req)?;
    if !["link", "unlink"].contains(&body.action.as_str()) {
        return Err(ApiError::bad("action", "must be link or unlink"));
    }
    if !SOURCES.contains(&body.source.as_str()) {
        return Err(ApiError::bad(
            "source",
            format!("must be one of {}", SOURCES.join(", ")),
        ));
    }
    let key = body.source_key.trim();
    if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "sourceKey",
            "1 to 200 characters, no control characters",
        ));
    }
    if body
        .notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > 4000)
    {
        return Err(ApiError::bad("notes", "at most 4000 characters"));
    }
    let decision = Decision {
        actor: actor.0,
        facility,
        link: body.action == "link",
        source: body.source,
        key: key.to_owned(),
        notes: body.notes,
    };
    let before = record(state, &decision.source, &decision.key).await?;
    store(state, &decision).await.map_err(|e| match e {
        LinkError::NotFound(m) => ApiError::NotFound(m),
        LinkError::Conflict(m) => ApiError::Conflict(m),
        LinkError::Db(db) => ApiError::Db(db),
        other => ApiError::Internal(other.to_string()),
    })?;
    let opts = Options::new("manual-decision", state.writes.link);
    let affected: Vec<i64> = [Some(facility), before].into_iter().flatten().collect();
    let applied = super::publish::link_and_publish(
        &state.pool,
        &state.cache,
        &opts,
        state.writes.nd_policy,
        Relinked::Decision {
            facilities: &affected,
            source: &decision.source,
            key: &decision.key,
        },
    )
    .await
    .map_err(|e| match e {
        LinkError::Db(db) => ApiError::Db(db),
        other => ApiError::Internal(other.to_string()),
    })?;
    let links: Value = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(jsonb_build_object('facilityId', l.facility_id,
                    'method', l.method, 'confidence', l.confidence, 'status', l.status,
                    'verifiedBy', l.verified_by, 'verifiedAt', l.verified_at, 'notes', l.notes)
                    order by l.status, l.facility_id), '[]')
         as "v!" from facility_link l where l.source = $1 and l.source_key = $2"#,
        &decision.source,
        &decision.key
    )
    .fetch_one(&state.pool)
    .await?;
    let now = record(state, &decision.source, &decision.key).await?;
    Ok(json!({
        "data": {
            "action": if decision.link { "link" } else { "unlink" },
            "source": decision.source,
            "sourceKey": decision.key,
            "facilityId": facility,
            "decidedBy": decision.actor,
            "linkedTo": now,
            "previouslyLinkedTo": before,
            "links": links,
        },
        "meta": {
            "facilityLinks": applied.links,
            "violationEvents": {
                "new": applied.violations.events_new,
                "updated": applied.violations.events_updated,
                "retracted": applied.violations.events_retracted,
            },
        },
    }))
}

struct Decision {
    actor: String,
    facility: i64,
    link: bool,
    source: String,
    key: String,
    notes: Option<String>,
}

/// The facility a record is linked to now.
async fn record(state: &ApiState, source: &str, key: &str) -> Result<Option<i64>, ApiError> {
    Ok(crate::repo::facilities::linked_facility(&state.pool, source, key).await?)
}

/// Stores the decision (replacing the record's earlier decisions it contradicts) and audits it.
async fn store(state: &ApiState, d: &Decision) -> Result<(), LinkError> {
    let mut tx = state.pool.begin().await?;
    let exists: bool = sqlx::query_scalar!(
        r#"select exists (select 1 from facility where id = $1) as "v!""#,
        d.facility
    )
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(LinkError::NotFound(format!("no facility {}", d.facility)));
    }
    let own: Option<i64> = sqlx::query_scalar!(
        "select id from facility where origin_source = $1 and origin_key = $2",
        &d.source,
        &d.key
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(own) = own else {
        return Err(LinkError::NotFound(format!(
            "no {} record {:?} (SMARTS keys are 'APP_ID|WDID', eSMR keys the CIWQS place id)",
            d.source, d.key
        )));
    };
    if !d.link && own == d.facility {
        return Err(LinkError::Conflict(format!(
            "facility {} was built from this record; unlink the record from the facility it \
             was merged into, or unlink the other records from this one",
            d.facility
        )));
    }
    if d.link {
        // One linked facility per record: a new link replaces the record's earlier link, and
        // lifts an unlink from this facility.
        sqlx::query!(
            "delete from facility_link_decision
              where source = $1 and source_key = $2
                and (decision = 'link' or (decision = 'unlink' and facility_id = $3))",
            &d.source,
            &d.key,
            d.facility
        )
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query!(
            "delete from facility_link_decision
              where source = $1 and source_key = $2 and decision = 'link' and facility_id = $3",
            &d.source,
            &d.key,
            d.facility
        )
        .execute(&mut *tx)
        .await?;
    }
    let id: i64 = sqlx::query_scalar!("insert into facility_link_decision (source, source_key, facility_id, decision, decided_by, notes)
         values ($1, $2, $3, $4, $5, $6)
         on conflict on constraint facility_link_decision_pair_uniq do update
            set decision = excluded.decision, decided_by = excluded.decided_by,
                decided_at = now(), notes = excluded.notes
         returning id", &d.source, &d.key, d.facility, if d.link { "link" } else { "unlink" }, &d.actor, d.notes.as_deref())
    .fetch_one(&mut *tx)
    .await?;
    crate::auth::audit(
        &mut tx,
        &d.actor,
        "facility_link.decide",
        "facility_link_decision",
        &id.to_string(),
        json!({ "action": if d.link { "link" } else { "unlink" }, "source": d.source,
                "sourceKey": d.key, "facilityId": d.facility, "notes": d.notes }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
