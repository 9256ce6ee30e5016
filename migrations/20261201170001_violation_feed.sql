-- The one violations feed (GET /api/violations, kind=computed|regulatory|all) pages both kinds
-- newest first: each branch of its union reads in the feed's order from an index, so the first
-- page is a merge of two index scans instead of a sort of every row.

-- Computed events: newest sample first, ties by id.
create index violation_event_feed_idx on violation_event (last_date desc nulls last, id desc)
    where retracted_at is null;

-- Regulatory violations: dated by occurrence (discovery when the occurrence is missing); the
-- feed keys them after every event id (id + 2^62), the expression the index carries.
create index smarts_violation_feed_idx on smarts_violation
    ((coalesce(occurrence_date, discovery_date)) desc nulls last, (id + 4611686018427387904) desc)
    where withdrawn_run_id is null;

-- The stored violation stats now count both kinds under the same keys, and the stored
-- dashboards gained fields (facilities by source, with enforcement, historical actions, the
-- top offenders' enforcement): what was stored before this migration is dropped, so both are
-- computed live until the next publish stores them again.
delete from dashboard_snapshot;
