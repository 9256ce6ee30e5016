//! `xtask bench-api <data-dir> <report.md>`: latency of the HTTP API under load
//! (`./dev bench-api`, which writes docs/BENCHMARKS_API.md).
//!
//! 1. The generated files of `<data-dir>` synced through the real pipeline into the database
//!    `bench_api` (finalize runs the violation engine); reused while its manifest matches.
//! 2. `xtask serve` (this binary) started twice: with `--no-cache`, then with Redis. For every
//!    URL of [`ENDPOINTS`] whose route `routes::resolve` serves, wrk with 32 connections
//!    (p50/p95/p99, requests/s, non-2xx and errors), after two warm-up requests per URL (the
//!    second shows whether the answer is cached); then one connection for a third of the time
//!    (at least 3 s: the time of a request without queueing). `/api/health` is the
//!    in-run baseline. URLs whose route is not (yet) in the table are reported "not served".
//! 3. Redis killed under load: 32 connections over a mix of URLs for 21 s; Redis is killed at
//!    7 s (SIGKILL, its pid from `BENCH_API_REDIS_PID_FILE`) and restarted at 14 s with
//!    `BENCH_API_REDIS_START`; every request is counted, failures (non-2xx or a connection
//!    error) per phase.
//! 4. The explain pass: every URL handled in this process over a connection that explains
//!    each statement with ANALYZE (`explain.rs`), so the database's own time of each request's
//!    statements stands beside the API's.
//!
//! Environment: `WRK` (path of wrk), `BENCH_API_SECONDS` (per URL, default 10),
//! `BENCH_API_PORT` (default 9111), `BENCH_API_DIR` (logs, default `.dev/bench-api`),
//! `BENCH_API_RESYNC=1` (sync again even when the database matches), `BENCH_API_SCALE`
//! (reported only). Targets are checked and reported here, never in tests.

use crate::bench::{Manifest, machine, percentile, synced_database};
use crate::explain::{self, Explained};
use crate::load::{Load, Wrk};
use anyhow::{Context as _, bail};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stormwater::api::routes;
use stormwater::config::Config;

const DB: &str = "bench_api";
const CONNECTIONS: usize = 32;
/// The server's pool, shared by all its concurrent requests.
const DB_CONNECTIONS: u32 = 16;

/// What kind of request an endpoint is, for its targets: its uncached p95 alone (one
/// connection), and at 32 connections its p95 against `/api/health`'s in the same run.
#[derive(Clone, Copy, PartialEq)]
enum Goal {
    /// `/api/health`: the baseline.
    Baseline,
    Facility,
    Complete,
    List,
    Dashboard,
    /// No target alone; the 32-connection targets still apply.
    None,
}

/// At 32 connections, an endpoint's p95 over `/api/health`'s: uncached, cached.
const HEALTH_RATIO: (f64, f64) = (5.0, 1.5);

impl Goal {
    /// The uncached p95 (ms) of a request alone.
    fn single_ms(self) -> Option<f64> {
        match self {
            Goal::Facility => Some(5.0),
            Goal::Complete => Some(30.0),
            Goal::List => Some(20.0),
            Goal::Dashboard => Some(50.0),
            Goal::Baseline | Goal::None => None,
        }
    }

    /// The most its p95 may be at 32 connections, given `/api/health`'s p95 (uncached when
    /// `cached` is false).
    fn loaded_ms(self, health_p95: f64, cached: bool) -> Option<f64> {
        let ratio = if cached {
            HEALTH_RATIO.1
        } else {
            HEALTH_RATIO.0
        };
        (self != Goal::Baseline).then_some(health_p95 * ratio)
    }
}

