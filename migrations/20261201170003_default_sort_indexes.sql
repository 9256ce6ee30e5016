-- Lists read newest first by their own dates (issue 14); these indexes carry each default
-- order (and its id tie-break), so a first page is an ordered index scan and a LIMIT instead of
-- a sort of every matching row. Measured with ./dev bench-api (docs/BENCHMARKS_API.md).

-- /api/smarts/violations, /enforcement, /inspections (current rows).
create index smarts_violation_newest_idx on smarts_violation
    (occurrence_date desc nulls last, id desc) where withdrawn_run_id is null;
create index smarts_enforcement_action_newest_idx on smarts_enforcement_action
    (issuance_date desc nulls last, id desc) where withdrawn_run_id is null;
create index smarts_inspection_newest_idx on smarts_inspection
    (inspection_date desc nulls last, id desc) where withdrawn_run_id is null;

-- The directory of one county, latest activity first.
create index facility_summary_county_activity_idx on facility_summary
    (lower(county), last_activity_date desc nulls last, facility_id desc);

-- Computed events of one severity, newest sample first.
create index violation_event_severity_feed_idx on violation_event
    (severity, last_date desc nulls last, id desc) where retracted_at is null;
