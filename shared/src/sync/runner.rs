//! Local stand-in for Lambda's SQS event source mapping, for the dev stack and tests.
//!
//! It long-polls a queue, hands each batch to the handler exactly as Lambda would (an
//! `SqsEvent` of up to `batch_size` records, the visibility timeout running meanwhile),
//! deletes only the messages the handler did not report as failed, and leaves the others to
//! reappear; the queue's redrive policy moves a message to its DLQ after `maxReceiveCount`
//! receives. It also creates the bucket and queues with the same settings as template.yaml.
//!
//! Like Lambda, it polls a mapping with as many concurrent pollers as the mapping's
//! `ScalingConfig.MaximumConcurrency` allows (one for a FIFO queue or a mapping without it),
//! capped at [`LOCAL_CAP`] on this machine: see [`Mapping::concurrency`].

use super::wiring::{self, Wiring};
use super::{Context, SyncError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use futures_util::future::{join_all, try_join_all};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Names of the local resources, by the template's logical ids.
#[derive(Debug, Clone)]
pub struct Resources {
    pub bucket: String,
    pub import_queue_url: String,
    pub import_dlq_url: String,
    pub finalize_queue_url: String,
    pub finalize_dlq_url: String,
    pub alert_queue_url: String,
    pub alert_dlq_url: String,
    pub finalize_part_queue_url: String,
    pub finalize_part_dlq_url: String,
    pub stage_file_queue_url: String,
    pub stage_file_dlq_url: String,
    /// Every queue of the template: logical id → URL.
    pub queue_urls: BTreeMap<String, String>,
    /// The template's wiring these resources were built from.
    pub wiring: Arc<Wiring>,
}

impl Resources {
    /// The local ARN of a template resource (a queue or the staging bucket), by logical id.
    pub fn arn_of(&self, logical_id: &str) -> Option<String> {
        if self.wiring.buckets.iter().any(|b| b == logical_id) {
            return Some(format!("arn:aws:s3:::{}", self.bucket));
        }
        self.queue_urls.get(logical_id).map(|url| queue_arn(url))
    }
}

/// The ARN of a queue from its URL (`…/123456789012/name`).
pub fn queue_arn(url: &str) -> String {
    let mut parts = url.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or("123456789012");
    format!("arn:aws:sqs:us-east-1:{account}:{name}")
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    queue: &wiring::Queue,
    visibility: u32,
    dlq: Option<(&str, u32)>,
) -> Result<String, SyncError> {
    let mut req = sqs.create_queue().queue_name(name).attributes(
        QueueAttributeName::VisibilityTimeout,
        visibility.to_string(),
    );
    if queue.fifo {
        req = req.attributes(QueueAttributeName::FifoQueue, "true");
        req = req.attributes(
            QueueAttributeName::ContentBasedDeduplication,
            queue.content_based_deduplication.to_string(),
        );
    }
    if let Some(retention) = queue.message_retention {
        req = req.attributes(
            QueueAttributeName::MessageRetentionPeriod,
            retention.to_string(),
        );
    }
    if let Some((dlq_url, max)) = dlq {
        let policy =
            json!({"deadLetterTargetArn": queue_arn(dlq_url), "maxReceiveCount": max}).to_string();
        req = req.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = req
        .send()
        .await
        .map_err(|e| SyncError::sqs("create queue", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    out.queue_url()
        .map(str::to_owned)
        .ok_or_else(|| SyncError::sqs("create queue", "no queue URL"))
}

/// Creates (or finds) the staging bucket and every queue template.yaml declares, named with
/// `prefix` as the stack name and with the template's attributes (FIFO, deduplication,
/// retention, redrive policy and `maxReceiveCount`, visibility timeout). `visibility_override`
/// shortens every visibility timeout, for tests that wait for redeliveries.
pub async fn ensure_resources(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    wiring: Arc<Wiring>,
    visibility_override: Option<u32>,
) -> Result<Resources, SyncError> {
    let bucket = format!("{prefix}-staging");
    if let Err(e) = s3.create_bucket().bucket(&bucket).send().await {
        let owned = e
            .as_service_error()
            .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists());
        if !owned {
            return Err(SyncError::s3(
                "create bucket",
                aws_sdk_s3::error::DisplayErrorContext(e),
            ));
        }
    }
    // Dead-letter queues first: a redrive policy names its DLQ's ARN.
    let mut queue_urls: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<(&String, &wiring::Queue)> = wiring.queues.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut next = Vec::new();
        for (id, q) in pending {
            let dlq = match &q.redrive {
                None => None,
                Some((dlq, max)) => match queue_urls.get(dlq) {
                    Some(url) => Some((url.clone(), *max)),
                    None => {
                        next.push((id, q));
                        continue;
                    }
                },
            };
            let name = q.name.replace("{stack}", prefix);
            let visibility = visibility_override.unwrap_or(q.visibility_timeout);
            let url = create_queue(
                sqs,
                &name,
                q,
                visibility,
                dlq.as_ref().map(|(u, m)| (u.as_str(), *m)),
            )
            .await?;
            queue_urls.insert(id.clone(), url);
        }
        if next.len() == before {
            return Err(SyncError::Message(
                "template.yaml: a redrive policy names a queue the template does not declare"
                    .into(),
            ));
        }
        pending = next;
    }
    let url = |id: &str| {
        queue_urls
            .get(id)
            .cloned()
            .ok_or_else(|| SyncError::Message(format!("template.yaml declares no queue {id}")))
    };
    Ok(Resources {
        bucket,
        import_queue_url: url("ImportQueue")?,
        import_dlq_url: url("ImportDLQ")?,
        finalize_queue_url: url("FinalizeQueue")?,
        finalize_dlq_url: url("FinalizeDLQ")?,
        alert_queue_url: url("AlertQueue")?,
        alert_dlq_url: url("AlertDLQ")?,
        finalize_part_queue_url: url("FinalizePartQueue")?,
        finalize_part_dlq_url: url("FinalizePartDLQ")?,
        stage_file_queue_url: url("StageFileQueue")?,
        stage_file_dlq_url: url("StageFileDLQ")?,
        queue_urls,
        wiring,
    })
}

/// Which handler a queue feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `sync-stage-file`: one source file of a run per message.
    StageFile,
    Import,
    Finalize,
    /// `sync-finalize-part`: one part of a fanned-out finalize step per message.
    FinalizePart,
    Alerts,
}

/// The most concurrent pollers the local runner gives one mapping, whatever its
/// `MaximumConcurrency`: this machine has 2 cores, and the handlers share one process and one
/// database pool (the test harness's has 8 connections, and an import or a finalize part
/// takes 2 of them), where on AWS each invocation has an execution environment and a pool of
/// its own. Two pollers are enough to exercise what concurrency changes (two deliveries of a
/// queue handled at once); more would only queue on the cores and the pool.
pub const LOCAL_CAP: u32 = 2;

/// How many pollers play a mapping locally: Lambda's `ScalingConfig.MaximumConcurrency`
/// (none on a FIFO queue here: its messages are handled one group at a time, so one poller),
/// capped at [`LOCAL_CAP`]; 1 without it.
pub fn local_concurrency(fifo: bool, maximum_concurrency: Option<u32>) -> usize {
    match maximum_concurrency {
        Some(n) if !fifo => n.clamp(1, LOCAL_CAP) as usize,
        _ => 1,
    }
}

/// One event source mapping as the template declares it: a queue, its function (logical id
/// and handler) and Lambda's batch settings.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub queue_url: String,
    /// The function's logical id in template.yaml.
    pub function: String,
    pub target: Target,
    pub batch_size: i32,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`. Without it Lambda does not read the
    /// batch response: a handler that returns counts as success and the whole batch is deleted.
    pub report_batch_item_failures: bool,
    pub wait_seconds: i32,
    /// Concurrent pollers [`drain`] and [`serve`] run for this mapping:
    /// min(`ScalingConfig.MaximumConcurrency`, [`LOCAL_CAP`]); 1 for a FIFO queue or a mapping
    /// without a `MaximumConcurrency` ([`local_concurrency`]).
    pub concurrency: usize,
}

/// Receives one batch and hands it to the handler. Returns how many messages were received.
pub async fn poll_once(ctx: &Context, mapping: &Mapping) -> Result<usize, SyncError> {
    let received = ctx
        .sqs
        .receive_message()
        .queue_url(&mapping.queue_url)
        .max_number_of_messages(mapping.batch_size)
        .wait_time_seconds(mapping.wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| SyncError::sqs("receive", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(0);
    }
    let arn = queue_arn(&mapping.queue_url);
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "md5OfBody": m.md5_of_body(),
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({ "Records": records }))
        .map_err(|e| SyncError::Message(e.to_string()))?;
    let response: SqsBatchResponse = match mapping.target {
        Target::StageFile => super::stage_file::handle(ctx, event).await,
        Target::Import => super::import::handle(ctx, event).await,
        Target::Finalize => super::finalize::handle(ctx, event).await,
        Target::FinalizePart => super::parts::handle(ctx, event).await,
        Target::Alerts => crate::alerts::dispatch::handle(ctx, event).await,
    };
    let failed: HashSet<&str> = if mapping.report_batch_item_failures {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    } else {
        if !response.batch_item_failures.is_empty() {
            tracing::warn!(
                function = %mapping.function,
                failures = response.batch_item_failures.len(),
                "the mapping does not declare ReportBatchItemFailures: as on AWS, the reported failures are ignored and the batch is deleted"
            );
        }
        HashSet::new()
    };
    for m in messages {
        if failed.contains(m.message_id().unwrap_or_default()) {
            continue;
        }
        if let Some(handle) = m.receipt_handle() {
            ctx.sqs
                .delete_message()
                .queue_url(&mapping.queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|e| {
                    SyncError::sqs("delete", aws_sdk_sqs::error::DisplayErrorContext(e))
                })?;
        }
    }
    Ok(messages.len())
}

/// Messages visible plus in flight on a queue.
pub async fn backlog(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, SyncError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| {
            SyncError::sqs(
                "queue attributes",
                aws_sdk_sqs::error::DisplayErrorContext(e),
            )
        })?;
    let attrs = out.attributes();
    let get = |k: QueueAttributeName| {
        attrs
            .and_then(|a| a.get(&k))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(get(QueueAttributeName::ApproximateNumberOfMessages)
        + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

/// Messages waiting (visible or in flight) on the queues of `mappings`, together.
async fn total_backlog(ctx: &Context, mappings: &[Mapping]) -> Result<u64, SyncError> {
    let mut left = 0;
    for m in mappings {
        left += backlog(&ctx.sqs, &m.queue_url).await?;
    }
    Ok(left)
}

/// How long a poller whose receive found nothing waits before the next one, when it does not
/// long-poll (`wait_seconds` 0): the idle pollers would otherwise keep the emulator busy.
const IDLE_PAUSE: Duration = Duration::from_millis(50);

/// Plays every mapping, each with [`Mapping::concurrency`] pollers at once (as Lambda scales a
/// mapping up to its `MaximumConcurrency`), until all their queues are empty (nothing visible
/// or in flight) and no poller handled anything in its last poll, or until `timeout`. Returns
/// the number of messages handled.
pub async fn drain(
    ctx: &Context,
    mappings: &[Mapping],
    timeout: Duration,
) -> Result<usize, SyncError> {
    let deadline = Instant::now() + timeout;
    let handled = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let pollers: Vec<&Mapping> = mappings
        .iter()
        .flat_map(|m| std::iter::repeat_n(m, m.concurrency.max(1)))
        .collect();
    // Whether each poller's last poll found nothing.
    let idle: Vec<AtomicBool> = pollers.iter().map(|_| AtomicBool::new(false)).collect();
    // Quiet checks in a row (all idle, nothing waiting or in flight): the queue counts are
    // approximate (the emulator's, like SQS's, miss a message at the moment its visibility
    // timeout ends), so the queues count as drained only once every poller has polled again
    // and found nothing.
    let quiet = AtomicUsize::new(0);
    let quiet_enough = 2 * pollers.len();
    let (handled_ref, done_ref, idle_ref, quiet_ref) = (&handled, &done, &idle, &quiet);
    try_join_all(pollers.iter().enumerate().map(|(i, m)| async move {
        while !done_ref.load(Ordering::SeqCst) {
            let got = poll_once(ctx, m).await?;
            handled_ref.fetch_add(got, Ordering::SeqCst);
            idle_ref[i].store(got == 0, Ordering::SeqCst);
            if got > 0 {
                quiet_ref.store(0, Ordering::SeqCst);
            } else {
                // A handler queues what follows before its own message is deleted: with every
                // poller idle and nothing waiting or in flight, nothing more will come.
                if idle_ref.iter().all(|b| b.load(Ordering::SeqCst))
                    && total_backlog(ctx, mappings).await? == 0
                {
                    if quiet_ref.fetch_add(1, Ordering::SeqCst) + 1 >= quiet_enough {
                        done_ref.store(true, Ordering::SeqCst);
                        break;
                    }
                } else {
                    quiet_ref.store(0, Ordering::SeqCst);
                }
                if m.wait_seconds == 0 {
                    tokio::time::sleep(IDLE_PAUSE).await;
                }
            }
            if Instant::now() >= deadline {
                return Err(SyncError::Message(format!(
                    "queues not drained within {timeout:?}"
                )));
            }
        }
        Ok::<_, SyncError>(())
    }))
    .await?;
    Ok(handled.into_inner())
}

/// Plays every mapping for good, each with [`Mapping::concurrency`] pollers at once (the dev
/// stack's `xtask sqs-runner`). A failed poll is logged and retried after a second.
pub async fn serve(ctx: &Context, mappings: &[Mapping]) {
    join_all(
        mappings
            .iter()
            .flat_map(|m| std::iter::repeat_n(m, m.concurrency.max(1)))
            .map(|m| async move {
                loop {
                    if let Err(e) = poll_once(ctx, m).await {
                        tracing::warn!(error = %e, queue = %m.queue_url, "poll failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }),
    )
    .await;
}

/// How many pollers play the mappings of `wiring` at once locally (each mapping's
/// [`local_concurrency`], together): a process that plays them all serves that many
/// invocations at once, where on AWS each has an execution environment of its own.
pub fn local_pollers(wiring: &Wiring) -> usize {
    wiring
        .mappings
        .iter()
        .map(|m| {
            let fifo = wiring.queues.get(&m.queue).is_some_and(|q| q.fifo);
            local_concurrency(fifo, m.maximum_concurrency)
        })
        .sum()
}

/// The SQS event source mappings of template.yaml, for `resources`.
pub fn mappings(resources: &Resources, wait_seconds: i32) -> Result<Vec<Mapping>, SyncError> {
    let w = &resources.wiring;
    w.mappings
        .iter()
        .map(|m| {
            let binary = w.functions.get(&m.function).map(|f| f.binary.as_str());
            let target = match binary {
                Some("sync-stage-file") => Target::StageFile,
                Some("sync-import") => Target::Import,
                Some("sync-finalize") => Target::Finalize,
                Some("sync-finalize-part") => Target::FinalizePart,
                Some("alert-dispatch") => Target::Alerts,
                other => {
                    return Err(SyncError::Message(format!(
                        "{}: no local handler for function {} ({other:?})",
                        m.id, m.function
                    )));
                }
            };
            let fifo = w.queues.get(&m.queue).is_some_and(|q| q.fifo);
            Ok(Mapping {
                concurrency: local_concurrency(fifo, m.maximum_concurrency),
                queue_url: resources.queue_urls.get(&m.queue).cloned().ok_or_else(|| {
                    SyncError::Message(format!("{}: queue {} not created", m.id, m.queue))
                })?,
                function: m.function.clone(),
                target,
                batch_size: i32::try_from(m.batch_size.min(10)).unwrap_or(10),
                report_batch_item_failures: m.report_batch_item_failures,
                wait_seconds,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_concurrency_is_the_mapping_maximum_capped_locally() {
        assert_eq!(local_concurrency(false, None), 1);
        assert_eq!(local_concurrency(false, Some(2)), 2);
        assert_eq!(local_concurrency(false, Some(5)), LOCAL_CAP as usize);
        assert_eq!(local_concurrency(false, Some(1000)), LOCAL_CAP as usize);
        // A FIFO queue is played by one poller, whatever the mapping says.
        assert_eq!(local_concurrency(true, Some(5)), 1);
        assert_eq!(local_concurrency(true, None), 1);
    }

    /// A SAM-transformed template in miniature: `MaximumConcurrency` is a `Ref` to a parameter,
    /// which the wiring reads at its default.
    fn wiring() -> Wiring {
        let function = |binary: &str| {
            json!({
                "Type": "AWS::Lambda::Function",
                "Metadata": {"BuildMethod": "makefile", "BuildProperties": {"Binary": binary}},
                "Properties": {"Timeout": 120},
            })
        };
        let mapping = |queue: &str, function: &str, scaling: Option<serde_json::Value>| {
            let mut props = json!({
                "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]},
                "FunctionName": {"Ref": function},
                "BatchSize": 1,
            });
            if let Some(s) = scaling {
                props["ScalingConfig"] = json!({ "MaximumConcurrency": s });
            }
            json!({"Type": "AWS::Lambda::EventSourceMapping", "Properties": props})
        };
        let template = json!({
            "Parameters": {
                "ImportConcurrency": {"Type": "Number", "Default": 5},
                "FinalizePartConcurrency": {"Type": "Number", "Default": 2},
            },
            "Resources": {
                "ImportQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
                "FinalizeQueue": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": true}},
                "FinalizePartQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
                "AlertQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
                "SyncImportFunction": function("sync-import"),
                "SyncFinalizeFunction": function("sync-finalize"),
                "SyncFinalizePartFunction": function("sync-finalize-part"),
                "AlertDispatchFunction": function("alert-dispatch"),
                "SyncImportFunctionImportChunks": mapping(
                    "ImportQueue",
                    "SyncImportFunction",
                    Some(json!({"Ref": "ImportConcurrency"})),
                ),
                "SyncFinalizeFunctionFinalizeRun": mapping("FinalizeQueue", "SyncFinalizeFunction", None),
                "SyncFinalizePartFunctionFinalizeParts": mapping(
                    "FinalizePartQueue",
                    "SyncFinalizePartFunction",
                    Some(json!({"Ref": "FinalizePartConcurrency"})),
                ),
                "AlertDispatchFunctionAfterFinalize": mapping("AlertQueue", "AlertDispatchFunction", None),
            },
        });
        Wiring::from_json(&template.to_string()).unwrap()
    }

    #[test]
    fn each_mapping_gets_its_maximum_concurrency_capped_locally() {
        let wiring = Arc::new(wiring());
        let url = |id: &str| format!("http://127.0.0.1:5055/123456789012/t-{id}");
        let queue_urls: BTreeMap<String, String> = wiring
            .queues
            .keys()
            .map(|id| (id.clone(), url(id)))
            .collect();
        let res = Resources {
            bucket: "t-staging".into(),
            import_queue_url: url("ImportQueue"),
            import_dlq_url: url("ImportDLQ"),
            finalize_queue_url: url("FinalizeQueue"),
            finalize_dlq_url: url("FinalizeDLQ"),
            alert_queue_url: url("AlertQueue"),
            alert_dlq_url: url("AlertDLQ"),
            finalize_part_queue_url: url("FinalizePartQueue"),
            finalize_part_dlq_url: url("FinalizePartDLQ"),
            stage_file_queue_url: url("StageFileQueue"),
            stage_file_dlq_url: url("StageFileDLQ"),
            queue_urls,
            wiring: wiring.clone(),
        };
        let by_target: BTreeMap<String, (usize, String)> = mappings(&res, 0)
            .unwrap()
            .into_iter()
            .map(|m| (format!("{:?}", m.target), (m.concurrency, m.queue_url)))
            .collect();
        // ImportConcurrency (5) capped at LOCAL_CAP; FinalizePartConcurrency's default (2);
        // the FIFO finalize queue and the alert mapping without a maximum: one poller.
        assert_eq!(by_target["Import"], (2, url("ImportQueue")));
        assert_eq!(by_target["FinalizePart"], (2, url("FinalizePartQueue")));
        assert_eq!(by_target["Finalize"], (1, url("FinalizeQueue")));
        assert_eq!(by_target["Alerts"], (1, url("AlertQueue")));
        let part = wiring
            .mappings
            .iter()
            .find(|m| m.queue == "FinalizePartQueue")
            .unwrap();
        assert_eq!(part.maximum_concurrency, Some(2), "the parameter's default");
        assert_eq!(local_pollers(&wiring), 2 + 2 + 1 + 1);
    }
}
