//! Test harness: each test gets its own database (migrated), its own bucket and queues on the
//! emulator and its own cache namespace, on the local stack that `./dev test` starts.

#![allow(dead_code)]

use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use stormwater::api::ApiState;
use stormwater::cache::Cache;
use stormwater::config::Config;
use stormwater::sync::Context;
use stormwater::sync::manifest::Source;
use stormwater::sync::runner::{self, Resources};
use stormwater::sync::stage::{self, StageRequest, StageSummary};
use stormwater::sync::wiring::Wiring;

pub struct Harness {
    pub ctx: Context,
    pub res: Resources,
    pub api: ApiState,
    pub prefix: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "t{}{}{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    ) + "-"
        + &name.replace('_', "-")
}

/// The real published files beside the checkout (`../shared/data`).
pub fn shared_data(rel: &str) -> PathBuf {
    let base = std::env::var("STORMWATER_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let p = base.join(rel);
    assert!(p.exists(), "missing shared data file {}", p.display());
    p
}

/// The 2019 portal export of the industrial facilities (36,338 records, one line each).
pub const PORTAL_2019: &str =
    "real/NAS-Stormwater-Tool/Industrial_Application_Specific_Data_2019-03-12.csv";

/// A sync of the industrial facilities dataset from `url` alone.
pub fn facilities(url: String) -> Vec<Source> {
    vec![Source {
        dataset: "smarts_industrial_facilities".into(),
        url,
        scope: None,
    }]
}

/// The header and the first `n` records of the 2019 portal file, as a file of their own.
pub fn first_records(n: usize) -> tempfile::NamedTempFile {
    use std::io::Write;
    let text = std::fs::read_to_string(shared_data(PORTAL_2019)).unwrap();
    let mut out = tempfile::NamedTempFile::new().unwrap();
    for line in text.lines().take(n + 1) {
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
    out
}

/// The checkout (the workspace root).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `template` (YAML text) through the SAM transform, as `./dev` does for template.yaml.
pub fn transformed(template: &str) -> Wiring {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, template).unwrap();
    let out = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/sam_transform.py"))
        .arg(&path)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("the SAM transform runs (.venv, installed by ./dev)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Wiring::from_json(std::str::from_utf8(&out.stdout).unwrap()).unwrap()
}

/// The columns of a published eSMR CSV, in order (the real 2025 header).
pub fn esmr_columns() -> Vec<String> {
    let header =
        std::fs::read_to_string(shared_data("real/stormwater-watch/esmr_columns_header.txt"))
            .expect("eSMR header");
    header
        .trim_start_matches('\u{feff}')
        .trim()
        .split(',')
        .map(|c| c.trim_matches('"').to_owned())
        .collect()
}

/// A fixture of this crate.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// What `generate` wrote (its MANIFEST.json).
#[derive(serde::Deserialize)]
pub struct Manifest {
    pub files: Vec<ManifestFile>,
}

#[derive(serde::Deserialize)]
pub struct ManifestFile {
    pub file: String,
    pub dataset: String,
    pub rows: i64,
    /// Of an eSMR yearly file: its sampling year, the part of the dataset it covers.
    #[serde(default)]
    pub scope: Option<String>,
    /// Of a next week's file (`next_week`): rows changed, added and removed against its base.
    #[serde(default)]
    pub delta: Option<Delta>,
}

#[derive(serde::Deserialize, Clone, Copy, Debug)]
pub struct Delta {
    pub changed: i64,
    pub added: i64,
    pub removed: i64,
}

impl ManifestFile {
    /// The scope it is synced as: the manifest's, else, of an eSMR file, the year its name
    /// carries (`esmr-analytical-export_year-2025.csv`).
    pub fn sync_scope(&self) -> Option<String> {
        self.scope.clone().or_else(|| {
            let year = self.file.split_once("_year-")?.1.get(..4)?;
            (self.dataset == "esmr" && year.bytes().all(|b| b.is_ascii_digit()))
                .then(|| year.to_owned())
        })
    }
}

impl Manifest {
    /// The (first) generated file of `dataset` under `dir`.
    pub fn path(&self, dir: &std::path::Path, dataset: &str) -> PathBuf {
        self.paths(dir, dataset)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no generated {dataset}"))
    }

    /// Every generated file of `dataset` under `dir` (eSMR: one per year), in manifest order.
    pub fn paths(&self, dir: &std::path::Path, dataset: &str) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter(|f| f.dataset == dataset)
            .map(|f| dir.join(&f.file))
            .collect()
    }

    /// Every generated file as a sync source (eSMR scoped to its year).
    pub fn sources(&self, dir: &std::path::Path) -> Vec<Source> {
        self.files
            .iter()
            .map(|f| Source {
                dataset: f.dataset.clone(),
                url: file_url(&dir.join(&f.file)),
                scope: f.sync_scope(),
            })
            .collect()
    }
}

/// Generated files in the exact official layouts (bench/`generate`, built by `./dev test`), of
/// eSMR the 2025 file only: tests that need eSMR's history call [`generate_with`].
pub fn generate(out: &std::path::Path, seed: u64, scale: &str) -> Manifest {
    generate_with(out, seed, scale, &["--esmr-years", "2025-2025"])
}

/// [`generate`] with `extra` arguments of `generate` instead of its one eSMR year (none: every
/// year, 2006 to 2026).
pub fn generate_with(out: &std::path::Path, seed: u64, scale: &str, extra: &[&str]) -> Manifest {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/generate");
    let status = std::process::Command::new(&bin)
        .arg("--out")
        .arg(out)
        .args(["--seed", &seed.to_string(), "--scale", scale])
        .args(extra)
        .arg("--real-dir")
        .arg(shared_data("real"))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{} (built by ./dev test): {e}", bin.display()));
    assert!(status.success());
    serde_json::from_str(&std::fs::read_to_string(out.join("MANIFEST.json")).unwrap()).unwrap()
}

/// The next weekly download of the generated files in `base` (`generate --next-week-of`).
pub fn next_week(base: &std::path::Path, out: &std::path::Path, seed: u64) -> Manifest {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/generate");
    let status = std::process::Command::new(&bin)
        .arg("--out")
        .arg(out)
        .args(["--seed", &seed.to_string()])
        .arg("--next-week-of")
        .arg(base)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{} (built by ./dev test): {e}", bin.display()));
    assert!(status.success());
    serde_json::from_str(&std::fs::read_to_string(out.join("MANIFEST.json")).unwrap()).unwrap()
}

/// Column values of a generated portal CSV, by header name (read with the csv crate, not ours).
pub fn column_values(path: &std::path::Path, columns: &[&str]) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| header.iter().position(|h| h == c).unwrap())
        .collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            idx.iter().map(|&i| rec[i].to_owned()).collect()
        })
        .collect()
}