/// The measured URLs; `{name}` is replaced by the id that [`IDS`] `name` selects. Add a line
/// to measure another endpoint: it is skipped while its route does not resolve.
const ENDPOINTS: &[(&str, Goal)] = &[
    ("/api/health", Goal::Baseline),
    ("/api/facilities?county=Los%20Angeles", Goal::List),
    ("/api/facilities/{facility}", Goal::Facility),
    ("/api/facilities/{facility}/complete", Goal::Complete),
    ("/api/facilities/{facility}/timeline", Goal::None),
    ("/api/violations", Goal::List),
    ("/api/violations?source=smarts&severity=high", Goal::List),
    ("/api/violations/{violation}", Goal::None),
    ("/api/violations/stats", Goal::None),
    ("/api/smarts/violations", Goal::List),
    ("/api/smarts/violations?county=Los%20Angeles", Goal::List),
    ("/api/smarts/enforcement", Goal::List),
    ("/api/smarts/inspections", Goal::List),
    ("/api/smarts/facilities", Goal::List),
    ("/api/dashboard", Goal::Dashboard),
    ("/api/dashboard?county=Los%20Angeles", Goal::Dashboard),
    (
        "/api/facilities.geojson?bbox=-118.7,33.6,-117.6,34.4",
        Goal::List,
    ),
];

/// Real ids for the URL templates.
const IDS: &[(&str, &str)] = &[
    // The canonical facility with the most violation events.
    (
        "facility",
        "select facility_id::text from violation_event group by 1 order by count(*) desc, 1 limit 1",
    ),
    // That facility's event with the most samples.
    (
        "violation",
        "select id::text from violation_event where facility_id = (select facility_id from violation_event
           group by 1 order by count(*) desc, 1 limit 1) order by sample_count desc, id limit 1",
    ),
];

