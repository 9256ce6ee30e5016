-- Facility linking (docs/LINKING.md): match features on facilities, scored candidate pairs,
-- merged facilities, the linker's state and its runs.

-- What the linker compares, computed in Rust (domain::names) from the facility's source record.
alter table facility
    add column match_name  text,     -- names::core: the distinctive words of the name
    add column street_key  text,     -- names::street_key: '802 ontario'
    -- Set when every source record of this facility now belongs to another one (a merge). The
    -- row stays so that its id keeps answering (the API redirects to the canonical facility).
    add column merged_into bigint references facility;

create index facility_match_name_trgm_idx on facility using gin (match_name gin_trgm_ops);
create index facility_merged_into_idx on facility (merged_into) where merged_into is not null;

-- Normalization changed ("L & R" -> "lr", abbreviations expanded): recompute every name.
update facility set normalized_name = null;

-- Every scored candidate pair of source records, kept so that incremental runs only score pairs
-- involving changed records, and so that every link can show why it was made. (a_*) < (b_*).
create table facility_match (
    a_source        text not null,
    a_key           text not null,
    b_source        text not null,
    b_key           text not null,
    method          text not null check (method in ('exact', 'fuzzy')),
    confidence      real not null check (confidence between 0 and 1),
    name_similarity real,               -- pg_trgm similarity of match_name
    distance_m      double precision,   -- between trusted coordinates
    reason          text not null,
    computed_at     timestamptz not null default now(),
    primary key (a_source, a_key, b_source, b_key),
    constraint facility_match_ordered check ((a_source, a_key) < (b_source, b_key))
);

create index facility_match_b_idx on facility_match (b_source, b_key);
create index facility_match_confidence_idx on facility_match (confidence);

-- One row: what the last successful run covered. A change of settings or scorer version
-- (fingerprint) rescores every pair.
create table facility_link_state (
    id          boolean primary key default true check (id),
    watermark   timestamptz not null,
    fingerprint text not null,
    -- Source rows changed after this sync run are seeded into facilities by the next run.
    last_sync_run_id bigint,
    updated_at  timestamptz not null default now()
);

-- Facilities whose set of source records changed: the violation engine recomputes their events
-- and deletes the rows it consumed.
create table facility_relink (
    facility_id bigint primary key references facility,
    queued_at   timestamptz not null default now()
);

create table facility_link_run (
    id          bigint generated always as identity primary key,
    trigger     text not null,          -- 'finalize', 'function', 'manual-decision', 'cli'
    sync_run_id bigint references sync_run,
    mode        text not null check (mode in ('full', 'incremental')),
    status      text not null check (status in ('running', 'succeeded', 'failed')),
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    report      jsonb,
    error       text
);
