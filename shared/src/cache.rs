//! Redis cache-aside. Keys carry the sync generation (`v1:g{generation}:…`), so a finished
//! sync invalidates every cached answer at once by incrementing one counter, without key
//! scans. Every Redis failure or timeout is logged at `warn` and treated as a miss: the
//! cache can make a request faster, never make it fail.
//!
//! In front of Redis sits a small in-process tier (one execution environment's memory,
//! [`LOCAL_TTL`]) that also runs one computation per key at a time within the process. So when
//! Redis is down, an instance still computes each answer once instead of once per request, and
//! Postgres is not flooded while the cache is away.

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long Redis is skipped after a failed or timed-out call.
const BREAKER_OPEN: Duration = Duration::from_secs(1);

/// A circuit breaker: after a Redis failure every call is a miss for [`BREAKER_OPEN`], then
/// the next call tries Redis again.
#[derive(Clone, Default)]
struct Breaker {
    /// Milliseconds since `EPOCH` until which Redis is skipped (0: closed).
    open_until: Arc<std::sync::atomic::AtomicU64>,
}

static EPOCH: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

impl Breaker {
    fn now_ms() -> u64 {
        u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_open(&self) -> bool {
        Self::now_ms() < self.open_until.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn trip(&self) {
        let until = Self::now_ms() + u64::try_from(BREAKER_OPEN.as_millis()).unwrap_or(1000);
        self.open_until
            .store(until, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The in-process tier: answers as JSON text, and a lock per key being computed.
#[derive(Clone)]
struct Local {
    values: moka::future::Cache<String, Arc<str>>,
    flights: Arc<Mutex<HashMap<String, Arc<Flight>>>>,
}

/// One key's computation in this process: callers take turns, so the first computes and the
/// others find its answer.
#[derive(Default)]
struct Flight {
    turn: tokio::sync::Mutex<()>,
    /// Set when a computation failed (the database is down, say): the callers still waiting
    /// stop queueing behind one another and compute at once, so an outage costs each of them
    /// one failed attempt instead of one per caller ahead of it.
    failed: std::sync::atomic::AtomicBool,
}

impl Local {
    fn new() -> Self {
        Self {
            values: moka::future::Cache::builder()
                .time_to_live(LOCAL_TTL)
                .weigher(|k: &String, v: &Arc<str>| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(LOCAL_BYTES)
                .build(),
            flights: Arc::default(),
        }
    }

    /// The flight of `key`'s computation (created by the first caller).
    fn flight(&self, key: &str) -> Arc<Flight> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.entry(key.to_owned()).or_default().clone()
    }

    /// The computation of `key` in `flight` is over (its answer, if any, is in `values`); a
    /// newer flight of the key is left alone.
    fn land(&self, key: &str, flight: &Arc<Flight>) {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(key);
        }
    }
}

/// How long any one Redis call may take before the caller falls through to Postgres.
const OP_TIMEOUT: Duration = Duration::from_millis(250);

/// How long a computing caller holds a key's lock at most.
const STAMPEDE_LOCK: Duration = Duration::from_secs(10);
/// How long other callers wait for the lock holder's answer before computing themselves.
pub const STAMPEDE_WAIT: Duration = Duration::from_secs(3);

/// How long the in-process tier keeps an answer (keys carry the generation, so this only
/// bounds staleness while Redis is unreachable and the generation reads as 0).
pub const LOCAL_TTL: Duration = Duration::from_secs(30);
/// Memory the in-process tier may use (bytes of JSON).
const LOCAL_BYTES: u64 = 64 * 1024 * 1024;

/// Cache tiers (seconds).
pub mod ttl {
    /// Lists and aggregates that change only with a sync, but are asked for often.
    pub const HOT: u64 = 5 * 60;
    /// Single-facility documents.
    pub const WARM: u64 = 60 * 60;
}

/// The cache handle, built once per execution environment. It connects on first use, so a
/// Redis outage at cold start costs nothing but cache misses.
#[derive(Clone)]
pub struct Cache {
    client: Option<redis::Client>,
    conn: OnceCell<ConnectionManager>,
    /// The in-process tier (present with Redis configured) and its in-flight computations.
    local: Option<Local>,
    breaker: Breaker,
    /// Key prefix: one deployment (or one test) never reads another's keys.
    namespace: String,
}

impl Cache {
    /// A cache for `url`; `None` (or an unparsable URL, logged) gives a cache that always misses.
    pub fn new(url: Option<&str>) -> Self {
        Self::with_namespace(url, "sw")
    }

    /// A cache whose keys all start with `v1:{namespace}:`.
    pub fn with_namespace(url: Option<&str>, namespace: &str) -> Self {
        let client = url.and_then(|u| match redis::Client::open(u) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "REDIS_URL is not usable; caching disabled");
                None
            }
        });
        let local = client.as_ref().map(|_| Local::new());
        Self {
            client,
            conn: OnceCell::new(),
            local,
            breaker: Breaker::default(),
            namespace: namespace.to_owned(),
        }
    }

    /// A cache that never stores anything.
    pub fn disabled() -> Self {
        Self::new(None)
    }

    async fn conn(&self) -> Option<ConnectionManager> {
        let client = self.client.as_ref()?;
        let init = async {
            let cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(OP_TIMEOUT))
                .set_response_timeout(Some(OP_TIMEOUT))
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(client.clone(), cfg).await
        };
        match tokio::time::timeout(OP_TIMEOUT * 2, self.conn.get_or_try_init(|| init)).await {
            Ok(Ok(c)) => Some(c.clone()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis connect failed; serving without cache");
                None
            }
            Err(_) => {
                tracing::warn!("redis connect timed out; serving without cache");
                None
            }
        }
    }