/// The URLs of the Redis-kill run (those that are served).
const KILL_MIX: &[&str] = &[
    "/api/facilities?county=Los%20Angeles",
    "/api/facilities/{facility}",
    "/api/facilities/{facility}/complete",
    "/api/violations",
    "/api/violations?source=smarts&severity=high",
    "/api/violations/stats",
    "/api/dashboard",
    "/api/smarts/violations",
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A running `xtask serve`.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(
        db_url: &str,
        port: u16,
        no_cache: bool,
        log: &Path,
        http: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        // Another server on the port would answer the health check for this one.
        drop(
            std::net::TcpListener::bind(("127.0.0.1", port))
                .with_context(|| format!("port {port} is in use (set BENCH_API_PORT)"))?,
        );
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--db-connections", &DB_CONNECTIONS.to_string()])
            .env("DATABASE_URL", db_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log)?)
            .stderr(std::fs::File::create(log.with_extension("err.log"))?);
        if no_cache {
            cmd.arg("--no-cache");
        }
        let mut server = Server {
            child: cmd.spawn().context("starting xtask serve")?,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("xtask serve exited ({status}); see {}", log.display());
            }
            let health = http.get(format!("{}/api/health", server.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(30) {
                server.stop();
                bail!("xtask serve did not become healthy; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM (graceful), then waits; SIGKILL if it does not exit.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// One measured URL.
struct Endpoint {
    template: &'static str,
    goal: Goal,
    /// `None`: not served (its route does not resolve), or no id for it.
    url: Option<String>,
    why_not: Option<String>,
}

#[derive(Default)]
struct Measured {
    /// Status of the warm-up request and its `x-cache` header.
    warm_status: u16,
    warm_cache: Option<String>,
    load: Load,
    single: Load,
}

fn fill(template: &str, ids: &HashMap<&str, String>) -> Result<String, String> {
    let mut out = template.to_owned();
    for (name, id) in ids {
        out = out.replace(&format!("{{{name}}}"), id);
    }
    match out.find('{') {
        Some(i) => Err(format!(
            "no id for {}",
            &out[i..=out[i..].find('}').map_or(i, |j| i + j)]
        )),
        None => Ok(out),
    }
}

fn served(path_and_query: &str) -> bool {
    let path = path_and_query.split('?').next().unwrap_or_default();
    routes::resolve("GET", path).is_some()
}

async fn measure_all(
    server: &Server,
    endpoints: &[Endpoint],
    http: &reqwest::Client,
    wrk: &Wrk,
    seconds: u64,
) -> anyhow::Result<Vec<Option<Measured>>> {
    let mut out = Vec::new();
    for e in endpoints {
        let Some(url) = &e.url else {
            out.push(None);
            continue;
        };
        let full = format!("{}{url}", server.base);
        // Warm-up: fills the cache (cached server) and Postgres' buffers and the pool.
        let resp = http.get(&full).send().await?;
        let mut m = Measured {
            warm_status: resp.status().as_u16(),
            ..Measured::default()
        };
        let _ = resp.bytes().await;
        // The second request shows whether the answer now comes from the cache.
        let resp = http.get(&full).send().await?;
        m.warm_cache = resp
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = resp.bytes().await;
        m.load = wrk.run(&full, CONNECTIONS, seconds)?;
        m.single = wrk.run(&full, 1, single_seconds(seconds))?;
        println!(
            "  {url}: {} | c=32 p50 {:.1} p95 {:.1} p99 {:.1} ms, {:.0} req/s, {} of {} failed | c=1 p50 {:.1} ms",
            m.warm_status,
            m.load.p50,
            m.load.p95,
            m.load.p99,
            m.load.rps,
            m.load.failed(),
            m.load.requests,
            m.single.p50
        );
        out.push(Some(m));
    }
    Ok(out)
}

/// One request of the Redis-kill run.
struct Sample {
    /// Start, seconds after the run began.
    at: f64,
    ms: f64,
    /// HTTP status, or `None` for a connection error / timeout.
    status: Option<u16>,
    cache: Option<String>,
}

/// 32 connections over `urls` for `total`; Redis is killed at `kill_at` and restarted at
/// `restart_at`.
async fn redis_kill_run(
    base: &str,
    urls: &[String],
    total: Duration,
    kill_at: Duration,
    restart_at: Duration,
) -> anyhow::Result<(Vec<Sample>, String)> {
    let pid_file = std::env::var("BENCH_API_REDIS_PID_FILE")
        .context("BENCH_API_REDIS_PID_FILE (set by ./dev bench-api)")?;
    let restart = std::env::var("BENCH_API_REDIS_START")
        .context("BENCH_API_REDIS_START (set by ./dev bench-api)")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(30))
        .build()?;
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for w in 0..CONNECTIONS {
        let client = client.clone();
        let urls: Vec<String> = urls.iter().map(|u| format!("{base}{u}")).collect();
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut i = w;
            while t0.elapsed() < total {
                let url = &urls[i % urls.len()];
                i += 1;
                let start = Instant::now();
                let at = (start - t0).as_secs_f64();
                let (status, cache) = match client.get(url).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let cache = r
                            .headers()
                            .get("x-cache")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        match r.bytes().await {
                            Ok(_) => (Some(status), cache),
                            Err(_) => (None, None),
                        }
                    }
                    Err(_) => (None, None),
                };
                samples.push(Sample {
                    at,
                    ms: start.elapsed().as_secs_f64() * 1000.0,
                    status,
                    cache,
                });
            }
            samples
        }));
    }
    tokio::time::sleep_until((t0 + kill_at).into()).await;
    let pid = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("reading {pid_file}"))?
        .trim()
        .to_owned();
    let killed = Command::new("kill").args(["-KILL", &pid]).status()?;
    let mut log = format!(
        "Redis (pid {pid}) killed with SIGKILL at {:.1} s ({}).",
        t0.elapsed().as_secs_f64(),
        if killed.success() {
            "ok"
        } else {
            "kill failed"
        }
    );
    println!("  {log}");
    tokio::time::sleep_until((t0 + restart_at).into()).await;
    let restarted_at = t0.elapsed().as_secs_f64();
    let out = Command::new("sh").args(["-c", &restart]).output()?;
    let note = format!(
        " Restarted with `{restart}` at {restarted_at:.1} s ({}; pid {}).",
        if out.status.success() {
            format!(
                "ready after {:.1} s",
                t0.elapsed().as_secs_f64() - restarted_at
            )
        } else {
            format!("FAILED: {}", String::from_utf8_lossy(&out.stderr).trim())
        },
        std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
    );
    println!("  {}", note.trim());
    log.push_str(&note);
    let mut samples = Vec::new();
    for w in workers {
        samples.extend(w.await?);
    }
    Ok((samples, log))
}

