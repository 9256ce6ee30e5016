//! Local developer tasks (used by `./dev`):
//!
//! - `xtask setup`: create the staging bucket and the queues (with DLQs and redrive) on the emulator,
//!   as template.yaml declares them;
//! - `xtask migrate`: what the `migrate` function does (migrations, reference benchmarks, derived
//!   facility fields; functions never migrate at cold start);
//! - `xtask sqs-runner`: play Lambda's SQS event source mappings as template.yaml declares them
//!   (`sync-import`, `sync-finalize`, `sync-finalize-part`, `alert-dispatch`), each with as many
//!   concurrent pollers as its `MaximumConcurrency` allows, capped locally (`runner::LOCAL_CAP`);
//! - `xtask sync <event.json>`: run `sync-stage` with that event, then drain the queues;
//! - `xtask import-chunk <message.json>`: import one chunk as `sync-import` would, in this
//!   process, and report its peak RSS (benchmarks; the kill-mid-chunk test);
//! - `xtask violations [--full]`: run the violation engine (incremental unless `--full`);
//! - `xtask alerts`: match events to subscriptions and deliver alerts;
//! - `xtask api-key <name>`: create an API key for the write endpoints (printed once);
//! - `xtask serve [--addr 127.0.0.1:9100] [--no-cache] [--cache-namespace NAME] [--db-connections N]`: every HTTP
//!   function of `api::routes` behind one concurrent local server, requests presented as
//!   API Gateway would (see `serve.rs`);
//! - `xtask bench-headroom <data-dir> <report.md>`: one full refresh, the time of every finalize
//!   step and invocation against Lambda's limit (the 2x-scale figures of docs/BENCHMARKS.md);
//! - `xtask bench-curve <report.md> <data-dir>...`: the cost curve of a full refresh over several
//!   scales, beside raw COPY, with the longest single invocation of each (`./dev bench-curve`);
//! - `xtask bench-api <data-dir> <report.md>`: the HTTP API latency benchmark (`./dev bench-api`);
//! - `xtask bench-cold <lambda-dir> <report.md>`: every function's package size and cold start
//!   (`./dev bench-cold`).

mod bench;
mod bench_api;
mod bench_cold;
mod bench_curve;
mod bench_violations;
mod explain;
mod load;
mod serve;

use anyhow::{Context as _, bail};
use std::time::Duration;
use stormwater::api::publish::{Rebuild, publish};
use stormwater::config::Config;
use stormwater::sync::{Context, runner, stage};

const PREFIX: &str = "stormwater";

/// The execution context, with the bucket and queues of the template made sure of on the emulator.
async fn local_stack(cfg: Config) -> anyhow::Result<(Context, runner::Resources)> {
    let ctx = stormwater::lambda::context(cfg).await?;
    let wiring = std::sync::Arc::new(stormwater::sync::wiring::Wiring::from_config(&ctx.cfg)?);
    let r = runner::ensure_resources(&ctx.s3, &ctx.sqs, PREFIX, wiring, None).await?;
    Ok((ctx, r))
}

