//! The stored stats of the SMARTS record lists (migration 20261202050001): one cube per list,
//! a row per combination of the values its filters and stats read, with counts and sums.
//! `api::smarts` sums the rows a request's filters select; these statements rebuild them from
//! the current records, in the caller's transaction (a full summary rebuild).

use sqlx::{Postgres, Transaction};

/// Rebuilds every cube from the current records.
pub async fn refresh(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from smarts_violation_stats")
        .execute(&mut **tx)
        .await?;
    sqlx::query!(
        "insert into smarts_violation_stats
             (region, county, violation_type, violation_status, serious, with_enforcement, n)
         select upper(t.regional_board), lower(t.place_county), t.violation_type,
                t.violation_status, t.serious_violation,
                coalesce(t.linked_enforcement_action or exists (
                    select 1 from smarts_enforcement_violation ev
                     where ev.violation_id = t.violation_id), false),
                count(*)
           from smarts_violation t
          where t.withdrawn_run_id is null
          group by 1, 2, 3, 4, 5, 6"
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!("delete from smarts_enforcement_stats")
        .execute(&mut **tx)
        .await?;
    sqlx::query!(
        "insert into smarts_enforcement_stats
             (region, county, enforcement_type, enforcement_status, n,
              total_assessment, received_amount, balance_due)
         select upper(t.regional_board), lower(t.place_county), t.enforcement_type,
                t.enforcement_status, count(*),
                coalesce(sum(t.total_assessment), 0), coalesce(sum(t.received_amount), 0),
                coalesce(sum(t.balance_due), 0)
           from smarts_enforcement_action t
          where t.withdrawn_run_id is null
          group by 1, 2, 3, 4"
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!("delete from smarts_inspection_stats")
        .execute(&mut **tx)
        .await?;
    sqlx::query!(
        "insert into smarts_inspection_stats
             (region, county, inspection_purpose, with_violations, n)
         select upper(t.regional_board), lower(t.place_county), t.inspection_purpose,
                exists (select 1 from smarts_inspection_violation iv
                         where iv.inspection_id = t.inspection_id),
                count(*)
           from smarts_inspection t
          where t.withdrawn_run_id is null
          group by 1, 2, 3, 4"
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!("delete from smarts_facility_stats")
        .execute(&mut **tx)
        .await?;
    sqlx::query!(
        "insert into smarts_facility_stats (kind, status, region, county, n)
         select t.kind, t.status, upper(t.region), lower(t.county), count(*)
           from smarts_facility t
          group by 1, 2, 3, 4"
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
