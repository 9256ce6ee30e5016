//! Database trouble and facts served wrong (issue 11, findings 7 and 8), against the local
//! stack.
//!
//! Database trouble is staged with a TCP proxy in front of the shared Postgres that the test
//! controls: `down` (connections refused, live ones cut), `restart` (every live connection gets
//! the `FATAL 57P01` a restarting server sends, then is closed; new connections work) and
//! `vanish` (live connections stop answering without being closed, as when a server host fails
//! over or a NAT drops its state; new connections work). The API state under test reaches the
//! database only through the proxy, with the pool `db::pool` builds from the typed config. The
//! local server (`xtask serve`) is loaded with 16 concurrent clients.
//!
//! Facts: list cursors are tried on every other list, altered and forged; the canonical
//! facilities of the sample `./dev up` syncs (the real 2019 portal file) are checked field by
//! field against the file and against this file's own derivation from the links, after a full
//! run, an incremental one and `migrate`; the numbers of that run are docs/LINKING.md's.

mod support;

use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stormwater::api::ApiState;
use stormwater::cache::Cache;
use stormwater::config::Config;
use stormwater::sync::manifest::Source;
use support::{Harness, PORTAL_2019, facilities, file_url, first_records, harness, shared_data};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

// ---------------------------------------------------------------------------------------------
// A controllable TCP proxy in front of Postgres.
// ---------------------------------------------------------------------------------------------

/// What the proxy does to the connections it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Forward everything.
    None,
    /// Close every live connection at once (a crash or `pg_ctl stop`).
    Cut,
    /// Send each live connection `FATAL 57P01 terminating connection due to administrator
    /// command`, as a server shutting down for a restart does, then close it.
    Restart,
    /// Stop forwarding on every live connection but keep it open: the peer never answers.
    Vanish,
}

/// A proxy on 127.0.0.1 forwarding to `upstream`. Connections made after a fault are served
/// normally (unless the proxy is [`Proxy::down`]); a fault applies to the connections alive
/// when it is raised.
struct Proxy {
    port: u16,
    upstream: String,
    /// Every connection task watches this: `(generation, fault)`; a connection reacts to a
    /// fault raised after it was opened.
    faults: watch::Sender<(u64, Fault)>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Connections accepted so far.
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: &str) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let (faults, _) = watch::channel((0, Fault::None));
        let proxy = Arc::new(Self {
            port,
            upstream: upstream.to_owned(),
            faults,
            listener: Mutex::new(None),
            accepted: Default::default(),
        });
        proxy.serve(listener);
        proxy
    }

    fn serve(self: &Arc<Self>, listener: TcpListener) {
        let me = self.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                me.accepted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let upstream = me.upstream.clone();
                let mut faults = me.faults.subscribe();
                let born = faults.borrow_and_update().0;
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    carry(client, server, &mut faults, born).await;
                });
            }
        });
        *self.listener.lock().unwrap() = Some(task);
    }

    /// The database URL of `base` (a `postgres://…/db` URL) through this proxy.
    fn url(&self, base: &str) -> String {
        let (scheme_host, db) = base.rsplit_once('/').expect("a URL with a path");
        let (scheme, rest) = scheme_host.split_once("://").expect("scheme");
        let (user, _) = rest.split_once('@').expect("user@host");
        format!("{scheme}://{user}@127.0.0.1:{}/{db}", self.port)
    }

    fn raise(&self, fault: Fault) {
        self.faults.send_modify(|(g, f)| {
            *g += 1;
            *f = fault;
        });
    }

    /// Postgres stopped: nothing listens on the port, live connections are cut.
    async fn down(&self) {
        let task = self.listener.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.raise(Fault::Cut);
        // Let the connection tasks see it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Postgres back on the same port.
    async fn up(self: &Arc<Self>) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebinding the proxy port: {e}"),
            }
        };
        self.serve(listener);
    }

    async fn fault(&self, fault: Fault) {
        self.raise(fault);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `ErrorResponse` a backend sends when the server shuts down under it.
fn admin_shutdown_message() -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "57P01"),
        (b'M', "terminating connection due to administrator command"),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    msg.extend(fields);
    msg
}

