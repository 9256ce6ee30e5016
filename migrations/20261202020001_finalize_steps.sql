-- Finalize runs as a chain of invocations (sync::finalize::Step), each a message on the finalize
-- queue with Lambda's whole time limit: the files (withdrawals, derived links, closing the run),
-- facility linking, the violation engine, then the publication (summaries, dashboards, cache).
-- `finalize_step` is the next step to run once the run is closed: a redelivered message for a
-- step already done only queues the next one again, and the step that ran advances it with a
-- compare-and-set. Runs closed before this migration were published in one invocation: done.
alter table sync_run
    add column finalize_step text
        check (finalize_step in ('link', 'engine', 'publish', 'done'));
update sync_run set finalize_step = 'done' where finished_at is not null;