/// Seconds of the one-connection run.
fn single_seconds(seconds: u64) -> u64 {
    seconds.div_ceil(3).max(3)
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

fn verdict(p95: f64, goal: Option<f64>) -> String {
    match goal {
        None => "—".into(),
        Some(g) if p95 <= g => format!("≤ {}: MET", ms(g)),
        Some(g) => format!("≤ {}: **MISSED**", ms(g)),
    }
}

/// Database `bench_api` with the files of `data` synced, unless it already holds them.
async fn ensure_data(base: &Config, data: &Path) -> anyhow::Result<(String, String)> {
    let manifest_text = std::fs::read_to_string(data.join("MANIFEST.json"))?;
    let base_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let url = format!(
        "{}/{DB}",
        base_url
            .rsplit_once('/')
            .map_or(base_url.as_str(), |(b, _)| b)
    );
    let resync = std::env::var("BENCH_API_RESYNC").is_ok_and(|v| v == "1");
    if !resync {
        let reuse = async {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .ok()?;
            let synced: Option<(String, String)> = sqlx::query_as(
                "select m.manifest, m.note from bench_api_marker m
                  where exists (select 1 from violation_engine_run where status = 'succeeded')",
            )
            .fetch_optional(&pool)
            .await
            .ok()?;
            pool.close().await;
            synced.filter(|(m, _)| *m == manifest_text).map(|(_, n)| n)
        };
        if let Some(note) = reuse.await {
            println!("database {DB} already holds these files ({note}); reusing it");
            // What is stored for the read API follows this build: its migrations, then every
            // summary rebuilt, as `migrate` does after a deploy.
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&url)
                .await?;
            let t0 = Instant::now();
            stormwater::lambda::migrate_pool(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("migrating {DB}: {e}"))?;
            sqlx::query("analyze").execute(&pool).await?;
            pool.close().await;
            let migrated = format!(
                "migrated and its summaries rebuilt by this build in {:.0} s",
                t0.elapsed().as_secs_f64()
            );
            println!("  {migrated}");
            return Ok((
                url,
                format!("{note} (reused, {migrated}; `BENCH_API_RESYNC=1` syncs again)"),
            ));
        }
    }
    let manifest: Manifest = serde_json::from_str(&manifest_text)?;
    let rows: u64 = manifest.files.iter().map(|f| f.rows).sum();
    println!(
        "sync {rows} rows into database {DB} through the pipeline (finalize runs the engine) ..."
    );
    let synced = synced_database(base, data, DB, "benchapi").await?;
    let pool = &synced.ctx.pool;
    let (status, engine_s): (String, Option<f64>) = sqlx::query_as(
        "select r.status, (select extract(epoch from finished_at - started_at)::float8
                             from violation_engine_run where sync_run_id = r.id and status = 'succeeded')
           from sync_run r where r.id = $1",
    )
    .bind(synced.run_id)
    .fetch_one(pool)
    .await?;
    let Some(engine_s) = engine_s else {
        bail!(
            "sync run {} ended {status} without a successful violation engine run",
            synced.run_id
        );
    };
    sqlx::query("analyze").execute(pool).await?;
    let note = format!(
        "{rows} rows in {} files synced in {:.0} s (run {} {status}; violation engine at finalize {engine_s:.0} s)",
        manifest.files.len(),
        synced.seconds,
        synced.run_id
    );
    sqlx::query("create table bench_api_marker (manifest text not null, note text not null)")
        .execute(pool)
        .await?;
    sqlx::query("insert into bench_api_marker values ($1, $2)")
        .bind(&manifest_text)
        .bind(&note)
        .execute(pool)
        .await?;
    println!("  {note}");
    Ok((url, note))
}

/// Runs the benchmark and writes the report.
/// What one run measured, for the report.
struct Measurements {
    load_tool: String,
    seconds: u64,
    data_note: String,
    /// Facilities, violation events, violation samples.
    counts: (i64, i64, i64),
    ids: HashMap<&'static str, String>,
    endpoints: Vec<Endpoint>,
    uncached: Vec<Option<Measured>>,
    cached: Vec<Option<Measured>>,
    /// The explain pass, per endpoint.
    explained: Vec<Option<Explained>>,
    /// The URLs of the Redis-kill run, its samples and what happened to Redis.
    mix: Vec<String>,
    samples: Vec<Sample>,
    kill_log: String,
}