pub fn file_url(p: &std::path::Path) -> String {
    format!("file://{}", p.display())
}

/// A new harness; `chunk_rows` overrides the staging chunk size.
pub async fn harness(name: &str, chunk_rows: Option<usize>) -> Harness {
    let base = Config::from_env()
        .expect("run the tests through ./dev test: DATABASE_URL etc. are not set");
    let prefix = unique(name);
    let db = prefix.replace('-', "_");
    let base_url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&base_url)
        .await
        .expect("connect to Postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {db}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let url = format!(
        "{}/{db}",
        base_url
            .rsplit_once('/')
            .expect("database URL has a path")
            .0
    );
    let mut cfg = base.with_database_url(url);
    cfg.db_max_connections = 8;
    if let Some(n) = chunk_rows {
        cfg.chunk_rows = n;
    }
    let pool = stormwater::db::pool(&cfg).expect("pool");
    stormwater::db::migrate(&pool)
        .await
        .expect("migrations apply");
    stormwater::repo::benchmarks::load(&pool)
        .await
        .expect("reference benchmarks load");
    let mut ctx = stormwater::lambda::context(cfg).await.expect("context");
    let wiring = std::sync::Arc::new(
        stormwater::sync::wiring::Wiring::from_config(&ctx.cfg)
            .expect("template wiring (./dev test writes it)"),
    );
    let res = runner::ensure_resources(&ctx.s3, &ctx.sqs, &prefix, wiring, Some(2))
        .await
        .expect("bucket and queues");
    ctx.cfg = ctx
        .cfg
        .clone()
        .with_aws_resources(&res.bucket, &res.import_queue_url, &res.finalize_queue_url)
        .with_finalize_part_queue(&res.finalize_part_queue_url)
        .with_stage_file_queue(&res.stage_file_queue_url)
        .with_alert_queue(Some(res.alert_queue_url.clone()));
    ctx.cache = Cache::with_namespace(ctx.cfg.redis_url.as_deref(), &prefix);
    let api = ApiState::new(
        ctx.pool.clone(),
        Cache::with_namespace(ctx.cfg.redis_url.as_deref(), &prefix),
        stormwater::api::WriteSettings::from_config(&ctx.cfg),
    );
    Harness {
        ctx,
        res,
        api,
        prefix,
    }
}

impl Harness {
    pub fn pool(&self) -> &PgPool {
        &self.ctx.pool
    }

