-- Each source file is staged by an invocation of its own (sync-stage-file): when its staging
-- ended and how long that invocation took (the longest invocation of a run is reported).
alter table sync_file add column staged_at timestamptz, add column stage_ms integer;
