//! Publishing a new state: after records or links changed, the violation engine computes what
//! follows from them, the per-facility summaries and the stored dashboards are refreshed and a new cache generation starts, so
//! the API serves the new state and nothing older. Every path that changes what the engine sees
//! ends here: `sync-finalize`, `facility-link`, `violations-compute`, a manual link decision,
//! `xtask violations` and `xtask link`.

use super::dashboard::refresh_snapshots;
use crate::cache::Cache;
use crate::http::ApiError;
use crate::linking::{self, Applied, LinkError};
use crate::violations::NdPolicy;
use crate::violations::engine::{self, EngineError};
use sqlx::PgPool;

/// What [`publish`] did: each step is tried whatever became of the one before (a failed engine
/// run leaves the last events in place, which the refreshed dashboards then show).
#[derive(Debug)]
pub struct Published {
    pub violations: Result<engine::Report, EngineError>,
    /// Facility summary rows written (the directory's), or why not: the directory then shows
    /// the previous summaries.
    pub summaries: Result<u64, sqlx::Error>,
    /// Dashboards stored (their count), or why not: the dashboard then computes live.
    pub dashboards: Result<usize, ApiError>,
    /// The new cache generation (`None` without a cache, or when it could not be reached).
    pub generation: Option<u64>,
    /// Milliseconds of each step: `engine`, `summaries`, `dashboards`, `generation`.
    pub timings: Timings,
}

/// Milliseconds per named step, in the order they ran.
pub type Timings = Vec<(&'static str, u64)>;

/// Runs `step`, adding its time to `timings` under `name`.
pub async fn timed<T>(
    timings: &mut Timings,
    name: &'static str,
    step: impl std::future::Future<Output = T>,
) -> T {
    let started = std::time::Instant::now();
    let out = step.await;
    timings.push((name, ms_since(started)));
    out
}

/// Milliseconds since `started`.
pub fn ms_since(started: std::time::Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Why a published state is not the whole new state.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("violation engine: {0}")]
    Engine(#[from] EngineError),
    #[error("dashboard refresh: {0}")]
    Dashboard(ApiError),
    #[error("facility summaries: {0}")]
    Summaries(#[from] sqlx::Error),
}

impl From<PublishError> for LinkError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Engine(e) => LinkError::Engine(e),
            PublishError::Dashboard(e) => LinkError::Dashboard(e.to_string()),
            PublishError::Summaries(e) => LinkError::Db(e),
        }
    }
}

impl Published {
    /// The engine's report when every step succeeded.
    pub fn report(self) -> Result<engine::Report, PublishError> {
        let report = self.violations?;
        self.summaries?;
        self.dashboards.map_err(PublishError::Dashboard)?;
        Ok(report)
    }
}

/// Whose summaries and stored dashboards a publication rebuilds.
#[derive(Debug, Clone, Copy)]
pub enum Rebuild<'a> {
    /// Every facility's, and every dashboard.
    All,
    /// Those of these facilities, and the dashboards of their scopes (statewide, their counties
    /// and regions).
    Facilities(&'a [i64]),
    /// Every facility's, unless nothing they show can have changed: the caller changed no
    /// input (records, links), the engine changed no event or sample, and the last publication
    /// was complete, of today (summaries count days to today) and of this code's [`LAYOUT`].
    UnlessUnchanged,
}

/// The version of what summaries and dashboards contain: a publication of another layout is
/// never kept. Bump it with any change to what they show.
pub const LAYOUT: i32 = 2;

/// Runs the engine with `opts` (a failure is recorded in `violation_engine_run`), refreshes the
/// facility summaries and the stored dashboards as `rebuild` says and starts a new cache
/// generation.
pub async fn publish(
    pool: &PgPool,
    cache: &Cache,
    opts: &engine::Options,
    rebuild: Rebuild<'_>,
) -> Published {
    let mut timings = Timings::new();
    let violations = timed(&mut timings, "engine", compute_events(pool, opts)).await;
    let engine_quiet = violations.as_ref().is_ok_and(changed_nothing);
    let views = publish_views(pool, cache, rebuild, engine_quiet, &mut timings).await;
    Published {
        violations,
        summaries: views.summaries,
        dashboards: views.dashboards,
        generation: views.generation,
        timings,
    }
}

/// Runs the engine with `opts`; a failure is logged and recorded in `violation_engine_run`.
pub async fn compute_events(
    pool: &PgPool,
    opts: &engine::Options,
) -> Result<engine::Report, EngineError> {
    let violations = engine::compute(pool, opts).await;
    if let Err(e) = &violations {
        tracing::error!(error = %e, trigger = %opts.trigger, "violation engine failed");
        if let Err(db) = engine::record_failure(pool, opts, e).await {
            tracing::error!(error = %db, "could not record the engine failure");
        }
    }
    violations
}

/// Whether an engine run changed no event and wrote no sample.
pub fn changed_nothing(r: &engine::Report) -> bool {
    r.events_new + r.events_updated + r.events_escalated + r.events_retracted + r.samples == 0
}

