//! `sync-finalize-part`: runs one part of a fanned-out finalize step per SQS message.
//!
//! A finalize step whose work grows with the data (the violation engine) splits it into
//! parts when the run's data is larger than one part (`engine::plan`): the step's first
//! invocation records the phase and its parts (`finalize_phase`, `finalize_part`) and queues
//! one message per part on FinalizePartQueue, whose mapping runs several at once, as the
//! import's chunks are run. Each part locks its row, does its work and records itself done in
//! one transaction (a redelivered or concurrent delivery finds it done and changes nothing);
//! the part that reports last queues the step again on the finalize queue, where it finishes
//! and the run moves on. A part that fails is retried alone (its message reappears); on its
//! last delivery it is recorded failed, so the step still finishes (and says which part failed),
//! and the message goes on to the DLQ, whose alarm fires.

use super::finalize::{self, Step};
use super::{Context, SyncError};
use crate::repo::parts as repo;
use crate::violations::engine;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The body of one finalize-part message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMessage {
    pub run_id: i64,
    pub step: Step,
    pub part: i32,
    /// A part of the step's map phase (a full engine pass reads its sources in map parts
    /// first); absent: a part of the step itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub map: bool,
}

impl PartMessage {
    /// The phase the part belongs to (`finalize_phase.step`).
    pub fn phase(&self) -> String {
        phase_name(self.step, self.map)
    }
}

fn phase_name(step: Step, map: bool) -> String {
    if map {
        engine::map_phase(step.as_str())
    } else {
        step.as_str().to_owned()
    }
}

/// What happened to one part message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PartOutcome {
    /// The part ran; `last`: it was the last of its phase to report (the finish is queued).
    Done { last: bool },
    /// The part had run already (SQS delivered the message again): nothing changed.
    AlreadyDone,
    /// The part had been given up on (recorded failed): a late delivery changes nothing.
    GivenUp,
}

/// The longest one statement of a part may run: below the function's 120 s timeout, so a part
/// that runs long fails as an error (retried, then recorded) rather than as a timeout.
const STATEMENT_TIMEOUT: &str = "100s";

/// Handles a finalize-part batch (batch size 1 in the template; any size works): failures are
/// reported per message.
pub async fn handle(ctx: &Context, event: SqsEvent) -> SqsBatchResponse {
    super::each_message::<PartMessage>(ctx, event).await
}

impl super::Delivered for PartMessage {
    const WHAT: &'static str = "finalize part";
    const MAX_RECEIVES: u32 = crate::config::FINALIZE_PART_MAX_RECEIVES;

    async fn run(&self, ctx: &Context, receives: u32) -> Result<(), SyncError> {
        run_part(ctx, self, receives).await.map(drop)
    }

    async fn give_up(&self, ctx: &Context, error: &SyncError, receives: u32) {
        give_up(ctx, self, error, receives).await;
    }
}

