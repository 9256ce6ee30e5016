//! Each source file staged by an invocation of its own (`sync-stage` queues one StageFileQueue
//! message per file, `sync-stage-file` stages it), through the local stack: a file is staged
//! once whatever its deliveries (a redelivery after it was staged only sends its pending chunks
//! again, which import once; a delivery while another stages it leaves it alone), and a file
//! whose every delivery fails is recorded failed at the last one, so its run still ends.

mod support;

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::json;
use stormwater::sync::FileMessage;
use stormwater::sync::runner::Target;
use stormwater::sync::stage_file::{self, Delivery};
use support::{Harness, facilities, file_url, first_records, harness};

/// The stage-file messages waiting on the queue, taken off it (the test delivers them).
async fn take_file_messages(h: &Harness) -> Vec<String> {
    let received = h
        .ctx
        .sqs
        .receive_message()
        .queue_url(&h.res.stage_file_queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive from the stage-file queue");
    let mut bodies = Vec::new();
    for m in received.messages() {
        bodies.push(m.body().unwrap_or_default().to_owned());
        h.ctx
            .sqs
            .delete_message()
            .queue_url(&h.res.stage_file_queue_url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .expect("delete");
    }
    bodies
}

/// An SQS event of one message, delivered for the `receives`th time.
fn delivery(body: &str, receives: u32) -> SqsEvent {
    serde_json::from_value(json!({"Records": [{
        "messageId": format!("m-{receives}"),
        "receiptHandle": "r",
        "body": body,
        "attributes": {"ApproximateReceiveCount": receives.to_string()},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:t-stage-file",
        "awsRegion": "us-east-1",
    }]}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_staged_once_whatever_its_deliveries() {
    let h = harness("staging-once", Some(40)).await;
    let file = first_records(150);
    let planned = stormwater::sync::stage::run(
        &h.ctx,
        stormwater::sync::stage::StageRequest {
            trigger: "test".into(),
            sources: Some(facilities(file_url(file.path()))),
            force: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(planned.files.len(), 1);
    assert_eq!(planned.files[0].status, "staging");
    let bodies = take_file_messages(&h).await;
    assert_eq!(bodies.len(), 1, "one message per file");
    let message: FileMessage = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(message.file_id, planned.files[0].file_id);

    // A delivery while another holds the file stages nothing.
    let mut other = h.pool().acquire().await.unwrap();
    assert!(
        stormwater::repo::sync::try_lock_file(&mut other, message.file_id)
            .await
            .unwrap()
    );
    assert_eq!(
        stage_file::stage_one(&h.ctx, &message).await.unwrap(),
        Delivery::Busy
    );
    assert_eq!(
        h.scalar_i64("select count(*) from import_chunk").await,
        0,
        "nothing staged while another delivery holds the file"
    );
    stormwater::repo::sync::unlock_file(&mut other, message.file_id)
        .await
        .unwrap();
    drop(other);

    // The delivery stages it: 150 records in chunks of 40.
    let Delivery::Staged(outcome) = stage_file::stage_one(&h.ctx, &message).await.unwrap() else {
        panic!("the file is staged");
    };
    assert_eq!(
        (outcome.status.as_str(), outcome.rows, outcome.chunks),
        ("importing", 150, 4)
    );
    assert!(
        h.scalar_i64(&format!(
            "select count(*) from sync_file where id = {} and staged_at is not null and stage_ms >= 0",
            message.file_id
        ))
        .await
            == 1,
        "the staging invocation's time is recorded"
    );
    // The same message again (SQS delivers at least once; or the first delivery died after
    // staging, before its chunk messages were all sent): the pending chunks are queued again,
    // nothing is staged again.
    let again = stage_file::handle(&h.ctx, delivery(&bodies[0], 2)).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(h.scalar_i64("select count(*) from import_chunk").await, 4);
    assert_eq!(
        stormwater::sync::runner::backlog(&h.ctx.sqs, &h.res.import_queue_url)
            .await
            .unwrap(),
        8,
        "every pending chunk's message twice"
    );
    // Every chunk imports once: 150 facilities, the run succeeded.
    h.drain().await;
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        150
    );
    assert_eq!(
        h.json(&format!(
            "select jsonb_build_array(r.status, f.status, f.chunks_done, f.rows_inserted)
               from sync_run r join sync_file f on f.run_id = r.id where r.id = {}",
            planned.run_id
        ))
        .await,
        json!(["succeeded", "succeeded", 4, 150])
    );
    // A late delivery after the run ended changes nothing.
    let late = stage_file::stage_one(&h.ctx, &message).await.unwrap();
    assert_eq!(late, Delivery::AlreadyStaged { requeued: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_every_delivery_fails_is_recorded_failed_and_its_run_ends() {
    let h = harness("staging-fails", Some(40)).await;
    let good = first_records(30);
    let bad = first_records(60);
    let mut sources = facilities(file_url(good.path()));
    sources.push(stormwater::sync::manifest::Source {
        dataset: "smarts_industrial_facilities".into(),
        url: file_url(bad.path()),
        scope: Some("region-9".into()),
    });
    let planned = stormwater::sync::stage::run(
        &h.ctx,
        stormwater::sync::stage::StageRequest {
            trigger: "test".into(),
            sources: Some(sources),
            force: false,
        },
    )
    .await
    .unwrap();
    let failing = planned.files[1].file_id;
    // The second file's earlier delivery died mid-file, leaving a chunk recorded; this
    // database refuses to forget it while the file is staging, so every delivery of the file
    // fails before it reads a byte.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into import_chunk (file_id, chunk_index, s3_key, first_line, status)
              values ({failing}, 0, 'chunks/left-over.csv', 2, 'pending');
         create function refuse_discard() returns trigger language plpgsql as $$
         begin
           if (select status from sync_file where id = old.file_id) = 'staging' then
             raise exception 'injected: chunk bookkeeping unavailable';
           end if;
           return old;
         end $$;
         create trigger refuse_discard before delete on import_chunk
           for each row execute function refuse_discard();"
    )))
    .execute(h.pool())
    .await
    .unwrap();
    let bodies = take_file_messages(&h).await;
    assert_eq!(bodies.len(), 2);
    let body = bodies
        .iter()
        .find(|b| serde_json::from_str::<FileMessage>(b).unwrap().file_id == failing)
        .unwrap();
    // Deliveries before the last: reported failed (the message comes back), the file waits.
    for receives in 1..stormwater::config::STAGE_FILE_MAX_RECEIVES {
        let resp = stage_file::handle(&h.ctx, delivery(body, receives)).await;
        assert_eq!(resp.batch_item_failures.len(), 1, "delivery {receives}");
        assert_eq!(
            h.json(&format!(
                "select to_jsonb(status) from sync_file where id = {failing}"
            ))
            .await,
            json!("staging")
        );
    }
    // The other file is staged and imported meanwhile; the run waits for the failing one.
    let other: String = bodies.iter().find(|b| *b != body).unwrap().clone();
    let resp = stage_file::handle(&h.ctx, delivery(&other, 1)).await;
    assert!(resp.batch_item_failures.is_empty());
    h.drain_target(Target::Import).await;
    assert_eq!(
        h.json(&format!(
            "select to_jsonb(finalize_requested_at is null) from sync_run where id = {}",
            planned.run_id
        ))
        .await,
        json!(true),
        "a file still staging holds the run"
    );
    // The last delivery fails too: SQS dead-letters the message, and the file is recorded
    // failed with the reason, so the run finalizes without it.
    let resp = stage_file::handle(
        &h.ctx,
        delivery(body, stormwater::config::STAGE_FILE_MAX_RECEIVES),
    )
    .await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    let file = h
        .json(&format!(
            "select jsonb_build_array(status, error) from sync_file where id = {failing}"
        ))
        .await;
    assert_eq!(file[0], "failed", "{file}");
    assert!(
        file[1]
            .as_str()
            .unwrap()
            .contains("not staged after 3 deliveries: database: ")
            && file[1].as_str().unwrap().contains("injected"),
        "{file}"
    );
    h.drain().await;
    let run = h
        .json(&format!(
            "select jsonb_build_array(status, finished_at is not null) from sync_run where id = {}",
            planned.run_id
        ))
        .await;
    assert_eq!(run[1], true, "the run ended: {run}");
    assert_ne!(run[0], "succeeded", "{run}");
    assert_eq!(
        h.scalar_i64("select count(*) from smarts_industrial_facility")
            .await,
        30,
        "the good file landed"
    );
}
