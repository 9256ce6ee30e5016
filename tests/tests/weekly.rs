//! The weekly refresh: importing next week's files over this week's leaves the same tables as
//! a full load of next week's files on an empty database, and rewrites exactly the rows the
//! publisher changed.

mod support;

use std::collections::{BTreeMap, HashMap};
use support::{Harness, harness};

/// Columns that differ between two loads of the same content: surrogate keys, run ids, and the
/// source line, which is the row's line in the file of the run that last changed it (an
/// unchanged row is not rewritten because rows above it moved; `lines` checks it).
const BOOKKEEPING: &str = "array['id', 'first_run_id', 'changed_run_id', 'withdrawn_run_id', \
                           'parameter_id', 'source_line']";

/// (row_key, row_ord) → (source line, run that last changed it) of the current rows of `table`.
async fn lines(h: &Harness, table: &str) -> HashMap<(i64, i32), (i64, i64)> {
    let sql = format!(
        "select row_key, row_ord, source_line, changed_run_id from {table}
          where withdrawn_run_id is null"
    );
    let rows: Vec<(i64, i32, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(h.pool())
        .await
        .unwrap();
    rows.into_iter()
        .map(|(k, o, line, run)| ((k, o), (line, run)))
        .collect()
}

/// (rows, checksum) of the current rows of `table`, without their bookkeeping columns.
async fn checksum(h: &Harness, table: &str) -> (i64, String) {
    let sql = format!(
        "select count(*), md5(coalesce(string_agg(j::text, '|' order by j::text), ''))
           from (select to_jsonb(t) - {BOOKKEEPING}::text[] as j
                   from {table} t where withdrawn_run_id is null) x"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(h.pool())
        .await
        .unwrap()
}

/// The computed events, each named by its facility's origin record instead of the facility's
/// id (the two databases number their facilities in their own order).
async fn events(h: &Harness) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select concat_ws('|', f.origin_source, f.origin_key, e.source, e.pollutant_key,
                          e.benchmark_type, e.reporting_year, e.measure, e.value, e.unit,
                          e.max_ratio, e.severity, e.sample_count, e.first_date, e.last_date),
                count(*)
           from violation_event e join facility f on f.id = e.facility_id
          where e.retracted_at is null group by 1",
    )
    .fetch_all(h.pool())
    .await
    .unwrap();
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_delta_leaves_the_tables_a_full_load_of_the_new_files_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let (this_week, next_week) = (dir.path().join("this"), dir.path().join("next"));
    let base = support::generate(&this_week, 11, "0.002");
    let next = support::next_week(&this_week, &next_week, 11);
    assert_eq!(base.files.len(), next.files.len());

    let table = |dataset: &str| {
        stormwater::import::registry::dataset(dataset)
            .unwrap()
            .table
    };
    let weekly = harness("weekly-delta", Some(2_000)).await;
    weekly.sync(base.sources(&this_week)).await;
    let mut this_weeks_lines = HashMap::new();
    for f in &base.files {
        this_weeks_lines.insert(f.dataset.clone(), lines(&weekly, table(&f.dataset)).await);
    }
    let summary = weekly.sync(next.sources(&next_week)).await;
    let full = harness("weekly-full", Some(2_000)).await;
    full.sync(next.sources(&next_week)).await;

    let mut totals = (0, 0, 0);
    for f in &next.files {
        let d = f.delta.expect("a next week's manifest has deltas");
        let table = table(&f.dataset);
        // Rows rewritten are the rows changed: a changed eSMR row (its identity is its whole
        // content) is one row withdrawn and one row inserted.
        let (inserted, updated, withdrawn): (i64, i64, i64) = sqlx::query_as(
            "select rows_inserted, rows_updated, rows_withdrawn from sync_file
              where run_id = $1 and dataset = $2",
        )
        .bind(summary.run_id)
        .bind(&f.dataset)
        .fetch_one(weekly.pool())
        .await
        .unwrap();
        if f.dataset == "esmr" {
            assert_eq!(
                (inserted, updated, withdrawn),
                (d.changed + d.added, 0, d.changed + d.removed),
                "{}",
                f.dataset
            );
        } else {
            assert_eq!(
                (inserted, updated, withdrawn),
                (d.added, d.changed, d.removed),
                "{}",
                f.dataset
            );
        }
        totals = (
            totals.0 + d.changed,
            totals.1 + d.added,
            totals.2 + d.removed,
        );
        let (rows, sum) = checksum(&weekly, table).await;
        assert_eq!(rows, f.rows, "{table}: the next week's rows are current");
        assert_eq!((rows, sum), checksum(&full, table).await, "{table}");
        // Each row's line is its line in the file of the run that last changed it: next
        // week's for a row that run wrote, this week's for the others.
        let next_lines = lines(&full, table).await;
        for (key, (line, run)) in lines(&weekly, table).await {
            let want = if run == summary.run_id {
                next_lines[&key].0
            } else {
                this_weeks_lines[&f.dataset][&key].0
            };
            assert_eq!(line, want, "{table} {key:?}");
        }
    }
    assert!(totals.0 > 0 && totals.1 > 0 && totals.2 > 0, "{totals:?}");
    // What the engine computed from them is the same too.
    let (a, b) = (events(&weekly).await, events(&full).await);
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
