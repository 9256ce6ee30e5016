//! The bookkeeping of a fanned-out finalize step (`finalize_phase`, `finalize_part`): the
//! phase and its parts are recorded before any message is sent; a part locks its row, does its
//! work and reports in the same transaction, so a redelivered part changes nothing twice; the
//! phase's counter, updated under its row lock, tells exactly one part that it reported last.

use sqlx::{PgExecutor, Postgres, Transaction};

/// A phase as recorded.
#[derive(Debug, Clone)]
pub struct Phase {
    pub parts: i32,
    pub parts_done: i32,
    pub parts_failed: i32,
    pub spec: serde_json::Value,
    /// Milliseconds from the fan-out to the last part's report (once finished).
    pub wall_ms: Option<i64>,
}

impl Phase {
    /// Whether every part has reported (done or failed).
    pub fn finished(&self) -> bool {
        self.parts_done + self.parts_failed >= self.parts
    }
}

/// Records a phase of `parts` parts (all pending). Fails if the phase exists already.
pub async fn create_phase(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    step: &str,
    parts: i32,
    spec: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into finalize_phase (run_id, step, parts, spec) values ($1, $2, $3, $4)",
        run_id,
        step,
        parts,
        spec
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "insert into finalize_part (run_id, step, part)
         select $1, $2, p from generate_series(0, $3 - 1) p",
        run_id,
        step,
        parts
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The phase of a run's step, if it was fanned out.
pub async fn phase(
    db: impl PgExecutor<'_>,
    run_id: i64,
    step: &str,
) -> Result<Option<Phase>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select parts, parts_done, parts_failed, spec,
                  (extract(epoch from finished_at - started_at) * 1000)::bigint as wall_ms
             from finalize_phase where run_id = $1 and step = $2"#,
        run_id,
        step
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Phase {
        parts: r.parts,
        parts_done: r.parts_done,
        parts_failed: r.parts_failed,
        spec: r.spec,
        wall_ms: r.wall_ms,
    }))
}

/// The parts of a phase still pending (whose messages a redelivered fan-out sends again).
pub async fn pending(
    db: impl PgExecutor<'_>,
    run_id: i64,
    step: &str,
) -> Result<Vec<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        "select part from finalize_part where run_id = $1 and step = $2 and status = 'pending'
          order by part",
        run_id,
        step
    )
    .fetch_all(db)
    .await
}

/// A part locked for its work, with its phase's spec.
#[derive(Debug, Clone)]
pub struct Locked {
    /// `pending`, `done` or `failed`.
    pub status: String,
    pub spec: serde_json::Value,
}

/// Locks a part's row for this transaction (a concurrent delivery of the same part waits, then
/// finds it done); `None` when the phase has no such part.
pub async fn lock_part(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    step: &str,
    part: i32,
) -> Result<Option<Locked>, sqlx::Error> {
    let row = sqlx::query!(
        "select p.status, f.spec from finalize_part p
           join finalize_phase f on f.run_id = p.run_id and f.step = p.step
          where p.run_id = $1 and p.step = $2 and p.part = $3
          for update of p",
        run_id,
        step,
        part
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| Locked {
        status: r.status,
        spec: r.spec,
    }))
}

/// Records a locked part done with its report and counts it; `true` when it was the last part
/// of its phase to report. Call last in the part's transaction (the phase row stays locked
/// until it commits, which is what serialises the count).
pub async fn complete(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    step: &str,
    part: i32,
    attempts: i32,
    duration_ms: i64,
    report: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    sqlx::query!(
        "update finalize_part
            set status = 'done', attempts = $4, finished_at = now(), duration_ms = $5,
                report = $6, error = null
          where run_id = $1 and step = $2 and part = $3",
        run_id,
        step,
        part,
        attempts,
        duration_ms,
        report
    )
    .execute(&mut **tx)
    .await?;
    count(tx, run_id, step, false).await
}

/// Records a part failed after its last delivery (unless it is no longer pending) and counts
/// it; `Some(true)` when it was the last part of its phase to report, `None` when it was not
/// pending.
pub async fn fail(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    step: &str,
    part: i32,
    attempts: i32,
    error: &str,
) -> Result<Option<bool>, sqlx::Error> {
    let marked = sqlx::query!(
        "update finalize_part
            set status = 'failed', attempts = $4, finished_at = now(), error = $5
          where run_id = $1 and step = $2 and part = $3 and status = 'pending'",
        run_id,
        step,
        part,
        attempts,
        error
    )
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !marked {
        return Ok(None);
    }
    count(tx, run_id, step, true).await.map(Some)
}

