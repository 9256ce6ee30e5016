//! `xtask bench <data-dir> <report.md>`: the ingest benchmark.
//!
//! On generated statewide files (bench/`generate`), in one run on this machine:
//! 1. baseline: `psql \copy` of every file into unindexed all-text tables;
//! 2. end to end: sync-stage → S3 → SQS → sync-import (N concurrent workers) → sync-finalize;
//! 3. a no-change re-sync (must rewrite 0 rows);
//! 4. import-worker peak RSS and speed per chunk size, each chunk imported by a separate
//!    `xtask import-chunk` process (as a Lambda would).
//!
//! Targets are checked here and reported, never in tests.

use anyhow::{Context as _, bail};
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stormwater::config::Config;
use stormwater::sync::manifest::Source;
use stormwater::sync::stage::{self, StageRequest};
use stormwater::sync::{Context, runner};

#[derive(Deserialize)]
pub(crate) struct Manifest {
    pub(crate) files: Vec<ManifestFile>,
}

#[derive(Deserialize)]
pub(crate) struct ManifestFile {
    pub(crate) file: String,
    pub(crate) dataset: String,
    pub(crate) rows: u64,
}

/// Import workers polling concurrently (Lambda would scale out; this machine has 2 cores).
const WORKERS: usize = 2;

fn database_url(base: &str, db: &str) -> String {
    format!("{}/{db}", base.rsplit_once('/').map_or(base, |(b, _)| b))
}

pub(crate) async fn fresh_database(base_url: &str, db: &str) -> anyhow::Result<String> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(base_url)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {db} with (force)"
    )))
    .execute(&admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {db}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(database_url(base_url, db))
}

fn header_width(path: &Path) -> anyhow::Result<usize> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)?;
    let mut rec = csv::StringRecord::new();
    r.read_record(&mut rec)?;
    Ok(rec.len())
}

/// Raw `psql \copy` of every file into unindexed text tables; returns seconds.
fn baseline(url: &str, files: &[(PathBuf, &ManifestFile)]) -> anyhow::Result<f64> {
    let mut ddl = String::new();
    for (i, (path, _)) in files.iter().enumerate() {
        let cols = (0..header_width(path)?)
            .map(|c| format!("c{c} text"))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            ddl,
            "create unlogged table if not exists raw_{i} ({cols}); truncate raw_{i};"
        )?;
    }
    psql(url, &ddl)?;
    let started = Instant::now();
    for (i, (path, _)) in files.iter().enumerate() {
        psql(
            url,
            &format!(
                "\\copy raw_{i} from '{}' with (format csv, header)",
                path.display()
            ),
        )?;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Runs one sync end to end with `WORKERS` import pollers; returns (seconds, run id).
pub(crate) async fn sync(
    ctx: &'static Context,
    res: &runner::Resources,
    sources: Vec<Source>,
) -> anyhow::Result<(f64, i64)> {
    let started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The template's mappings, found by their target (their order is the template's).
    let mappings = runner::mappings(res, 1)?;
    let of = |target: runner::Target| {
        mappings
            .iter()
            .find(|m| m.target == target)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the template maps no queue to {target:?}"))
    };
    let (import, finalize) = (of(runner::Target::Import)?, of(runner::Target::Finalize)?);
    let mut pollers = Vec::new();
    for i in 0..=WORKERS {
        let mapping = if i == WORKERS {
            finalize.clone()
        } else {
            import.clone()
        };
        let stop = stop.clone();
        pollers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = runner::poll_once(ctx, &mapping).await {
                    tracing::warn!(error = %e, "poll failed");
                }
            }
        }));
    }
    let request = StageRequest {
        trigger: "bench".into(),
        sources: Some(sources),
        force: false,
    };
    let summary = stage::run(ctx, request).await?;
    loop {
        let done: Option<String> = sqlx::query_scalar(
            "select status from sync_run where id = $1 and published_at is not null",
        )
        .bind(summary.run_id)
        .fetch_optional(&ctx.pool)
        .await?;
        if done.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in pollers {
        p.await?;
    }
    Ok((seconds, summary.run_id))
}