/// What [`publish_views`] did (see [`Published`]).
#[derive(Debug)]
pub struct Views {
    pub summaries: Result<u64, sqlx::Error>,
    pub dashboards: Result<usize, ApiError>,
    pub generation: Option<u64>,
}

/// Refreshes the facility summaries and the stored dashboards as `rebuild` says, after an engine
/// run that `engine_quiet` says changed nothing or not, and starts a new cache generation; the
/// time of each step is added to `timings`.
pub async fn publish_views(
    pool: &PgPool,
    cache: &Cache,
    rebuild: Rebuild<'_>,
    engine_quiet: bool,
    timings: &mut Timings,
) -> Views {
    let kept = matches!(rebuild, Rebuild::UnlessUnchanged)
        && engine_quiet
        && crate::repo::summary::publication_current(pool, LAYOUT)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "publication state unreadable; rebuilding");
                false
            });
    let (summaries, dashboards) = if kept {
        tracing::info!("nothing changed since today's publication: summaries and dashboards kept");
        (Ok(0), Ok(0))
    } else {
        rebuild_views(pool, rebuild, timings).await
    };
    let generation = timed(timings, "generation", cache.bump_generation()).await;
    Views {
        summaries,
        dashboards,
        generation,
    }
}

/// Refreshes the summaries and stored dashboards `rebuild` names, and records whether the
/// publication is complete.
async fn rebuild_views(
    pool: &PgPool,
    rebuild: Rebuild<'_>,
    timings: &mut Timings,
) -> (Result<u64, sqlx::Error>, Result<usize, ApiError>) {
    let facilities = match rebuild {
        Rebuild::Facilities(ids) => Some(ids),
        Rebuild::All | Rebuild::UnlessUnchanged => None,
    };
    // Until both steps end well, the stored state is not a complete publication; a rebuild of
    // some facilities completes only what was complete before it.
    let was_complete = crate::repo::summary::begin_publication(pool)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "publication state not recorded");
            false
        });
    let summaries = timed(
        timings,
        "summaries",
        crate::repo::summary::refresh(pool, facilities),
    )
    .await;
    if let Err(e) = &summaries {
        tracing::error!(error = %e, "facility summaries not refreshed");
    }
    let dashboards = timed(timings, "dashboards", async {
        match facilities {
            None => refresh_snapshots(pool, None).await,
            Some(ids) => {
                let mut stored = Ok(0);
                for &f in ids {
                    stored = refresh_snapshots(pool, Some(f)).await;
                    if stored.is_err() {
                        break;
                    }
                }
                stored
            }
        }
    })
    .await;
    if let Err(e) = &dashboards {
        tracing::error!(error = %e, "dashboard snapshots not refreshed");
    }
    if summaries.is_ok() && dashboards.is_ok() {
        let ended = match facilities {
            None => crate::repo::summary::complete_publication(pool, LAYOUT).await,
            Some(_) if was_complete => crate::repo::summary::restore_publication(pool).await,
            Some(_) => Ok(()),
        };
        if let Err(e) = ended {
            tracing::warn!(error = %e, "publication state not recorded");
        }
    }
    (summaries, dashboards)
}

/// Runs the linker with `opts` ([`linking::run_recorded`]), then [`publish`]es what follows from
/// its links (the engine with `nd_policy`, for the same trigger and sync run; the dashboards of
/// `facilities`, or all). Used by `facility-link`, manual link decisions and `xtask link`.
pub async fn link_and_publish(
    pool: &PgPool,
    cache: &Cache,
    opts: &linking::Options,
    nd_policy: NdPolicy,
    relinked: Relinked<'_>,
) -> Result<Applied, LinkError> {
    let links = linking::run_recorded(pool, opts).await?;
    let mut engine_opts = engine::Options::new(&opts.trigger, nd_policy);
    engine_opts.sync_run_id = opts.sync_run_id;
    let facilities = match relinked {
        Relinked::All => None,
        Relinked::Decision {
            facilities,
            source,
            key,
        } => {
            let mut ids = facilities.to_vec();
            if let Some(now) = crate::repo::facilities::linked_facility(pool, source, key).await? {
                ids.push(now);
            }
            ids.sort_unstable();
            ids.dedup();
            Some(ids)
        }
    };
    let rebuild = facilities
        .as_deref()
        .map_or(Rebuild::All, Rebuild::Facilities);
    let violations = publish(pool, cache, &engine_opts, rebuild).await.report()?;
    Ok(Applied { links, violations })
}

/// Whose summaries and dashboards a linker run's publication rebuilds.
pub enum Relinked<'a> {
    /// Every facility's (a sync's run, a full run).
    All,
    /// Those of `facilities` and of the facility the decided record `(source, key)` is linked
    /// to after the run (an unlink moves it to a facility the run may create).
    Decision {
        facilities: &'a [i64],
        source: &'a str,
        key: &'a str,
    },
}
