//! At-least-once safety against the local stack: poison chunks end in the DLQ with the run
//! marked partial, a worker killed mid-chunk leaves nothing half-written, and `ckan:` sources
//! resolve through CKAN `resource_show` with unchanged downloads skipped by ETag.

mod support;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::get;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stormwater::sync::manifest::Source;
use stormwater::sync::{ChunkMessage, runner};
use support::{facilities, file_url, first_records, harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_chunk_goes_to_the_dlq_and_the_run_is_marked_partial_with_the_reason() {
    let h = harness("poison", Some(30)).await;
    let file = first_records(50);
    h.stage(facilities(file_url(file.path()))).await;
    // Corrupt the second chunk in S3: its header no longer has the bookkeeping columns.
    let key: String = sqlx::query_scalar("select s3_key from import_chunk where chunk_index = 1")
        .fetch_one(h.pool())
        .await
        .unwrap();
    h.ctx
        .s3
        .put_object()
        .bucket(&h.res.bucket)
        .key(&key)
        .body(b"garbage,header\n1,2\n".to_vec().into())
        .send()
        .await
        .unwrap();

    h.drain().await;

    // SQS (and the emulator) moves the message to the DLQ on the receive after the last failed
    // delivery; keep receiving until that has happened.
    let mappings = runner::mappings(&h.res, 0).unwrap();
    let import = mappings
        .iter()
        .find(|m| m.target == runner::Target::Import)
        .unwrap();
    // (A deadline, not a count of polls: each redelivery waits out the visibility timeout, and
    // under the whole suite's load a poll can take much longer than alone.)
    let mut in_dlq = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        in_dlq = runner::backlog(&h.ctx.sqs, &h.res.import_dlq_url)
            .await
            .unwrap();
        if in_dlq == 1 {
            break;
        }
        runner::poll_once(&h.ctx, import).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(in_dlq, 1, "poison message in the DLQ");
    // The last delivery may have been handled by the loop above rather than by `drain`; the
    // finalize request it produced is then still queued.
    h.drain().await;
    let chunk = h
        .json("select to_jsonb(c) from import_chunk c where chunk_index = 1")
        .await;
    assert_eq!(chunk["status"], "failed");
    assert_eq!(chunk["attempts"], stormwater::config::IMPORT_MAX_RECEIVES);
    let file = h.json("select to_jsonb(f) from sync_file f").await;
    assert_eq!(file["status"], "partial");
    let error = file["error"].as_str().unwrap();
    assert!(
        error.contains("chunk 1 failed after 5 deliveries"),
        "{error}"
    );
    assert!(
        error.contains("chunk header must start with __line,__key,__ord"),
        "{error}"
    );
    let run = h.json("select to_jsonb(r) from sync_run r").await;
    assert_eq!(run["status"], "partial");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("smarts_industrial_facilities partial")
    );
    // The good chunk landed; nothing was withdrawn on the strength of an incomplete file.
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        30
    );
    assert_eq!(
        h.scalar_i64(
            "select count(*) from smarts_industrial_facility where withdrawn_run_id is not null"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_chunk_leaves_nothing_half_written() {
    let h = harness("kill", Some(20_000)).await;
    let file = first_records(20_000);
    h.stage(facilities(file_url(file.path()))).await;
    let body = h.receive_chunk_message().await;
    let chunk: ChunkMessage = serde_json::from_str(&body).unwrap();
    assert_eq!(chunk.chunk_index, 0);

    // A real worker process, killed (SIGKILL) while its COPY is streaming.
    let xtask = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/xtask");
    let mut child = std::process::Command::new(&xtask)
        .arg("import-chunk")
        .arg(&body)
        .env("DATABASE_URL", h.database_url().await)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("xtask is built by ./dev test");
    let mut copying = false;
    for _ in 0..400 {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and query ilike 'copy stage_rows%'",
        )
        .fetch_one(h.pool())
        .await
        .unwrap();
        if n > 0 {
            copying = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(copying, "the worker never reached its COPY");
    child.kill().unwrap();
    child.wait().unwrap();

    // Nothing of the chunk is visible; its bookkeeping still says pending.
    for _ in 0..100 {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and query ilike 'copy stage_rows%'",
        )
        .fetch_one(h.pool())
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        0
    );
    assert_eq!(h.scalar_i64("select count(*) from import_seen").await, 0);
    assert_eq!(
        h.scalar_i64("select count(*) from data_quality_issue")
            .await,
        0
    );
    assert_eq!(
        h.json("select to_jsonb(c.status) from import_chunk c")
            .await,
        "pending"
    );
    assert_eq!(
        h.scalar_i64("select chunks_done::bigint from sync_file")
            .await,
        0
    );

    // The message comes back after its visibility timeout and the chunk imports whole.
    h.drain().await;
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        20_000
    );
    assert_eq!(
        h.json("select to_jsonb(f.status) from sync_file f").await,
        "succeeded"
    );
}

/// The importer of a file's last chunk commits, then dies before it hands the run to finalize
/// (a Lambda timeout or crash between the two): the chunk's next delivery finds it imported
/// and makes the hand-off, so the run is finalized, not left for the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_lost_after_the_last_chunk_commits_is_made_by_its_redelivery() {
    let h = harness("handoff", None).await;
    let file = first_records(50);
    h.stage(facilities(file_url(file.path()))).await;
    let body = h.receive_chunk_message().await;
    let chunk: ChunkMessage = serde_json::from_str(&body).unwrap();
    // The import commits; what it queued for finalize is lost with the invocation.
    stormwater::sync::import::import_chunk(&h.ctx, &chunk)
        .await
        .expect("import");
    sqlx::query("update sync_run set finalize_requested_at = null")
        .execute(h.pool())
        .await
        .unwrap();
    h.ctx
        .sqs
        .purge_queue()
        .queue_url(&h.res.finalize_queue_url)
        .send()
        .await
        .expect("purge");
    assert_eq!(
        h.json("select to_jsonb(status) from sync_file").await,
        "imported"
    );
    // The message comes back (it was never deleted): the chunk is done, the hand-off is made.
    h.drain().await;
    assert_eq!(
        h.json("select jsonb_build_array(r.status, f.status, r.published_at is not null) from sync_run r join sync_file f on f.run_id = r.id")
            .await,
        serde_json::json!(["succeeded", "succeeded", true])
    );
}