/// The sources of a generated data directory (`generate` writes eSMR as the 2025 file).
pub(crate) fn sources(manifest: &Manifest, data: &Path) -> Vec<Source> {
    manifest
        .files
        .iter()
        .map(|f| Source {
            dataset: f.dataset.clone(),
            url: format!("file://{}", data.join(&f.file).display()),
            scope: (f.dataset == "esmr").then(|| "2025".to_owned()),
        })
        .collect()
}

/// A database filled through the real pipeline by [`synced_database`].
pub(crate) struct Synced {
    pub(crate) ctx: &'static Context,
    pub(crate) run_id: i64,
    /// Wall time of the sync, stage to finalize.
    pub(crate) seconds: f64,
}

/// Drops and recreates the database `db` beside `DATABASE_URL`'s, migrates it, loads the
/// reference benchmarks and syncs every file of `data` through stage → S3 → SQS → import →
/// finalize (which runs the violation engine), on a bucket and queues of its own (`prefix`)
/// and with alert dispatch off. `base.redis_url` is the cache finalize starts a generation in.
pub(crate) async fn synced_database(
    base: &Config,
    data: &Path,
    db: &str,
    prefix: &str,
) -> anyhow::Result<Synced> {
    let base_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(data.join("MANIFEST.json"))?)?;
    let url = fresh_database(&base_url, db).await?;
    let cfg = base.clone().with_database_url(url);
    let mut ctx = stormwater::lambda::context(cfg).await?;
    stormwater::db::migrate(&ctx.pool).await?;
    stormwater::repo::benchmarks::load(&ctx.pool).await?;
    let res = runner::ensure_resources(
        &ctx.s3,
        &ctx.sqs,
        prefix,
        std::sync::Arc::new(stormwater::sync::wiring::Wiring::from_config(&ctx.cfg)?),
        Some(900),
    )
    .await?;
    // Messages left by an interrupted earlier run would name chunks of a database that no
    // longer exists.
    for q in [&res.import_queue_url, &res.finalize_queue_url] {
        ctx.sqs.purge_queue().queue_url(q).send().await?;
    }
    ctx.cfg = ctx
        .cfg
        .clone()
        .with_aws_resources(&res.bucket, &res.import_queue_url, &res.finalize_queue_url)
        .with_alert_queue(None);
    let ctx: &'static Context = Box::leak(Box::new(ctx));
    let (seconds, run_id) = sync(ctx, &res, sources(&manifest, data)).await?;
    Ok(Synced {
        ctx,
        run_id,
        seconds,
    })
}

/// One chunk-size measurement (three chunks, each imported by its own process).
struct ChunkRun {
    size: usize,
    rss_kib: u64,
    rows_per_s: f64,
    copy_ms: f64,
    merge_ms: f64,
    bookkeeping_ms: f64,
    total_ms: f64,
}

