-- A run is finalized (its status, files and withdrawals committed) before the steps that make
-- its data visible: facility linking, the violation engine, the facility summaries, the stored
-- dashboards and the new cache generation. `published_at` says when those ended (each step's own
-- failure is recorded in facility_link_run / violation_engine_run / the logs); until then the API
-- still serves the previous publication. Whoever waits for a sync to be served (./dev up, the
-- benchmarks) waits for this, not for finished_at.
alter table sync_run add column published_at timestamptz;
update sync_run set published_at = finished_at where finished_at is not null;