/// Runs one part exactly once: its work and its record commit together.
pub async fn run_part(
    ctx: &Context,
    m: &PartMessage,
    receives: u32,
) -> Result<PartOutcome, SyncError> {
    let started = Instant::now();
    let phase = m.phase();
    let step = phase.as_str();
    let mut tx = ctx.pool.begin().await?;
    let Some(locked) = repo::lock_part(&mut tx, m.run_id, step, m.part).await? else {
        return Err(SyncError::Message(format!(
            "run {} has no part {} of its {step} step",
            m.run_id, m.part
        )));
    };
    if locked.status != "pending" {
        tx.commit().await?;
        // The finish may never have been queued (a send that failed after the last part
        // committed): it is queued again (deduplicated) while the run waits for it.
        finish_if_waiting(ctx, m.run_id, m.step, step).await?;
        return Ok(if locked.status == "done" {
            PartOutcome::AlreadyDone
        } else {
            PartOutcome::GivenUp
        });
    }
    sqlx::query_scalar!(
        "select set_config('statement_timeout', $1, true)",
        STATEMENT_TIMEOUT
    )
    .fetch_one(&mut *tx)
    .await?;
    let report = match m.step {
        Step::Engine if m.map => {
            let spec: engine::PartSpec = serde_json::from_value(locked.spec)
                .map_err(|e| SyncError::Message(format!("engine phase spec: {e}")))?;
            let done = engine::map_part(&mut tx, &spec, m.part).await?;
            serde_json::to_value(done).unwrap_or_default()
        }
        Step::Engine => {
            let spec: engine::PartSpec = serde_json::from_value(locked.spec)
                .map_err(|e| SyncError::Message(format!("engine phase spec: {e}")))?;
            if !spec.map.is_empty() {
                // A part reads what the map wrote: before the map has run whole (a message
                // sent early, or by hand) it would find its facilities without measurements
                // and retract their events. It fails instead, and is retried.
                let map = repo::phase(&mut *tx, m.run_id, &engine::map_phase(step)).await?;
                if !map.is_some_and(|p| p.finished() && p.parts_failed == 0) {
                    return Err(SyncError::Message(format!(
                        "part {} of run {}'s {step} step: its map phase has not finished",
                        m.part, m.run_id
                    )));
                }
            }
            let done = engine::compute_part(&mut tx, &spec, m.part).await?;
            serde_json::to_value(done).unwrap_or_default()
        }
        other => {
            return Err(SyncError::Message(format!(
                "finalize step {} has no parts",
                other.as_str()
            )));
        }
    };
    let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let attempts = i32::try_from(receives).unwrap_or(i32::MAX);
    let last = repo::complete(&mut tx, m.run_id, step, m.part, attempts, elapsed, &report).await?;
    tx.commit().await?;
    tracing::info!(
        run_id = m.run_id,
        step,
        part = m.part,
        elapsed_ms = elapsed,
        last,
        "finalize part done"
    );
    if last {
        finalize::send_finish(ctx, m.run_id, m.step, step).await?;
    }
    Ok(PartOutcome::Done { last })
}

/// The last delivery of a part failed too: SQS moves the message to the DLQ (whose alarm
/// fires). Record the part failed, so its step still finishes and says so.
async fn give_up(ctx: &Context, m: &PartMessage, error: &SyncError, receives: u32) {
    let reason = format!("failed after {receives} deliveries: {error}");
    let result = async {
        let mut tx = ctx.pool.begin().await?;
        let attempts = i32::try_from(receives).unwrap_or(i32::MAX);
        let phase = m.phase();
        let last = repo::fail(&mut tx, m.run_id, &phase, m.part, attempts, &reason).await?;
        tx.commit().await?;
        if last == Some(true) {
            finalize::send_finish(ctx, m.run_id, m.step, &phase).await?;
        }
        Ok::<_, SyncError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(run_id = m.run_id, part = m.part, error = %e, "could not record the failed part");
    }
}

/// Queues the phase's finish if every part has reported and the run still waits for the step.
async fn finish_if_waiting(
    ctx: &Context,
    run_id: i64,
    step: Step,
    phase: &str,
) -> Result<(), SyncError> {
    let finished = repo::phase(&ctx.pool, run_id, phase)
        .await?
        .is_some_and(|p| p.finished());
    if finished && finalize::waits_for(ctx, run_id, step).await? {
        finalize::send_finish(ctx, run_id, step, phase).await?;
    }
    Ok(())
}

/// Queues one message per part of the step (of its map phase, with `map`), ten to a request.
pub(crate) async fn send(
    ctx: &Context,
    run_id: i64,
    step: Step,
    map: bool,
    parts: &[i32],
) -> Result<(), SyncError> {
    let queue = ctx.cfg.finalize_part_queue_url()?;
    for batch in parts.chunks(10) {
        let mut request = ctx.sqs.send_message_batch().queue_url(queue);
        for &part in batch {
            let body = serde_json::to_string(&PartMessage {
                run_id,
                step,
                part,
                map,
            })
            .map_err(|e| SyncError::Message(e.to_string()))?;
            let entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(format!("p{part}"))
                .message_body(body)
                .build()
                .map_err(|e| SyncError::sqs("send parts", e))?;
            request = request.entries(entry);
        }
        let sent = request.send().await.map_err(|e| {
            SyncError::sqs("send parts", aws_sdk_sqs::error::DisplayErrorContext(e))
        })?;
        if let Some(f) = sent.failed().first() {
            return Err(SyncError::sqs(
                "send parts",
                format!(
                    "{} of {} not sent: {}",
                    sent.failed().len(),
                    batch.len(),
                    f.message().unwrap_or(f.code())
                ),
            ));
        }
    }
    tracing::info!(
        run_id,
        phase = phase_name(step, map),
        parts = parts.len(),
        "finalize parts queued"
    );
    Ok(())
}