#[derive(Clone)]
struct Portal {
    body: Arc<Mutex<(Vec<u8>, String)>>,
    base: String,
    downloads: Arc<Mutex<u32>>,
}

async fn resource_show(
    State(p): State<Portal>,
    Query(q): Query<HashMap<String, String>>,
) -> axum::Json<serde_json::Value> {
    let id = q.get("id").cloned().unwrap_or_default();
    axum::Json(serde_json::json!({
        "success": true,
        "result": { "id": id, "url": format!("{}/download/Industrial_Application_Specific_Data_2025-11-25.csv", p.base) }
    }))
}

async fn download(State(p): State<Portal>) -> (HeaderMap, Vec<u8>) {
    *p.downloads.lock().unwrap() += 1;
    let (body, etag) = p.body.lock().unwrap().clone();
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_str(&etag).unwrap());
    (headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ckan_sources_resolve_to_their_download_and_an_unchanged_etag_is_skipped() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let portal = Portal {
        body: Arc::new(Mutex::new((
            std::fs::read(first_records(40).path()).unwrap(),
            "\"v1\"".into(),
        ))),
        base: base.clone(),
        downloads: Arc::new(Mutex::new(0)),
    };
    let app = Router::new()
        .route("/api/3/action/resource_show", get(resource_show))
        .route("/download/{file}", get(download))
        .with_state(portal.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut h = harness("ckan", None).await;
    h.ctx.cfg.ckan_api_url = format!("{base}/api/3/action/resource_show");
    let source = || facilities("ckan:33e69394-83ec-4872-b644-b9f494de1824".into());

    let first = h.sync(source()).await;
    assert_eq!(first.files[0].status, "importing");
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        40
    );
    let meta = h.json("select to_jsonb(f) from sync_file f").await;
    assert_eq!(meta["etag"], "\"v1\"");
    assert_eq!(meta["status"], "succeeded");
    assert_eq!(
        meta["bytes"].as_i64().unwrap() as usize,
        portal.body.lock().unwrap().0.len()
    );

    // Same ETag: skipped before the body is read.
    let second = h.sync(source()).await;
    assert_eq!(second.files[0].status, "skipped");
    assert!(
        second.files[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("ETag \"v1\"")
    );

    // New content and ETag: imported; freshness names the extract date from the file name.
    *portal.body.lock().unwrap() = (
        std::fs::read(first_records(45).path()).unwrap(),
        "\"v2\"".into(),
    );
    let third = h.sync(source()).await;
    assert_eq!(third.files[0].rows, 45);
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        45
    );
    assert_eq!(*portal.downloads.lock().unwrap(), 3);
}

/// Workers can import every chunk of a small file before the stager records the chunk count:
/// the file must still end up `imported` and the run must be claimable for finalize (a run once
/// hung in `running` this way during the violation benchmark).
#[tokio::test]
async fn a_file_whose_chunks_finish_before_staging_does_is_imported() {
    use stormwater::repo::sync as repo;
    let h = harness("stage-race", None).await;
    let run = repo::create_run(h.pool(), "test").await.expect("run");
    let source = Source {
        dataset: "smarts_violations".into(),
        url: "file:///x.csv".into(),
        scope: None,
    };
    let file = repo::create_file(h.pool(), run, &source)
        .await
        .expect("file");
    // The one chunk was imported already (what import_chunk does on completion).
    sqlx::query("update sync_file set chunks_done = 1 where id = $1")
        .bind(file)
        .execute(h.pool())
        .await
        .expect("chunk done");
    let mut tx = h.pool().begin().await.expect("tx");
    let all_done = repo::finish_staging(
        &mut tx,
        &repo::StagedFile {
            file_id: file,
            chunk_count: 1,
            rows_read: 3,
            bytes: 100,
            checksum: "abc",
            etag: None,
            header: &["WDID".to_owned()],
            extra_columns: &[],
        },
    )
    .await
    .expect("finish staging");
    repo::finish_run_staging(&mut *tx, run)
        .await
        .expect("run staged");
    assert!(all_done);
    assert!(
        repo::claim_finalize(&mut tx, run).await.expect("claim"),
        "the run is ready to finalize"
    );
    tx.commit().await.expect("commit");
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from sync_file where id = {file} and status = 'imported'"
        ))
        .await,
        1
    );
}