/// Forwards both ways until either side closes or a fault raised after `born` says otherwise.
async fn carry(
    mut client: TcpStream,
    mut server: TcpStream,
    faults: &mut watch::Receiver<(u64, Fault)>,
    born: u64,
) {
    let fault = loop {
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            changed = faults.changed() => {
                if changed.is_err() {
                    return;
                }
                let (generation, fault) = *faults.borrow_and_update();
                if generation > born && fault != Fault::None {
                    break fault;
                }
            }
        }
    };
    match fault {
        Fault::None | Fault::Cut => {}
        Fault::Restart => {
            let _ = client.write_all(&admin_shutdown_message()).await;
            let _ = client.shutdown().await;
        }
        Fault::Vanish => {
            // Hold both sockets open and never forward another byte.
            let _keep = (client, server);
            std::future::pending::<()>().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests through the real handlers.
// ---------------------------------------------------------------------------------------------

/// `host:port` of the shared Postgres (from `DATABASE_URL`).
fn postgres_addr() -> String {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let rest = url.split_once("://").expect("scheme").1;
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    host.split('/').next().expect("host").to_owned()
}

/// One answer of a handler.
#[derive(Debug)]
struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: Value,
    elapsed: Duration,
}

/// `GET path_and_query` through the handler of `function` with `state`, as API Gateway would.
async fn get(state: &ApiState, function: &str, path_and_query: &str) -> Reply {
    use lambda_http::RequestExt;
    let req = lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("https://api.test{path_and_query}"))
        .body(lambda_http::Body::Empty)
        .expect("request");
    let mut query: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()) {
        query
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    let req = req.with_query_string_parameters(query);
    let function = stormwater::api::routes::function(function)
        .unwrap_or_else(|| panic!("no HTTP function {function}"));
    let started = Instant::now();
    let resp = function.handle(state, req).await;
    let elapsed = started.elapsed();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
        other => panic!("unexpected body {other:?}"),
    };
    Reply {
        status: resp.status().as_u16(),
        retry_after,
        body,
        elapsed,
    }
}

/// The API state of a Lambda environment whose database URL is `url`: the pool built by
/// `db::pool` from the typed config (`DB_MAX_CONNECTIONS`, `DB_ACQUIRE_TIMEOUT_MS` as set in the
/// environment, defaults otherwise), the cache in this test's namespace or none.
fn state_for(url: String, connections: u32, cache_namespace: Option<&str>) -> ApiState {
    let mut cfg = Config::from_env().expect("config").with_database_url(url);
    cfg.db_max_connections = connections;
    ApiState::new(
        stormwater::db::pool(&cfg).expect("pool"),
        match cache_namespace {
            Some(ns) => Cache::with_namespace(cfg.redis_url.as_deref(), ns),
            None => Cache::disabled(),
        },
        stormwater::api::WriteSettings::from_config(&cfg),
    )
}

/// A harness with the first 400 records of the 2019 file synced (facilities, links, events).
async fn small_stack(name: &str) -> (Harness, tempfile::NamedTempFile) {
    let h = harness(name, None).await;
    let file = first_records(400);
    h.sync(facilities(file_url(file.path()))).await;
    (h, file)
}

fn assert_unavailable(r: &Reply, what: &str, within: Duration) {
    assert_eq!(r.status, 503, "{what}: {r:?}");
    assert_eq!(r.retry_after.as_deref(), Some("2"), "{what}: Retry-After");
    assert!(
        r.elapsed < within,
        "{what}: answered after {:?}, expected within {within:?}",
        r.elapsed
    );
}

