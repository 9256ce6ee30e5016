//! `xtask bench <data-dir> <next-week-dir> <report.md>`: the ingest benchmark, measuring what
//! a user waits for.
//!
//! On generated statewide files (bench/`generate`) and their next week (`generate
//! --next-week-of`), in one run on this machine:
//! 1. baseline: `psql \copy` of every file into unindexed all-text tables;
//! 2. full refresh: on an empty database, migrated as the `migrate` function does it (the
//!    reference benchmarks loaded; the run stops if they are not), from invoking sync-stage to
//!    the run's publication (the API serving its cache generation): stage → S3 → SQS →
//!    sync-import (N concurrent workers) → sync-finalize, with the time of every step;
//! 3. weekly delta: the next week's files on that database, the same measurement, with the rows
//!    rewritten against the rows the generator changed, and the events the engine recomputed;
//! 4. no change: the next week's files again (must rewrite 0 rows);
//! 5. import-worker peak RSS and speed per chunk size, each chunk imported by a separate
//!    `xtask import-chunk` process (as a Lambda would).
//!
//! Each figure is also given as a ratio to the baseline of the same run. Targets are checked
//! here and reported, never in tests.

use anyhow::{Context as _, bail};
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stormwater::config::Config;
use stormwater::sync::finalize::Step;
use stormwater::sync::manifest::Source;
use stormwater::sync::stage::{self, StageRequest};
use stormwater::sync::{Context, runner};

#[derive(Deserialize)]
pub(crate) struct Manifest {
    /// Of a generated set (a next week's manifest has none): 1.0 is the real record.
    #[serde(default)]
    pub(crate) scale: Option<f64>,
    pub(crate) files: Vec<ManifestFile>,
}

#[derive(Deserialize)]
pub(crate) struct ManifestFile {
    pub(crate) file: String,
    pub(crate) dataset: String,
    pub(crate) rows: u64,
    /// Of an eSMR yearly file: its sampling year, the part of the dataset it covers.
    #[serde(default)]
    pub(crate) scope: Option<String>,
    /// Of a next week's file: what changed against its base file.
    #[serde(default)]
    pub(crate) delta: Option<Delta>,
}

/// Rows of a next week's file changed, added and removed against its base file.
#[derive(Deserialize, Clone, Copy, Default)]
pub(crate) struct Delta {
    pub(crate) changed: u64,
    pub(crate) added: u64,
    pub(crate) removed: u64,
}

impl ManifestFile {
    /// The scope it is synced as: the manifest's, else, of an eSMR file, the year its name
    /// carries (`esmr-analytical-export_year-2025.csv`).
    pub(crate) fn sync_scope(&self) -> Option<String> {
        self.scope.clone().or_else(|| {
            let year = self.file.split_once("_year-")?.1.get(..4)?;
            (self.dataset == "esmr" && year.bytes().all(|b| b.is_ascii_digit()))
                .then(|| year.to_owned())
        })
    }

    /// The rows an exact import of this file rewrites against its base: a changed eSMR row
    /// (whose identity is its whole content) is one row withdrawn and one inserted.
    pub(crate) fn rows_to_rewrite(&self) -> u64 {
        let d = self.delta.unwrap_or_default();
        let per_change = if self.dataset == "esmr" { 2 } else { 1 };
        d.changed * per_change + d.added + d.removed
    }
}

/// Import workers polling concurrently (Lambda would scale out; this machine has 2 cores).
pub(crate) const WORKERS: usize = 2;

fn database_url(base: &str, db: &str) -> String {
    format!("{}/{db}", base.rsplit_once('/').map_or(base, |(b, _)| b))
}

pub(crate) async fn fresh_database(base_url: &str, db: &str) -> anyhow::Result<String> {
    drop_database(base_url, db).await?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(base_url)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {db}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(database_url(base_url, db))
}