/// `cfg` for a process that plays every SQS mapping of the template at its local concurrency
/// (`sqs-runner`, `sync`): on AWS each invocation has an execution environment and a pool of
/// its own (`DB_MAX_CONNECTIONS`, 4 for sync-finalize), here they share this process's pool.
fn for_pollers(mut cfg: Config) -> anyhow::Result<Config> {
    let wiring = stormwater::sync::wiring::Wiring::from_config(&cfg)?;
    let pollers = u32::try_from(runner::local_pollers(&wiring).max(1))?;
    cfg.db_max_connections = cfg.db_max_connections.max(4) * pollers;
    Ok(cfg)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("bench-api") {
        // The benchmark also reads Postgres' notices (the explain pass).
        explain::init_telemetry();
    } else {
        stormwater::lambda::init_telemetry();
    }
    let cfg = Config::from_env()?;
    match args.first().map(String::as_str) {
        Some("migrate") => {
            let pool = stormwater::db::pool(&cfg)?;
            let done = stormwater::lambda::migrate_pool(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("migrate: {e}"))?;
            println!(
                "reference benchmarks loaded ({} pollutants, {} benchmarks)",
                done.pollutants, done.benchmarks
            );
            println!(
                "facility fields derived from their records ({} changed)",
                done.facilities_refreshed
            );
            println!("facility summaries rebuilt ({} rows)", done.summaries);
            println!("migrations applied ({} known)", done.migrated);
        }
        Some("setup") => {
            let (_, r) = local_stack(cfg).await?;
            println!(
                "bucket {}\nimport queue {}\nimport DLQ {}\nfinalize queue {}\nfinalize DLQ {}\n\
                 finalize part queue {}\nfinalize part DLQ {}\nstage file queue {}\nstage file DLQ {}",
                r.bucket,
                r.import_queue_url,
                r.import_dlq_url,
                r.finalize_queue_url,
                r.finalize_dlq_url,
                r.finalize_part_queue_url,
                r.finalize_part_dlq_url,
                r.stage_file_queue_url,
                r.stage_file_dlq_url
            );
        }
        Some("sqs-runner") => {
            let (ctx, r) = local_stack(for_pollers(cfg)?).await?;
            let mappings = runner::mappings(&r, 5)?;
            tracing::info!(
                queues = mappings.len(),
                pollers = mappings.iter().map(|m| m.concurrency).sum::<usize>(),
                "event source mapping emulation started"
            );
            // Every mapping with its own concurrent pollers; never returns.
            runner::serve(&ctx, &mappings).await;
        }
        Some("sync") => {
            let Some(path) = args.get(1) else {
                bail!("usage: xtask sync <event.json>")
            };
            let event: stage::StageRequest = serde_json::from_str(&std::fs::read_to_string(path)?)
                .with_context(|| format!("reading {path}"))?;
            let (ctx, r) = local_stack(for_pollers(cfg)?).await?;
            let planned = stage::run(&ctx, event).await?;
            let handled =
                runner::drain(&ctx, &runner::mappings(&r, 1)?, Duration::from_secs(1800)).await?;
            // What each file's stage-file invocation did (the plan only queued them).
            let summary = stage::StageSummary {
                run_id: planned.run_id,
                files: stage::file_outcomes(&ctx.pool, planned.run_id).await?,
            };
            println!("{}", serde_json::to_string_pretty(&summary)?);
            println!("{handled} messages handled");
        }
        Some("import-chunk") => {
            let Some(message) = args.get(1) else {
                bail!("usage: xtask import-chunk <message.json>")
            };
            let chunk: stormwater::sync::ChunkMessage =
                serde_json::from_str(message).context("chunk message")?;
            let ctx = stormwater::lambda::context(cfg).await?;
            let started = std::time::Instant::now();
            let outcome = stormwater::sync::import::import_chunk(&ctx, &chunk).await?;
            println!(
                "{}",
                serde_json::json!({
                    "outcome": outcome,
                    "seconds": started.elapsed().as_secs_f64(),
                    "peak_rss_kib": peak_rss_kib(),
                })
            );
        }
        Some("bench") => {
            let (Some(data), Some(next), Some(report)) = (args.get(1), args.get(2), args.get(3))
            else {
                bail!("usage: xtask bench <data-dir> <next-week-dir> <report.md>")
            };
            bench::run(
                cfg,
                std::path::Path::new(data),
                std::path::Path::new(next),
                std::path::Path::new(report),
            )
            .await?;
        }
        Some("bench-headroom") => {
            let (Some(data), Some(report)) = (args.get(1), args.get(2)) else {
                bail!("usage: xtask bench-headroom <data-dir> <report.md>")
            };
            bench::headroom(
                cfg,
                std::path::Path::new(data),
                std::path::Path::new(report),
            )
            .await?;
        }
        Some("bench-curve") => {
            let (Some(report), dirs) = (args.get(1), args.get(2..).unwrap_or_default()) else {
                bail!("usage: xtask bench-curve <report.md> <data-dir>...")
            };
            if dirs.is_empty() {
                bail!("usage: xtask bench-curve <report.md> <data-dir>...");
            }
            let dirs: Vec<std::path::PathBuf> = dirs.iter().map(std::path::PathBuf::from).collect();
            bench_curve::run(cfg, std::path::Path::new(report), &dirs).await?;
        }
        Some("bench-violations") => {
            let (Some(data), Some(report)) = (args.get(1), args.get(2)) else {
                bail!("usage: xtask bench-violations <data-dir> <report.md>")
            };
            bench_violations::run(
                cfg,
                std::path::Path::new(data),
                std::path::Path::new(report),
            )
            .await?;
        }
        Some("serve") => {
            let opts = serve::Options::parse(&args[1..])?;
            serve::run(cfg, opts).await?;
        }
        Some("bench-api") => {
            let (Some(data), Some(report)) = (args.get(1), args.get(2)) else {
                bail!("usage: xtask bench-api <data-dir> <report.md>")
            };
            bench_api::run(
                cfg,
                std::path::Path::new(data),
                std::path::Path::new(report),
            )
            .await?;
        }
        Some("bench-cold") => {
            let (Some(dir), Some(report)) = (args.get(1), args.get(2)) else {
                bail!("usage: xtask bench-cold <lambda-dir> <report.md>")
            };
            bench_cold::run(std::path::Path::new(dir), std::path::Path::new(report)).await?;
        }
        Some("violations") => {
            let pool = stormwater::db::pool(&cfg)?;
            let cache = stormwater::cache::Cache::new(cfg.redis_url.as_deref());
            let mut opts = stormwater::violations::engine::Options::new("manual", cfg.nd_policy);
            opts.force_full = args.iter().any(|a| a == "--full");
            let report = publish(&pool, &cache, &opts, Rebuild::All).await.report()?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Some("link") => {
            let pool = stormwater::db::pool(&cfg)?;
            let cache = stormwater::cache::Cache::new(cfg.redis_url.as_deref());
            let mut opts = stormwater::linking::Options::new("cli", cfg.link);
            opts.force_full = args.iter().any(|a| a == "--full");
            let applied = stormwater::api::publish::link_and_publish(
                &pool,
                &cache,
                &opts,
                cfg.nd_policy,
                stormwater::api::publish::Relinked::All,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&applied)?);
        }
        Some("alerts") => {
            let pool = stormwater::db::pool(&cfg)?;
            let webhooks =
                stormwater::outbound::Client::new(cfg.outbound.clone(), cfg.webhook_timeout)?;
            let done =
                stormwater::alerts::dispatch::dispatch(&pool, &webhooks, cfg.smtp.as_ref()).await?;
            println!("{}", serde_json::to_string_pretty(&done)?);
        }
        Some("api-key") => {
            let Some(name) = args.get(1) else {
                bail!("usage: xtask api-key <name>")
            };
            let pool = stormwater::db::pool(&cfg)?;
            let key = stormwater::auth::create_key(&pool, name, "xtask").await?;
            println!("{key}");
        }
        _ => bail!(
            "usage: xtask migrate | setup | sqs-runner | sync <event.json> | import-chunk <message.json> \
             | violations [--full] | link [--full] | alerts | api-key <name> \
             | serve [--addr host:port] [--no-cache] [--cache-namespace NAME] [--db-connections N] \
             | bench <data> <next-week> <report> | bench-headroom <data> <report> | bench-curve <report> <data>... | bench-violations <data> <report> | bench-api <data> <report> | bench-cold <lambda-dir> <report>"
        ),
    }
    Ok(())
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
