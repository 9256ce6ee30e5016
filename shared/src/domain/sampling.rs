//! The IGP's sampling frequency, as the monitoring-completeness figures apply it
//! (docs/SAMPLING.md; the SQL is `igp_sampling_halves`, migration 20261201170002).

use serde_json::{Value, json};

/// Qualifying storm events to sample in each half of the reporting year.
pub const REQUIRED_PER_HALF: i64 = 2;

/// What every response carrying completeness figures says about them.
pub fn note() -> Value {
    json!({
        "rule": "IGP (Order 2014-0057-DWQ as amended) Section XI.B.2: samples from two qualifying storm events (QSEs) in each half of the reporting year, July 1 - December 31 and January 1 - June 30",
        "required": REQUIRED_PER_HALF,
        "counted": "distinct sample dates of published industrial monitoring rows whose EVENT_TYPE is Qualifying Storm Event, over the canonical facility's current Industrial records; only half-years wholly inside its coverage (from its earliest NOI, never before 2015-07-01, to its Notice of Termination or today) that have ended",
        "caveat": "fewerThanRequired is a lead, not a finding: a half-year without a qualifying storm, a facility not required to sample (No Exposure Certification, inactive mining), a Sampling Frequency Reduction (one QSE per half), a Compliance Group schedule, or results never uploaded to SMARTS are not visible in the published data",
    })
}