/// Drops the database `db` beside `base_url`'s, if it exists.
pub(crate) async fn drop_database(base_url: &str, db: &str) -> anyhow::Result<()> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(base_url)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {db} with (force)"
    )))
    .execute(&admin)
    .await?;
    admin.close().await;
    Ok(())
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
pub(crate) fn baseline(url: &str, files: &[(PathBuf, &ManifestFile)]) -> anyhow::Result<f64> {
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

/// Drops the baseline's tables.
pub(crate) fn drop_raw_tables(url: &str) -> anyhow::Result<()> {
    psql(
        url,
        "do $$ declare r record; begin for r in select tablename from pg_tables where tablename like 'raw\\_%' loop execute 'drop table ' || r.tablename; end loop; end $$",
    )
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

/// Runs one sync end to end with the stage-file mapping's local concurrency of stage-file
/// pollers, `WORKERS` import pollers, one finalize poller and the finalize part mapping's local
/// concurrency of part pollers; returns (seconds, run id).
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
    let (stage_file, import, finalize, part) = (
        of(runner::Target::StageFile)?,
        of(runner::Target::Import)?,
        of(runner::Target::Finalize)?,
        of(runner::Target::FinalizePart)?,
    );
    let mut pollers = Vec::new();
    let each = std::iter::repeat_n(stage_file.clone(), stage_file.concurrency)
        .chain(std::iter::repeat_n(import, WORKERS))
        .chain(std::iter::once(finalize))
        .chain(std::iter::repeat_n(part.clone(), part.concurrency));
    for mapping in each {
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

/// The sources of a generated data directory (`generate` writes eSMR as one file per sampling
/// year, each its own scope).
pub(crate) fn sources(manifest: &Manifest, data: &Path) -> Vec<Source> {
    manifest
        .files
        .iter()
        .map(|f| Source {
            dataset: f.dataset.clone(),
            url: format!("file://{}", data.join(&f.file).display()),
            scope: f.sync_scope(),
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
    let (ctx, res, _) = deployed(base, url, prefix).await?;
    let (seconds, run_id) = sync(ctx, &res, sources(&manifest, data)).await?;
    Ok(Synced {
        ctx,
        run_id,
        seconds,
    })
}

/// The sync stages' context on the database `url`, prepared as a deploy has it: migrated as
/// the `migrate` function does it (the run stops when no reference benchmarks are loaded: the
/// engine would find nothing), with a bucket and queues of its own (`prefix`, emptied) and alert
/// dispatch off. Returns the context, its resources and how many benchmarks are loaded.
pub(crate) async fn deployed(
    base: &Config,
    url: String,
    prefix: &str,
) -> anyhow::Result<(&'static Context, runner::Resources, i64)> {
    let cfg = one_process(base.clone().with_database_url(url));
    let mut ctx = stormwater::lambda::context(cfg).await?;
    stormwater::lambda::migrate_pool(&ctx.pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrate: {e}"))?;
    let benchmarks: i64 = sqlx::query_scalar("select count(*) from benchmark")
        .fetch_one(&ctx.pool)
        .await?;
    if benchmarks == 0 {
        bail!("the bench database has no reference benchmarks: the engine would find nothing");
    }
    let res = runner::ensure_resources(
        &ctx.s3,
        &ctx.sqs,
        prefix,
        std::sync::Arc::new(stormwater::sync::wiring::Wiring::from_config(&ctx.cfg)?),
        Some(900),
    )
    .await?;
    purge(&ctx, &res).await?;
    ctx.cfg = ctx
        .cfg
        .clone()
        .with_aws_resources(&res.bucket, &res.import_queue_url, &res.finalize_queue_url)
        .with_finalize_part_queue(&res.finalize_part_queue_url)
        .with_stage_file_queue(&res.stage_file_queue_url)
        .with_alert_queue(None);
    Ok((Box::leak(Box::new(ctx)), res, benchmarks))
}

/// The stager, the import workers and finalize run in this one process and share its pool,
/// where in AWS each is an execution environment with its own (`DB_MAX_CONNECTIONS`): one
/// connection each, and one for the bench's own queries. The finalize part pollers work after
/// the imports are done, on the connections the import workers left.
fn one_process(mut cfg: Config) -> Config {
    cfg.db_max_connections = cfg.db_max_connections.max(WORKERS as u32 + 3);
    cfg
}

/// Empties the bench's queues: messages left by an interrupted earlier run would name chunks
/// of a database that no longer exists. SQS allows one purge a minute; a purge already under
/// way does the same.
async fn purge(ctx: &Context, res: &runner::Resources) -> anyhow::Result<()> {
    for q in [
        &res.stage_file_queue_url,
        &res.import_queue_url,
        &res.finalize_queue_url,
        &res.finalize_part_queue_url,
    ] {
        if let Err(e) = ctx.sqs.purge_queue().queue_url(q).send().await {
            let in_progress = e
                .as_service_error()
                .is_some_and(|s| s.is_purge_queue_in_progress());
            if !in_progress {
                return Err(e.into());
            }
        }
    }
    Ok(())
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
        purge(&ctx, &res).await?;
        let mut ctx = ctx;
        ctx.cfg = ctx
            .cfg
            .clone()
            .with_aws_resources(&res.bucket, &res.import_queue_url, &res.finalize_queue_url)
            .with_finalize_part_queue(&res.finalize_part_queue_url)
            .with_stage_file_queue(&res.stage_file_queue_url);
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
        // The one file is staged by one stage-file invocation; its chunks wait on the queue.
        let staging: Vec<runner::Mapping> = runner::mappings(&res, 1)?
            .into_iter()
            .filter(|m| m.target == runner::Target::StageFile)
            .collect();
        runner::drain(&ctx, &staging, Duration::from_secs(600)).await?;
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
/// One measured sync: its wall time to publication and what each step did.
pub(crate) struct Measured {
    pub(crate) seconds: f64,
    pub(crate) run_id: i64,
    /// From the run's start to its last chunk merged (finalize requested).
    pub(crate) import_seconds: f64,
    pub(crate) stage_seconds: f64,
    /// `sync_run.notes.finalizeMs`: milliseconds per finalize step.
    pub(crate) finalize_ms: serde_json::Value,
    /// `sync_run.notes.finalizeInvocationMs`: milliseconds per finalize invocation
    /// (`sync::finalize::Step`), each under Lambda's time limit on its own.
    pub(crate) invocation_ms: serde_json::Value,
    read: i64,
    inserted: i64,
    updated: i64,
    withdrawn: i64,
    quarantined: i64,
    chunk_ms: i64,
    chunks: i64,
    engine: Option<EngineRun>,
    per_file: Vec<FileRun>,
}

/// The engine run a sync's finalize started.
#[derive(sqlx::FromRow)]
struct EngineRun {
    mode: String,
    results: i64,
    events_new: i64,
    events_updated: i64,
    events_escalated: i64,
    events_retracted: i64,
    samples: i64,
}

/// One file of a sync.
#[derive(sqlx::FromRow)]
struct FileRun {
    /// The dataset, and the scope of a file that is one part of it (eSMR: `esmr 2025`).
    dataset: String,
    status: String,
    rows_read: i64,
    rows_inserted: i64,
    rows_updated: i64,
    rows_withdrawn: i64,
    seconds: Option<f64>,
}

impl Measured {
    fn rewritten(&self) -> i64 {
        self.inserted + self.updated + self.withdrawn
    }

    fn events_recomputed(&self) -> i64 {
        self.engine.as_ref().map_or(0, |e| {
            e.events_new + e.events_updated + e.events_escalated + e.events_retracted
        })
    }
}

/// The finalize steps in the order they run (`sync::finalize`, `api::publish`).
pub(crate) const FINALIZE_STEPS: [(&str, &str); 13] = [
    (
        "indexes",
        "indexes of first loads, built after the last chunk",
    ),
    ("files", "files: withdrawals, derived links"),
    ("analyze", "planner statistics of the loaded tables"),
    ("linking", "facility linking"),
    ("analyze_links", "planner statistics of the links"),
    (
        "engine",
        "violation engine: begin and plan (the whole pass, when one part)",
    ),
    (
        "engine_map",
        "violation engine: map parts (each source row read once), fan-out to the last report (wall)",
    ),
    (
        "engine_parts",
        "violation engine: its parts, fan-out to the last report (wall)",
    ),
    (
        "engine_finish",
        "violation engine: finish (deferred indexes, duplicates, the run's record)",
    ),
    ("summaries", "facility summaries"),
    ("dashboards", "stored dashboards"),
    ("generation", "new cache generation"),
    ("preload", "cache preload"),
];

pub(crate) async fn measure(
    ctx: &'static Context,
    res: &runner::Resources,
    sources: Vec<Source>,
) -> anyhow::Result<Measured> {
    let (seconds, run_id) = sync(ctx, res, sources).await?;
    let (stage_s, import_s, notes): (Option<f64>, Option<f64>, Option<String>) = sqlx::query_as(
        // Staging ends when the last file's stage-file invocation does (each file is staged
        // by one of its own).
        "select extract(epoch from greatest(stage_finished_at,
                    (select max(staged_at) from sync_file where run_id = r.id)) - started_at)::float8,
                extract(epoch from finalize_requested_at - started_at)::float8, notes
           from sync_run r where id = $1",
    )
    .bind(run_id)
    .fetch_one(&ctx.pool)
    .await?;
    let notes: serde_json::Value = notes
        .as_deref()
        .and_then(|n| serde_json::from_str(n).ok())
        .unwrap_or_default();
    let totals: (i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(rows_read),0)::bigint, coalesce(sum(rows_inserted),0)::bigint,
                coalesce(sum(rows_updated),0)::bigint, coalesce(sum(rows_withdrawn),0)::bigint,
                coalesce(sum(rows_quarantined),0)::bigint,
                (select coalesce(sum(duration_ms),0)::bigint from import_chunk c
                  join sync_file f on f.id = c.file_id where f.run_id = $1),
                (select count(*) from import_chunk c join sync_file f on f.id = c.file_id
                  where f.run_id = $1)
           from sync_file where run_id = $1",
    )
    .bind(run_id)
    .fetch_one(&ctx.pool)
    .await?;
    let engine: Option<EngineRun> = sqlx::query_as(
        "select mode, coalesce(results, 0) as results,
                coalesce(events_new, 0)::bigint as events_new,
                coalesce(events_updated, 0)::bigint as events_updated,
                coalesce(events_escalated, 0)::bigint as events_escalated,
                coalesce(events_retracted, 0)::bigint as events_retracted,
                coalesce(samples, 0) as samples
           from violation_engine_run where sync_run_id = $1 order by id desc limit 1",
    )
    .bind(run_id)
    .fetch_optional(&ctx.pool)
    .await?;
    let per_file = sqlx::query_as(
        "select concat_ws(' ', f.dataset, f.scope) as dataset, f.status, f.rows_read, f.rows_inserted,
                f.rows_updated, f.rows_withdrawn,
                extract(epoch from (f.finished_at - f.started_at))::float8 as seconds
           from sync_file f where f.run_id = $1 order by f.id",
    )
    .bind(run_id)
    .fetch_all(&ctx.pool)
    .await?;
    Ok(Measured {
        seconds,
        run_id,
        import_seconds: import_s.unwrap_or(seconds),
        stage_seconds: stage_s.unwrap_or(0.0),
        finalize_ms: notes["finalizeMs"].clone(),
        invocation_ms: notes["finalizeInvocationMs"].clone(),
        read: totals.0,
        inserted: totals.1,
        updated: totals.2,
        withdrawn: totals.3,
        quarantined: totals.4,
        chunk_ms: totals.5,
        chunks: totals.6,
        engine,
        per_file,
    })
}

pub(crate) fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("MANIFEST.json");
    serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))
}

/// The `p` quantile (0 to 1) of `sorted` (ascending) by the nearest rank; NaN when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The median of `v`, in any order.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

/// The files of a generated set in `dir` with their manifest entries, and their rows and bytes
/// in all.
pub(crate) fn data_files<'a>(
    manifest: &'a Manifest,
    dir: &Path,
) -> (Vec<(PathBuf, &'a ManifestFile)>, u64, u64) {
    let files: Vec<(PathBuf, &ManifestFile)> = manifest
        .files
        .iter()
        .map(|f| (dir.join(&f.file), f))
        .collect();
    let rows = files.iter().map(|(_, f)| f.rows).sum();
    let bytes = files
        .iter()
        .map(|(p, _)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    (files, rows, bytes)
}

pub async fn run(base: Config, data: &Path, next: &Path, report: &Path) -> anyhow::Result<()> {
    let base_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let manifest = read_manifest(data)?;
    let next_manifest = read_manifest(next)?;
    let (files, total_rows, total_bytes) = data_files(&manifest, data);
    let to_rewrite: u64 = next_manifest
        .files
        .iter()
        .map(ManifestFile::rows_to_rewrite)
        .sum();
    println!(
        "{} files, {total_rows} rows, {:.0} MiB; next week rewrites {to_rewrite} rows",
        files.len(),
        total_bytes as f64 / 1048576.0
    );

    let url = fresh_database(&base_url, "bench").await?;
    println!("baseline: psql \\copy into unindexed tables ...");
    let raw_seconds = baseline(&url, &files)?;
    drop_raw_tables(&url)?;
    println!("  {raw_seconds:.1} s");

    let (ctx, res, benchmarks) = deployed(&base, url, "bench").await?;
    println!(
        "full refresh: stage -> S3 -> SQS -> import ({WORKERS} workers) -> finalize -> published ..."
    );
    let full = measure(ctx, &res, sources(&manifest, data)).await?;
    println!("  {:.1} s", full.seconds);
    println!("weekly delta ...");
    let delta = measure(ctx, &res, sources(&next_manifest, next)).await?;
    println!(
        "  {:.1} s, {} rows rewritten (the generator changed {to_rewrite})",
        delta.seconds,
        delta.rewritten()
    );
    println!("no change ...");
    let noop = measure(ctx, &res, sources(&next_manifest, next)).await?;
    println!(
        "  {:.1} s, {} rows rewritten",
        noop.seconds,
        noop.rewritten()
    );

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

    let md = render(&Report {
        scale: manifest
            .scale
            .context("the data's MANIFEST.json has no scale")?,
        files: files.len(),
        total_rows,
        total_bytes,
        to_rewrite,
        benchmarks,
        raw_seconds,
        full: &full,
        delta: &delta,
        noop: &noop,
        sizes: &sizes,
    })?;
    // The report's later sections (the API, linking, …) are written by others: kept.
    let kept = std::fs::read_to_string(report)
        .ok()
        .and_then(|old| old.find("\n## HTTP API").map(|i| old[i..].to_owned()))
        .unwrap_or_default();
    std::fs::write(report, md + &kept)?;
    println!("report written to {}", report.display());
    Ok(())
}

/// The finalize headroom at the scale of `data`: one full refresh into a new database, with
/// the time of every finalize step and invocation against Lambda's 900 s (`xtask
/// bench-headroom`; docs/BENCHMARKS.md quotes it at 2x scale).
pub async fn headroom(base: Config, data: &Path, report: &Path) -> anyhow::Result<()> {
    let base_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let manifest = read_manifest(data)?;
    let rows: u64 = manifest.files.iter().map(|f| f.rows).sum();
    let url = fresh_database(&base_url, "bench_headroom").await?;
    let (ctx, res, benchmarks) = deployed(&base, url, "headroom").await?;
    println!("full refresh of {rows} rows ...");
    let full = measure(ctx, &res, sources(&manifest, data)).await?;
    println!("  {:.1} s", full.seconds);
    let size: i64 = sqlx::query_scalar("select pg_database_size(current_database())")
        .fetch_one(&ctx.pool)
        .await?;
    let mut md = format!(
        "# Finalize headroom\n\nReproduce: `generate --out DIR --seed 42 --scale S`, then `xtask bench-headroom DIR REPORT`.\n\n\
         - Machine: {}; release build; {WORKERS} import workers.\n\
         - Data: {} files, {rows} rows; {benchmarks} reference benchmarks loaded; database afterwards {:.1} GiB.\n\
         - Full refresh, stage → published: {:.1} s (stage {:.1} s, stage + import {:.1} s).\n\n\
         | finalize step | seconds |\n|---|---|\n",
        machine(),
        manifest.files.len(),
        size as f64 / f64::from(1u32 << 30),
        full.seconds,
        full.stage_seconds,
        full.import_seconds,
    );
    let seconds = |v: &serde_json::Value| v.as_f64().map(|ms| ms / 1000.0);
    for (key, name) in FINALIZE_STEPS {
        let cell =
            seconds(&full.finalize_ms[key]).map_or("skipped".to_owned(), |s| format!("{s:.1}"));
        writeln!(md, "| {name} | {cell} |")?;
    }
    writeln!(
        md,
        "\n| finalize invocation | seconds | share of Lambda's 900 s |\n|---|---|---|"
    )?;
    for step in Step::ALL {
        let s = seconds(&full.invocation_ms[step.as_str()]).unwrap_or(0.0);
        writeln!(
            md,
            "| `{}` | {s:.1} | {:.0}% |",
            step.as_str(),
            100.0 * s / 900.0
        )?;
    }
    std::fs::write(report, md)?;
    println!("report written to {}", report.display());
    Ok(())
}

struct Report<'a> {
    scale: f64,
    files: usize,
    total_rows: u64,
    total_bytes: u64,
    to_rewrite: u64,
    benchmarks: i64,
    raw_seconds: f64,
    full: &'a Measured,
    delta: &'a Measured,
    noop: &'a Measured,
    sizes: &'a [ChunkRun],
}

fn render(r: &Report<'_>) -> anyhow::Result<String> {
    let (full, delta, noop) = (r.full, r.delta, r.noop);
    let raw_rate = r.total_rows as f64 / r.raw_seconds;
    let import_rate = full.read as f64 / full.import_seconds;
    let of_raw = |s: f64| s / r.raw_seconds;
    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(md, "## Ingest: what a user waits for\n")?;
    writeln!(
        md,
        "Reproduce: `./dev bench --scale {0}` (generates the files with `generate --seed 42 --scale {0}` \
         (1 is the real record) and their next week with `generate --next-week-of`, then runs `xtask bench`).\n",
        r.scale
    )?;
    writeln!(
        md,
        "- Machine: {}; PostgreSQL `fsync=off` dev cluster; moto for S3/SQS; release build; {WORKERS} import workers.",
        machine()
    )?;
    writeln!(
        md,
        "- Data: {} files, {} rows, {:.0} MiB (generated, exact published layouts); the next week \
         changes, adds and removes rows that an exact import rewrites {} times.",
        r.files,
        r.total_rows,
        r.total_bytes as f64 / 1048576.0,
        r.to_rewrite
    )?;
    writeln!(
        md,
        "- The database is migrated as the `migrate` function does it: {} reference benchmarks loaded.\n",
        r.benchmarks
    )?;
    writeln!(
        md,
        "| measure | value | ratio to raw COPY | target | met |\n|---|---|---|---|---|"
    )?;
    writeln!(
        md,
        "| raw `psql \\copy` into unindexed text tables | {:.1} s ({raw_rate:.0} rows/s) | 1.00 | baseline | |",
        r.raw_seconds
    )?;
    writeln!(
        md,
        "| import throughput (stage → every chunk merged) | {import_rate:.0} rows/s ({:.1} s) | {:.2} | ≥ 0.5 | {} |",
        full.import_seconds,
        import_rate / raw_rate,
        met(import_rate / raw_rate >= 0.5)
    )?;
    writeln!(
        md,
        "| full refresh (stage → the API serves the new generation) | {:.1} s | {:.2} | ≤ 120 s | {} |",
        full.seconds,
        of_raw(full.seconds),
        met(full.seconds <= 120.0)
    )?;
    let share = delta.seconds / full.seconds;
    writeln!(
        md,
        "| weekly delta | {:.1} s ({:.0}% of the full refresh), {} rows rewritten for {} changed, {} events recomputed | {:.2} | ≤ 10% of the full refresh, rewritten = changed | {} |",
        delta.seconds,
        100.0 * share,
        delta.rewritten(),
        r.to_rewrite,
        delta.events_recomputed(),
        of_raw(delta.seconds),
        met(share <= 0.10 && delta.rewritten() as u64 == r.to_rewrite)
    )?;
    writeln!(
        md,
        "| no change | {:.1} s, {} rows rewritten | {:.2} | ≤ 10 s, 0 rows | {} |",
        noop.seconds,
        noop.rewritten(),
        of_raw(noop.seconds),
        met(noop.seconds <= 10.0 && noop.rewritten() == 0)
    )?;
    let best = r
        .sizes
        .iter()
        .filter(|c| c.rss_kib <= 128 * 1024)
        .max_by(|a, b| a.rows_per_s.total_cmp(&b.rows_per_s));
    writeln!(
        md,
        "| import worker peak RSS at the fastest chunk size | {} | | ≤ 128 MB | {} |\n",
        best.map_or("n/a".into(), |c| format!(
            "{:.0} MiB at {} rows",
            c.rss_kib as f64 / 1024.0,
            c.size
        )),
        met(best.is_some())
    )?;

    writeln!(
        md,
        "### Where the time goes (seconds)\n\n| step | full refresh | weekly delta | no change |\n|---|---|---|---|"
    )?;
    let row = |md: &mut String, name: &str, f: &dyn Fn(&Measured) -> f64| {
        writeln!(
            md,
            "| {name} | {:.1} | {:.1} | {:.1} |",
            f(full),
            f(delta),
            f(noop)
        )
    };
    row(&mut md, "stage (read, check, chunk to S3)", &|m| {
        m.stage_seconds
    })?;
    row(&mut md, "stage + import (every chunk merged)", &|m| {
        m.import_seconds
    })?;
    row(&mut md, "chunk import time, summed over workers", &|m| {
        m.chunk_ms as f64 / 1000.0
    })?;
    // A step a run did not take (nothing changed for it) is shown as skipped.
    for (key, name) in FINALIZE_STEPS {
        let cell = |m: &Measured| {
            m.finalize_ms[key]
                .as_f64()
                .map_or("skipped".to_owned(), |ms| format!("{:.1}", ms / 1000.0))
        };
        writeln!(
            md,
            "| finalize: {name} | {} | {} | {} |",
            cell(full),
            cell(delta),
            cell(noop)
        )?;
    }
    row(&mut md, "finalize, all steps", &|m| {
        m.finalize_ms["total"].as_f64().unwrap_or(0.0) / 1000.0
    })?;
    // Each finalize step is an invocation of its own: each must fit Lambda's 900 s.
    let invocation =
        |m: &Measured, step: Step| m.invocation_ms[step.as_str()].as_f64().unwrap_or(0.0) / 1000.0;
    for step in Step::ALL {
        row(
            &mut md,
            &format!("finalize invocation `{}`", step.as_str()),
            &|m| invocation(m, step),
        )?;
    }
    row(
        &mut md,
        "**largest finalize invocation** (Lambda allows 900)",
        &|m| {
            Step::ALL
                .iter()
                .map(|&s| invocation(m, s))
                .fold(0.0, f64::max)
        },
    )?;
    row(&mut md, "**total, stage → published**", &|m| m.seconds)?;
    writeln!(
        md,
        "\n### What each run did\n\n| | full refresh | weekly delta | no change |\n|---|---|---|---|"
    )?;
    let count = |md: &mut String, name: &str, f: &dyn Fn(&Measured) -> i64| {
        writeln!(md, "| {name} | {} | {} | {} |", f(full), f(delta), f(noop))
    };
    count(&mut md, "sync run", &|m| m.run_id)?;
    count(&mut md, "rows read", &|m| m.read)?;
    count(&mut md, "rows inserted", &|m| m.inserted)?;
    count(&mut md, "rows updated", &|m| m.updated)?;
    count(&mut md, "rows withdrawn", &|m| m.withdrawn)?;
    count(&mut md, "rows quarantined", &|m| m.quarantined)?;
    count(&mut md, "chunks imported", &|m| m.chunks)?;
    count(&mut md, "engine: results evaluated", &|m| {
        m.engine.as_ref().map_or(0, |e| e.results)
    })?;
    count(
        &mut md,
        "engine: events new / updated / escalated / retracted",
        &|m| m.events_recomputed(),
    )?;
    count(&mut md, "engine: samples written", &|m| {
        m.engine.as_ref().map_or(0, |e| e.samples)
    })?;
    writeln!(
        md,
        "\nEngine mode: full refresh {}, weekly delta {}, no change {}.\n",
        full.engine.as_ref().map_or("none", |e| e.mode.as_str()),
        delta.engine.as_ref().map_or("none", |e| e.mode.as_str()),
        noop.engine.as_ref().map_or("none", |e| e.mode.as_str()),
    )?;
    writeln!(
        md,
        "### Per file\n\n| dataset | full: rows, inserted, s | delta: inserted / updated / withdrawn, s |\n|---|---|---|"
    )?;
    for (f, d) in full.per_file.iter().zip(&delta.per_file) {
        writeln!(
            md,
            "| {} | {}, {}, {:.1} | {} / {} / {} ({}), {:.1} |",
            f.dataset,
            f.rows_read,
            f.rows_inserted,
            f.seconds.unwrap_or(0.0),
            d.rows_inserted,
            d.rows_updated,
            d.rows_withdrawn,
            d.status,
            d.seconds.unwrap_or(0.0)
        )?;
    }
    writeln!(
        md,
        "\n### Chunk size (industrial monitoring, one `xtask import-chunk` process per chunk)\n\n\
         Where a chunk's time goes: reading it from S3, parsing and COPY into the temp table; the upsert into \
         the indexed table; bookkeeping (seen keys, data-quality rows); other (connect, lock, commit).\n\n\
         | rows per chunk | peak RSS | rows/s | read+parse+COPY | upsert | bookkeeping | other |\n|---|---|---|---|---|---|---|"
    )?;
    for c in r.sizes {
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
    Ok(md)
}