// ---------------------------------------------------------------------------------------------
// Finding 7: database trouble.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_down_every_route_answers_503_with_retry_after_quickly_then_recovers() {
    let (h, _file) = small_stack("db-down").await;
    let proxy = Proxy::start(&postgres_addr()).await;
    let url = proxy.url(&h.database_url().await);
    let state = state_for(url.clone(), 2, Some(&format!("{}-down", h.prefix)));
    let facility = h
        .scalar_i64("select min(id) from facility where merged_into is null")
        .await;
    let cached = "/api/facilities?county=Del%20Norte&limit=5";
    let routes = [
        (
            "api-facilities",
            "/api/facilities?county=Humboldt&limit=3".to_owned(),
        ),
        ("api-facility", format!("/api/facilities/{facility}")),
        (
            "api-facility-complete",
            format!("/api/facilities/{facility}/complete"),
        ),
        ("api-violations", "/api/violations?limit=5".to_owned()),
        ("api-dashboard", "/api/dashboard".to_owned()),
        ("sync-status", "/api/sync/status".to_owned()),
        (
            "api-facilities-geojson",
            "/api/facilities.geojson?county=Humboldt".to_owned(),
        ),
    ];
    let ok = get(&state, "api-facilities", cached).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let health = get(&state, "api-health", "/api/health").await;
    assert_eq!(health.status, 200, "{health:?}");

    proxy.down().await;
    // The budget: the acquire timeout (DB_ACQUIRE_TIMEOUT_MS, 1.5 s by default) and a margin
    // for a loaded machine. Before the fix these took the 5 s acquire timeout and were 500s.
    let within = Duration::from_millis(2_500);
    let health = get(&state, "api-health", "/api/health").await;
    assert_unavailable(&health, "health", within);
    assert_eq!(health.body["database"], "unavailable");
    assert_eq!(health.body["status"], "unavailable");
    for (function, path) in &routes {
        let r = get(&state, function, path).await;
        assert_unavailable(&r, path, within);
        assert_eq!(r.body["error"]["code"], "service_unavailable", "{path}");
        assert_eq!(r.body["error"]["status"], 503, "{path}");
        println!("{path}: 503 after {:?}", r.elapsed);
    }
    // What the cache already holds is still served.
    let hit = get(&state, "api-facilities", cached).await;
    assert_eq!((hit.status, &hit.body), (200, &ok.body));

    // Many callers of one uncached key at once (the in-process flight, and the Redis lock):
    // each is answered within two failed attempts, not one attempt per caller ahead of it.
    let state = Arc::new(state);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            get(&state, "api-violations", "/api/violations?limit=7").await
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert_unavailable(&r, "stampede", Duration::from_millis(4_500));
    }
    println!(
        "12 concurrent callers of one key: all 503 after {:?}",
        started.elapsed()
    );
    // Another Lambda environment (its own process tier) waiting on the Redis lock of a key
    // whose computing environment fails stops waiting when the lock is let go.
    let other = state_for(url.clone(), 2, Some(&format!("{}-down", h.prefix)));
    let (a, b) = tokio::join!(
        get(&state, "api-violations", "/api/violations?limit=8"),
        get(&other, "api-violations", "/api/violations?limit=8")
    );
    assert_unavailable(&a, "first environment", Duration::from_millis(4_500));
    assert_unavailable(&b, "second environment", Duration::from_millis(4_500));

    proxy.up().await;
    for (function, path) in &routes {
        let r = get(&state, function, path).await;
        assert_eq!(r.status, 200, "{path} after the database is back: {r:?}");
    }
    let health = get(&state, "api-health", "/api/health").await;
    assert_eq!((health.status, health.retry_after), (200, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_left_over_from_a_restart_never_fail_a_later_request() {
    let (h, _file) = small_stack("db-restart").await;
    let proxy = Proxy::start(&postgres_addr()).await;
    let state = Arc::new(state_for(proxy.url(&h.database_url().await), 4, None));
    // Fill the pool: concurrent requests each hold a connection.
    let warm = |state: Arc<ApiState>| async move {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                get(
                    &state,
                    "api-facilities",
                    &format!("/api/facilities?limit={}", 10 + i),
                )
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().status, 200);
        }
        assert!(state.pool.size() >= 2, "pool holds {}", state.pool.size());
    };
    for fault in [Fault::Restart, Fault::Cut, Fault::Vanish] {
        warm(state.clone()).await;
        let pooled = state.pool.size();
        proxy.fault(fault).await;
        // Much later, as far as the pool is concerned: the next requests find only dead
        // connections in it.
        for i in 0..6 {
            let r = get(
                &state,
                "api-facilities",
                &format!("/api/facilities?limit={}", 30 + i),
            )
            .await;
            assert_eq!(
                r.status, 200,
                "{fault:?} with {pooled} pooled connections, request {i}: {r:?}"
            );
            println!("{fault:?}, {pooled} pooled, request {i}: {:?}", r.elapsed);
            // One unanswered ping condemns every connection idle since: a pool of four dead
            // ones costs one PING_TIMEOUT, not one per connection (at least three, 750 ms, on
            // the first request, which met the 1.5 s acquire timeout on a loaded machine).
            assert!(
                r.elapsed < stormwater::db::PING_TIMEOUT * 3,
                "{fault:?} with {pooled} pooled connections, request {i}: {:?}",
                r.elapsed
            );
        }
        let health = get(&state, "api-health", "/api/health").await;
        assert_eq!(health.status, 200, "{fault:?}: {health:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_and_an_admin_shutdown_are_503_a_query_bug_stays_500() {
    let (h, _file) = small_stack("db-codes").await;
    let base = h.database_url().await;
    // A role that may not connect at all: the server answers 53300 (too many connections).
    let role = format!("r_{}", h.prefix.replace('-', "_"));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "create role {role} login connection limit 0"
    )))
    .execute(h.pool())
    .await
    .unwrap();
    let (scheme_host, db) = base.rsplit_once('/').unwrap();
    let (scheme, rest) = scheme_host.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    let limited = state_for(format!("{scheme}://{role}@{host}/{db}"), 2, None);
    let r = get(&limited, "api-facilities", "/api/facilities?limit=3").await;
    assert_unavailable(&r, "too many connections", Duration::from_millis(2_500));

    // A statement running when the server shuts down (pg_terminate_backend sends the same
    // FATAL 57P01 a shutdown does).
    let state = Arc::new(state_for(base.clone(), 2, None));
    let mut locker = h.pool().begin().await.unwrap();
    sqlx::query("lock table sync_run in access exclusive mode")
        .execute(&mut *locker)
        .await
        .unwrap();
    let s = state.clone();
    let waiting = tokio::spawn(async move { get(&s, "sync-status", "/api/sync/status").await });
    let mut terminated = false;
    for _ in 0..100 {
        terminated = sqlx::query_scalar::<_, bool>(
            "select coalesce(bool_or(pg_terminate_backend(pid)), false) from pg_stat_activity
              where datname = current_database() and application_name = 'stormwater-watch'
                and wait_event_type = 'Lock'",
        )
        // Not on the locking transaction: it would see one snapshot of the activity view.
        .fetch_one(h.pool())
        .await
        .unwrap();
        if terminated {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(terminated, "the request's statement waited on the lock");
    let r = waiting.await.unwrap();
    locker.rollback().await.unwrap();
    assert_eq!(r.status, 503, "admin shutdown: {r:?}");
    assert_eq!(r.retry_after.as_deref(), Some("2"));

    // A statement the database rejects is a bug of ours: 500, no Retry-After.
    sqlx::query("alter table sync_run rename column status to status_renamed")
        .execute(h.pool())
        .await
        .unwrap();
    let r = get(&state, "sync-status", "/api/sync/status").await;
    assert_eq!((r.status, r.retry_after.as_deref()), (500, None), "{r:?}");
    assert_eq!(r.body["error"]["code"], "internal_server_error");
    sqlx::query("alter table sync_run rename column status_renamed to status")
        .execute(h.pool())
        .await
        .unwrap();
}

/// `xtask serve` on a free loopback port, killed when dropped.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    async fn start(database_url: &str, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let xtask = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/xtask");
        let child = std::process::Command::new(xtask)
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("xtask serve (built by ./dev test)");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            let up = client
                .get(format!("{}/api/health", server.base))
                .send()
                .await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("xtask serve did not come up on {}", server.base);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `clients` concurrent clients, each sending `each` requests for `path` one after another;
/// the count of each status, and the first body that was not a full page.
async fn hammer(
    base: &str,
    path: &str,
    clients: usize,
    each: usize,
) -> (std::collections::BTreeMap<u16, usize>, Option<String>) {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url) = (client.clone(), format!("{base}{path}"));
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..each {
                let resp = client.get(&url).send().await.expect("the server answers");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let full = body["data"].as_array().is_some_and(|d| d.len() == 100);
                seen.push((status, (!full).then(|| body.to_string())));
            }
            seen
        }));
    }
    let mut counts = std::collections::BTreeMap::new();
    let mut odd = None;
    for t in tasks {
        for (status, bad) in t.await.unwrap() {
            *counts.entry(status).or_default() += 1;
            odd = odd.or(bad);
        }
    }
    (counts, odd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_server_answers_every_request_of_16_concurrent_clients() {
    // The reported request: 1 in 170 answered 500 under 16 clients. Those 500s came from the
    // `cargo lambda watch` emulator that `./dev up` used to serve the API with, not from our
    // handlers (README, "The local API"); this checks our own server under the same load.
    let h = harness("db-concurrency", None).await;
    h.sync(facilities(file_url(&shared_data(PORTAL_2019))))
        .await;
    let url = h.database_url().await;
    let path = "/api/facilities?county=Los%20Angeles&limit=100";
    let expected_total = h
        .scalar_i64("select count(*) from facility_summary where lower(county) = 'los angeles'")
        .await;
    // Through the cache, as `./dev up` serves it: 4,480 requests.
    let cached = Server::start(&url, &["--cache-namespace", &h.prefix]).await;
    let started = Instant::now();
    let (counts, odd) = hammer(&cached.base, path, 16, 280).await;
    println!("cached: {counts:?} in {:?}", started.elapsed());
    assert_eq!(counts.get(&200), Some(&4_480), "{counts:?}; {odd:?}");
    assert_eq!(odd, None);
    let resp: Value = reqwest::get(format!("{}{path}", cached.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["page"]["total"], expected_total);
    drop(cached);
    // Every request computed: 16 clients share the server's 16 database connections.
    let uncached = Server::start(&url, &["--no-cache"]).await;
    let started = Instant::now();
    let (counts, odd) = hammer(&uncached.base, path, 16, 10).await;
    println!("uncached: {counts:?} in {:?}", started.elapsed());
    assert_eq!(counts.get(&200), Some(&160), "{counts:?}; {odd:?}");
}

// ---------------------------------------------------------------------------------------------
// Finding 8: facts served wrong.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_works_only_on_the_list_that_made_it() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = support::generate(dir.path(), 11, "0.002");
    let h = harness("db-cursors", Some(5_000)).await;
    h.sync(manifest.sources(dir.path())).await;
    // Two facilities with several dated feed items each (the timeline's cursor names one).
    let busy = h
        .json(
            "select jsonb_agg(facility_id) from (select facility_id from violation_event
              where retracted_at is null group by 1 having count(*) >= 2
              order by count(*) desc, facility_id limit 2) x",
        )
        .await;
    let (a, b) = (busy[0].as_i64().unwrap(), busy[1].as_i64().unwrap());
    // Every list with a cursor, asked for one item so that a second page exists.
    let lists: Vec<(&str, String)> = vec![
        ("api-facilities", "/api/facilities?limit=1".into()),
        (
            "api-smarts-facilities",
            "/api/smarts/facilities?limit=1".into(),
        ),
        (
            "api-smarts-violations",
            "/api/smarts/violations?limit=1".into(),
        ),
        (
            "api-smarts-enforcement",
            "/api/smarts/enforcement?limit=1".into(),
        ),
        (
            "api-smarts-inspections",
            "/api/smarts/inspections?limit=1".into(),
        ),
        ("api-violations", "/api/violations?limit=1".into()),
        (
            "api-facilities-geojson",
            "/api/facilities.geojson?limit=1".into(),
        ),
        (
            "api-facility-link-list",
            "/api/facility-links?status=linked&limit=1".into(),
        ),
        ("api-nal-levels", "/api/nal-levels?limit=1".into()),
        (
            "api-facility-timeline",
            format!("/api/facilities/{a}/timeline?limit=1"),
        ),
        (
            "api-facility-timeline",
            format!("/api/facilities/{b}/timeline?limit=1"),
        ),
    ];
    let mut cursors = Vec::new();
    for (function, path) in &lists {
        let (status, body, _) = h.get(function, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let next = body["page"]["nextCursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: a second page: {body}"))
            .to_owned();
        // Its own cursor turns the page.
        let (status, second, _) = h.get(function, &format!("{path}&cursor={next}")).await;
        assert_eq!(status, 200, "{path} page 2: {second}");
        let first_item = |b: &Value| b["data"].get(0).or(b["features"].get(0)).cloned();
        assert_ne!(
            first_item(&body),
            first_item(&second),
            "{path}: page 2 differs"
        );
        cursors.push(next);
    }
    let bad =
        |body: &Value| body["error"]["parameter"] == "cursor" && body["error"]["status"] == 400;
    for (i, (function, path)) in lists.iter().enumerate() {
        // A cursor of any other list (another route, order, or facility) is a 400.
        for (j, foreign) in cursors.iter().enumerate() {
            if i == j {
                continue;
            }
            let (status, body, _) = h.get(function, &format!("{path}&cursor={foreign}")).await;
            assert!(
                status == 400 && bad(&body),
                "{path} took the cursor of {}: {status} {body}",
                lists[j].1
            );
        }
        // Altered, truncated, or written by hand (`a:-1`, the old unsigned form).
        let own = &cursors[i];
        let mut flipped = own.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for forged in [
            flipped.as_str(),
            &own[..own.len() - 3],
            "YTotMQ",
            "dDoyMDI0LTAxLTAxfHh8MQ",
        ] {
            let (status, body, _) = h.get(function, &format!("{path}&cursor={forged}")).await;
            assert!(
                status == 400 && bad(&body),
                "{path} took {forged}: {status} {body}"
            );
        }
    }
    // Another deployment (here: another database, with its own key) refuses this one's cursors.
    let other = harness("db-cursors-other", None).await;
    let (status, body, _) = other
        .get(
            "api-facilities",
            &format!("/api/facilities?limit=1&cursor={}", cursors[0]),
        )
        .await;
    assert!(status == 400 && bad(&body), "{status} {body}");
}

