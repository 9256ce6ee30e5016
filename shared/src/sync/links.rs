//! Links derived at import (finalize), rebuilt set-based whenever violations, inspections or
//! enforcement actions changed in a run.
//!
//! - inspection ↔ violation: a violation whose `VIOLATION_SOURCE` is `Inspection` names the
//!   inspection in `VIOLATION_SOURCE_ID`. Exact; `derived_from = 'violation_source_id'`.
//! - enforcement ↔ violation: the source publishes no violation id on enforcement actions, so
//!   links are inferred (`method = 'heuristic'`): same WDID and APP_ID, the violation occurred on
//!   or before the issuance date and at most 365 days before it, and was not dismissed. When an
//!   action counts N violations (`COUNT_OF_VIOLATIONS`), the N nearest candidates are linked.
//!   Confidence (0–1) says how sure the inference is; `reason` says why. Manual links are never
//!   touched.

use serde::Serialize;
use sqlx::{Postgres, Transaction};

/// How many links exist after a rebuild.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkCounts {
    pub inspection_violation: i64,
    pub enforcement_violation_heuristic: i64,
}

/// Datasets whose changes require the links to be rebuilt.
pub const LINKED_DATASETS: [&str; 3] = [
    "smarts_violations",
    "smarts_inspections",
    "smarts_enforcement_actions",
];

/// Rebuilds both derived link sets from current (not withdrawn) rows.
pub async fn rebuild(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
) -> Result<LinkCounts, sqlx::Error> {
    sqlx::query!(
        "delete from smarts_inspection_violation where derived_from = 'violation_source_id'"
    )
    .execute(&mut **tx)
    .await?;
    let inspection_violation = sqlx::query!("insert into smarts_inspection_violation (inspection_id, violation_id, wdid, app_id, derived_from, created_run_id)
         select distinct on (v.violation_source_id, v.violation_id)
                v.violation_source_id, v.violation_id, v.wdid, v.app_id, 'violation_source_id', $1
           from smarts_violation v
          where v.withdrawn_run_id is null
            and lower(v.violation_source) = 'inspection'
            and v.violation_source_id is not null
            and exists (select 1 from smarts_inspection i
                         where i.inspection_id = v.violation_source_id and i.withdrawn_run_id is null)
         order by v.violation_source_id, v.violation_id
         on conflict do nothing", run_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();

    sqlx::query!("delete from smarts_enforcement_violation where method = 'heuristic'")
        .execute(&mut **tx)
        .await?;
    // Candidates per action, nearest first; an action counting N violations takes N of them
    // (all of them when the count is missing). Confidence: 0.9 when the violation says it is
    // linked to an enforcement action and the candidate count equals the published count,
    // 0.75 when it says it is linked, 0.5 otherwise; less 0.2 beyond 180 days.
    let enforcement_violation = sqlx::query!("with e as (
            select distinct on (enforcement_id) enforcement_id, wdid, app_id, issuance_date, count_of_violations
              from smarts_enforcement_action
             where withdrawn_run_id is null and issuance_date is not null and wdid is not null
             order by enforcement_id, id
         ), v as (
            select distinct on (violation_id) violation_id, wdid, app_id, occurrence_date, linked_enforcement_action
              from smarts_violation
             where withdrawn_run_id is null and occurrence_date is not null
               and coalesce(lower(violation_status), '') <> 'dismissed'
             order by violation_id, id
         ), candidates as (
            select e.enforcement_id, v.violation_id, e.count_of_violations,
                   e.issuance_date - v.occurrence_date as days,
                   coalesce(v.linked_enforcement_action, false) as flagged,
                   row_number() over (partition by e.enforcement_id
                                      order by e.issuance_date - v.occurrence_date, v.violation_id) as rank,
                   count(*) over (partition by e.enforcement_id) as candidate_count
              from e join v on v.wdid = e.wdid and v.app_id is not distinct from e.app_id
             where v.occurrence_date <= e.issuance_date
               and v.occurrence_date > e.issuance_date - 365
         )
         insert into smarts_enforcement_violation (enforcement_id, violation_id, method, confidence, reason, created_run_id)
         select enforcement_id, violation_id, 'heuristic',
                greatest(0.05, (case when flagged and candidate_count = count_of_violations then 0.9
                                     when flagged then 0.75 else 0.5 end)
                               - case when days > 180 then 0.2 else 0 end),
                format('same WDID/APP_ID; occurred %s day(s) before issuance; candidate %s of %s%s%s',
                       days, rank, candidate_count,
                       case when count_of_violations is not null
                            then format('; action counts %s violation(s)', count_of_violations) else '' end,
                       case when flagged then '; violation marked as linked to enforcement' else '' end),
                $1
           from candidates
          where count_of_violations is null or rank <= count_of_violations
         on conflict do nothing", run_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(LinkCounts {
        inspection_violation: inspection_violation as i64,
        enforcement_violation_heuristic: enforcement_violation as i64,
    })
}
