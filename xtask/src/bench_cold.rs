//! `xtask bench-cold <lambda-dir> <report.md>`: every function's package size and cold start
//! (`./dev bench-cold`, which builds the packages with `make lambda` and writes
//! docs/BENCHMARKS_COLD_START.md).
//!
//! - Package: each `<lambda-dir>/<arch>/<function>/bootstrap` (the Makefile's `sam build`
//!   output, `LAMBDA_LTO=false` as deployed) zipped as Lambda takes it (deflate), per arch.
//! - Cold start: the x86_64 bootstrap started as Lambda starts it, against a runtime-API stub
//!   of this process (`AWS_LAMBDA_RUNTIME_API`): init is the time from the process start to
//!   its first `GET /runtime/invocation/next` (Lambda's init phase), the first event the time
//!   from handing it the event to its answer (`/response` or `/error`), which includes the
//!   first database connect. Median of [`STARTS`] starts per function. What init did is the
//!   function's own `execution environment ready` log line (`lambda::InitSteps`).
//!
//! Events: an HTTP function gets API Gateway's event for a GET of its first route (ids filled
//! from the database), an SQS-triggered one an empty batch, a directly invoked one a JSON
//! string its event type rejects (answered as an error without work); `migrate` accepts any
//! event, so its first event is not sent.

use crate::bench::median;
use crate::serve;
use anyhow::{Context as _, bail};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stormwater::api::routes;
use tokio::sync::oneshot;

/// Starts measured per function.
const STARTS: usize = 7;
/// Targets: the zipped package, and init without the first database connect.
const MAX_PACKAGE_MB: f64 = 10.0;
const MAX_INIT_MS: f64 = 50.0;
/// Functions an SQS event source mapping invokes (template.yaml).
const SQS_FUNCTIONS: &[&str] = &[
    "sync-import",
    "sync-finalize",
    "sync-finalize-part",
    "alert-dispatch",
];

/// What the stub hands out and what it heard back, for one start.
struct Invocation {
    event: Value,
    given: bool,
    next: Option<oneshot::Sender<Instant>>,
    answer: Option<oneshot::Sender<Answer>>,
}

#[derive(Debug)]
struct Answer {
    at: Instant,
    /// `response`, `error` or `init error`.
    kind: &'static str,
    body: String,
}

type Slot = Arc<Mutex<Option<Invocation>>>;

async fn next(State(slot): State<Slot>) -> axum::response::Response {
    let event = {
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(inv) if !inv.given => {
                inv.given = true;
                if let Some(tx) = inv.next.take() {
                    let _ = tx.send(Instant::now());
                }
                Some(inv.event.clone())
            }
            _ => None,
        }
    };
    match event {
        // One event per start: the second `next` waits until the process is stopped.
        None => std::future::pending().await,
        Some(event) => axum::response::Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", "cold-start-1")
            .header(
                "lambda-runtime-deadline-ms",
                (chrono::Utc::now().timestamp_millis() + 60_000).to_string(),
            )
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:cold-start",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(axum::body::Body::from(event.to_string()))
            .unwrap_or_default(),
    }
}

fn answered(slot: &Slot, kind: &'static str, body: String) -> StatusCode {
    let tx = slot
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .and_then(|inv| inv.answer.take());
    if let Some(tx) = tx {
        let _ = tx.send(Answer {
            at: Instant::now(),
            kind,
            body,
        });
    }
    StatusCode::ACCEPTED
}

async fn response(
    State(slot): State<Slot>,
    UrlPath(_id): UrlPath<String>,
    body: String,
) -> StatusCode {
    answered(&slot, "response", body)
}

async fn error(
    State(slot): State<Slot>,
    UrlPath(_id): UrlPath<String>,
    _h: HeaderMap,
    body: String,
) -> StatusCode {
    answered(&slot, "error", body)
}

async fn init_error(State(slot): State<Slot>, body: String) -> StatusCode {
    answered(&slot, "init error", body)
}

/// One start's numbers.
#[derive(Debug, Clone)]
struct Start {
    init_ms: f64,
    first_ms: Option<f64>,
    answer: String,
    steps: String,
}

/// One function's measurements.
struct Function {
    name: String,
    /// Zipped package bytes per architecture, and the x86_64 binary's bytes.
    zipped: Vec<(String, u64)>,
    binary: u64,
    starts: Vec<Start>,
    event: String,
}

