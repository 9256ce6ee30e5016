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

/// Every index and constraint of `tables`, as PostgreSQL writes them.
async fn schema_of(h: &Harness, tables: &[&str]) -> Vec<(String, String)> {
    let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    sqlx::query_as(
        "select tablename::text, indexdef from pg_indexes where tablename = any($1)
         union all
         select conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid)
           from pg_constraint where conrelid::regclass::text = any($1)
         order by 1, 2",
    )
    .bind(&tables)
    .fetch_all(h.pool())
    .await
    .unwrap()
}

async fn deferred(h: &Harness) -> i64 {
    sqlx::query_scalar("select count(*) from import_deferred_index")
        .fetch_one(h.pool())
        .await
        .unwrap()
}

fn tables_of(m: &support::Manifest) -> Vec<&'static str> {
    let mut tables: Vec<&str> = m
        .files
        .iter()
        .map(|f| {
            stormwater::import::registry::dataset(&f.dataset)
                .unwrap()
                .table
        })
        .collect();
    tables.sort_unstable();
    tables.dedup();
    tables
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_inserts_without_comparing_and_builds_its_indexes_after_the_last_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (this_week, next_week) = (dir.path().join("this"), dir.path().join("next"));
    let base = support::generate(&this_week, 12, "0.002");
    let next = support::next_week(&this_week, &next_week, 12);
    // The engine's first full pass writes violation_sample the same way.
    let mut tables = tables_of(&base);
    tables.push("violation_sample");
    let h = harness("first-load", Some(2_000)).await;
    let migrated = schema_of(&h, &tables).await;
    let keyed =
        |schema: &[(String, String)]| schema.iter().any(|(_, d)| d.contains("(row_key, row_ord)"));
    assert!(keyed(&migrated), "{migrated:?}");

    // Staged, not yet imported: the secondary indexes and unique constraints wait.
    let staged = h.stage(base.sources(&this_week)).await;
    let during = schema_of(&h, &tables).await;
    assert!(during.len() < migrated.len(), "{during:?}");
    assert!(!keyed(&during), "{during:?}");
    assert!(deferred(&h).await > 0);
    h.drain().await;

    let files: Vec<(String, bool, String, i64, i64, i64)> = sqlx::query_as(
        "select dataset, first_load, status, rows_inserted, rows_updated, rows_withdrawn
           from sync_file where run_id = $1 order by dataset",
    )
    .bind(staged.run_id)
    .fetch_all(h.pool())
    .await
    .unwrap();
    assert_eq!(files.len(), base.files.len());
    for (dataset, first_load, status, inserted, updated, withdrawn) in &files {
        let rows = base
            .files
            .iter()
            .find(|f| &f.dataset == dataset)
            .unwrap()
            .rows;
        assert!(first_load, "{dataset}");
        assert_eq!(
            (status.as_str(), *inserted, *updated, *withdrawn),
            ("succeeded", rows, 0, 0),
            "{dataset}"
        );
    }
    // After finalize the tables carry exactly the indexes the migrations gave them.
    assert_eq!(schema_of(&h, &tables).await, migrated);
    let samples: i64 = sqlx::query_scalar("select count(*) from violation_sample")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert!(samples > 0);
    assert_eq!(deferred(&h).await, 0);
    let seen: i64 = sqlx::query_scalar("select count(*) from import_seen")
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(seen, 0);

    // The next week compares and merges: no file of a non-empty table is a first load.
    let week = h.sync(next.sources(&next_week)).await;
    let first: Vec<bool> = sqlx::query_scalar("select first_load from sync_file where run_id = $1")
        .bind(week.run_id)
        .fetch_all(h.pool())
        .await
        .unwrap();
    assert!(!first.is_empty() && first.iter().all(|f| !f), "{first:?}");
    assert_eq!(schema_of(&h, &tables).await, migrated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_whose_run_died_leaves_no_table_without_its_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let base = support::generate(dir.path(), 13, "0.002");
    let tables = tables_of(&base);
    let h = harness("first-load-died", Some(2_000)).await;
    let migrated = schema_of(&h, &tables).await;
    let died = h.stage(base.sources(dir.path())).await;
    assert!(deferred(&h).await > 0);
    // The run dies before any chunk is imported; the next run closes it as past its deadline.
    sqlx::query("update sync_run set started_at = now() - interval '1 day' where id = $1")
        .bind(died.run_id)
        .execute(h.pool())
        .await
        .unwrap();
    let again = h.sync(base.sources(dir.path())).await;
    let status: Vec<String> =
        sqlx::query_scalar("select status from sync_run where id = any($1) order by id")
            .bind(vec![died.run_id, again.run_id])
            .fetch_all(h.pool())
            .await
            .unwrap();
    assert_eq!(status, ["failed", "succeeded"]);
    assert_eq!(schema_of(&h, &tables).await, migrated);
    assert_eq!(deferred(&h).await, 0);
    for f in &base.files {
        let table = stormwater::import::registry::dataset(&f.dataset)
            .unwrap()
            .table;
        assert_eq!(checksum(&h, table).await.0, f.rows, "{table}");
    }
}