/// `xtask bench-api`: measures ([`measure`]), then writes the report ([`write_report`]).
pub async fn run(base: Config, data: &Path, report: &Path) -> anyhow::Result<()> {
    let m = measure(base, data).await?;
    std::fs::write(report, write_report(&m)?)?;
    println!("report written to {}", report.display());
    Ok(())
}

/// The data (generated and synced unless it is already), the endpoints' URLs with real ids,
/// then each endpoint uncached and cached, then the cached server with Redis killed under load.
async fn measure(base: Config, data: &Path) -> anyhow::Result<Measurements> {
    let seconds: u64 = env_or("BENCH_API_SECONDS", 10);
    let port: u16 = env_or("BENCH_API_PORT", 9111);
    let dir =
        PathBuf::from(std::env::var("BENCH_API_DIR").unwrap_or_else(|_| ".dev/bench-api".into()));
    std::fs::create_dir_all(&dir)?;
    let wrk = Wrk::new(&dir)?;
    let load_tool = wrk.version()?;

    let (db_url, data_note) = ensure_data(&base, data).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db_url)
        .await?;
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    for (name, sql) in IDS {
        if let Some(id) = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(*sql))
            .fetch_optional(&pool)
            .await?
        {
            ids.insert(name, id);
        }
    }
    let counts: (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from facility), (select count(*) from violation_event),
                (select count(*) from violation_sample)",
    )
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    let endpoints: Vec<Endpoint> = ENDPOINTS
        .iter()
        .map(|(template, goal)| {
            let (url, why_not) = match fill(template, &ids) {
                Err(why) => (None, Some(why)),
                Ok(url) if !served(&url) => (None, Some("not served".into())),
                Ok(url) => (Some(url), None),
            };
            Endpoint {
                template,
                goal: *goal,
                url,
                why_not,
            }
        })
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;

    println!(
        "uncached: xtask serve --no-cache, {} per URL",
        Wrk::describe(CONNECTIONS, seconds)
    );
    let mut server =
        Server::start(&db_url, port, true, &dir.join("serve-uncached.log"), &http).await?;
    let uncached = measure_all(&server, &endpoints, &http, &wrk, seconds).await?;
    server.stop();
    drop(server);

    println!("cached: xtask serve with Redis, after one warm-up request per URL");
    let server = Server::start(&db_url, port, false, &dir.join("serve-cached.log"), &http).await?;
    let cached = measure_all(&server, &endpoints, &http, &wrk, seconds).await?;

    println!("Redis killed under load ...");
    let mix: Vec<String> = KILL_MIX
        .iter()
        .filter_map(|t| fill(t, &ids).ok())
        .filter(|u| served(u))
        .collect();
    let (samples, kill_log) = redis_kill_run(
        &server.base,
        &mix,
        Duration::from_secs(21),
        Duration::from_secs(7),
        Duration::from_secs(14),
    )
    .await?;
    drop(server);

    println!("explain pass: each URL in this process, every statement explained with ANALYZE");
    let urls: Vec<String> = endpoints.iter().filter_map(|e| e.url.clone()).collect();
    let explained = explain::explain_all(&db_url, &urls, 5).await?;
    let mut explained = explained.into_iter();
    let explained = endpoints
        .iter()
        .map(|e| e.url.as_ref().and_then(|_| explained.next()))
        .collect();

    Ok(Measurements {
        load_tool,
        explained,
        seconds,
        data_note,
        counts,
        ids,
        endpoints,
        uncached,
        cached,
        mix,
        samples,
        kill_log,
    })
}

/// The report: the set-up and data, the latency per endpoint, the Redis-kill run.
fn write_report(m: &Measurements) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    write_setup(&mut out, m)?;
    write_latency(&mut out, m)?;
    write_redis_kill(&mut out, m)?;
    Ok(out)
}