fn zipped_size(bootstrap: &Path) -> anyhow::Result<u64> {
    use std::io::Write as _;
    let bytes = std::fs::read(bootstrap)?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(&bytes)?;
    Ok(zip.finish()?.into_inner().len() as u64)
}

/// The first event of `function` and a description of it.
async fn first_event(
    function: &str,
    ids: &HashMap<&str, String>,
) -> anyhow::Result<(Value, String)> {
    if SQS_FUNCTIONS.contains(&function) {
        return Ok((json!({ "Records": [] }), "an empty SQS batch".into()));
    }
    let Some(f) = routes::function(function) else {
        return Ok((
            json!("cold-start probe"),
            "a JSON string (rejected by its event type)".into(),
        ));
    };
    let route = f
        .routes
        .iter()
        .find(|r| r.method == "GET")
        .unwrap_or(&f.routes[0]);
    let id = ids
        .iter()
        .filter(|(prefix, _)| route.path.starts_with(**prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map_or("1", |(_, id)| id.as_str());
    let path = route.path.replace("{id}", id);
    let parts = axum::http::Request::builder()
        .method(route.method)
        .uri(&path)
        .header("host", "127.0.0.1")
        .body(())?
        .into_parts()
        .0;
    let routed = serve::route(route.method, &path)
        .map_err(|_| anyhow::anyhow!("{function}: {path} does not route"))?;
    let peer: SocketAddr = "127.0.0.1:40000".parse()?;
    let event = serve::event(&parts, b"", &routed, peer, peer, 1)
        .map_err(|e| anyhow::anyhow!("{function}: event for {path}: {e:?}"))?;
    Ok((event, format!("{} {path}", route.method)))
}

/// Starts `bootstrap` once with `event`.
async fn start_once(
    slot: &Slot,
    api: SocketAddr,
    function: &str,
    bootstrap: &Path,
    event: &Value,
    log: &Path,
) -> anyhow::Result<Start> {
    let (next_tx, next_rx) = oneshot::channel();
    let (answer_tx, answer_rx) = oneshot::channel();
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(Invocation {
        event: event.clone(),
        given: function == "migrate",
        next: Some(next_tx),
        answer: Some(answer_tx),
    });
    let mut cmd = Command::new(bootstrap);
    cmd.env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log)?)
        .stderr(std::fs::File::create(log.with_extension("err"))?);
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bootstrap.display()))?;
    let result = async {
        let init_end = if function == "migrate" {
            // Its first event is not sent: init ends at its first `next`, seen as the log line.
            wait_ready(log, Duration::from_secs(10)).await?;
            Instant::now()
        } else {
            tokio::time::timeout(Duration::from_secs(10), next_rx)
                .await
                .context("no GET /next within 10 s")??
        };
        let (first_ms, answer) = if function == "migrate" {
            (None, "not sent".to_owned())
        } else {
            let a = tokio::time::timeout(Duration::from_secs(60), answer_rx)
                .await
                .context("no answer within 60 s")??;
            let what = match a.kind {
                "response" => serde_json::from_str::<Value>(&a.body)
                    .ok()
                    .and_then(|v| v["statusCode"].as_u64())
                    .map_or("response".to_owned(), |s| format!("HTTP {s}")),
                kind => {
                    let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
                    format!("{kind} ({})", v["errorType"].as_str().unwrap_or("?"))
                }
            };
            (Some((a.at - init_end).as_secs_f64() * 1000.0), what)
        };
        anyhow::Ok((init_end, first_ms, answer))
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (init_end, first_ms, answer) = result.with_context(|| {
        format!(
            "{function}: {}",
            std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
        )
    })?;
    Ok(Start {
        init_ms: (init_end - t0).as_secs_f64() * 1000.0,
        first_ms,
        answer,
        steps: ready_steps(log).unwrap_or_default(),
    })
}

/// The `steps` of the `execution environment ready` line in the function's JSON log.
fn ready_steps(log: &Path) -> Option<String> {
    std::fs::read_to_string(log).ok()?.lines().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        let fields = &v["fields"];
        (fields["message"] == "execution environment ready")
            .then(|| fields["steps"].as_str().unwrap_or_default().to_owned())
    })
}

