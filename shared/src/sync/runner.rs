//! Local stand-in for Lambda's SQS event source mapping, for the dev stack and tests.
//!
//! It long-polls a queue, hands each batch to the handler exactly as Lambda would (an
//! `SqsEvent` of up to `batch_size` records, the visibility timeout running meanwhile),
//! deletes only the messages the handler did not report as failed, and leaves the others to
//! reappear; the queue's redrive policy moves a message to its DLQ after `maxReceiveCount`
//! receives. It also creates the bucket and queues with the same settings as template.yaml.

use super::{Context, SyncError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Names of the local resources.
#[derive(Debug, Clone)]
pub struct Resources {
    pub bucket: String,
    pub import_queue_url: String,
    pub import_dlq_url: String,
    pub finalize_queue_url: String,
    pub finalize_dlq_url: String,
    pub alert_queue_url: String,
    pub alert_dlq_url: String,
}

/// How many times a message may be received before it goes to the DLQ (template.yaml).
pub const IMPORT_MAX_RECEIVES: u32 = 5;
const FINALIZE_MAX_RECEIVES: u32 = 3;

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    fifo: bool,
    visibility: u32,
    dlq: Option<(&str, u32)>,
) -> Result<String, SyncError> {
    let mut req = sqs.create_queue().queue_name(name).attributes(
        QueueAttributeName::VisibilityTimeout,
        visibility.to_string(),
    );
    if fifo {
        req = req.attributes(QueueAttributeName::FifoQueue, "true");
    }
    if let Some((dlq_url, max)) = dlq {
        let arn = sqs
            .get_queue_attributes()
            .queue_url(dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| SyncError::sqs("get dlq arn", aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| SyncError::sqs("get dlq arn", "no QueueArn attribute"))?;
        let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": max}).to_string();
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

/// Creates (or finds) the staging bucket and the queues, named with `prefix`.
/// `visibility_secs` is the import queue's visibility timeout (short in tests).
pub async fn ensure_resources(
    s3: &aws_sdk_s3::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    visibility_secs: u32,
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
    let import_dlq_url =
        create_queue(sqs, &format!("{prefix}-import-dlq"), false, 30, None).await?;
    let import_queue_url = create_queue(
        sqs,
        &format!("{prefix}-import"),
        false,
        visibility_secs,
        Some((&import_dlq_url, IMPORT_MAX_RECEIVES)),
    )
    .await?;
    let finalize_dlq_url =
        create_queue(sqs, &format!("{prefix}-finalize-dlq.fifo"), true, 30, None).await?;
    let finalize_queue_url = create_queue(
        sqs,
        &format!("{prefix}-finalize.fifo"),
        true,
        visibility_secs,
        Some((&finalize_dlq_url, FINALIZE_MAX_RECEIVES)),
    )
    .await?;
    let alert_dlq_url = create_queue(sqs, &format!("{prefix}-alerts-dlq"), false, 30, None).await?;
    let alert_queue_url = create_queue(
        sqs,
        &format!("{prefix}-alerts"),
        false,
        visibility_secs,
        Some((&alert_dlq_url, FINALIZE_MAX_RECEIVES)),
    )
    .await?;
    Ok(Resources {
        bucket,
        import_queue_url,
        import_dlq_url,
        finalize_queue_url,
        finalize_dlq_url,
        alert_queue_url,
        alert_dlq_url,
    })
}

/// Which handler a queue feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Import,
    Finalize,
    Alerts,
}

/// One event source mapping: a queue, its handler and Lambda's batch settings.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub queue_url: String,
    pub target: Target,
    pub batch_size: i32,
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
    let arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        mapping.queue_url.rsplit('/').next().unwrap_or_default()
    );
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
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
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

/// The three mappings of template.yaml, for `resources`.
pub fn mappings(resources: &Resources, wait_seconds: i32) -> Vec<Mapping> {
    vec![
        Mapping {
            queue_url: resources.import_queue_url.clone(),
            target: Target::Import,
            batch_size: 5,
            wait_seconds,
        },
        Mapping {
            queue_url: resources.finalize_queue_url.clone(),
            target: Target::Finalize,
            batch_size: 1,
            wait_seconds,
        },
        Mapping {
            queue_url: resources.alert_queue_url.clone(),
            target: Target::Alerts,
            batch_size: 10,
            wait_seconds,
        },
    ]
}
