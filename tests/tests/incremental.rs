//! Incremental and at-least-once behaviour of the pipeline, and the sample events.

mod support;

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};
use std::io::Write;
use stormwater::sync::manifest::Source;
use stormwater::sync::{ChunkMessage, finalize, import, runner};
use support::{file_url, harness, shared_data};

const PORTAL_2019: &str =
    "real/NAS-Stormwater-Tool/Industrial_Application_Specific_Data_2019-03-12.csv";

/// The header and the first `n` records of the real 2019 file, optionally edited.
fn slice_of_portal(
    n: usize,
    edit: impl Fn(usize, String) -> Option<String>,
) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(shared_data(PORTAL_2019)).unwrap();
    let mut lines = text.lines();
    let mut out = tempfile::NamedTempFile::new().unwrap();
    writeln!(out, "{}", lines.next().unwrap()).unwrap();
    for (i, line) in lines.take(n).enumerate() {
        if let Some(l) = edit(i, line.to_owned()) {
            writeln!(out, "{l}").unwrap();
        }
    }
    out.flush().unwrap();
    out
}

/// The record with its STATUS switched between Active and Terminated.
fn flip_status(line: &str) -> String {
    let mut fields: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes())
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    fields[3] = if fields[3] == "Active" {
        "Terminated".into()
    } else {
        "Active".into()
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&fields).unwrap();
    String::from_utf8(w.into_inner().unwrap())
        .unwrap()
        .trim_end()
        .to_owned()
}

