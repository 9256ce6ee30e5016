//! Local stand-in for Lambda's SQS event source mapping, for the dev stack and tests.
//!
//! It long-polls a queue, hands each batch to the handler exactly as Lambda would (an
//! `SqsEvent` of up to `batch_size` records, the visibility timeout running meanwhile),
//! deletes only the messages the handler did not report as failed, and leaves the others to
//! reappear; the queue's redrive policy moves a message to its DLQ after `maxReceiveCount`
//! receives. It also creates the bucket and queues with the same settings as template.yaml.

use super::wiring::{self, Wiring};
use super::{Context, SyncError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
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
        queue_urls,
        wiring,
    })
}

/// Which handler a queue feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Import,
    Finalize,
    Alerts,
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
        Target::Import => super::import::handle(ctx, event).await,
        Target::Finalize => super::finalize::handle(ctx, event).await,
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

/// Polls every mapping until all their queues are empty (nothing visible or in flight), or
/// until `timeout`. Returns the number of messages handled.
pub async fn drain(
    ctx: &Context,
    mappings: &[Mapping],
    timeout: Duration,
) -> Result<usize, SyncError> {
    let deadline = Instant::now() + timeout;
    let mut handled = 0;
    loop {
        let mut got = 0;
        for m in mappings {
            got += poll_once(ctx, m).await?;
        }
        handled += got;
        if got == 0 {
            let mut left = 0;
            for m in mappings {
                left += backlog(&ctx.sqs, &m.queue_url).await?;
            }
            if left == 0 {
                return Ok(handled);
            }
        }
        if Instant::now() >= deadline {
            return Err(SyncError::Message(format!(
                "queues not drained within {timeout:?}"
            )));
        }
    }
}

/// The SQS event source mappings of template.yaml, for `resources`.
pub fn mappings(resources: &Resources, wait_seconds: i32) -> Result<Vec<Mapping>, SyncError> {
    let w = &resources.wiring;
    w.mappings
        .iter()
        .map(|m| {
            let binary = w.functions.get(&m.function).map(|f| f.binary.as_str());
            let target = match binary {
                Some("sync-import") => Target::Import,
                Some("sync-finalize") => Target::Finalize,
                Some("alert-dispatch") => Target::Alerts,
                other => {
                    return Err(SyncError::Message(format!(
                        "{}: no local handler for function {} ({other:?})",
                        m.id, m.function
                    )));
                }
            };
            Ok(Mapping {
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
