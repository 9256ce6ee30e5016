-- eSMR (CIWQS electronic self-monitoring reports, data.ca.gov yearly CSVs).
--
-- esmr_sample keeps every published row exactly as published (all 29 columns, typed). The small
-- dimension tables are derived from it at merge time (latest published values win) so that the
-- API can list facilities/locations/parameters without scanning ~20 million sample rows. They are
-- conveniences, not the record: the record is esmr_sample.

create table esmr_region (
    code text primary key,   -- '2', '5F', '6V': the part between 'Region ' and ' - ' in `region`
    name text                -- 'Fresno', 'San Francisco Bay'
);

create table esmr_facility (
    facility_place_id    text primary key,  -- CIWQS place id (integer in practice, text per dictionary)
    facility_name        text,
    region_code          text references esmr_region,
    receiving_water_body text,
    first_run_id         bigint references sync_run,
    last_run_id          bigint references sync_run  -- last run whose data mentioned the facility
);

create index esmr_facility_region_code_idx on esmr_facility (region_code);
create index esmr_facility_name_trgm_idx on esmr_facility using gin (lower(facility_name) gin_trgm_ops);

create table esmr_location (
    location_place_id   text primary key,
    facility_place_id   text references esmr_facility,
    location            text,     -- the location code, e.g. 'EFF-001'
    location_place_type text,     -- open vocabulary (more values occur than the dictionary lists)
    latitude            numeric,  -- as published: ~87% null, sign errors occur; not validated here
    longitude           numeric,
    location_desc       text,
    first_run_id        bigint references sync_run,
    last_run_id         bigint references sync_run
);

create index esmr_location_facility_place_id_idx on esmr_location (facility_place_id);

create table esmr_parameter (
    id   integer generated always as identity primary key,
    name text not null unique   -- exactly as published, e.g. 'Copper, Total Recoverable'
);

create table esmr_analytical_method (
    code text primary key,   -- 'E200.8', 'DU'
    name text
);

-- One row per published row.
--
-- Identity: the importer declares ALL columns as the key for eSMR, so row_key is a hash of the
-- whole row and row_ord only exceeds 0 for exact duplicates. Two rows that differ only in
-- calculated_method (e.g. 'Daily Maximum' vs 'Daily Average (Mean)' of the same sample), or only
-- in qualifier/result/method, are two rows. The old app keyed on (location, parameter, date,
-- time, document) and silently dropped such rows. Consequence: an eSMR row is never "updated",
-- a corrected value arrives as a new row and the old one is withdrawn.
--
-- No foreign keys from the published columns to the dimensions: the row must load exactly as
-- published even when its ids are missing or odd, and FK checks would slow bulk loads.
-- parameter_id is the one resolved reference, filled at merge time.
create table esmr_sample (
    id               bigint generated always as identity primary key,
    row_key          bigint not null,
    row_ord          integer not null,
    row_hash         bytea not null,
    source_line      bigint not null,
    first_run_id     bigint not null references sync_run,
    changed_run_id   bigint not null references sync_run,
    withdrawn_run_id bigint references sync_run,

    region                    text,     -- 'Region 5F - Fresno'
    location                  text,
    location_place_id         text,
    location_place_type       text,
    parameter                 text,
    analytical_method_code    text,
    analytical_method         text,
    calculated_method         text,     -- null for raw results
    qualifier                 text,     -- '=', '<', '<=', '>', '>=', 'ND', 'DNQ' (not constrained)
    result                    numeric,
    units                     text,
    mdl                       numeric,
    ml                        numeric,
    rl                        numeric,
    sampling_date             date,     -- 'timestamp' in the dictionary but always a bare date
    sampling_time             time,     -- HH:MM:SS
    analysis_date             date,
    analysis_time             time,
    review_priority_indicator boolean,  -- Y/N
    qa_codes                  text,     -- may be a list, e.g. 'BU,U'
    comments                  text,
    facility_name             text,
    facility_place_id         text,
    report_name               text,
    latitude                  numeric,
    longitude                 numeric,
    receiving_water_body      text,
    smr_document_id           text,
    location_desc             text,

    parameter_id              integer references esmr_parameter,

    unique (row_key, row_ord)
);

-- Only the indexes the read paths need: each index on a multi-million-row table costs import
-- throughput (docs/BENCHMARKS.md). Date, parameter and report lookups go through (facility_place_id, sampling_date);
-- query-specific indexes come with the features that need them, measured.
create index esmr_sample_facility_date_idx on esmr_sample (facility_place_id, sampling_date);
-- Incremental work per run (dimension refresh, violation engine) and withdrawal audits.
create index esmr_sample_changed_run_idx on esmr_sample (changed_run_id);
create index esmr_sample_withdrawn_run_idx on esmr_sample (withdrawn_run_id)
    where withdrawn_run_id is not null;