fn sources(path: &std::path::Path) -> Vec<Source> {
    vec![Source {
        dataset: "smarts_industrial_facilities".into(),
        url: file_url(path),
        scope: None,
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_row_updates_only_itself_and_a_vanished_row_is_withdrawn_not_deleted() {
    let h = harness("incremental", Some(40)).await;
    let v1 = slice_of_portal(100, |_, l| Some(l));
    h.sync(sources(v1.path())).await;
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        100
    );

    // v2: record 10 changes status, record 20 disappears, one new record appears at the end.
    let v2 = slice_of_portal(101, |i, l| match i {
        9 => Some(flip_status(&l)),
        19 => None,
        _ => Some(l),
    });
    let second = h.sync(sources(v2.path())).await;

    let file = h
        .json(&format!(
            "select to_jsonb(f) from sync_file f where run_id = {}",
            second.run_id
        ))
        .await;
    assert_eq!(file["rows_read"], 100);
    assert_eq!(file["rows_inserted"], 1);
    assert_eq!(file["rows_updated"], 1);
    assert_eq!(file["rows_unchanged"], 98);
    assert_eq!(file["rows_withdrawn"], 1);
    assert_eq!(file["status"], "succeeded");
    // The vanished row is still there, marked with the run that noticed.
    // Record 20 is on line 21 of v1; record 10 on line 11 of both versions.
    let gone = h.json("select to_jsonb(f) from smarts_industrial_facility f where source_line = 21 and withdrawn_run_id is not null").await;
    assert_eq!(gone["withdrawn_run_id"], second.run_id);
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        101
    );
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from smarts_industrial_facility where changed_run_id = {}",
            second.run_id
        ))
        .await,
        2
    );
    let changed = h
        .json("select to_jsonb(f) from smarts_industrial_facility f where source_line = 11")
        .await;
    assert_eq!(changed["changed_run_id"], second.run_id);
    assert_ne!(changed["first_run_id"], second.run_id);
    // The API no longer lists it.
    let (gone_app, gone_wdid) = (
        gone["app_id"].as_str().unwrap(),
        gone["wdid"].as_str().unwrap(),
    );
    let (_, body, _) = h
        .get(
            "api-facilities",
            &format!("/api/facilities?appId={gone_app}&limit=1000"),
        )
        .await;
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["wdid"] != gone_wdid)
    );

    // v1 again: the withdrawn row comes back (updated), the new one is withdrawn.
    let third = h.sync(sources(v1.path())).await;
    let file = h
        .json(&format!(
            "select to_jsonb(f) from sync_file f where run_id = {}",
            third.run_id
        ))
        .await;
    assert_eq!(file["rows_withdrawn"], 1);
    assert_eq!(
        h.scalar_i64(
            "select count(*) from smarts_industrial_facility where withdrawn_run_id is null"
        )
        .await,
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_chunk_changes_nothing() {
    let h = harness("redeliver", Some(30)).await;
    let file = slice_of_portal(50, |_, l| Some(l));
    h.stage(sources(file.path())).await;
    // Receive one chunk message and deliver it twice, as SQS may.
    let body = h.receive_chunk_message().await;
    let event: SqsEvent =
        serde_json::from_value(json!({"Records": [{"messageId": "m1", "body": body}]})).unwrap();
    let first = import::handle(&h.ctx, event.clone()).await;
    let again = import::handle(&h.ctx, event).await;
    assert!(first.batch_item_failures.is_empty());
    assert!(again.batch_item_failures.is_empty());
    let chunk: ChunkMessage = serde_json::from_str(&body).unwrap();
    assert_eq!(
        import::import_chunk(&h.ctx, &chunk).await.unwrap(),
        import::ChunkOutcome::AlreadyDone
    );
    let rows = h
        .scalar_i64("select count(*) from smarts_industrial_facility")
        .await;
    assert_eq!(rows, 30);
    assert_eq!(
        h.scalar_i64("select chunks_done::bigint from sync_file")
            .await,
        1
    );
    // The original delivery (and the rest) then drains normally.
    h.drain().await;
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        50
    );
    assert_eq!(
        h.scalar_i64("select chunks_done::bigint from sync_file")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_chunk_completion_requests_finalize_exactly_once() {
    let h = harness("finalize-once", Some(100)).await;
    let file = slice_of_portal(2_000, |_, l| Some(l));
    let summary = h.stage(sources(file.path())).await;
    assert_eq!(summary.files[0].chunks, 20);
    // Take all 20 chunk messages off the queue and import them concurrently.
    let mut bodies = Vec::new();
    while bodies.len() < 20 {
        let r = h
            .ctx
            .sqs
            .receive_message()
            .queue_url(&h.res.import_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in r.messages() {
            bodies.push(m.body().unwrap().to_owned());
            h.ctx
                .sqs
                .delete_message()
                .queue_url(&h.res.import_queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let ctx = std::sync::Arc::new(h);
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|b| {
            let h = ctx.clone();
            tokio::spawn(async move {
                let chunk: ChunkMessage = serde_json::from_str(&b).unwrap();
                import::import_chunk(&h.ctx, &chunk).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let h = ctx;
    assert_eq!(
        runner::backlog(&h.ctx.sqs, &h.res.finalize_queue_url)
            .await
            .unwrap(),
        1
    );
    // Two finalize invocations for the same run: only one does the work.
    let (a, b) = tokio::join!(
        finalize::finalize_run(&h.ctx, summary.run_id),
        finalize::finalize_run(&h.ctx, summary.run_id)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let finalized = outcomes
        .iter()
        .filter(|o| matches!(o, finalize::FinalizeOutcome::Finalized { .. }))
        .count();
    assert_eq!(finalized, 1);
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        2_000
    );
    assert_eq!(
        h.scalar_i64("select count(*) from sync_run where status = 'succeeded'")
            .await,
        1
    );
}

/// Every sample event in events/ parses, and runs through its function's handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_runs_through_its_handler() {
    let h = harness("events", None).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    // Load the real sample first, through the event the README uses.
    let local: stormwater::sync::stage::StageRequest = serde_json::from_str(
        &std::fs::read_to_string(root.join("sync-stage/local-sample.json")).unwrap(),
    )
    .unwrap();
    let sample = local.sources.as_ref().unwrap();
    assert_eq!(sample.len(), 2);
    assert_eq!(sample[1].dataset, "smarts_industrial_monitoring");
    assert!(
        sample[0]
            .url
            .ends_with("Industrial_Application_Specific_Data_2019-03-12.csv")
    );
    let mut both = sources(&shared_data(PORTAL_2019));
    both.push(Source {
        dataset: "smarts_industrial_monitoring".into(),
        url: file_url(&shared_data(
            "real/tientalkenvi/Region_1_-_North_Coast_-_Industrial_Ad_Hoc_Reports_-_Parameter_Data.txt",
        )),
        scope: None,
    });
    h.sync(both).await;
    assert!(
        h.scalar_i64("select count(*) from violation_event where id = 1")
            .await
            == 1,
        "api-violation/get.json asks for event 1"
    );

    let mut ran = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let function = dir.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../functions")
                .join(&function)
                .is_dir(),
            "events/{function} has no function"
        );
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let text = std::fs::read_to_string(&file).unwrap();
            let name = file.file_stem().unwrap().to_str().unwrap().to_owned();
            match function.as_str() {
                f if stormwater::api::routes::function(f).is_some() => {
                    let req = lambda_http::request::from_str(&text).unwrap();
                    let (status, body, _) = h.call(&function, req).await;
                    let want = if name.starts_with("bad-") {
                        400
                    } else if name.starts_with("unauth-") {
                        401
                    } else {
                        200
                    };
                    assert_eq!(status, want, "{function}/{name}: {body}");
                    if function == "api-facilities" && want == 200 {
                        assert!(
                            !body["data"].as_array().unwrap().is_empty(),
                            "{function}/{name} found nothing"
                        );
                    }
                }
                "sync-stage" => {
                    let req: stormwater::sync::stage::StageRequest =
                        serde_json::from_str(&text).unwrap();
                    if name == "schedule" {
                        assert_eq!(req.trigger, "schedule");
                        assert!(
                            req.sources.is_none(),
                            "the schedule uses the default manifest"
                        );
                    } else {
                        for s in req.sources.unwrap() {
                            let path = s.url.strip_prefix("file://").unwrap();
                            // ../shared/data is read from $STORMWATER_SHARED_DATA when set (a
                            // checkout elsewhere; `./dev up` rewrites the event the same way).
                            let from_root = match path.strip_prefix("../shared/data/") {
                                Some(rel) => shared_data(rel),
                                None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                                    .join("..")
                                    .join(path),
                            };
                            assert!(
                                from_root.exists(),
                                "{function}/{name}: {path} does not exist"
                            );
                        }
                    }
                }
                "sync-import" => {
                    // The sample names run 1, file 1, chunk 0 in bucket stormwater-staging; point it
                    // at this test's bucket. The chunk is already imported: a redelivery changes nothing.
                    let mut event: Value = serde_json::from_str(&text).unwrap();
                    let mut body: Value =
                        serde_json::from_str(event["Records"][0]["body"].as_str().unwrap())
                            .unwrap();
                    body["bucket"] = json!(h.res.bucket);
                    event["Records"][0]["body"] = json!(body.to_string());
                    let event: SqsEvent = serde_json::from_value(event).unwrap();
                    let before = h
                        .scalar_i64("select count(*) from smarts_industrial_facility")
                        .await;
                    let resp = import::handle(&h.ctx, event).await;
                    assert!(resp.batch_item_failures.is_empty());
                    assert_eq!(
                        h.scalar_i64("select count(*) from smarts_industrial_facility")
                            .await,
                        before
                    );
                }
                "sync-finalize" => {
                    // Run 1 was finalized by the sync above: a second request does nothing.
                    let event: SqsEvent = serde_json::from_str(&text).unwrap();
                    let resp = finalize::handle(&h.ctx, event).await;
                    assert!(resp.batch_item_failures.is_empty());
                    assert_eq!(
                        h.scalar_i64(
                            "select count(*) from sync_run where id = 1 and status = 'succeeded'"
                        )
                        .await,
                        1
                    );
                }
                "violations-compute" => {
                    let req: stormwater::violations::ComputeRequest =
                        serde_json::from_str(&text).unwrap();
                    let mut opts = stormwater::violations::engine::Options::new(
                        "test",
                        stormwater::violations::NdPolicy::Zero,
                    );
                    opts.force_full = req.full;
                    let report = stormwater::violations::engine::compute(h.pool(), &opts)
                        .await
                        .expect("engine");
                    assert_eq!(report.mode, if req.full { "full" } else { "incremental" });
                    assert_eq!(
                        report.events_new + report.events_updated + report.events_retracted,
                        0,
                        "finalize already computed everything"
                    );
                }
                "facility-link" => {
                    let req: stormwater::linking::LinkRequest =
                        serde_json::from_str(&text).unwrap();
                    let mut opts = stormwater::linking::Options::new(
                        "test",
                        stormwater::linking::Settings::default(),
                    );
                    opts.force_full = req.full;
                    let done = stormwater::linking::apply(
                        h.pool(),
                        &h.ctx.cache,
                        &opts,
                        stormwater::violations::NdPolicy::Zero,
                        None,
                    )
                    .await
                    .expect("linker");
                    assert_eq!(
                        done.links.mode,
                        if req.full { "full" } else { "incremental" }
                    );
                    assert_eq!(
                        done.links.written,
                        stormwater::linking::Written::default(),
                        "finalize already linked everything"
                    );
                }
                "alert-dispatch" => {
                    let event: SqsEvent = serde_json::from_str(&text).unwrap();
                    let resp = stormwater::alerts::dispatch::handle(&h.ctx, event).await;
                    assert!(resp.batch_item_failures.is_empty());
                }
                "migrate" => {
                    let _: Value = serde_json::from_str(&text).unwrap();
                    stormwater::db::migrate(h.pool())
                        .await
                        .expect("migrations are idempotent");
                }
                other => panic!("events/{other}: no test knows this function"),
            }
            ran += 1;
        }
    }
    assert!(ran >= 21, "only {ran} events ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_benchmarks_load_idempotently_with_unverified_values_flagged() {
    let h = harness("benchmarks", None).await;
    for _ in 0..2 {
        let loaded = stormwater::repo::benchmarks::load(h.pool()).await.unwrap();
        assert_eq!(loaded.benchmarks, 109);
    }
    assert_eq!(h.scalar_i64("select count(*) from benchmark").await, 109);
    assert_eq!(
        h.scalar_i64("select count(*) from benchmark where source = 'IGP 2014-0057-DWQ'")
            .await,
        23
    );
    let ph = h
        .json("select jsonb_build_array(value, value_max, unit) from benchmark where pollutant_key = 'ph'")
        .await;
    assert_eq!(ph, json!([6.0, 9.0, "pH units"]));
    assert_eq!(
        h.scalar_i64("select count(*) from benchmark where unverified and pollutant_key in ('silver', 'nickel')").await,
        2
    );
    let metals = h
        .scalar_i64(
            "select count(*) from pollutant where category = 'metal' and canonical_unit = 'mg/L'",
        )
        .await;
    assert_eq!(
        metals, 15,
        "Al As Cd Cr Cr(III) Cr(VI) Cu Fe Hg Mg Ni Pb Se Ag Zn"
    );
}
