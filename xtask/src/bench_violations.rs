//! `xtask bench-violations <data-dir> <report.md>`: the violation engine and dashboard benchmark.
//!
//! On generated files (bench/`generate`), in one run on this machine:
//! 1. sync the files through the pipeline; finalize runs the engine (a first, full run);
//! 2. time a forced full recompute and a no-change incremental run;
//! 3. time every `dashboard` query of docs/VIOLATION_QUERY_PATTERNS.md (median, p95, max of
//!    repeated runs) against the goal: < 500 ms with at least 100k violation samples;
//! 4. as the in-run baseline, time `select count(*) from violation_sample` (a full scan of the
//!    same table), so a slow machine shows up as a slow baseline, not as a mystery.
//!
//! Targets are checked and reported here, never in tests.

use crate::bench::{Manifest, machine, percentile, synced_database};
use anyhow::Context as _;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;
use stormwater::config::Config;
use stormwater::violations::{engine, patterns};

const RUNS: usize = 15;
const GOAL_MS: f64 = 500.0;
const MIN_SAMPLES: i64 = 100_000;

/// Times `run` `RUNS` times after one warm-up; returns sorted milliseconds.
async fn time<F, Fut>(mut run: F) -> anyhow::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    run().await?;
    let mut out = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        run().await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// Runs the benchmark and writes the report.
pub async fn run(base: Config, data: &Path, report: &Path) -> anyhow::Result<()> {
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(data.join("MANIFEST.json"))?)?;
    let rows: u64 = manifest.files.iter().map(|f| f.rows).sum();
    println!("sync {rows} rows through the pipeline (finalize runs the engine) ...");
    let synced = synced_database(&base, data, "bench_violations", "benchviol").await?;
    let (ctx, sync_s, run_id) = (synced.ctx, synced.seconds, synced.run_id);
    let first: (String, i64, i64, i64, f64) = sqlx::query_as(
        "select mode, results, events_new::bigint, samples,
                extract(epoch from finished_at - started_at)::float8
         from violation_engine_run where sync_run_id = $1 and status = 'succeeded'",
    )
    .bind(run_id)
    .fetch_one(&ctx.pool)
    .await
    .context("the engine did not succeed at finalize")?;
    println!("  sync {sync_s:.1} s; engine {:.1} s", first.4);

    let pool = &ctx.pool;
    let full_t = Instant::now();
    let full = engine::compute(
        pool,
        &engine::Options {
            force_full: true,
            ..engine::Options::new("bench", base.nd_policy)
        },
    )
    .await?;
    let full_s = full_t.elapsed().as_secs_f64();
    let noop_t = Instant::now();
    let noop = engine::compute(pool, &engine::Options::new("bench", base.nd_policy)).await?;
    let noop_s = noop_t.elapsed().as_secs_f64();
    println!("  full recompute {full_s:.1} s, no-change run {noop_s:.2} s");

    let (samples, exceeding, events, facilities): (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from violation_sample),
                (select count(*) from violation_sample where exceeds and not screening),
                (select count(*) from violation_event where retracted_at is null),
                (select count(distinct facility_id) from violation_event)",
    )
    .fetch_one(pool)
    .await?;
    sqlx::query("analyze").execute(pool).await?;

    let doc = std::fs::read_to_string("docs/VIOLATION_QUERY_PATTERNS.md")?;
    let dashboards: Vec<patterns::Pattern> = patterns::parse(&doc)
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .filter(|p| p.tags.iter().any(|t| t == "dashboard"))
        .collect();
    let values: HashMap<&str, String> = [
        ("date_from", "2000-01-01".to_owned()),
        ("date_to", "2100-01-01".to_owned()),
        ("year_from", "2000".to_owned()),
        ("year_to", "2100".to_owned()),
    ]
    .into_iter()
    .collect();
    let baseline = time(|| async {
        sqlx::query("select count(*) from violation_sample")
            .execute(pool)
            .await?;
        Ok(())
    })
    .await?;
    let mut table = String::new();
    let mut all_met = exceeding >= MIN_SAMPLES;
    for p in &dashboards {
        let rows = patterns::run(pool, p, &values)
            .await
            .map_err(anyhow::Error::msg)?;
        let ms = time(|| async {
            patterns::run(pool, p, &values)
                .await
                .map_err(anyhow::Error::msg)?;
            Ok(())
        })
        .await?;
        let p95 = percentile(&ms, 0.95);
        let met = p95 < GOAL_MS;
        all_met &= met;
        println!(
            "  {}: median {:.1} ms, p95 {p95:.1} ms",
            p.name,
            percentile(&ms, 0.5)
        );
        writeln!(
            table,
            "| `{}` | {rows} | {:.1} | {p95:.1} | {:.1} | {:.2} | {} |",
            p.name,
            percentile(&ms, 0.5),
            ms[ms.len() - 1],
            percentile(&ms, 0.5) / percentile(&baseline, 0.5),
            if met { "met" } else { "MISSED" }
        )?;
    }

    let mut out = String::new();
    writeln!(out, "# Violation engine and dashboard benchmark\n")?;
    writeln!(
        out,
        "Written by `./dev bench-violations` (`xtask bench-violations`), {} on {}. Goal (issue 4): \
         dashboard aggregates (by facility, by pollutant, by month) answer in < {GOAL_MS:.0} ms with \
         ≥ {MIN_SAMPLES} violation samples. Release build, dev Postgres (see docs/BENCHMARKS.md for its \
         settings), each query run once to warm up and then {RUNS} times.\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        machine()
    )?;
    writeln!(out, "## Data\n")?;
    writeln!(
        out,
        "- Generated files (`generate --seed 42 --scale {}`, 1 being the real record): {rows} rows in {} files, \
         synced through stage → S3 → SQS → import → finalize in {sync_s:.1} s.",
        manifest
            .scale
            .map_or("(not in its MANIFEST)".to_owned(), |s| s.to_string()),
        manifest.files.len()
    )?;
    writeln!(
        out,
        "- Engine at finalize ({} run): {} results evaluated, {} events, {} violation samples written in {:.1} s.",
        first.0, first.1, first.2, first.3, first.4
    )?;
    writeln!(
        out,
        "- Forced full recompute: {full_s:.1} s ({} pairs, {} results; {} events changed). \
         No-change incremental run: {noop_s:.2} s ({} pairs).",
        full.pairs,
        full.results,
        full.events_new + full.events_updated + full.events_retracted,
        noop.pairs
    )?;
    writeln!(
        out,
        "- Totals: {samples} violation samples, {exceeding} of them exceeding and not screening (the \
         rows the dashboard queries aggregate), {events} current events, {facilities} facilities. \
         Sample-count target (≥ {MIN_SAMPLES} aggregated samples): {}.\n",
        if exceeding >= MIN_SAMPLES {
            "met"
        } else {
            "MISSED"
        }
    )?;
    writeln!(
        out,
        "## Dashboard queries (docs/VIOLATION_QUERY_PATTERNS.md, tag `dashboard`)\n"
    )?;
    writeln!(
        out,
        "Baseline in the same run: `select count(*) from violation_sample` median {:.1} ms.\n",
        percentile(&baseline, 0.5)
    )?;
    writeln!(
        out,
        "| query | rows | median ms | p95 ms | max ms | median / baseline | < {GOAL_MS:.0} ms |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    out.push_str(&table);
    writeln!(
        out,
        "\nOverall: {}.",
        if all_met {
            "all targets met"
        } else {
            "a target was MISSED (see above)"
        }
    )?;
    std::fs::write(report, out)?;
    println!("report written to {}", report.display());
    Ok(())
}