fn write_setup(out: &mut String, m: &Measurements) -> std::fmt::Result {
    let Measurements {
        load_tool,
        seconds,
        data_note,
        counts,
        ids,
        ..
    } = m;
    let seconds = *seconds;
    writeln!(out, "# HTTP API benchmark\n")?;
    writeln!(
        out,
        "Written by `./dev bench-api` (`xtask bench-api`) on {}: {}; release build; dev Postgres \
         (`fsync=off`, see docs/BENCHMARKS.md); load generator, server, Postgres and Redis share the \
         machine's cores. Load: {load_tool} (Debian's package), {CONNECTIONS} connections for \
         {seconds} s per URL (`{}`), after two warm-up requests per URL; then 1 connection for {} s \
         (the service time without queueing).\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        machine(),
        Wrk::describe(CONNECTIONS, seconds),
        single_seconds(seconds)
    )?;
    writeln!(out, "## Reproduce\n")?;
    writeln!(
        out,
        "```sh\n./dev bench-api                        # the real record (generate --seed 42 --scale 1), ~30M rows\n\
         BENCH_API_SCALE=0.05 ./dev bench-api   # quick run on a 5% sample\n\
         BENCH_API_SECONDS=3 ./dev bench-api    # shorter load per URL\n```\n"
    )?;
    writeln!(
        out,
        "`./dev bench-api` installs wrk if missing{}, generates the files (into \
         `.dev/bench-data-<scale>`, shared with `./dev bench --scale <scale>`), syncs them into the database `{DB}` (reused while the files are \
         the same), starts its own Redis on 127.0.0.1:63800 (the dev stack's Redis is not touched), \
         and serves the functions with `xtask serve --db-connections {DB_CONNECTIONS}` \
         (one pool of {DB_CONNECTIONS} connections shared by all requests; every function of \
         `api::routes::FUNCTIONS`, requests presented as API Gateway would).\n",
        std::fs::read_to_string(".dev/tools/wrk-install.txt")
            .map(|t| format!(" ({})", t.trim()))
            .unwrap_or_default()
    )?;
    writeln!(out, "## Data\n")?;
    writeln!(
        out,
        "- {data_note}; scale {}.\n- {} facilities, {} violation events, {} violation samples.\n- Ids: {}.\n",
        std::env::var("BENCH_API_SCALE").unwrap_or_else(|_| "1".into()),
        counts.0,
        counts.1,
        counts.2,
        IDS.iter()
            .map(|(n, _)| format!("`{{{n}}}` = {}", ids.get(n).map_or("none", String::as_str)))
            .collect::<Vec<_>>()
            .join(", ")
    )?;

    Ok(())
}