    /// Opts this test in to webhooks reaching `hosts` (the `OUTBOUND_ALLOW_HOSTS` syntax, e.g.
    /// `127.0.0.1` for a local receiver) when subscriptions are created and when alerts are
    /// delivered; `""` goes back to production's public-addresses-only.
    pub fn allow_outbound(&mut self, hosts: &str) {
        let policy: stormwater::outbound::Policy = hosts.parse().expect("an allow-list");
        self.ctx.webhooks =
            stormwater::outbound::Client::new(policy.clone(), self.ctx.cfg.webhook_timeout)
                .expect("webhook client");
        self.ctx.cfg.outbound = policy.clone();
        self.api.writes.outbound = policy;
    }

    /// The URL of this test's database (for processes the test starts).
    pub async fn database_url(&self) -> String {
        let db: String = sqlx::query_scalar("select current_database()")
            .fetch_one(self.pool())
            .await
            .unwrap();
        let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
        format!(
            "{}/{db}",
            base.rsplit_once('/').expect("a URL with a path").0
        )
    }

    /// Runs sync-stage on `sources`, then plays the event source mappings until the queues are empty.
    pub async fn sync(&self, sources: Vec<Source>) -> StageSummary {
        let summary = self.stage(sources).await;
        self.drain().await;
        summary
    }

    /// Runs sync-stage on `sources` and plays the stage-file mapping until every file is staged
    /// (the chunks wait on the import queue); returns each file's outcome.
    pub async fn stage(&self, sources: Vec<Source>) -> StageSummary {
        self.stage_request(StageRequest {
            trigger: "test".into(),
            sources: Some(sources),
            force: false,
        })
        .await
    }

    /// [`Harness::stage`] for a whole request (the default manifest when it names no sources).
    pub async fn stage_request(&self, request: StageRequest) -> StageSummary {
        let planned = stage::run(&self.ctx, request).await.expect("stage runs");
        self.drain_target(runner::Target::StageFile).await;
        let files = stage::file_outcomes(self.pool(), planned.run_id)
            .await
            .expect("file outcomes");
        StageSummary {
            run_id: planned.run_id,
            files,
        }
    }

    /// Plays the mappings of one target (their queues only) until they are empty.
    pub async fn drain_target(&self, target: runner::Target) -> usize {
        let mappings: Vec<runner::Mapping> = runner::mappings(&self.res, 0)
            .expect("mappings")
            .into_iter()
            .filter(|m| m.target == target)
            .collect();
        runner::drain(&self.ctx, &mappings, Duration::from_secs(300))
            .await
            .expect("queue drains")
    }

    pub async fn drain(&self) -> usize {
        runner::drain(
            &self.ctx,
            &runner::mappings(&self.res, 0).expect("mappings"),
            Duration::from_secs(300),
        )
        .await
        .expect("queues drain")
    }

