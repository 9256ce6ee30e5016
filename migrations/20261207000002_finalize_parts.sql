-- A finalize step whose work grows with the data (the violation engine) runs as parts, each
-- its own invocation of `sync-finalize-part` fed by FinalizePartQueue, as the import's chunks
-- are (shared/src/sync/parts.rs). The step's first invocation records the phase and its parts
-- before any message is sent; each part commits its work and its status in one transaction
-- (a redelivered part finds itself done and changes nothing); the part that reports last
-- queues the step's finish on the finalize queue.

create table finalize_phase (
    run_id       bigint not null references sync_run on delete cascade,
    step         text not null,
    parts        integer not null check (parts > 0),
    parts_done   integer not null default 0,
    parts_failed integer not null default 0,
    -- What every part needs (the engine: its run, mode, watermark, the number of parts).
    spec         jsonb not null,
    started_at   timestamptz not null default now(),
    -- Set by the part that reported last (done or failed).
    finished_at  timestamptz,
    primary key (run_id, step),
    check (parts_done + parts_failed <= parts)
);

create table finalize_part (
    run_id      bigint not null,
    step        text not null,
    part        integer not null check (part >= 0),
    -- pending -> done | failed (every delivery failed: the step finishes without it).
    status      text not null default 'pending' check (status in ('pending', 'done', 'failed')),
    attempts    integer not null default 0,
    finished_at timestamptz,
    duration_ms bigint,
    -- What the part did (the engine: results, events, samples, exclusions, timings).
    report      jsonb,
    error       text,
    primary key (run_id, step, part),
    foreign key (run_id, step) references finalize_phase on delete cascade
);

-- The facility x pollutant pairs an incremental engine pass recomputes, kept for its parts.
create table engine_pair (
    engine_run_id bigint not null references violation_engine_run on delete cascade,
    facility_id   bigint not null,
    pollutant_key text not null,
    primary key (engine_run_id, facility_id, pollutant_key)
);
