//! Incremental and at-least-once behaviour of the pipeline (the sample events: `events.rs`).

mod support;

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::json;
use std::io::Write;
use stormwater::sync::manifest::Source;
use stormwater::sync::{ChunkMessage, finalize, import, runner};
use support::{PORTAL_2019, file_url, harness, shared_data};

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
            .all(|f| f["permitIds"]["wdids"]
                .as_array()
                .unwrap()
                .iter()
                .all(|w| w != gone_wdid)),
        "{body}"
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

/// Plays the import queue until it is empty, leaving the finalize queue alone.
async fn import_all(h: &support::Harness) {
    let mappings = runner::mappings(&h.res, 0).unwrap();
    let import = mappings
        .iter()
        .find(|m| m.target == runner::Target::Import)
        .unwrap();
    while runner::backlog(&h.ctx.sqs, &h.res.import_queue_url)
        .await
        .unwrap()
        > 0
    {
        runner::poll_once(&h.ctx, import).await.unwrap();
    }
}

/// Finalize runs as a chain of invocations, one message each (files, link, engine, publish),
/// so that each step has Lambda's whole time limit. A step's message that comes again redoes
/// nothing; a next step whose message could not be sent is queued by the redelivery of the step
/// before it; a step asked for before its turn fails (and is retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_runs_each_step_once_in_an_invocation_of_its_own() {
    let h = harness("finalize-steps", None).await;
    let finalize_mapping = runner::mappings(&h.res, 0)
        .unwrap()
        .into_iter()
        .find(|m| m.target == runner::Target::Finalize)
        .unwrap();
    let queued = || runner::backlog(&h.ctx.sqs, &h.res.finalize_queue_url);
    let file = slice_of_portal(300, |_, l| Some(l));
    let run = h.stage(sources(file.path())).await.run_id;
    import_all(&h).await;
    let step = format!("select to_jsonb(finalize_step) from sync_run where id = {run}");
    for after in ["link", "engine", "publish", "done"] {
        assert_eq!(queued().await.unwrap(), 1, "one step queued before {after}");
        assert_eq!(
            runner::poll_once(&h.ctx, &finalize_mapping).await.unwrap(),
            1
        );
        assert_eq!(h.json(&step).await, json!(after));
    }
    assert_eq!(queued().await.unwrap(), 0);
    let invocations = format!(
        "select jsonb_build_array(published_at is not null,
                 (select jsonb_agg(k order by k) from jsonb_object_keys(notes::jsonb -> 'finalizeInvocationMs') k),
                 (notes::jsonb -> 'finalizeMs' ->> 'total')::bigint
                   = (select sum(v::bigint) from jsonb_each_text(notes::jsonb -> 'finalizeInvocationMs') e(k, v)))
           from sync_run where id = {run}"
    );
    assert_eq!(
        h.json(&invocations).await,
        json!([true, ["engine", "files", "link", "publish"], true])
    );
    let engine_runs =
        format!("select count(*) from violation_engine_run where sync_run_id = {run}");
    let link_runs = "select count(*) from facility_link_run";
    let (engines, links) = (
        h.scalar_i64(&engine_runs).await,
        h.scalar_i64(link_runs).await,
    );
    assert_eq!(engines, 1);
    // Every step again, as a redelivery: nothing is redone and nothing is queued.
    for again in finalize::Step::ALL {
        let out = finalize::run_step(&h.ctx, run, again).await.unwrap();
        assert_eq!(
            out,
            finalize::FinalizeOutcome::AlreadyDone {
                run_id: run,
                step: again
            }
        );
    }
    assert_eq!(queued().await.unwrap(), 0);
    assert_eq!(h.scalar_i64(&engine_runs).await, engines);
    assert_eq!(h.scalar_i64(link_runs).await, links);

    // The next week: the files step commits but cannot queue the link step.
    let file = slice_of_portal(300, |i, l| Some(if i == 7 { flip_status(&l) } else { l }));
    let run = h.stage(sources(file.path())).await.run_id;
    import_all(&h).await;
    let unsent = stormwater::sync::Context {
        cfg: h.ctx.cfg.clone().with_aws_resources(
            &h.res.bucket,
            &h.res.import_queue_url,
            &format!("{}-gone", h.res.finalize_queue_url),
        ),
        pool: h.ctx.pool.clone(),
        s3: h.ctx.s3.clone(),
        sqs: h.ctx.sqs.clone(),
        cache: h.ctx.cache.clone(),
        http: h.ctx.http.clone(),
        webhooks: h.ctx.webhooks.clone(),
    };
    assert!(
        finalize::run_step(&unsent, run, finalize::Step::Files)
            .await
            .is_err()
    );
    let step = format!("select to_jsonb(finalize_step) from sync_run where id = {run}");
    assert_eq!(h.json(&step).await, json!("link"));
    // A step before its turn is refused; sync-status shows where the run waits.
    let early = finalize::run_step(&h.ctx, run, finalize::Step::Publish).await;
    assert!(early.is_err(), "{early:?}");
    let (code, status, _) = h.get("sync-status", &format!("/api/sync/runs/{run}")).await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(
        (
            &status["data"]["finalize_step"],
            &status["data"]["published_at"]
        ),
        (&json!("link"), &json!(null)),
        "{status}"
    );
    // The files message is still queued (an invocation that fails does not delete it): its
    // redelivery queues the link step, and the rest of the chain follows.
    h.drain().await;
    assert_eq!(h.json(&step).await, json!("done"));
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from sync_run where id = {run} and published_at is not null"
        ))
        .await,
        1
    );
    assert_eq!(
        h.scalar_i64(&format!(
            "select count(*) from violation_engine_run where sync_run_id = {run}"
        ))
        .await,
        1
    );
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