/// Peak RSS and speed of single-chunk imports at several chunk sizes, each in its own process.
async fn chunk_sizes(
    base: &Config,
    base_url: &str,
    file: &(PathBuf, &ManifestFile),
    sizes: &[usize],
) -> anyhow::Result<Vec<ChunkRun>> {
    let xtask = std::env::current_exe()?;
    let mut out = Vec::new();
    for &size in sizes {
        // A slice of the file big enough for three chunks of this size.
        let url = fresh_database(base_url, "bench_chunks").await?;
        let mut cfg = base.clone().with_database_url(url.clone());
        cfg.chunk_rows = size;
        let ctx = stormwater::lambda::context(cfg).await?;
        stormwater::db::migrate(&ctx.pool).await?;
        let res = runner::ensure_resources(
            &ctx.s3,
            &ctx.sqs,
            &format!("benchchunk{size}"),
            std::sync::Arc::new(stormwater::sync::wiring::Wiring::from_config(&ctx.cfg)?),
            Some(600),
        )
        .await?;
        let mut ctx = ctx;
        ctx.cfg = ctx.cfg.clone().with_aws_resources(
            &res.bucket,
            &res.import_queue_url,
            &res.finalize_queue_url,
        );
        let slice = std::env::temp_dir().join(format!("bench-slice-{size}.csv"));
        {
            use std::io::{BufRead, Write};
            let reader = std::io::BufReader::new(std::fs::File::open(&file.0)?);
            let mut w = std::io::BufWriter::new(std::fs::File::create(&slice)?);
            for line in reader.lines().take(size * 3 + 1) {
                writeln!(w, "{}", line?)?;
            }
        }
        let source = Source {
            dataset: file.1.dataset.clone(),
            url: format!("file://{}", slice.display()),
            scope: None,
        };
        stage::run(
            &ctx,
            StageRequest {
                trigger: "bench".into(),
                sources: Some(vec![source]),
                force: true,
            },
        )
        .await?;
        let mut rss = 0;
        let mut split = (0.0, 0.0, 0.0, 0.0);
        let mut rows_per_s = Vec::new();
        for _ in 0..3 {
            let received = ctx
                .sqs
                .receive_message()
                .queue_url(&res.import_queue_url)
                .max_number_of_messages(1)
                .send()
                .await?;
            let Some(m) = received.messages().first() else {
                break;
            };
            let outp = std::process::Command::new(&xtask)
                .arg("import-chunk")
                .arg(m.body().unwrap_or_default())
                .env("DATABASE_URL", &url)
                .env("RUST_LOG", "warn")
                .output()?;
            if !outp.status.success() {
                bail!(
                    "import-chunk failed: {}",
                    String::from_utf8_lossy(&outp.stderr)
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&outp.stdout)?;
            rss = rss.max(v["peak_rss_kib"].as_u64().unwrap_or(0));
            let rows = v["outcome"]["Imported"]["read"].as_f64().unwrap_or(0.0);
            rows_per_s.push(rows / v["seconds"].as_f64().unwrap_or(1.0));
            let part = |k: &str| v["outcome"]["Imported"][k].as_f64().unwrap_or(0.0);
            split.0 += part("copy_ms");
            split.1 += part("merge_ms");
            split.2 += part("bookkeeping_ms");
            split.3 += v["seconds"].as_f64().unwrap_or(0.0) * 1000.0;
        }
        let _ = std::fs::remove_file(&slice);
        let mean = rows_per_s.iter().sum::<f64>() / rows_per_s.len().max(1) as f64;
        out.push(ChunkRun {
            size,
            rss_kib: rss,
            rows_per_s: mean,
            copy_ms: split.0,
            merge_ms: split.1,
            bookkeeping_ms: split.2,
            total_ms: split.3,
        });
    }
    Ok(out)
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|c| {
            c.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "{cores} cores ({cpu}), {:.1} GiB RAM",
        mem as f64 / 1024.0 / 1024.0
    )
}

/// Runs the whole benchmark and writes the report.
pub async fn run(base: Config, data: &Path, report: &Path) -> anyhow::Result<()> {
    let base_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(data.join("MANIFEST.json"))?)?;
    let files: Vec<(PathBuf, &ManifestFile)> = manifest
        .files
        .iter()
        .map(|f| (data.join(&f.file), f))
        .collect();
    let total_rows: u64 = files.iter().map(|(_, f)| f.rows).sum();
    let total_bytes: u64 = files
        .iter()
        .map(|(p, _)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "{} files, {total_rows} rows, {:.0} MiB",
        files.len(),
        total_bytes as f64 / 1048576.0
    );

    let url = fresh_database(&base_url, "bench").await?;
    println!("baseline: psql \\copy into unindexed tables ...");
    let raw_seconds = baseline(&url, &files)?;
    psql(
        &url,
        "do $$ declare r record; begin for r in select tablename from pg_tables where tablename like 'raw\\_%' loop execute 'drop table ' || r.tablename; end loop; end $$",
    )?;
    println!("  {raw_seconds:.1} s");

    let cfg = base.clone().with_database_url(url.clone());
    let mut ctx = stormwater::lambda::context(cfg).await?;
    stormwater::db::migrate(&ctx.pool).await?;
    let res = runner::ensure_resources(
        &ctx.s3,
        &ctx.sqs,
        "bench",
        std::sync::Arc::new(stormwater::sync::wiring::Wiring::from_config(&ctx.cfg)?),
        Some(900),
    )
    .await?;
    ctx.cfg = ctx.cfg.clone().with_aws_resources(
        &res.bucket,
        &res.import_queue_url,
        &res.finalize_queue_url,
    );
    let ctx: &'static Context = Box::leak(Box::new(ctx));
    let sources = sources(&manifest, data);
    println!("end to end: stage -> S3 -> SQS -> import ({WORKERS} workers) -> finalize ...");
    let (e2e_seconds, run_id) = sync(ctx, &res, sources.clone()).await?;
    println!("  {e2e_seconds:.1} s");
    let stats: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(rows_read),0)::bigint, coalesce(sum(rows_inserted),0)::bigint,
                coalesce(sum(rows_quarantined),0)::bigint, (select coalesce(sum(duration_ms),0)::bigint from import_chunk c
                  join sync_file f on f.id = c.file_id where f.run_id = $1),
                (select count(*) from import_chunk c join sync_file f on f.id = c.file_id where f.run_id = $1)
           from sync_file where run_id = $1",
    )
    .bind(run_id)
    .fetch_one(&ctx.pool)
    .await?;
    let (stage_s, finalize_s): (Option<f64>, Option<f64>) = sqlx::query_as(
        "select extract(epoch from stage_finished_at - started_at)::float8,
                extract(epoch from finished_at - finalize_requested_at)::float8
           from sync_run where id = $1",
    )
    .bind(run_id)
    .fetch_one(&ctx.pool)
    .await?;
    let per_file: Vec<(String, String, i64, i64, i64, Option<f64>)> = sqlx::query_as(
        "select f.dataset, f.status, f.rows_read, f.rows_inserted, f.rows_quarantined,
                extract(epoch from (f.finished_at - f.started_at))::float8
           from sync_file f where f.run_id = $1 order by f.id",
    )
    .bind(run_id)
    .fetch_all(&ctx.pool)
    .await?;

    println!("no-change re-sync ...");
    let (noop_seconds, noop_run) = sync(ctx, &res, sources).await?;
    let rewritten: i64 = sqlx::query_scalar(
        "select coalesce(sum(rows_inserted + rows_updated + rows_withdrawn), 0)::bigint from sync_file where run_id = $1",
    )
    .bind(noop_run)
    .fetch_one(&ctx.pool)
    .await?;
    println!("  {noop_seconds:.1} s, {rewritten} rows rewritten");

    println!("chunk sizes ...");
    let monitoring = files
        .iter()
        .find(|(_, f)| f.dataset == "smarts_industrial_monitoring")
        .context("the data has no industrial monitoring file")?;
    let sizes = chunk_sizes(
        &base,
        &base_url,
        monitoring,
        &[5_000, 20_000, 50_000, 100_000],
    )
    .await?;

    let raw_rate = total_rows as f64 / raw_seconds;
    let e2e_rate = stats.0 as f64 / e2e_seconds;
    let ratio = e2e_rate / raw_rate;
    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(md, "## Ingest (issue: statewide scale)\n")?;
    writeln!(
        md,
        "Reproduce: `./dev bench` (generates the files with `generate --seed 42`, then runs `xtask bench`).\n"
    )?;
    writeln!(
        md,
        "- Machine: {}; PostgreSQL `fsync=off` dev cluster; moto for S3/SQS; release build.",
        machine()
    )?;
    writeln!(
        md,
        "- Data: {} files, {total_rows} rows, {:.0} MiB (generated, exact published layouts).\n",
        files.len(),
        total_bytes as f64 / 1048576.0
    )?;
    writeln!(md, "| measure | value | target | met |\n|---|---|---|---|")?;
    writeln!(
        md,
        "| raw `psql \\copy` into unindexed text tables | {raw_seconds:.1} s ({raw_rate:.0} rows/s) | baseline | |"
    )?;
    writeln!(
        md,
        "| end to end stage → S3 → SQS → import → finalize | {e2e_seconds:.1} s ({e2e_rate:.0} rows/s) | ≤ 120 s | {} |",
        if e2e_seconds <= 120.0 {
            "yes"
        } else {
            "**no**"
        }
    )?;
    writeln!(
        md,
        "| ratio end-to-end / raw copy | {ratio:.2} | ≥ 0.5 | {} |",
        if ratio >= 0.5 { "yes" } else { "**no**" }
    )?;
    writeln!(
        md,
        "| no-change re-sync | {noop_seconds:.1} s, {rewritten} rows rewritten | ≤ 30 s, 0 rows | {} |",
        if noop_seconds <= 30.0 && rewritten == 0 {
            "yes"
        } else {
            "**no**"
        }
    )?;
    let best = sizes
        .iter()
        .filter(|c| c.rss_kib <= 128 * 1024)
        .max_by(|a, b| a.rows_per_s.total_cmp(&b.rows_per_s));
    writeln!(
        md,
        "| import worker peak RSS at the chosen chunk size | {} | ≤ 128 MB | {} |\n",
        best.map_or("n/a".into(), |c| format!(
            "{:.0} MiB at {} rows",
            c.rss_kib as f64 / 1024.0,
            c.size
        )),
        if best.is_some() { "yes" } else { "**no**" }
    )?;
    writeln!(
        md,
        "Rows read {}, inserted {}, quarantined {}; {} chunks, {:.1} s of chunk import time in total.\n",
        stats.0,
        stats.1,
        stats.2,
        stats.4,
        stats.3 as f64 / 1000.0
    )?;
    writeln!(
        md,
        "### Per file (end-to-end run)\n\n| dataset | status | rows | inserted | quarantined | file wall time (s) |\n|---|---|---|---|---|---|"
    )?;
    for (d, s, r, i, q, t) in &per_file {
        writeln!(
            md,
            "| {d} | {s} | {r} | {i} | {q} | {:.1} |",
            t.unwrap_or(0.0)
        )?;
    }
    writeln!(
        md,
        "\n### Chunk size (industrial monitoring, one `xtask import-chunk` process per chunk)\n\n\
         Where a chunk's time goes: reading it from S3, parsing and COPY into the temp table; the upsert into \
         the indexed table; bookkeeping (seen keys, data-quality rows); other (connect, lock, commit).\n\n\
         | rows per chunk | peak RSS | rows/s | read+parse+COPY | upsert | bookkeeping | other |\n|---|---|---|---|---|---|---|"
    )?;
    for c in &sizes {
        let pct = |ms: f64| 100.0 * ms / c.total_ms.max(1.0);
        let other = c.total_ms - c.copy_ms - c.merge_ms - c.bookkeeping_ms;
        writeln!(
            md,
            "| {} | {:.0} MiB | {:.0} | {:.0}% | {:.0}% | {:.0}% | {:.0}% |",
            c.size,
            c.rss_kib as f64 / 1024.0,
            c.rows_per_s,
            pct(c.copy_ms),
            pct(c.merge_ms),
            pct(c.bookkeeping_ms),
            pct(other)
        )?;
    }
    let upsert_share = sizes
        .iter()
        .find(|c| c.size == 20_000)
        .map_or(0.0, |c| 100.0 * c.merge_ms / c.total_ms.max(1.0));
    writeln!(
        md,
        "\n### Where the time goes, and what would close the gap\n\n\
         - The end-to-end run is bound by the import workers: {:.0} s of chunk-import time over {WORKERS} \
           workers ≈ {:.0} s of the {e2e_seconds:.0} s wall time; staging all files took {:.0} s and overlapped \
           with importing; finalize (withdrawal checks, derived links, cache generation) took {:.1} s.\n\
         - Inside a chunk, the upsert into the indexed table is {upsert_share:.0}% of the time (table above); \
           parsing in Rust and COPY into the temp table most of the rest. The baseline writes unindexed text; \
           the pipeline writes typed rows into tables with a primary key, the `(row_key, row_ord)` identity and \
           the read-path indexes, and keeps the seen-set for withdrawal.\n\
         - On this 2-core machine Postgres, the S3/SQS emulator, the stager and both workers share the cores. \
           In AWS the import Lambdas scale out with the queue and Postgres (RDS) has its own cores.\n\
         - What would close it here: (1) a first-load path that COPYs straight into an empty table and builds \
           secondary indexes afterwards (sort-based builds are several times faster than per-row maintenance), \
           skipping the seen-set when there is nothing to withdraw; (2) partitioning the two monitoring tables \
           and eSMR by year, so a weekly refresh only upserts into the current years' partitions; (3) staging \
           byte ranges of the source instead of re-serialising records.\n",
        stats.3 as f64 / 1000.0,
        stats.3 as f64 / 1000.0 / WORKERS as f64,
        stage_s.unwrap_or(0.0),
        finalize_s.unwrap_or(0.0),
    )?;
    std::fs::write(report, md)?;
    println!("report written to {}", report.display());
    Ok(())
}