async fn count(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    step: &str,
    failed: bool,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update finalize_phase
              set parts_done = parts_done + (not $3)::int, parts_failed = parts_failed + $3::int,
                  finished_at = case when parts_done + parts_failed + 1 = parts then now() end
            where run_id = $1 and step = $2
        returning parts_done + parts_failed = parts as "last!""#,
        run_id,
        step,
        failed
    )
    .fetch_one(&mut **tx)
    .await
}

/// One part's outcome, for the step's finish.
#[derive(Debug, Clone)]
pub struct Reported {
    pub part: i32,
    pub status: String,
    pub attempts: i32,
    pub duration_ms: Option<i64>,
    pub report: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// Every part of a phase, in order.
pub async fn reports(
    db: impl PgExecutor<'_>,
    run_id: i64,
    step: &str,
) -> Result<Vec<Reported>, sqlx::Error> {
    sqlx::query_as!(
        Reported,
        "select part, status, attempts, duration_ms, report, error from finalize_part
          where run_id = $1 and step = $2 order by part",
        run_id,
        step
    )
    .fetch_all(db)
    .await
}

/// How long a phase may wait for its parts: every delivery of a part (FinalizePartQueue's
/// visibility timeout of 720 s, `FINALIZE_PART_MAX_RECEIVES` times) has ended by then.
pub const PART_DEADLINE_MINUTES: i32 = 40;

/// Phases still waiting for parts `PART_DEADLINE_MINUTES` after they were fanned out: their
/// last deliveries timed out or crashed (dead-lettered, but never recorded). Their pending
/// parts are recorded failed and the phases finished; returns (run, step) of each, whose finish
/// the caller queues.
pub async fn fail_overdue(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let overdue = sqlx::query!(
        r#"with overdue as (
             select run_id, step from finalize_phase
              where finished_at is null
                and started_at < now() - make_interval(mins => $1)
              for update),
           failed as (
             update finalize_part p
                set status = 'failed', finished_at = now(),
                    error = format('not reported within %s minutes: its last delivery timed out or crashed (see FinalizePartDLQ)', $1::int)
               from overdue o
              where p.run_id = o.run_id and p.step = o.step and p.status = 'pending'
             returning p.run_id, p.step)
           update finalize_phase f
              set parts_failed = parts_failed + c.n, finished_at = now()
             from (select run_id, step, count(*)::int as n from failed group by 1, 2) c
            where f.run_id = c.run_id and f.step = c.step
        returning f.run_id, f.step"#,
        PART_DEADLINE_MINUTES
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(overdue.into_iter().map(|r| (r.run_id, r.step)).collect())
}

/// Finished phases whose run still waits for their step `minutes` after the last part
/// reported: the finish that part queued was lost (a send that failed after its commit).
pub async fn unfinished_steps(
    db: impl PgExecutor<'_>,
    minutes: i32,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        "select f.run_id, f.step from finalize_phase f join sync_run r on r.id = f.run_id
          where f.finished_at < now() - make_interval(mins => $1) and r.finalize_step = f.step",
        minutes
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.run_id, r.step)).collect())
}

/// Records every part of a phase still pending failed with `reason`, unrun, and finishes the
/// phase (the parts of a step whose map failed).
pub async fn fail_pending(
    pool: &sqlx::PgPool,
    run_id: i64,
    step: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let failed = sqlx::query!(
        "update finalize_part set status = 'failed', finished_at = now(), error = $3
          where run_id = $1 and step = $2 and status = 'pending'",
        run_id,
        step,
        reason
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query!(
        "update finalize_phase set parts_failed = parts_failed + $3, finished_at = now()
          where run_id = $1 and step = $2",
        run_id,
        step,
        i32::try_from(failed).unwrap_or(i32::MAX)
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Restarts the clock of a phase none of whose parts has reported (its parts are sent only
/// now, after the step's map phase): its wall time and its deadline count from here.
pub async fn restart_unstarted(
    db: impl PgExecutor<'_>,
    run_id: i64,
    step: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update finalize_phase set started_at = now()
          where run_id = $1 and step = $2 and parts_done + parts_failed = 0",
        run_id,
        step
    )
    .execute(db)
    .await?;
    Ok(())
}