async fn wait_ready(log: &Path, within: Duration) -> anyhow::Result<()> {
    let t0 = Instant::now();
    while ready_steps(log).is_none() {
        if t0.elapsed() > within {
            bail!("no `execution environment ready` line within {within:?}");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(())
}

/// Ids for the routes' `{id}`, from the database of `DATABASE_URL`: a violation event's for
/// `/api/violations/…`, a sync run's for `/api/sync/runs/…`, a canonical facility's otherwise.
async fn ids() -> anyhow::Result<HashMap<&'static str, String>> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let mut out = HashMap::new();
    for (prefix, sql) in [
        (
            "/api/violations/",
            "select min(id)::text from violation_event",
        ),
        ("/api/sync/runs/", "select max(id)::text from sync_run"),
        (
            "",
            "select min(id)::text from facility where merged_into is null",
        ),
    ] {
        let id: Option<String> = sqlx::query_scalar(sql).fetch_one(&pool).await?;
        out.insert(prefix, id.unwrap_or_else(|| "1".into()));
    }
    pool.close().await;
    Ok(out)
}

/// Measures every function of `<lambda_dir>/x86_64` and writes the report.
pub async fn run(lambda_dir: &Path, report: &Path) -> anyhow::Result<()> {
    let x86 = lambda_dir.join("x86_64");
    let mut names: Vec<String> = std::fs::read_dir(&x86)
        .with_context(|| format!("{} (./dev bench-cold builds it)", x86.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("bootstrap").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no bootstrap under {}", x86.display());
    }
    let slot: Slot = Arc::default();
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(slot.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ids = ids().await?;
    let logs = PathBuf::from(".dev/bench-cold");
    std::fs::create_dir_all(&logs)?;
    let mut functions = Vec::new();
    for name in &names {
        let bootstrap = x86.join(name).join("bootstrap");
        let mut zipped = Vec::new();
        for arch in ["arm64", "x86_64"] {
            let b = lambda_dir.join(arch).join(name).join("bootstrap");
            if b.is_file() {
                zipped.push((arch.to_owned(), zipped_size(&b)?));
            }
        }
        let (event, what) = first_event(name, &ids).await?;
        let mut starts = Vec::new();
        // One unmeasured start first: the binary into the page cache, as a warm host has it.
        for i in 0..=STARTS {
            let s = start_once(
                &slot,
                api,
                name,
                &bootstrap,
                &event,
                &logs.join(format!("{name}.log")),
            )
            .await?;
            if i > 0 {
                starts.push(s);
            }
        }
        let f = Function {
            name: name.clone(),
            zipped,
            binary: std::fs::metadata(&bootstrap)?.len(),
            starts,
            event: what,
        };
        println!(
            "  {name}: init {:.1} ms, first event {:.1} ms ({})",
            median(f.starts.iter().map(|s| s.init_ms).collect()),
            median(f.starts.iter().filter_map(|s| s.first_ms).collect()),
            f.starts[0].answer
        );
        functions.push(f);
    }
    std::fs::write(report, write_report(&functions)?)?;
    println!("report written to {}", report.display());
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn write_report(functions: &[Function]) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    let archs: Vec<String> = functions
        .first()
        .map(|f| f.zipped.iter().map(|(a, _)| a.clone()).collect())
        .unwrap_or_default();
    writeln!(out, "# Cold start and package size\n")?;
    writeln!(
        out,
        "Written by `./dev bench-cold` (`xtask bench-cold`) on {}: {}. Packages: `make lambda` \
         (the `sam build` path: `cargo lambda build --release`, `LAMBDA_LTO=false`), each \
         `bootstrap` zipped with deflate as Lambda takes it; built for {}. Cold starts: the \
         x86_64 bootstrap started {STARTS} times (after one unmeasured start) against a \
         Lambda runtime-API stub in the benchmark's process, with the local stack's \
         configuration (`.dev/env`: Postgres, Redis and the S3/SQS emulator on loopback; the \
         database URL from the environment, so no Secrets Manager read). Targets: zipped \
         package ≤ {MAX_PACKAGE_MB} MB, init ≤ {MAX_INIT_MS} ms without the first database \
         connect (every pool connects on first use, so init never connects).\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        crate::bench::machine(),
        archs.join(" and "),
    )?;
    writeln!(
        out,
        "- **init**: process start to its first `GET /2018-06-01/runtime/invocation/next`, \
         Lambda's init phase (for `migrate`, to its `execution environment ready` log line).\n\
         - **first event**: the event handed over to the function's answer: the handler's \
         work, with the first database connect where it reads the database.\n\
         - **init steps**: the function's own `execution environment ready` line \
         (`lambda::InitSteps`) of the median start: telemetry (the log subscriber), config \
         (environment, and secrets where an ARN is set), then the state an HTTP function keeps \
         (a lazy pool, the Redis client) or the sync context (a lazy pool, the AWS SDK config, \
         the S3 and SQS clients, the HTTP clients with their TLS roots, the cache).\n"
    )?;
    write!(out, "| function |")?;
    for a in &archs {
        write!(out, " package {a} (zip) |")?;
    }
    writeln!(
        out,
        " binary x86_64 | init median (min–max) | first event median (min–max) | first event, answer | init steps (median start) |"
    )?;
    writeln!(
        out,
        "|---|{}---|---|---|---|---|",
        "---|".repeat(archs.len())
    )?;
    let (mut over_size, mut over_init) = (Vec::new(), Vec::new());
    for f in functions {
        write!(out, "| `{}` |", f.name)?;
        for (_, bytes) in &f.zipped {
            write!(out, " {:.2} MB |", mb(*bytes))?;
            if mb(*bytes) > MAX_PACKAGE_MB {
                over_size.push(f.name.clone());
            }
        }
        let inits: Vec<f64> = f.starts.iter().map(|s| s.init_ms).collect();
        let firsts: Vec<f64> = f.starts.iter().filter_map(|s| s.first_ms).collect();
        let range = |v: &[f64]| {
            if v.is_empty() {
                "—".to_owned()
            } else {
                format!(
                    "{:.1} ({:.1}–{:.1})",
                    median(v.to_vec()),
                    v.iter().copied().fold(f64::INFINITY, f64::min),
                    v.iter().copied().fold(0.0, f64::max)
                )
            }
        };
        let init = median(inits.clone());
        if init > MAX_INIT_MS {
            over_init.push(f.name.clone());
        }
        let mut by_init = f.starts.clone();
        by_init.sort_by(|a, b| a.init_ms.total_cmp(&b.init_ms));
        let mid = &by_init[by_init.len() / 2];
        writeln!(
            out,
            " {:.2} MB | {} | {} | {}: {} | {} |",
            mb(f.binary),
            range(&inits),
            range(&firsts),
            f.event,
            mid.answer,
            mid.steps,
        )?;
    }
    writeln!(
        out,
        "\nTargets: package ≤ {MAX_PACKAGE_MB} MB: {}; init ≤ {MAX_INIT_MS} ms: {}.\n",
        if over_size.is_empty() {
            "MET for every function".to_owned()
        } else {
            format!("**MISSED** by {}", over_size.join(", "))
        },
        if over_init.is_empty() {
            "MET for every function".to_owned()
        } else {
            format!("**MISSED** by {}", over_init.join(", "))
        },
    )?;
    if !archs.iter().any(|a| a == "arm64") {
        writeln!(
            out,
            "No arm64 package was measured: this toolchain has no aarch64-unknown-linux-gnu \
             standard library (`./dev bench-cold` builds arm64 only when `rustup target list \
             --installed` lists it).\n"
        )?;
    }
    writeln!(
        out,
        "Not measured here: Lambda's own part of a cold start (downloading and unpacking the \
         package, starting the microVM), the Secrets Manager read a deployed function makes at \
         init (one HTTPS call), and arm64 start times (the arm64 binaries cannot run on this \
         x86_64 machine)."
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_is_read_from_a_json_log() {
        let dir = tempfile_dir();
        let log = dir.join("f.log");
        std::fs::write(
            &log,
            "{\"level\":\"INFO\",\"fields\":{\"message\":\"other\"}}\n\
             {\"level\":\"INFO\",\"fields\":{\"message\":\"execution environment ready\",\"steps\":\"config=0.100ms\",\"total_ms\":0.2}}\n",
        )
        .unwrap();
        assert_eq!(ready_steps(&log).as_deref(), Some("config=0.100ms"));
        std::fs::write(&log, "not json\n").unwrap();
        assert_eq!(ready_steps(&log), None);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("bench-cold-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_zipped_package_is_smaller_than_a_compressible_binary() {
        let d = tempfile_dir();
        let b = d.join("bootstrap");
        std::fs::write(&b, vec![0u8; 100_000]).unwrap();
        let z = zipped_size(&b).unwrap();
        assert!(z > 0 && z < 10_000, "{z}");
    }
}
