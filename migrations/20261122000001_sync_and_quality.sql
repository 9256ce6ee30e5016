-- Sync bookkeeping, data-quality quarantine, geocode cache, shared helpers.
--
-- A sync run downloads each dataset file (sync_file), splits it into chunks stored in S3
-- (import_chunk), merges every chunk into the source-row tables and finally marks rows that
-- disappeared from the source as withdrawn (using import_seen). Nothing here is ever rewritten by
-- a later run: runs are history.

-- Trigram search on facility names (smarts_*_facility, facility).
create extension if not exists pg_trgm;

-- Keeps updated_at honest without every writer having to remember it.
create or replace function set_updated_at() returns trigger
    language plpgsql
as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

create table sync_run (
    id          bigint generated always as identity primary key,
    -- What started the run: 'schedule', 'manual', ... (open list, so no check constraint).
    trigger     text not null,
    status      text not null check (status in ('running', 'succeeded', 'partial', 'failed')),
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    -- Set when the stager has queued every chunk of every file of the run.
    stage_finished_at     timestamptz,
    -- Set exactly once, by whichever of the stager or the last chunk sees the run complete;
    -- guards the single finalize request.
    finalize_requested_at timestamptz,
    notes       text,
    error       text
);

create index sync_run_started_at_idx on sync_run (started_at desc);

-- One row per dataset file per run. The checksum/etag of the last succeeded file of a dataset is
-- what lets a run skip an unchanged download (status 'skipped').
create table sync_file (
    id          bigint generated always as identity primary key,
    run_id      bigint not null references sync_run on delete cascade,
    dataset     text not null,
    source_url  text not null,
    -- The part of the dataset this file covers, when a dataset is published as several files
    -- (eSMR: one per sampling year). Unchanged-file detection and withdrawal stay within it.
    scope       text,
    checksum    text,            -- sha256 hex of the source bytes as downloaded
    etag        text,
    bytes       bigint,
    header      text[],          -- header exactly as read (after BOM removal), for drift detection
    -- staging -> importing -> imported (all chunks merged) -> succeeded (finalized) | partial;
    -- skipped (unchanged), rejected (wrong layout, empty, unknown dataset), failed (I/O).
    status      text not null check (status in ('staging', 'importing', 'imported', 'skipped',
                                                 'succeeded', 'partial', 'failed', 'rejected')),
    chunk_count integer,         -- null until the file has been split
    chunks_done integer not null default 0,
    rows_read   bigint not null default 0,
    rows_inserted    bigint not null default 0,
    rows_updated     bigint not null default 0,
    rows_unchanged   bigint not null default 0,
    rows_quarantined bigint not null default 0,
    rows_withdrawn   bigint not null default 0,
    extra_columns    text[],      -- header columns the registry does not declare (not stored)
    error       text,
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    unique (run_id, dataset, source_url)
);

-- "Last successful file of dataset X" (skip-if-unchanged, status pages).
create index sync_file_dataset_started_at_idx on sync_file (dataset, started_at desc);

create table import_chunk (
    id               bigint generated always as identity primary key,
    file_id          bigint not null references sync_file on delete cascade,
    chunk_index      integer not null,
    s3_key           text not null,
    first_line       bigint not null,   -- physical line (1-based) of the chunk's first record
    status           text not null check (status in ('pending', 'done', 'failed')),
    attempts         integer not null default 0,
    rows_read        integer,
    rows_inserted    integer,
    rows_updated     integer,
    rows_unchanged   integer,
    rows_quarantined integer,
    duration_ms      integer,
    error            text,
    started_at       timestamptz,
    finished_at      timestamptz,
    unique (file_id, chunk_index)
);

-- Every (row_key, row_ord) seen while importing a file. At finalize, source rows of that dataset
-- that are not in here get withdrawn_run_id set; then the file's rows are deleted from here.
--
-- UNLOGGED: this is high-volume scratch data (millions of rows for eSMR) and WAL for it would be
-- pure overhead. The price: after a server crash PostgreSQL truncates unlogged tables. The
-- importer must never withdraw rows using a seen-set it cannot prove complete: before withdrawing,
-- compare count(*) for the file with the rows its 'done' import_chunk rows say they merged, and
-- re-run the chunks if they differ.
--
-- No foreign key to sync_file on purpose: an FK check per inserted row would slow the hot path,
-- and the importer deletes a file's rows itself after finalize.
-- No index: rows are only appended (each chunk once, under its chunk lock) and read once, by a
-- hash anti-join at finalize; an index would cost more at import than it saves there.
create unlogged table import_seen (
    file_id bigint not null,
    row_key bigint not null,
    row_ord integer not null
);

-- Quarantined records and other data problems. Rows are kept as published in `raw` so that an
-- issue can be fixed and the record re-imported without the source file.
create table data_quality_issue (
    id          bigint generated always as identity primary key,
    run_id      bigint references sync_run on delete set null,
    file_id     bigint references sync_file on delete cascade,
    dataset     text not null,
    source_file text not null,
    line        bigint,          -- 1-based physical line where the record starts
    column_name text,            -- null when the whole record is bad (e.g. wrong field count)
    reason      text not null,
    -- row_quarantined: the record was not stored; value_nulled: the record was stored with this
    -- column NULL (the raw value is in `value`); value_flagged: stored as published but suspect.
    action      text not null default 'row_quarantined'
                check (action in ('row_quarantined', 'value_nulled', 'value_flagged')),
    value       text,            -- the offending raw value, for column-level issues
    raw         text,            -- the raw record text
    created_at  timestamptz not null default now(),
    resolved    boolean not null default false
);

create index data_quality_issue_dataset_created_at_idx on data_quality_issue (dataset, created_at);
create index data_quality_issue_file_id_idx on data_quality_issue (file_id, line);

-- Results of geocoding free-text addresses, so a provider is asked once per address.
-- Null coordinates record "provider found nothing" (also worth caching).
create table geocode_cache (
    address     text primary key,  -- normalized by the caller before lookup
    latitude    double precision,
    longitude   double precision,
    provider    text,
    geocoded_at timestamptz not null default now()
);