    /// Takes one chunk message off the import queue (left in flight, not deleted), as a worker would.
    pub async fn receive_chunk_message(&self) -> String {
        let received = self
            .ctx
            .sqs
            .receive_message()
            .queue_url(&self.res.import_queue_url)
            .max_number_of_messages(1)
            .send()
            .await
            .expect("receive from the import queue");
        received.messages()[0]
            .body()
            .expect("message body")
            .to_owned()
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn json(&self, sql: &str) -> Value {
        sqlx::query_scalar::<_, Value>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Sends a GET through the real handler of `function` (as API Gateway would).
    pub async fn get(&self, function: &str, path_and_query: &str) -> (u16, Value, Option<String>) {
        let uri = format!("https://api.test{path_and_query}");
        let req = lambda_http::http::Request::builder()
            .method("GET")
            .uri(&uri)
            .body(lambda_http::Body::Empty)
            .expect("request");
        let query: std::collections::HashMap<String, Vec<String>> = req
            .uri()
            .query()
            .map(|q| {
                let mut m: std::collections::HashMap<String, Vec<String>> = Default::default();
                for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                    m.entry(k.into_owned()).or_default().push(v.into_owned());
                }
                m
            })
            .unwrap_or_default();
        use lambda_http::RequestExt;
        let req = req.with_query_string_parameters(query);
        self.call(function, req).await
    }

    /// `GET path_and_query` through `function` (with an API key, when given), the response as
    /// the handler made it (for bodies that are not JSON: a ZIP, an Atom feed).
    pub async fn raw(
        &self,
        function: &str,
        path_and_query: &str,
        api_key: Option<&str>,
    ) -> lambda_http::Response<lambda_http::Body> {
        let mut b = lambda_http::http::Request::builder()
            .method("GET")
            .uri(format!("https://api.test{path_and_query}"))
            .header("host", "127.0.0.1:9000");
        if let Some(k) = api_key {
            b = b.header(stormwater::auth::API_KEY_HEADER, k);
        }
        let req = b.body(lambda_http::Body::Empty).expect("request");
        let mut query: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()) {
            query
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        use lambda_http::RequestExt;
        let req = req.with_query_string_parameters(query);
        stormwater::api::routes::function(function)
            .unwrap_or_else(|| panic!("no HTTP function {function}"))
            .handle(&self.api, req)
            .await
    }

    /// Sends a request with a JSON body (and an API key, when given) through `function`.
    pub async fn send(
        &self,
        function: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        api_key: Option<&str>,
    ) -> (u16, Value) {
        let mut b = lambda_http::http::Request::builder()
            .method(method)
            .uri(format!("https://api.test{path}"))
            .header("content-type", "application/json");
        if let Some(k) = api_key {
            b = b.header(stormwater::auth::API_KEY_HEADER, k);
        }
        let req = b
            .body(match body {
                Some(v) => lambda_http::Body::Text(v.to_string()),
                None => lambda_http::Body::Empty,
            })
            .expect("request");
        let (status, body, _) = self.call(function, req).await;
        (status, body)
    }

    /// Sends a write as a reviewer would (a fresh reviewer key) and insists it was accepted;
    /// returns the answer's body.
    pub async fn as_reviewer(
        &self,
        function: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> Value {
        let key = stormwater::auth::create_key(self.pool(), "reviewer", "test")
            .await
            .unwrap();
        let (code, body) = self
            .send(function, method, path, Some(body), Some(&key))
            .await;
        assert_eq!(code, 200, "{method} {path}: {body}");
        body
    }

    /// Sets one violation event's review status (`PATCH /api/violations/{id}/status`).
    pub async fn review(&self, event: i64, status: &str) -> Value {
        let path = format!("/api/violations/{event}/status");
        let body = serde_json::json!({ "status": status });
        self.as_reviewer("api-violation-status", "PATCH", &path, body)
            .await
    }

    pub async fn call(
        &self,
        function: &str,
        req: lambda_http::Request,
    ) -> (u16, Value, Option<String>) {
        let resp = stormwater::api::routes::function(function)
            .unwrap_or_else(|| panic!("no HTTP function {function}"))
            .handle(&self.api, req)
            .await;
        let status = resp.status().as_u16();
        let cache = resp
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match resp.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
            other => panic!("unexpected body {other:?}"),
        };
        (status, body, cache)
    }
}

/// A minimal SMTP server on 127.0.0.1: accepts any number of sessions and keeps each
/// session's transcript (commands and message text).
pub async fn smtp_sink() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sessions: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let store = sessions.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let mut transcript = String::new();
                let mut line = String::new();
                let _ = write.write_all(b"220 localhost\r\n").await;
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    transcript.push_str(&line);
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 localhost\r\n",
                        "DATA" => {
                            let _ = write.write_all(b"354 go\r\n").await;
                            loop {
                                line.clear();
                                if reader.read_line(&mut line).await.unwrap_or(0) == 0
                                    || line == ".\r\n"
                                {
                                    break;
                                }
                                transcript.push_str(&line);
                            }
                            b"250 OK\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 OK\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
                store.lock().expect("lock").push(transcript);
            });
        }
    });
    (port, sessions)
}

/// Keeps a generated block of a document in step with the numbers a test computed: the text
/// between `<!-- {name} -->` and `<!-- /{name} -->` in `doc` (relative to the workspace root)
/// must be `text`, or the test fails naming the block; with `STORMWATER_WRITE_DOCS=1` the block is
/// rewritten instead (then review and commit the diff).
pub fn doc_block(doc: &str, name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(doc);
    let current = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{doc}: {e}"));
    let (open, close) = (format!("<!-- {name} -->\n"), format!("<!-- /{name} -->"));
    let start = current
        .find(&open)
        .unwrap_or_else(|| panic!("{doc} has no block {open:?}"))
        + open.len();
    let end = start
        + current[start..]
            .find(&close)
            .unwrap_or_else(|| panic!("{doc}: block {name} is not closed"));
    let want = format!("{}\n", text.trim_end());
    if current[start..end] == want {
        return;
    }
    if std::env::var("STORMWATER_WRITE_DOCS").as_deref() == Ok("1") {
        let updated = format!("{}{want}{}", &current[..start], &current[end..]);
        std::fs::write(&path, updated).unwrap_or_else(|e| panic!("writing {doc}: {e}"));
        return;
    }
    panic!(
        "{doc}, block {name}, no longer says what the code computes \
         (rerun with STORMWATER_WRITE_DOCS=1 to rewrite it):\n--- {doc}\n{}\n--- computed\n{want}",
        &current[start..end]
    );
}

/// `12,345`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}