/// The published value of a column as the importer stores it: trimmed, and `""`, `NA`, `NaN`
/// or a lone space as missing.
fn published(raw: &[u8]) -> Option<String> {
    let t = String::from_utf8_lossy(raw).trim().to_owned();
    (!matches!(t.as_str(), "" | "NA" | "NaN")).then_some(t)
}

/// What the 2019 file says of each (APP_ID, WDID) key, from its first row (read with the csv
/// crate, not ours): SIC, county, zip, and whether its coordinates lie in California.
struct FileRecord {
    sic: Option<String>,
    county: Option<String>,
    zip: Option<String>,
    placed: bool,
}

fn file_records(path: &std::path::Path) -> (usize, std::collections::HashMap<String, FileRecord>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.byte_headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}') == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (app, wdid, sic, county, zip, lat, lon) = (
        col("APP_ID"),
        col("WDID"),
        col("PRIMARY_SIC"),
        col("COUNTY"),
        col("FACILITY_ZIP"),
        col("FACILITY_LATITUDE"),
        col("FACILITY_LONGITUDE"),
    );
    let mut rows = 0;
    let mut keys = std::collections::HashMap::new();
    for rec in r.byte_records() {
        let rec = rec.unwrap();
        rows += 1;
        let key = format!(
            "{}|{}",
            published(&rec[app]).unwrap_or_default(),
            published(&rec[wdid]).unwrap_or_default()
        );
        let num = |i: usize| published(&rec[i]).and_then(|v| v.parse::<f64>().ok());
        let placed = matches!((num(lat), num(lon)),
            (Some(a), Some(o)) if (32.4..=42.1).contains(&a) && (-124.6..=-114.0).contains(&o));
        keys.entry(key).or_insert(FileRecord {
            sic: published(&rec[sic]),
            county: published(&rec[county]),
            zip: published(&rec[zip]),
            placed,
        });
    }
    (rows, keys)
}