fn write_latency(out: &mut String, m: &Measurements) -> std::fmt::Result {
    let Measurements {
        endpoints,
        uncached,
        cached,
        ..
    } = m;
    let health = |set: &[Option<Measured>]| {
        set.first()
            .and_then(|m| m.as_ref())
            .map_or(f64::NAN, |m| m.load.p95)
    };
    let (hu, hc) = (health(uncached), health(cached));
    writeln!(out, "## Latency per endpoint\n")?;
    writeln!(
        out,
        "Milliseconds. Targets (p95): alone (one connection, uncached) facility ≤ 5, complete ≤ 30, \
         every list ≤ 20, dashboard ≤ 50; at {CONNECTIONS} connections every endpoint ≤ {}× the \
         `/api/health` p95 of the same run uncached and ≤ {}× cached. \"× health\" is the p95 over \
         `/api/health`'s. An endpoint without a target of its own alone shows —.\n",
        HEALTH_RATIO.0, HEALTH_RATIO.1
    )?;
    writeln!(
        out,
        "### {CONNECTIONS} connections\n\n\
         `/api/health`, the cheapest request through the same server, has p95 {} ms uncached and \
         {} ms cached at {CONNECTIONS} connections: on 2 cores shared with the load generator and \
         Postgres most of a request's time under this load is waiting for a core \
         (p50 ≈ {CONNECTIONS} / requests per second). Targets: uncached ≤ {} ms, cached ≤ {} ms.\n",
        ms(hu),
        ms(hc),
        ms(hu * HEALTH_RATIO.0),
        ms(hc * HEALTH_RATIO.1),
    )?;
    writeln!(
        out,
        "| endpoint | uncached p50 / p95 / p99 | req/s | × health | target | cached p50 / p95 / p99 | req/s | × health | target | failed (uncached / cached) |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
    let mut single = String::new();
    writeln!(
        single,
        "### One connection (the time of a request alone)\n\n\
         | endpoint | uncached p50 / p95 | target | cached p50 / p95 |\n|---|---|---|---|"
    )?;
    let mut problems = String::new();
    let (mut missed, mut goals, mut missed_single, mut goals_single) = (0, 0, 0, 0);
    for (i, e) in endpoints.iter().enumerate() {
        let (Some(url), Some(u), Some(c)) = (&e.url, &uncached[i], &cached[i]) else {
            let why = e.why_not.as_deref().unwrap_or("not served");
            writeln!(out, "| `{}` | {why} | | | | | | | | |", e.template)?;
            writeln!(single, "| `{}` | {why} | | |", e.template)?;
            continue;
        };
        let (gu, gc) = (e.goal.loaded_ms(hu, false), e.goal.loaded_ms(hc, true));
        let gs = e.goal.single_ms();
        goals += usize::from(gu.is_some()) + usize::from(gc.is_some());
        missed += usize::from(gu.is_some_and(|g| u.load.p95 > g));
        missed += usize::from(gc.is_some_and(|g| c.load.p95 > g));
        goals_single += usize::from(gs.is_some());
        missed_single += usize::from(gs.is_some_and(|g| u.single.p95 > g));
        let label = if u.warm_status / 100 == 2 {
            format!("`{url}`")
        } else {
            format!("`{url}` (answers {})", u.warm_status)
        };
        writeln!(
            out,
            "| {label} | {} / {} / {} | {:.0} | {:.1} | {} | {} / {} / {} | {:.0} | {:.1} | {} | {} / {} |",
            ms(u.load.p50),
            ms(u.load.p95),
            ms(u.load.p99),
            u.load.rps,
            u.load.p95 / hu,
            verdict(u.load.p95, gu),
            ms(c.load.p50),
            ms(c.load.p95),
            ms(c.load.p99),
            c.load.rps,
            c.load.p95 / hc,
            verdict(c.load.p95, gc),
            u.load.failed() + u.single.failed(),
            c.load.failed() + c.single.failed(),
        )?;
        writeln!(
            single,
            "| {label} | {} / {} | {} | {} / {} |",
            ms(u.single.p50),
            ms(u.single.p95),
            verdict(u.single.p95, gs),
            ms(c.single.p50),
            ms(c.single.p95),
        )?;
        for (label, m) in [("uncached", u), ("cached", c)] {
            let mut all = m.load.problems.clone();
            for (k, n) in &m.single.problems {
                *all.entry(k.clone()).or_default() += n;
            }
            if !all.is_empty() {
                writeln!(
                    problems,
                    "- `{url}` {label}: {}",
                    all.iter()
                        .map(|(k, n)| format!("{n} × {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
            }
        }
        if e.goal != Goal::Baseline && c.warm_cache.as_deref() != Some("hit") {
            writeln!(
                problems,
                "- `{url}` cached: the request after the warm-up was not a cache hit (x-cache: {})",
                c.warm_cache.as_deref().unwrap_or("absent")
            )?;
        }
    }
    writeln!(out, "\n{single}")?;
    writeln!(
        out,
        "Targets: {missed} of {goals} MISSED at {CONNECTIONS} connections, {missed_single} of \
         {goals_single} MISSED alone.\n"
    )?;
    if !problems.is_empty() {
        writeln!(
            out,
            "Non-2xx answers, errors and cache misses:\n\n{problems}"
        )?;
    }
    write_explained(out, m)
}

/// The explain pass beside the one-connection times: what of a request is the database's.
fn write_explained(out: &mut String, m: &Measurements) -> std::fmt::Result {
    writeln!(out, "### The database's own time\n")?;
    writeln!(
        out,
        "Each URL handled in the benchmark's process by its route's handler (no cache), over one \
         connection on which `auto_explain` explains every statement with ANALYZE (rows and \
         buffers, without per-node timing); the median of 5 requests after one warm-up. \
         \"handler\" is the request's time in the handler, \"database\" the execution time of all \
         its statements, \"main query\" the longest of them, with its plan's top node, the rows it \
         returned and the shared buffers it touched (hit + read); the one-connection p50 is \
         wrk's from above. What is above the database is the server's own work (JSON, HTTP) \
         and the round trips.\n"
    )?;
    writeln!(
        out,
        "| endpoint | alone p50 (wrk) | handler | database (statements) | main query | top node, rows | buffers | main query text |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    for (i, e) in m.endpoints.iter().enumerate() {
        let (Some(url), Some(x)) = (&e.url, &m.explained[i]) else {
            continue;
        };
        let alone = m.uncached[i].as_ref().map_or(f64::NAN, |u| u.single.p50);
        let main = x.main();
        writeln!(
            out,
            "| `{url}` | {} | {} | {} ({}) | {} | {} | {} | `{}` |",
            ms(alone),
            ms(x.handler_ms),
            ms(x.db_ms()),
            x.statements.len(),
            main.map_or("—".into(), |s| ms(s.ms)),
            main.map_or("—".into(), |s| format!("{}, {}", s.node, s.rows)),
            main.map_or("—".into(), |s| format!(
                "{} + {}",
                s.buffers.0, s.buffers.1
            )),
            main.map_or(String::new(), |s| s
                .query
                .replace('|', "\\|")
                .replace('`', "'")),
        )?;
    }
    writeln!(out)
}

fn write_redis_kill(out: &mut String, m: &Measurements) -> std::fmt::Result {
    let Measurements {
        mix,
        samples,
        kill_log,
        ..
    } = m;
    writeln!(out, "## Redis killed under load\n")?;
    writeln!(
        out,
        "The cached server under {CONNECTIONS} connections for 21 s, cycling through {} URLs ({}). \
         {kill_log}\n",
        mix.len(),
        mix.iter()
            .map(|u| format!("`{u}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        out,
        "| phase | requests | failed (non-2xx or connection error) | p50 ms | p95 ms | p99 ms | cache hit / miss / other |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    let phases = [
        ("0–7 s, Redis up", 0.0, 7.0),
        ("7–14 s, Redis down", 7.0, 14.0),
        ("14–21 s, Redis restarted (empty)", 14.0, f64::INFINITY),
        ("all", 0.0, f64::INFINITY),
    ];
    let mut kill_failed = 0;
    let mut kill_codes: BTreeMap<String, u64> = BTreeMap::new();
    for (label, from, to) in phases {
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .collect();
        let failed = inside
            .iter()
            .filter(|s| s.status.is_none_or(|c| c / 100 != 2))
            .count();
        if label == "all" {
            kill_failed = failed;
            for s in &inside {
                match s.status {
                    Some(c) if c / 100 == 2 => {}
                    Some(c) => *kill_codes.entry(format!("HTTP {c}")).or_default() += 1,
                    None => *kill_codes.entry("connection error".into()).or_default() += 1,
                }
            }
        }
        let mut lat: Vec<f64> = inside.iter().map(|s| s.ms).collect();
        lat.sort_by(f64::total_cmp);
        let cache = |v: &str| {
            inside
                .iter()
                .filter(|s| s.cache.as_deref() == Some(v))
                .count()
        };
        let (hit, miss) = (cache("hit"), cache("miss"));
        writeln!(
            out,
            "| {label} | {} | {failed} | {} | {} | {} | {hit} / {miss} / {} |",
            inside.len(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.95)),
            ms(percentile(&lat, 0.99)),
            inside.len() - hit - miss
        )?;
    }
    writeln!(
        out,
        "\nGoal: no failed request. {}\n",
        if kill_failed == 0 {
            "MET.".to_owned()
        } else {
            format!(
                "**MISSED**: {kill_failed} failed ({}).",
                kill_codes
                    .iter()
                    .map(|(k, n)| format!("{n} × {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )?;
    writeln!(
        out,
        "The Redis-kill load is this benchmark's own client (reqwest, {CONNECTIONS} tasks, one request at a \
         time each), so that every request can be placed in its phase; the per-endpoint numbers are wrk's."
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_unknown_ids_are_named() {
        let ids = HashMap::from([("facility", "7".to_owned())]);
        assert_eq!(
            fill("/api/facilities/{facility}/complete", &ids).unwrap(),
            "/api/facilities/7/complete"
        );
        assert_eq!(
            fill("/api/violations/{violation}", &ids).unwrap_err(),
            "no id for {violation}"
        );
        assert!(served("/api/health"));
        assert!(!served("/api/no-such-endpoint?x=1"));
    }
}
