//! The Redis cache against a real Redis: one computation per key under a stampede, and a dead
//! Redis never fails a request (the in-process tier still computes each key once).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stormwater::cache::Cache;

fn unique(name: &str) -> String {
    format!(
        "{name}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

async fn stampede(cache: Arc<Cache>, callers: usize) -> (usize, Vec<(u64, bool)>) {
    stampede_over(&vec![cache; callers]).await
}

/// One caller per handle, all asking for the same key at once.
async fn stampede_over(caches: &[Arc<Cache>]) -> (usize, Vec<(u64, bool)>) {
    let computed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for cache in caches {
        let (cache, computed) = (cache.clone(), computed.clone());
        tasks.push(tokio::spawn(async move {
            let key = cache.key(0, "stampede", "same-parameters");
            cache
                .get_or_compute(&key, 60, || async {
                    computed.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<u64, std::convert::Infallible>(42)
                })
                .await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task").expect("infallible"));
    }
    (computed.load(Ordering::SeqCst), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_computation_per_key_under_a_stampede() {
    let url = std::env::var("REDIS_URL").expect("run through ./dev test: REDIS_URL");
    let cache = Arc::new(Cache::with_namespace(Some(&url), &unique("stampede")));
    let (computed, results) = stampede(cache.clone(), 16).await;
    assert_eq!(
        computed, 1,
        "one caller computes, the others wait for its answer"
    );
    assert!(results.iter().all(|(v, _)| *v == 42));
    assert_eq!(results.iter().filter(|(_, hit)| *hit).count(), 15);
    // Afterwards it is a plain hit.
    let (again, results) = stampede(cache, 4).await;
    assert_eq!(again, 0);
    assert!(results.iter().all(|(v, hit)| *v == 42 && *hit));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_computation_per_key_across_instances() {
    // Separate cache handles (as separate Lambda environments have) share only Redis: its lock
    // makes one of them compute, the others wait for the answer.
    let url = std::env::var("REDIS_URL").expect("run through ./dev test: REDIS_URL");
    let ns = unique("instances");
    let caches: Vec<Arc<Cache>> = (0..6)
        .map(|_| Arc::new(Cache::with_namespace(Some(&url), &ns)))
        .collect();
    let (computed, results) = stampede_over(&caches).await;
    assert!(results.iter().all(|(v, _)| *v == 42));
    assert_eq!(computed, 1);
    assert_eq!(results.iter().filter(|(_, hit)| *hit).count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_redis_fails_no_request_and_the_process_still_computes_once() {
    // Nothing listens on port 1 of loopback.
    let cache = Arc::new(Cache::with_namespace(
        Some("redis://127.0.0.1:1/"),
        &unique("dead"),
    ));
    let (computed, results) = stampede(cache.clone(), 8).await;
    assert_eq!(
        computed, 1,
        "the in-process tier runs one computation per key while Redis is away"
    );
    assert!(results.iter().all(|(v, _)| *v == 42));
    assert_eq!(results.iter().filter(|(_, hit)| *hit).count(), 7);
    // A failed computation is not cached and does not block the next caller.
    let key = cache.key(0, "failing", "p");
    let failed = cache
        .get_or_compute(&key, 60, || async { Err::<u64, &str>("database down") })
        .await;
    assert_eq!(failed.unwrap_err(), "database down");
    let retried = cache
        .get_or_compute(&key, 60, || async { Ok::<u64, &str>(7) })
        .await;
    assert_eq!(retried.unwrap(), (7, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_cache_every_caller_computes() {
    let (computed, results) = stampede(Arc::new(Cache::disabled()), 8).await;
    assert_eq!(computed, 8);
    assert!(results.iter().all(|(v, hit)| *v == 42 && !*hit));
}
