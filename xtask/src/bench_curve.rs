//! `xtask bench-curve <report.md> <data-dir>...`: the cost curve of a full refresh.
//!
//! For each generated data directory (one per scale; 1.0 is the real record), in one run on
//! this machine: the raw `psql \copy` of its files into unindexed text tables (the baseline),
//! then a full refresh into a new database through the real pipeline (stage → S3 → SQS →
//! import → finalize, its engine fanned out into parts), with the time of every step, its
//! seconds per million rows, and the longest single invocation of each kind (a file's staging, an
//! import chunk, each finalize invocation, a finalize part) against the 120 s that every
//! invocation must stay under. The report says how each step's seconds per million rows grow
//! between the scales (the target: within 1.3x between 0.25 and 1.0).

use crate::bench::{self, Measured};
use anyhow::Context as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The steps of a full refresh before finalize (the stage of the run they are read from), then
/// finalize's (`bench::FINALIZE_STEPS`, from `sync_run.notes.finalizeMs`).
const STAGES: [(&str, &str); 2] = [
    (
        "stage",
        "stage: every file read, checked and chunked (wall; one invocation per file)",
    ),
    (
        "import",
        "import: every chunk merged (wall, from the stage's end)",
    ),
];

fn steps() -> impl Iterator<Item = (&'static str, &'static str)> {
    STAGES.into_iter().chain(bench::FINALIZE_STEPS)
}

/// One scale, measured.
struct Point {
    scale: f64,
    rows: u64,
    bytes: u64,
    raw_seconds: f64,
    full: Measured,
    /// Seconds per step key of [`steps`] (absent: the step did not run).
    steps: Vec<(&'static str, Option<f64>)>,
    /// (kind, seconds) of the longest invocation of each kind.
    longest: Vec<(String, f64)>,
    parts: i64,
    database_bytes: i64,
    /// Seconds of the engine parts' phases, summed over the parts (`finalize_part.report`).
    part_phases: Vec<(String, f64)>,
}

impl Point {
    fn per_million(&self, seconds: f64) -> f64 {
        seconds / (self.rows as f64 / 1e6)
    }

    fn step(&self, key: &str) -> Option<f64> {
        self.steps
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, s)| *s)
    }

    fn longest_seconds(&self) -> f64 {
        self.longest.iter().map(|(_, s)| *s).fold(0.0, f64::max)
    }
}

pub async fn run(
    base: stormwater::config::Config,
    report: &Path,
    dirs: &[PathBuf],
) -> anyhow::Result<()> {
    let base_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let mut points = Vec::new();
    for dir in dirs {
        let manifest = bench::read_manifest(dir)?;
        let scale = manifest
            .scale
            .with_context(|| format!("{}: MANIFEST.json has no scale", dir.display()))?;
        let (files, rows, bytes) = bench::data_files(&manifest, dir);
        println!(
            "scale {scale}: {} files, {rows} rows, {:.0} MiB",
            files.len(),
            bytes as f64 / 1048576.0
        );
        let db = format!("bench_curve_{}", (scale * 1000.0).round() as u64);
        let url = bench::fresh_database(&base_url, &db).await?;
        println!("  baseline: psql \\copy ...");
        let raw_seconds = bench::baseline(&url, &files)?;
        bench::drop_raw_tables(&url)?;
        println!("  {raw_seconds:.1} s");
        let (ctx, res, _) = bench::deployed(&base, url, &db.replace('_', "-")).await?;
        println!("  full refresh ...");
        let full = bench::measure(ctx, &res, bench::sources(&manifest, dir)).await?;
        println!("  {:.1} s", full.seconds);
        let ms = |key: &str| full.finalize_ms[key].as_f64().map(|v| v / 1000.0);
        let steps: Vec<(&str, Option<f64>)> = steps()
            .map(|(key, _)| {
                let s = match key {
                    "stage" => Some(full.stage_seconds),
                    "import" => Some(full.import_seconds - full.stage_seconds),
                    k => ms(k),
                };
                (key, s)
            })
            .collect();
        let (longest_file, longest_chunk, longest_part, parts, database_bytes): (
            Option<f64>,
            Option<f64>,
            Option<f64>,
            i64,
            i64,
        ) = sqlx::query_as(
                "select (select max(stage_ms) / 1000.0 from sync_file where run_id = $1)::float8,
                        (select max(c.duration_ms) / 1000.0 from import_chunk c
                           join sync_file f on f.id = c.file_id where f.run_id = $1)::float8,
                        (select max(duration_ms) / 1000.0 from finalize_part where run_id = $1)::float8,
                        (select count(*) from finalize_part where run_id = $1),
                        pg_database_size(current_database())",
            )
            .bind(full.run_id)
            .fetch_one(&ctx.pool)
            .await?;
        for (key, s) in &steps {
            if let Some(s) = s {
                println!("    {key}: {s:.1} s");
            }
        }
        let mut longest: Vec<(String, f64)> = longest_file
            .map(|s| ("stage-file (one file)".to_owned(), s))
            .into_iter()
            .collect();
        longest.extend(longest_chunk.map(|s| ("import chunk".to_owned(), s)));
        longest.extend(longest_part.map(|s| ("finalize part".to_owned(), s)));
        if let Some(invocations) = full.invocation_ms.as_object() {
            for (name, v) in invocations {
                if let Some(v) = v.as_f64() {
                    longest.push((format!("finalize `{name}`"), v / 1000.0));
                }
            }
        }
        let part_phases: Vec<(String, f64)> = sqlx::query_as(
            "select t.key, sum(t.value::bigint) / 1000.0::float8
               from finalize_part p, jsonb_each_text(p.report->'timings') t
              where p.run_id = $1 and p.status = 'done'
              group by t.key order by t.key",
        )
        .bind(full.run_id)
        .fetch_all(&ctx.pool)
        .await?;
        ctx.pool.close().await;
        // The next scale needs the disk (the real record's database is ~17 GB: 8.3 GiB at 0.5).
        bench::drop_database(&base_url, &db).await?;
        points.push(Point {
            scale,
            rows,
            bytes,
            raw_seconds,
            full,
            steps,
            longest,
            parts,
            database_bytes,
            part_phases,
        });
    }
    std::fs::write(report, render(&points)?)?;
    println!("report written to {}", report.display());
    Ok(())
}

