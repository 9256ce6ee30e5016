//! Writing: `facility_link` is made to say what the plan says ([`write`]), and the counts of
//! the links as they now are go into the report ([`summarize`]).

use super::plan::Want;
use super::score::Settings;
use super::{Report, Written};
use sqlx::{Postgres, Transaction};

/// Makes `facility_link` say what `rows` say for the records they cover; sets `merged_into`
/// and fills `lk_relinked` (queued in `facility_relink`).
pub(super) async fn write(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[Want],
) -> Result<Written, sqlx::Error> {
    // Runtime SQL: lk_want is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "create temp table lk_want (source text, source_key text, facility_id bigint,
             method text, confidence real, status text, verified_by text,
             verified_at timestamptz, notes text) on commit drop",
    )
    .execute(&mut **tx)
    .await?;
    let col = |f: fn(&Want) -> String| rows.iter().map(f).collect::<Vec<_>>();
    // Runtime SQL: lk_want is a temporary table of this transaction, which the build-time check cannot see.
    sqlx::query(
        "insert into lk_want
         select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::real[],
                              $6::text[], $7::text[], $8::timestamptz[], $9::text[])",
    )
    .bind(col(|w| w.source.clone()))
    .bind(col(|w| w.key.clone()))
    .bind(rows.iter().map(|w| w.facility_id).collect::<Vec<_>>())
    .bind(col(|w| w.method.to_owned()))
    .bind(rows.iter().map(|w| w.confidence).collect::<Vec<_>>())
    .bind(col(|w| w.status.to_owned()))
    .bind(
        rows.iter()
            .map(|w| w.verified_by.clone())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|w| w.verified_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|w| w.notes.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    let statements = [
        "create temp table lk_relinked (facility_id bigint primary key) on commit drop",
        "create temp table lk_scope on commit drop as select distinct source, source_key from lk_want",
        "create index on lk_want (source, source_key, facility_id)",
        "analyze lk_want",
    ];
    for sql in statements {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    // Each change counts its rows and queues the facilities whose linked records changed.
    let deleted = changed(
        tx,
        "delete from facility_link l using lk_scope s
         where l.source = s.source and l.source_key = s.source_key
           and not exists (select 1 from lk_want w where w.source = l.source
                             and w.source_key = l.source_key and w.facility_id = l.facility_id)
         returning l.facility_id, l.status = 'linked' as moved",
    )
    .await?;
    let updated = changed(
        tx,
        "update facility_link l
            set method = w.method, confidence = w.confidence, status = w.status,
                verified_by = w.verified_by, verified_at = w.verified_at, notes = w.notes
           from lk_want w, facility_link o
          where w.source = l.source and w.source_key = l.source_key
            and w.facility_id = l.facility_id and o.id = l.id
            and (l.method, l.confidence, l.status, l.verified_by, l.verified_at, l.notes)
                is distinct from
                (w.method, w.confidence, w.status, w.verified_by, w.verified_at, w.notes)
         returning l.facility_id, (o.status = 'linked') <> (w.status = 'linked') as moved",
    )
    .await?;
    let inserted = changed(
        tx,
        "insert into facility_link (facility_id, source, source_key, method, confidence,
                                    status, verified_by, verified_at, notes)
         select w.facility_id, w.source, w.source_key, w.method, w.confidence, w.status,
                w.verified_by, w.verified_at, w.notes
         from lk_want w
         where not exists (select 1 from facility_link l where l.source = w.source
                             and l.source_key = w.source_key and l.facility_id = w.facility_id)
         returning facility_id, status = 'linked' as moved",
    )
    .await?;
    let statements = [
        "update facility f
            set merged_into = case when l.facility_id = f.id then null else l.facility_id end
           from facility_link l, lk_scope s
          where s.source = l.source and s.source_key = l.source_key and l.status = 'linked'
            and f.origin_source = l.source and f.origin_key = l.source_key
            and f.merged_into is distinct from
                (case when l.facility_id = f.id then null else l.facility_id end)",
        "insert into facility_relink (facility_id) select facility_id from lk_relinked
         on conflict do nothing",
    ];
    for sql in statements {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(Written {
        inserted,
        updated,
        deleted,
    })
}

/// Runs `dml` (returning `facility_id` and `moved`), queues the facilities of moved rows in
/// `lk_relinked` and returns how many rows changed.
async fn changed(tx: &mut Transaction<'_, Postgres>, dml: &str) -> Result<i64, sqlx::Error> {
    // Runtime SQL: wraps the caller's DML statement, and lk_relinked is a temporary table of this transaction.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "with c as ({dml}), q as (
             insert into lk_relinked select distinct facility_id from c where moved
             on conflict do nothing)
         select count(*) from c"
    )))
    .fetch_one(&mut **tx)
    .await
}

/// Fills the current counts by method and confidence band.
pub(super) async fn summarize(
    tx: &mut Transaction<'_, Postgres>,
    s: &Settings,
    report: &mut Report,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query!(
        r#"select status, method,
                case when confidence >= 1 then '1.00'
                     when confidence >= 0.95 then '0.95-0.99'
                     when confidence >= $1 then 'threshold-0.94'
                     else 'floor-threshold' end as "band!",
                count(*) as "n!"
         from facility_link where status <> 'rejected' group by 1, 2, 3"#,
        s.threshold
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let (status, method, band, n) = (r.status, r.method, r.band, r.n);
        if status == "proposed" {
            report.proposed += n;
            continue;
        }
        *report.linked_by_method.entry(method.clone()).or_default() += n;
        *report
            .by_method_and_band
            .entry(method)
            .or_default()
            .entry(band)
            .or_default() += n;
    }
    report.merged_facilities = sqlx::query_scalar!(
        r#"select count(*) as "v!" from facility where merged_into is not null"#
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(())
}