    async fn run<T, F, Fut>(&self, what: &'static str, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        // After a failure, requests skip Redis for a moment instead of each waiting on it.
        if self.breaker.is_open() {
            return None;
        }
        let Some(conn) = self.conn().await else {
            self.breaker.trip();
            return None;
        };
        match tokio::time::timeout(OP_TIMEOUT, f(conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, op = what, "redis call failed; treating as a miss");
                self.breaker.trip();
                None
            }
            Err(_) => {
                tracing::warn!(op = what, "redis call timed out; treating as a miss");
                self.breaker.trip();
                None
            }
        }
    }

    /// The current sync generation (0 when unknown or Redis is down).
    pub async fn generation(&self) -> u64 {
        let key = self.generation_key();
        self.run("get generation", |mut c| async move {
            c.get::<_, Option<u64>>(key).await
        })
        .await
        .flatten()
        .unwrap_or(0)
    }

    /// Starts a new generation: every key built before becomes unreachable (and expires by TTL).
    pub async fn bump_generation(&self) -> Option<u64> {
        let key = self.generation_key();
        self.run("incr generation", |mut c| async move {
            c.incr::<_, _, u64>(key, 1).await
        })
        .await
    }

    fn generation_key(&self) -> String {
        format!("v1:{}:sync:generation", self.namespace)
    }

    /// A key for `name` and its parameters within `generation`.
    pub fn key(&self, generation: u64, name: &str, params: &str) -> String {
        let digest = xxhash_rust::xxh3::xxh3_64(params.as_bytes());
        format!("v1:{}:g{generation}:{name}:{digest:016x}", self.namespace)
    }

    /// Reads a cached JSON value.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let key = key.to_owned();
        let raw = self
            .run("get", |mut c| async move {
                c.get::<_, Option<String>>(key).await
            })
            .await
            .flatten()?;
        serde_json::from_str(&raw)
            .inspect_err(
                |e| tracing::warn!(error = %e, "cached value does not decode; ignoring it"),
            )
            .ok()
    }

    /// Stores a JSON value with a TTL (seconds).
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T, ttl_secs: u64) {
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        let key = key.to_owned();
        self.run("set", |mut c| async move {
            c.set_ex::<_, _, ()>(key, raw, ttl_secs).await
        })
        .await;
    }

    /// Cache-aside with stampede protection: a hit (in-process tier, then Redis) is returned as
    /// is (`true`); on a miss one caller per key and process computes while the others wait for
    /// it, and across processes one holds a short Redis lock while the others wait for its
    /// result, up to [`STAMPEDE_WAIT`], then compute themselves. A failed computation is not
    /// cached and is not waited out: when it fails, the callers waiting for it (in the process
    /// or on the Redis lock) compute at once, each on its own. With Redis down the process still
    /// computes each key once; with no cache configured every caller computes. The cache never
    /// makes a request fail.
    pub async fn get_or_compute<T, E, F, Fut>(
        &self,
        key: &str,
        ttl_secs: u64,
        compute: F,
    ) -> Result<(T, bool), E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(hit) = self.local_get::<T>(key).await {
            return Ok((hit, true));
        }
        // One computation per key in this process: later callers wait here, then find it.
        let flight = self.local.as_ref().map(|l| l.flight(key));
        let mut turn = match &flight {
            Some(f) => Some(f.turn.lock().await),
            None => None,
        };
        if let Some(hit) = self.local_get::<T>(key).await {
            return Ok((hit, true));
        }
        // A computation ahead of this caller failed: let the next waiter go too, now, and do
        // not queue on the Redis lock behind them either.
        let after_failure = flight
            .as_ref()
            .is_some_and(|f| f.failed.load(Ordering::Relaxed));
        if after_failure {
            turn = None;
        }
        let result = self
            .redis_or_compute(key, ttl_secs, !after_failure, compute)
            .await;
        match &result {
            Ok((value, _)) => self.local_put(key, value).await,
            Err(_) => {
                if let Some(f) = &flight {
                    f.failed.store(true, Ordering::Relaxed);
                }
            }
        }
        if let (Some(l), Some(f)) = (&self.local, &flight) {
            l.land(key, f);
        }
        drop(turn);
        result
    }

    async fn local_get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let raw = self.local.as_ref()?.values.get(key).await?;
        serde_json::from_str(&raw).ok()
    }

    async fn local_put<T: Serialize>(&self, key: &str, value: &T) {
        if let (Some(l), Ok(raw)) = (&self.local, serde_json::to_string(value)) {
            l.values.insert(key.to_owned(), Arc::from(raw)).await;
        }
    }

    /// The Redis part of [`Self::get_or_compute`]: a hit, or one computation per key across
    /// processes (Redis lock, when `take_turns`) with the others waiting for its answer.
    async fn redis_or_compute<T, E, F, Fut>(
        &self,
        key: &str,
        ttl_secs: u64,
        take_turns: bool,
        compute: F,
    ) -> Result<(T, bool), E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(hit) = self.get_json::<T>(key).await {
            return Ok((hit, true));
        }
        if !take_turns {
            let value = compute().await?;
            self.put_json(key, &value, ttl_secs).await;
            return Ok((value, false));
        }
        let lock = format!("{key}:lock");
        let token = format!(
            "{:x}",
            xxhash_rust::xxh3::xxh3_64(format!("{key}{:?}", std::time::Instant::now()).as_bytes())
        );
        let (l, t) = (lock.clone(), token.clone());
        let locked = self
            .run("lock", |mut c| async move {
                redis::cmd("SET")
                    .arg(&l)
                    .arg(&t)
                    .arg("NX")
                    .arg("PX")
                    .arg(STAMPEDE_LOCK.as_millis() as u64)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await;
        if let Some(None) = locked {
            // Someone else is computing this key: wait for their answer, or until they let go
            // of the lock without one (their computation failed) or Redis stops answering.
            let deadline = std::time::Instant::now() + STAMPEDE_WAIT;
            while std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                match self.answer_or_lock::<T>(key, &lock).await {
                    Some((Some(hit), _)) => return Ok((hit, true)),
                    Some((None, true)) => {}
                    Some((None, false)) | None => break,
                }
            }
        }
        let result = compute().await;
        if let Ok(value) = &result {
            self.put_json(key, value, ttl_secs).await;
        }
        if let Some(Some(_)) = locked {
            // Release only our own lock (it may have expired and been taken by another).
            self.run("unlock", |mut c| async move {
                redis::cmd("EVAL")
                    .arg(
                        "if redis.call('get', KEYS[1]) == ARGV[1] then \
                         return redis.call('del', KEYS[1]) else return 0 end",
                    )
                    .arg(1)
                    .arg(&lock)
                    .arg(&token)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
        }
        // An error is not cached, and the lock is released either way.
        Ok((result?, false))
    }

    /// The cached answer of `key` (if any, and readable) and whether `lock` is still held, in
    /// one round trip; `None` when Redis does not answer.
    async fn answer_or_lock<T: DeserializeOwned>(
        &self,
        key: &str,
        lock: &str,
    ) -> Option<(Option<T>, bool)> {
        let (k, l) = (key.to_owned(), lock.to_owned());
        let values = self
            .run("mget", |mut c| async move {
                redis::cmd("MGET")
                    .arg(&k)
                    .arg(&l)
                    .query_async::<Vec<Option<String>>>(&mut c)
                    .await
            })
            .await?;
        let answer = values
            .first()
            .cloned()
            .flatten()
            .and_then(|raw| serde_json::from_str(&raw).ok());
        let held = values.get(1).is_some_and(Option::is_some);
        Some((answer, held))
    }

    /// `true` when Redis answers a PING now.
    pub async fn ping(&self) -> bool {
        self.run("ping", |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ElastiCache with in-transit encryption is only reachable as `rediss://`: the client
    /// must accept TLS URLs (it refused them before the TLS features were enabled).
    #[test]
    fn tls_redis_urls_are_usable() {
        assert!(
            Cache::new(Some("rediss://cache.example.internal:6379/"))
                .client
                .is_some()
        );
        assert!(Cache::new(Some("redis://127.0.0.1:6379/")).client.is_some());
        assert!(Cache::new(Some("not a url")).client.is_none());
    }
}