/// The served fields of every facility as the rule says they should be, computed here from the
/// facilities' own records and the links (the test's own implementation of `facility::derive`),
/// compared with what the database holds. Returns (facilities compared, mismatches described).
async fn served_fields_follow_the_records(h: &Harness) -> (usize, Vec<String>) {
    #[derive(sqlx::FromRow, Clone)]
    struct Row {
        id: i64,
        origin_source: String,
        own_name: String,
        own_address: Option<String>,
        own_city: Option<String>,
        own_county: Option<String>,
        own_region: Option<String>,
        own_zip: Option<String>,
        own_latitude: Option<f64>,
        own_longitude: Option<f64>,
        own_primary_sic: Option<String>,
        name: String,
        address: Option<String>,
        city: Option<String>,
        county: Option<String>,
        region: Option<String>,
        zip: Option<String>,
        latitude: Option<f64>,
        longitude: Option<f64>,
        primary_sic: Option<String>,
        coordinates_trusted: bool,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select id, origin_source, own_name, own_address, own_city, own_county, own_region,
                own_zip, own_latitude, own_longitude, own_primary_sic, name, address, city, county,
                region, zip, latitude, longitude, primary_sic, coordinates_trusted
           from facility",
    )
    .fetch_all(h.pool())
    .await
    .unwrap();
    let links: Vec<(i64, i64)> = sqlx::query_as(
        "select l.facility_id, o.id from facility_link l
           join facility o on o.origin_source = l.source and o.origin_key = l.source_key
          where l.status = 'linked'",
    )
    .fetch_all(h.pool())
    .await
    .unwrap();
    let by_id: std::collections::HashMap<i64, Row> =
        rows.iter().map(|r| (r.id, r.clone())).collect();
    let mut records: std::collections::HashMap<i64, Vec<&Row>> = Default::default();
    for (f, o) in &links {
        records.entry(*f).or_default().push(&by_id[o]);
    }
    let rank = |r: &Row| match r.origin_source.as_str() {
        "smarts_industrial" => 0,
        "smarts_construction" => 1,
        _ => 2,
    };
    let placeholder = |n: &str| {
        ["WDID ", "APP_ID ", "CIWQS place "]
            .iter()
            .any(|p| n.starts_with(p))
    };
    let mut bad = Vec::new();
    for f in &rows {
        let mut recs = records.get(&f.id).cloned().unwrap_or_default();
        if recs.is_empty() {
            recs.push(f); // merged: its own record
        }
        recs.sort_by_key(|r| (r.id != f.id, rank(r), r.id));
        let pick = |get: &dyn Fn(&Row) -> Option<String>| recs.iter().find_map(|r| get(r));
        let name = pick(&|r| Some(r.own_name.clone()).filter(|n| !placeholder(n)))
            .unwrap_or_else(|| f.own_name.clone());
        let placed = recs.iter().find(|r| r.own_latitude.is_some());
        let want = (
            name,
            pick(&|r| r.own_address.clone()),
            pick(&|r| r.own_city.clone()),
            pick(&|r| r.own_county.clone()),
            pick(&|r| r.own_region.clone()),
            pick(&|r| r.own_zip.clone()),
            pick(&|r| r.own_primary_sic.clone()),
            placed.and_then(|r| r.own_latitude),
            placed.and_then(|r| r.own_longitude),
            placed.is_some(),
        );
        let got = (
            f.name.clone(),
            f.address.clone(),
            f.city.clone(),
            f.county.clone(),
            f.region.clone(),
            f.zip.clone(),
            f.primary_sic.clone(),
            f.latitude,
            f.longitude,
            f.coordinates_trusted,
        );
        if want != got && bad.len() < 5 {
            bad.push(format!("facility {}: want {want:?}, got {got:?}", f.id));
        } else if want != got {
            bad.push(String::new());
        }
    }
    (rows.len(), bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canonical_facilities_show_what_their_records_say_in_a_full_and_an_incremental_run() {
    const MONITORING_R1: &str =
        "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_Ad_Hoc_Reports_-_Parameter_Data.txt";
    const LANDFILL: &str = "178202|1 08I001442"; // Crescent City Landfill, 4953-Refuse Systems
    let h = harness("db-facts", None).await;
    let portal = shared_data(PORTAL_2019);
    // What events/sync-stage/local-sample.json (`./dev up`) syncs.
    let sample = |portal: &std::path::Path| {
        vec![
            Source {
                dataset: "smarts_industrial_facilities".into(),
                url: file_url(portal),
                scope: None,
            },
            Source {
                dataset: "smarts_industrial_monitoring".into(),
                url: file_url(&shared_data(MONITORING_R1)),
                scope: None,
            },
        ]
    };
    h.sync(sample(&portal)).await;
    let (rows, file) = file_records(&portal);
    assert_eq!(rows, 36_338);
    let with_sic = file.values().filter(|r| r.sic.is_some()).count();

    // 1. Each facility built from a record holds that record's values (the key's first row).
    /// A facility's origin key and its own SIC, county, zip, and whether it is placed.
    type Own = (String, Option<String>, Option<String>, Option<String>, bool);
    let own: Vec<Own> = sqlx::query_as(
        "select origin_key, own_primary_sic, own_county, own_zip, own_latitude is not null
           from facility where origin_source = 'smarts_industrial'",
    )
    .fetch_all(h.pool())
    .await
    .unwrap();
    let mut from_file = 0;
    for (key, sic, county, zip, placed) in &own {
        let Some(rec) = file.get(key) else {
            continue; // a site known only from the monitoring rows
        };
        from_file += 1;
        assert_eq!(
            (sic, county, zip, *placed),
            (&rec.sic, &rec.county, &rec.zip, rec.placed),
            "facility of {key}"
        );
    }
    assert_eq!(from_file, file.len(), "one facility per key of the file");
    let own_sic = h
        .scalar_i64("select count(*) from facility where own_primary_sic is not null")
        .await;
    assert_eq!(own_sic as usize, with_sic);

    // 2. Every facility's served fields follow its linked records.
    let (compared, bad) = served_fields_follow_the_records(&h).await;
    assert!(
        bad.is_empty(),
        "{} of {compared} facilities wrong: {bad:?}",
        bad.len()
    );
    let canonical = h
        .scalar_i64("select count(*) from facility where merged_into is null")
        .await;
    let canonical_sic = h
        .scalar_i64(
            "select count(*) from facility where merged_into is null and primary_sic is not null",
        )
        .await;
    // Independently of the facility table: canonical facilities with a linked industrial
    // record that carries a SIC.
    let expected_sic = h
        .scalar_i64(
            "select count(distinct l.facility_id) from facility_link l
               join smarts_industrial_facility s
                 on l.source = 'smarts_industrial'
                and l.source_key = coalesce(s.app_id, '') || '|' || coalesce(s.wdid, '')
              where l.status = 'linked' and s.withdrawn_run_id is null
                and nullif(btrim(s.primary_sic), '') is not null",
        )
        .await;
    assert_eq!(canonical_sic, expected_sic);
    assert!(canonical_sic > 30_000, "{canonical_sic}");
    let gained_coordinates = h
        .scalar_i64(
            "select count(*) from facility
              where merged_into is null and own_latitude is null and latitude is not null",
        )
        .await;
    assert!(gained_coordinates > 0);

    // 3. The API serves them: the profile, and the map for a facility placed by a linked record.
    let landfill = h
        .scalar_i64(&format!(
            "select facility_id from facility_link where source = 'smarts_industrial'
              and source_key = '{LANDFILL}' and status = 'linked'"
        ))
        .await;
    let (status, body, _) = h
        .get("api-facility", &format!("/api/facilities/{landfill}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["primarySic"], "4953-Refuse Systems");
    let (id, lat, lon): (i64, f64, f64) = sqlx::query_as(
        "select id, latitude, longitude from facility
          where merged_into is null and own_latitude is null and latitude is not null
          order by id limit 1",
    )
    .fetch_one(h.pool())
    .await
    .unwrap();
    let bbox = format!(
        "/api/facilities.geojson?bbox={},{},{},{}&limit=1000",
        lon - 0.001,
        lat - 0.001,
        lon + 0.001,
        lat + 0.001
    );
    let (status, map, _) = h.get("api-facilities-geojson", &bbox).await;
    assert_eq!(status, 200, "{map}");
    assert!(
        map["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == id),
        "facility {id} is on the map: {map}"
    );

    // 4. Nothing changed: a run writes nothing, links or fields.
    let settings = stormwater::linking::Settings::default();
    let again = stormwater::linking::run(
        h.pool(),
        &stormwater::linking::Options::new("test", settings),
    )
    .await
    .unwrap();
    assert_eq!(again.written, stormwater::linking::Written::default());
    assert_eq!(again.facilities_refreshed, 0);

    // 5. The incremental path: the next file changes the landfill's SIC and drops a record's
    //    coordinates; the next sync's linker run updates exactly what follows from that.
    let report = h
        .json("select report from facility_link_run where status = 'succeeded' order by id limit 1")
        .await;
    let moved: (String, f64) = sqlx::query_as(
        "select origin_key, own_latitude from facility
          where origin_source = 'smarts_industrial' and merged_into is null
            and own_latitude is not null and origin_key like '%|%'
            and (select count(*) from facility_link l where l.facility_id = facility.id
                   and l.status = 'linked') = 1
          order by id limit 1",
    )
    .fetch_one(h.pool())
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let next = dir
        .path()
        .join("Industrial_Application_Specific_Data_2019-03-12.csv");
    {
        let mut r = csv::Reader::from_path(&portal).unwrap();
        let header = r.byte_headers().unwrap().clone();
        let col = |n: &str| header.iter().position(|h| h == n.as_bytes()).unwrap();
        let (app, wdid, sic, lat, lon) = (
            col("APP_ID"),
            col("WDID"),
            col("PRIMARY_SIC"),
            col("FACILITY_LATITUDE"),
            col("FACILITY_LONGITUDE"),
        );
        let mut w = csv::Writer::from_path(&next).unwrap();
        w.write_byte_record(&header).unwrap();
        let mut seen = std::collections::HashSet::new();
        for rec in r.byte_records() {
            let rec = rec.unwrap();
            let key = format!(
                "{}|{}",
                published(&rec[app]).unwrap_or_default(),
                published(&rec[wdid]).unwrap_or_default()
            );
            let first = seen.insert(key.clone());
            let mut out: Vec<Vec<u8>> = rec.iter().map(<[u8]>::to_vec).collect();
            if first && key == LANDFILL {
                out[sic] = b"4952-Sewerage Systems".to_vec();
            }
            if first && key == moved.0 {
                out[lat] = b"NA".to_vec();
                out[lon] = b"NA".to_vec();
            }
            w.write_record(&out).unwrap();
        }
        w.flush().unwrap();
    }
    h.sync(sample(&next)).await;
    let run = h
        .json("select report from facility_link_run where status = 'succeeded' order by id desc limit 1")
        .await;
    assert_eq!(run["mode"], "incremental", "{run}");
    assert_eq!(run["changedRecords"], 2, "{run}");
    let (status, body, _) = h
        .get("api-facility", &format!("/api/facilities/{landfill}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["primarySic"], "4952-Sewerage Systems");
    let lost: Option<f64> = sqlx::query_scalar(
        "select latitude from facility where origin_source = 'smarts_industrial' and origin_key = $1",
    )
    .bind(&moved.0)
    .fetch_one(h.pool())
    .await
    .unwrap();
    assert_eq!(
        lost, None,
        "{} no longer has coordinates (was {})",
        moved.0, moved.1
    );
    let (_, bad) = served_fields_follow_the_records(&h).await;
    assert!(bad.is_empty(), "after the incremental run: {bad:?}");

    // 6. `migrate` derives the fields too: a database written by the old code (no served SIC)
    //    is put right by it.
    sqlx::query("update facility set primary_sic = null")
        .execute(h.pool())
        .await
        .unwrap();
    let refreshed = stormwater::facility::refresh(h.pool()).await.unwrap();
    assert_eq!(
        refreshed as i64,
        h.scalar_i64("select count(*) from facility where primary_sic is not null")
            .await
    );
    assert!(refreshed as i64 >= canonical_sic);
    let (_, bad) = served_fields_follow_the_records(&h).await;
    assert!(bad.is_empty(), "after migrate: {bad:?}");

    // 7. docs/LINKING.md says what this run computed.
    let by = |path: &str| report.pointer(path).and_then(Value::as_i64).unwrap_or(0);
    let n = support::thousands;
    let seeded = match own.len() - from_file {
        0 => "one per (APP_ID, WDID) key of the file; every site of the monitoring rows has one"
            .to_owned(),
        more => format!(
            "{} for the file's keys, {} for sites known only from the monitoring rows",
            n(from_file as i64),
            n(more as i64)
        ),
    };
    support::doc_block(
        "docs/LINKING.md",
        "sample-run",
        &format!(
            "On the sample `./dev up` syncs (`events/sync-stage/local-sample.json`: the 2019 portal \
             file, {rows} rows, and the Region 1 monitoring download), the first run seeds {} \
             facilities ({seeded}), scores {} \
             candidate pairs and keeps {}; it links {} records exactly and {} by score ({} of them \
             at 1.00), proposes {} links, finds {} ambiguous records and merges {} facilities \
             into another, leaving {} canonical facilities. {} of them show a primary SIC ({} \
             facilities are built from a record with one); {} are placed on the map by a linked \
             record's coordinates, their own record having none. A second run with nothing \
             changed writes nothing.",
            n(by("/facilitiesCreated")),
            n(by("/pairsScored")),
            n(by("/pairsStored")),
            n(by("/linkedByMethod/exact")),
            n(by("/linkedByMethod/fuzzy")),
            n(by("/byMethodAndBand/fuzzy/1.00")),
            n(by("/proposed")),
            n(by("/ambiguousRecords")),
            n(by("/mergedFacilities")),
            n(canonical),
            n(canonical_sic),
            n(own_sic),
            n(gained_coordinates),
            rows = n(rows as i64),
        ),
    );
}
