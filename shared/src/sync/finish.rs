//! The finishing stages run on their own: `facility-link` (the linker, then what follows from
//! its links) and `violations-compute` (the engine). `sync-finalize` runs both after every sync;
//! an operator invokes these to rerun one, incrementally or in full.

use super::Context;
use crate::api::publish::{PublishError, Rebuild, Relinked, link_and_publish, publish};
use crate::linking::{self, Applied, LinkError, LinkRequest};
use crate::violations::engine;

/// The `violations-compute` function's event: `{}` for an incremental run, `{"full": true}` to
/// recompute everything (after a benchmark or classifier change the engine does so by itself).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeRequest {
    #[serde(default)]
    pub full: bool,
}

/// One `violations-compute` invocation: the engine (incremental, or everything with
/// `{"full": true}`), then a new published state ([`publish`]); a failed run is recorded.
pub async fn violations_compute(
    ctx: &Context,
    req: ComputeRequest,
) -> Result<engine::Report, PublishError> {
    let mut opts = engine::Options::new("function", ctx.cfg.nd_policy);
    opts.force_full = req.full;
    publish(&ctx.pool, &ctx.cache, &opts, Rebuild::All)
        .await
        .report()
}

/// One `facility-link` invocation: the linker (incremental, or everything with
/// `{"full": true}`), then the engine for the facilities whose records moved and a new
/// published state ([`publish`]).
pub async fn facility_link(ctx: &Context, req: LinkRequest) -> Result<Applied, LinkError> {
    let mut opts = linking::Options::new("function", ctx.cfg.link);
    opts.force_full = req.full;
    link_and_publish(
        &ctx.pool,
        &ctx.cache,
        &opts,
        ctx.cfg.nd_policy,
        Relinked::All,
    )
    .await
}
