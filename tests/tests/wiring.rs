//! The local stack runs template.yaml's own wiring: its queues (FIFO, redrive policy,
//! `maxReceiveCount`) and SQS event source mappings (batch size, `FunctionResponseTypes`) come
//! from the SAM-transformed template, and the runner then behaves as Lambda does for exactly
//! what is declared: a mapping without `ReportBatchItemFailures` ignores the batch response,
//! and a mapping is polled by as many pollers at once as its `MaximumConcurrency` allows
//! (capped locally at `runner::LOCAL_CAP`).

mod support;

use aws_sdk_sqs::config::ConfigBag;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stormwater::sync::runner::{self, Resources, Target};
use support::{Harness, harness, root, transformed};

fn template_text() -> String {
    std::fs::read_to_string(root().join("template.yaml")).unwrap()
}

/// Messages waiting on a queue (visible + in flight).
async fn depth(h: &Harness, url: &str) -> u64 {
    runner::backlog(&h.ctx.sqs, url).await.unwrap()
}

/// Plays the mappings until the queues are empty (redeliveries included).
async fn drain(h: &Harness, res: &Resources) {
    runner::drain(
        &h.ctx,
        &runner::mappings(res, 0).unwrap(),
        Duration::from_secs(120),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_queues_and_mappings_are_the_templates() {
    let h = harness("wiring", None).await;
    let w = transformed(&template_text());
    // Every queue the template declares exists with its attributes (the tests shorten the
    // visibility timeout to 2 s, nothing else).
    assert_eq!(h.res.queue_urls.len(), w.queues.len());
    for (id, q) in &w.queues {
        let url = &h.res.queue_urls[id];
        let attrs = h
            .ctx
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = attrs.attributes().unwrap();
        let get = |k: QueueAttributeName| attrs.get(&k).cloned();
        assert_eq!(
            get(QueueAttributeName::FifoQueue).as_deref() == Some("true"),
            q.fifo,
            "{id}"
        );
        assert_eq!(
            get(QueueAttributeName::VisibilityTimeout).as_deref(),
            Some("2"),
            "{id}"
        );
        match &q.redrive {
            None => assert!(get(QueueAttributeName::RedrivePolicy).is_none(), "{id}"),
            Some((dlq, max)) => {
                let policy: serde_json::Value =
                    serde_json::from_str(&get(QueueAttributeName::RedrivePolicy).unwrap()).unwrap();
                assert_eq!(
                    policy["maxReceiveCount"].to_string(),
                    max.to_string(),
                    "{id}"
                );
                assert_eq!(
                    policy["deadLetterTargetArn"],
                    runner::queue_arn(&h.res.queue_urls[dlq]),
                    "{id}"
                );
            }
        }
    }
    // The handlers record a message failed at the delivery SQS dead-letters it: their
    // constants are the queues' maxReceiveCount.
    for (queue, dlq, max, what) in [
        (
            "ImportQueue",
            "ImportDLQ",
            stormwater::config::IMPORT_MAX_RECEIVES,
            "the importer records a chunk failed at the delivery SQS dead-letters it",
        ),
        (
            "FinalizePartQueue",
            "FinalizePartDLQ",
            stormwater::config::FINALIZE_PART_MAX_RECEIVES,
            "a finalize part is recorded failed at the delivery SQS dead-letters it",
        ),
        (
            "StageFileQueue",
            "StageFileDLQ",
            stormwater::config::STAGE_FILE_MAX_RECEIVES,
            "a file is recorded failed at the delivery SQS dead-letters it",
        ),
    ] {
        assert_eq!(
            w.queues[queue].redrive,
            Some((dlq.to_owned(), max)),
            "{queue}: {what}"
        );
    }
    // The finalize parts: a standard queue (parts run in parallel) with a standard DLQ kept 14
    // days, played by sync-finalize-part one message at a time with partial batch responses and
    // at most FinalizePartConcurrency (default 2, AWS's least) at once.
    let parts = &w.queues["FinalizePartQueue"];
    assert!(!parts.fifo && !w.queues["FinalizePartDLQ"].fifo);
    assert_eq!(parts.name, "{stack}-finalize-part");
    assert_eq!(
        w.queues["FinalizePartDLQ"].message_retention,
        Some(1_209_600)
    );
    let part_mapping = w
        .mappings
        .iter()
        .find(|m| m.queue == "FinalizePartQueue")
        .expect("a mapping on FinalizePartQueue");
    assert_eq!(part_mapping.function, "SyncFinalizePartFunction");
    assert_eq!(
        w.functions["SyncFinalizePartFunction"].binary,
        "sync-finalize-part"
    );
    assert_eq!(part_mapping.batch_size, 1);
    assert!(part_mapping.report_batch_item_failures);
    assert_eq!(part_mapping.maximum_concurrency, Some(2));
    let played_part = runner::mappings(&h.res, 0)
        .unwrap()
        .into_iter()
        .find(|m| m.target == Target::FinalizePart)
        .expect("the runner plays the finalize part mapping");
    assert_eq!(played_part.queue_url, h.res.finalize_part_queue_url);
    assert_eq!(played_part.concurrency, 2, "two parts at once");
    // Every SQS mapping is played, with its batch size, response types and concurrency.
    let played = runner::mappings(&h.res, 0).unwrap();
    assert_eq!(played.len(), w.mappings.len());
    for m in &w.mappings {
        let p = played.iter().find(|p| p.function == m.function).unwrap();
        assert_eq!(p.queue_url, h.res.queue_urls[&m.queue]);
        assert_eq!(p.batch_size as u32, m.batch_size.min(10));
        assert_eq!(p.report_batch_item_failures, m.report_batch_item_failures);
        // As many pollers as MaximumConcurrency allows (AWS's least is 2), capped locally;
        // one for a FIFO queue or a mapping without a maximum.
        let fifo = w.queues[&m.queue].fifo;
        if let Some(max) = m.maximum_concurrency {
            assert!(
                (2..=1000).contains(&max),
                "{}: MaximumConcurrency {max}",
                m.id
            );
        }
        assert_eq!(
            p.concurrency,
            runner::local_concurrency(fifo, m.maximum_concurrency),
            "{}",
            m.id
        );
        assert!(
            (1..=runner::LOCAL_CAP as usize).contains(&p.concurrency),
            "{}",
            m.id
        );
        // AWS refuses a mapping whose function may outlive the visibility timeout, and advises
        // six times the function timeout.
        let timeout = w.functions[&m.function].timeout;
        assert!(
            w.queues[&m.queue].visibility_timeout >= 6 * timeout,
            "{}: visibility {} < 6 x {timeout}",
            m.id,
            w.queues[&m.queue].visibility_timeout
        );
    }
}

/// A finalize that fails must be retried and end in the finalize DLQ; so must a failed alert
/// dispatch. Without `ReportBatchItemFailures` on their mappings (the template before this
/// change) Lambda deletes the batch the handler reported failed: the run is never finalized
/// and the DLQ stays empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_finalize_or_alert_batch_is_retried_and_dead_lettered() {
    let h = harness("wiring-dlq", None).await;
    h.ctx
        .sqs
        .send_message()
        .queue_url(&h.res.finalize_queue_url)
        .message_body(r#"{"run_id": 424242}"#)
        .message_group_id("finalize")
        .message_deduplication_id("finalize-424242")
        .send()
        .await
        .unwrap();
    // Alert dispatch fails while the subscription table cannot be read.
    sqlx::query("alter table subscription rename to subscription_away")
        .execute(h.pool())
        .await
        .unwrap();
    h.ctx
        .sqs
        .send_message()
        .queue_url(&h.res.alert_queue_url)
        .message_body(r#"{"runId": 424242}"#)
        .send()
        .await
        .unwrap();
    drain(&h, &h.res).await;
    assert_eq!(depth(&h, &h.res.finalize_dlq_url).await, 1, "finalize DLQ");
    assert_eq!(depth(&h, &h.res.alert_dlq_url).await, 1, "alert DLQ");
}

/// The runner honours what the template declares, not what the handler returns: in a copy of
/// the template whose import mapping lacks `ReportBatchItemFailures`, a chunk the handler
/// reports failed is deleted after one delivery (as Lambda would), while the real template
/// retries it until the DLQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_without_report_batch_item_failures_ignores_the_batch_response() {
    let h = harness("wiring-broken", None).await;
    let text = template_text();
    let declaration =
        "            FunctionResponseTypes:\n              - ReportBatchItemFailures\n";
    let import = text.find("  SyncImportFunction:").unwrap();
    let at = import + text[import..].find(declaration).unwrap();
    let broken = format!("{}{}", &text[..at], &text[at + declaration.len()..]);
    let wiring = transformed(&broken);
    let m = wiring
        .mappings
        .iter()
        .find(|m| m.queue == "ImportQueue")
        .unwrap();
    assert!(!m.report_batch_item_failures);

    for (prefix, wiring, expect_dlq) in [
        (format!("{}-broken", h.prefix), Arc::new(wiring), 0),
        (format!("{}-real", h.prefix), h.res.wiring.clone(), 1),
    ] {
        let res = runner::ensure_resources(&h.ctx.s3, &h.ctx.sqs, &prefix, wiring, Some(1))
            .await
            .unwrap();
        // A poison message: its body is not a chunk message, so the handler reports it failed.
        h.ctx
            .sqs
            .send_message()
            .queue_url(&res.import_queue_url)
            .message_body("not a chunk message")
            .send()
            .await
            .unwrap();
        let import = runner::mappings(&res, 0)
            .unwrap()
            .into_iter()
            .filter(|m| m.target == Target::Import)
            .collect::<Vec<_>>();
        let mut deliveries = 0;
        while depth(&h, &res.import_queue_url).await > 0 {
            deliveries += runner::poll_once(&h.ctx, &import[0]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(deliveries <= 10, "{prefix}: redelivered forever");
        }
        assert_eq!(
            depth(&h, &res.import_dlq_url).await,
            expect_dlq,
            "{prefix}: {deliveries} deliveries"
        );
        assert_eq!(
            deliveries,
            if expect_dlq == 0 {
                1
            } else {
                stormwater::config::IMPORT_MAX_RECEIVES as usize
            },
            "{prefix}"
        );
    }
}

/// Counts the SQS receives in flight at once, and the most seen.
#[derive(Debug, Clone, Default)]
struct ReceivesInFlight {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

fn is_receive(cfg: &ConfigBag) -> bool {
    cfg.load::<Metadata>()
        .is_some_and(|m| m.name() == "ReceiveMessage")
}

impl Intercept for ReceivesInFlight {
    fn name(&self) -> &'static str {
        "receives-in-flight"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if is_receive(cfg) {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
        }
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if is_receive(cfg) {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Lambda polls a mapping with up to its MaximumConcurrency invocations at once; so does
/// `drain` (capped locally): with every queue empty and each receive long-polling 1 s, every
/// poller of every mapping is waiting on a receive at the same time, and `drain` still returns
/// once they all found nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_polls_each_mapping_with_its_concurrency_at_once() {
    let h = harness("wiring-concurrency", None).await;
    let counter = ReceivesInFlight::default();
    let ctx = stormwater::sync::Context {
        cfg: h.ctx.cfg.clone(),
        pool: h.ctx.pool.clone(),
        s3: h.ctx.s3.clone(),
        sqs: aws_sdk_sqs::Client::from_conf(
            h.ctx
                .sqs
                .config()
                .to_builder()
                .interceptor(counter.clone())
                .build(),
        ),
        cache: h.ctx.cache.clone(),
        http: h.ctx.http.clone(),
        webhooks: h.ctx.webhooks.clone(),
    };
    let mappings = runner::mappings(&h.res, 1).unwrap();
    let pollers: usize = mappings.iter().map(|m| m.concurrency).sum();
    assert_eq!(pollers, runner::local_pollers(&h.res.wiring));
    // Two pollers each for the import and finalize part queues, one each for the FIFO
    // finalize queue and the alert queue (no MaximumConcurrency).
    let by_target = |t: Target| {
        mappings
            .iter()
            .filter(|m| m.target == t)
            .map(|m| m.concurrency)
            .sum::<usize>()
    };
    assert_eq!(
        [
            by_target(Target::Import),
            by_target(Target::FinalizePart),
            by_target(Target::Finalize),
            by_target(Target::Alerts),
        ],
        [2, 2, 1, 1]
    );
    let started = std::time::Instant::now();
    let handled = runner::drain(&ctx, &mappings, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(handled, 0);
    assert_eq!(
        counter.most.load(Ordering::SeqCst),
        pollers,
        "receives in flight at once ({:?} to drain)",
        started.elapsed()
    );
    assert_eq!(counter.now.load(Ordering::SeqCst), 0);
}