fn render(points: &[Point]) -> anyhow::Result<String> {
    let mut md = String::from("# Cost curve of a full refresh\n\n");
    writeln!(
        md,
        "Reproduce: `./dev bench-curve` (scales 0.1 0.25 0.5 1; `./dev bench-curve 0.1 0.25` for fewer), \
         or `generate --out DIR --seed 42 --scale S` per scale and `xtask bench-curve REPORT DIR...`.\n\n\
         - Machine: {}; release build; the stager, the stage-file, import and finalize-part \
         mappings at their local concurrency ({} import workers) and finalize in one process.\n\
         - Scale 1.0 is the real record: ~30M rows (8.5M SMARTS, 21.5M eSMR in 21 yearly files).\n\
         - Raw COPY: `psql \\copy` of the same files into unindexed text tables, in the same run.\n",
        bench::machine(),
        bench::WORKERS
    )?;
    writeln!(
        md,
        "## Sizes\n\n| scale | rows | MiB | database afterwards (GiB) | engine parts |\n|---|---|---|---|---|"
    )?;
    for p in points {
        writeln!(
            md,
            "| {} | {} | {:.0} | {:.1} | {} |",
            p.scale,
            p.rows,
            p.bytes as f64 / 1048576.0,
            p.database_bytes as f64 / f64::from(1u32 << 30),
            if p.parts == 0 {
                "1 (in one invocation)".to_owned()
            } else {
                p.parts.to_string()
            }
        )?;
    }
    writeln!(md, "\n## Seconds, and seconds per million rows\n")?;
    let header: Vec<String> = points
        .iter()
        .map(|p| format!("scale {}", p.scale))
        .collect();
    writeln!(md, "| step | {} |", header.join(" | "))?;
    writeln!(md, "|---|{}", "---|".repeat(points.len()))?;
    let row = |md: &mut String, name: &str, values: Vec<Option<f64>>| -> anyhow::Result<()> {
        let cells: Vec<String> = values
            .iter()
            .zip(points)
            .map(|(v, p)| match v {
                Some(s) => format!("{s:.1} s ({:.2} s/M)", p.per_million(*s)),
                None => "–".to_owned(),
            })
            .collect();
        writeln!(md, "| {name} | {} |", cells.join(" | "))?;
        Ok(())
    };
    row(
        &mut md,
        "**raw `psql \\copy`**",
        points.iter().map(|p| Some(p.raw_seconds)).collect(),
    )?;
    row(
        &mut md,
        "**full refresh, stage → published**",
        points.iter().map(|p| Some(p.full.seconds)).collect(),
    )?;
    for (key, name) in steps() {
        row(&mut md, name, points.iter().map(|p| p.step(key)).collect())?;
    }
    let ratio_cells: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1}x", p.full.seconds / p.raw_seconds))
        .collect();
    writeln!(
        md,
        "| full refresh / raw COPY | {} |",
        ratio_cells.join(" | ")
    )?;

    if let (Some(q), Some(one)) = (
        points.iter().find(|p| (p.scale - 0.25).abs() < 1e-9),
        points.iter().find(|p| (p.scale - 1.0).abs() < 1e-9),
    ) {
        writeln!(
            md,
            "\n## Growth: seconds per million rows at 1.0 over 0.25 (target ≤ 1.3x)\n\n| step | ratio | |\n|---|---|---|"
        )?;
        let mut growth = vec![(
            "full refresh".to_owned(),
            Some(q.full.seconds),
            Some(one.full.seconds),
        )];
        growth.extend(steps().map(|(k, name)| (name.to_owned(), q.step(k), one.step(k))));
        for (name, a, b) in growth {
            if let (Some(a), Some(b)) = (a, b)
                && a > 0.0
            {
                let r = one.per_million(b) / q.per_million(a);
                writeln!(
                    md,
                    "| {name} | {r:.2}x | {} |",
                    if r <= 1.3 { "met" } else { "**missed**" }
                )?;
            }
        }
    }

    writeln!(
        md,
        "\n## The engine's parts: seconds of each phase, summed over the parts\n"
    )?;
    for p in points {
        let cells: Vec<String> = p
            .part_phases
            .iter()
            .map(|(k, s)| format!("{k} {s:.1} s ({:.2} s/M)", p.per_million(*s)))
            .collect();
        writeln!(md, "- scale {}: {}", p.scale, cells.join(", "))?;
    }
    writeln!(md, "\n## Longest single invocation (target ≤ 120 s)\n")?;
    for p in points {
        let mut longest = p.longest.clone();
        longest.sort_by(|a, b| b.1.total_cmp(&a.1));
        let cells: Vec<String> = longest
            .iter()
            .take(6)
            .map(|(k, s)| format!("{k} {s:.1} s"))
            .collect();
        writeln!(
            md,
            "- scale {}: longest {:.1} s ({}); {}",
            p.scale,
            p.longest_seconds(),
            if p.longest_seconds() <= 120.0 {
                "met"
            } else {
                "**missed**"
            },
            cells.join(", ")
        )?;
    }
    Ok(md)
}