/// The stored publication's times: the newest facility summary and stored dashboard.
async fn published_views(h: &Harness) -> (Option<String>, Option<String>) {
    sqlx::query_as(
        "select (select max(computed_at)::text from facility_summary),
                (select max(computed_at)::text from dashboard_snapshot)",
    )
    .fetch_one(h.pool())
    .await
    .unwrap()
}

async fn finalize_steps(h: &Harness, run_id: i64) -> Vec<String> {
    sqlx::query_scalar(
        "select jsonb_object_keys(notes::jsonb -> 'finalizeMs') from sync_run where id = $1
          order by 1",
    )
    .bind(run_id)
    .fetch_all(h.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_changed_nothing_keeps_todays_publication_and_a_day_later_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = support::generate(dir.path(), 14, "0.002");
    let h = harness("no-change", Some(2_000)).await;
    let first = h.sync(base.sources(dir.path())).await;
    let views = published_views(&h).await;
    assert!(views.0.is_some() && views.1.is_some(), "{views:?}");
    assert!(
        finalize_steps(&h, first.run_id)
            .await
            .contains(&"summaries".to_owned())
    );

    // The same files: skipped as unchanged, nothing linked or rebuilt, the run still published.
    let same = h.sync(base.sources(dir.path())).await;
    assert!(same.files.iter().all(|f| f.status == "skipped"), "{same:?}");
    let steps = finalize_steps(&h, same.run_id).await;
    for step in ["linking", "summaries", "dashboards"] {
        assert!(!steps.contains(&step.to_owned()), "{step} ran: {steps:?}");
    }
    assert!(steps.contains(&"engine".to_owned()), "{steps:?}");
    assert_eq!(published_views(&h).await, views);
    let published: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select published_at from sync_run where id = $1")
            .bind(same.run_id)
            .fetch_one(h.pool())
            .await
            .unwrap();
    assert!(published.is_some());

    // A day later the same files rebuild them (the summaries count days to today).
    sqlx::query("update publish_state set published_on = published_on - 1")
        .execute(h.pool())
        .await
        .unwrap();
    let next_day = h.sync(base.sources(dir.path())).await;
    let steps = finalize_steps(&h, next_day.run_id).await;
    assert!(steps.contains(&"summaries".to_owned()), "{steps:?}");
    let rebuilt = published_views(&h).await;
    assert!(
        rebuilt.0 > views.0 && rebuilt.1 > views.1,
        "{rebuilt:?} {views:?}"
    );
    // And so does a publication left incomplete (a step failed), on the same day.
    sqlx::query("update publish_state set complete = false")
        .execute(h.pool())
        .await
        .unwrap();
    let after_failure = h.sync(base.sources(dir.path())).await;
    assert!(
        finalize_steps(&h, after_failure.run_id)
            .await
            .contains(&"dashboards".to_owned())
    );
}
