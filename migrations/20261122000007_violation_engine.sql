-- The violation engine: how parameter names and units were understood, the per-year NAL
-- statistics, ERA Level status, what the engine has processed, duplicate candidates, and the
-- alert/subscription changes the engine needs. Design and alternatives:
-- docs/VIOLATION_SCHEMA_MIGRATION.md; queries: docs/VIOLATION_QUERY_PATTERNS.md.

-------------------------------------------------------------------------------------------------
-- Classification of published names, written by the engine (domain::pollutant / domain::units
-- run in Rust over the distinct names) so that the computation itself stays set-based SQL.
-------------------------------------------------------------------------------------------------

-- One row per distinct published parameter name. pollutant_key null: not a benchmarked pollutant
-- (or a derived quantity such as a load or a removal efficiency). No FK to pollutant: the
-- classifier knows pollutants (chromium) that no benchmark covers yet.
create table parameter_map (
    parameter      text primary key,
    pollutant_key  text,
    fraction       text check (fraction in ('total', 'total_recoverable', 'dissolved', 'unspecified')),
    engine_version integer not null,
    classified_at  timestamptz not null default now()
);

create index parameter_map_pollutant_key_idx on parameter_map (pollutant_key);

-- One row per distinct published unit spelling. kind 'unknown' rows are what the engine could not
-- read: those results are reported (violation_engine_run.notes) and never compared.
create table unit_map (
    unit           text primary key,
    kind           text not null check (kind in ('mass', 'ph', 'other', 'unknown')),
    to_mg_per_l    numeric,            -- mass concentrations only
    canonical      text,               -- 'mg/L', 'pH units', 'NTU', ...; null when unknown
    engine_version integer not null,
    constraint unit_map_mass_factor check ((kind = 'mass') = (to_mg_per_l is not null))
);

-------------------------------------------------------------------------------------------------
-- Canonical facilities: remember which source record a facility was first built from, so the
-- engine can create one facility per source record set-based (and the linker can merge later).
-------------------------------------------------------------------------------------------------
alter table facility
    add column origin_source text check (origin_source in ('smarts_industrial', 'smarts_construction', 'esmr')),
    add column origin_key    text;

create unique index facility_origin_uniq on facility (origin_source, origin_key);

-------------------------------------------------------------------------------------------------
-- Events and samples: the engine's additions to the first version (migration 5).
-------------------------------------------------------------------------------------------------
alter table violation_event
    -- annual_average: NAL_ANNUAL (the year's facility-wide average against the annual NAL);
    -- instantaneous: NAL_INSTANT (two or more results above / outside the instantaneous NAL);
    -- sample: every other benchmark (each result on its own).
    add column measure          text not null default 'sample'
                                check (measure in ('annual_average', 'instantaneous', 'sample')),
    -- The benchmark behind max_ratio (for NAL events: the NAL).
    add column benchmark_id     bigint references benchmark,
    -- The annual average (annual_average) or the highest exceeding result, in `unit`.
    add column value            numeric,
    add column unit             text,
    add column exceedance_count integer not null default 0,  -- results above the benchmark
    -- How non-detects entered the average ('zero', 'half_mdl', 'dropped'; annual_average only)
    -- and whether another convention would change the decision.
    add column nd_policy        text check (nd_policy in ('zero', 'half_mdl', 'dropped')),
    add column policy_sensitive boolean not null default false,
    -- Not a like-for-like comparison: a total result against a dissolved criterion, or storm water
    -- against a drinking-water standard (shared/data/benchmarks/README.md sections 6 and 7).
    add column screening        boolean not null default false,
    -- A benchmark behind the event is UNVERIFIED in the reference tables.
    add column unverified       boolean not null default false,
    add column detected_at      timestamptz not null default now(),
    add column escalated_at     timestamptz,   -- severity rose after detection
    -- The data no longer supports the event (a sample withdrawn or corrected). The row stays for
    -- its review history and alerts; it is hidden from default listings.
    add column retracted_at     timestamptz,
    add column computed_at      timestamptz not null default now();

create index violation_event_facility_idx on violation_event (facility_id, reporting_year);
create index violation_event_active_severity_idx on violation_event (severity, reporting_year)
    where retracted_at is null;
create index violation_event_detected_at_idx on violation_event (detected_at);
create index violation_event_escalated_at_idx on violation_event (escalated_at)
    where escalated_at is not null;

alter table violation_sample
    -- false: the result entered an annual average that exceeded the NAL but is not above the NAL
    -- on its own (kept so the average can be recomputed from the event's samples).
    add column exceeds        boolean not null default true,
    add column non_detect     boolean not null default false,
    add column qualifier      text,
    add column raw_value      numeric,       -- as published, in raw_unit
    add column raw_unit       text,
    add column screening      boolean not null default false,
    -- Denormalized from the event for dashboard aggregates over samples.
    add column facility_id    bigint,
    add column pollutant_key  text;

-- Dashboards aggregate exceeding, like-for-like samples by date (docs/VIOLATION_QUERY_PATTERNS.md);
-- the partial index covers what they read (measured in docs/BENCHMARKS_VIOLATIONS.md).
create index violation_sample_dashboard_idx on violation_sample (detected_on)
    include (facility_id, pollutant_key, severity, ratio, event_id)
    where exceeds and not screening;
create index violation_sample_facility_idx on violation_sample (facility_id, detected_on);

-------------------------------------------------------------------------------------------------
-- NAL statistics per facility x pollutant x reporting year (every year evaluated, exceeding or
-- not), so every annual decision can be checked by hand.
-------------------------------------------------------------------------------------------------
create table nal_annual (
    facility_id      bigint not null references facility,
    pollutant_key    text not null references pollutant on update cascade,
    reporting_year   integer not null,
    benchmark_id     bigint not null references benchmark,  -- the annual NAL
    nal              numeric not null,
    sample_count     integer not null,   -- results in the average (NDs included)
    nd_count         integer not null,
    nd_without_limit integer not null,   -- NDs with neither MDL nor RL (½ MDL counts them as 0)
    avg_nd_zero      numeric,            -- ND = 0, kept in the denominator (project default)
    avg_nd_half_mdl  numeric,            -- ND = ½ MDL (or ½ RL)
    avg_nd_dropped   numeric,            -- NDs left out entirely; null when all are ND
    nd_policy        text not null check (nd_policy in ('zero', 'half_mdl', 'dropped')),
    average          numeric,            -- the average under nd_policy
    exceeds          boolean not null,   -- average > nal under nd_policy
    policy_sensitive boolean not null,   -- another convention decides differently
    instant_count    integer not null default 0,  -- results above/outside the instantaneous NAL
    computed_at      timestamptz not null default now(),
    primary key (facility_id, pollutant_key, reporting_year)
);

-- ERA Level per facility x pollutant (IGP: Baseline -> Level 1 on the July 1 after the first
-- exceeding year; -> Level 2 on the July 1 after a later exceeding year). Dates, not a frozen
-- label: nal_level_current evaluates them against today.
create table nal_level (
    facility_id            bigint not null references facility,
    pollutant_key          text not null references pollutant on update cascade,
    first_exceedance_year  integer not null,
    second_exceedance_year integer,
    exceedance_years       integer[] not null,
    level_1_since          date not null,
    level_2_since          date,
    computed_at            timestamptz not null default now(),
    primary key (facility_id, pollutant_key),
    constraint nal_level_order check (second_exceedance_year is null
                                      or second_exceedance_year > first_exceedance_year)
);

create index nal_level_pollutant_idx on nal_level (pollutant_key);

create view nal_level_current as
select l.*,
       case when l.level_2_since <= current_date then 'level_2'
            when l.level_1_since <= current_date then 'level_1'
            else 'baseline' end as level
from nal_level l;

-------------------------------------------------------------------------------------------------
-- Engine bookkeeping: what each source table has been processed up to, and one row per run.
-------------------------------------------------------------------------------------------------
create table violation_engine_state (
    source_table text primary key check (source_table in ('esmr_sample', 'smarts_industrial_monitoring',
                                                          'smarts_construction_monitoring')),
    -- Rows changed or withdrawn by sync runs with id <= this are reflected in the results.
    last_run_id  bigint not null,
    -- Engine version, ND policy, benchmark and manual-link checksums: a change forces a full run.
    fingerprint  text not null,
    updated_at   timestamptz not null default now()
);

create table violation_engine_run (
    id               bigint generated always as identity primary key,
    trigger          text not null,                 -- 'finalize', 'manual', 'test', ...
    sync_run_id      bigint references sync_run,
    mode             text not null check (mode in ('full', 'incremental')),
    status           text not null check (status in ('running', 'succeeded', 'failed')),
    started_at       timestamptz not null default now(),
    finished_at      timestamptz,
    pairs            integer,   -- facility x pollutant pairs recomputed
    results          bigint,    -- results evaluated
    events_new       integer,
    events_updated   integer,
    events_escalated integer,
    events_retracted integer,
    samples          bigint,    -- violation_sample rows written
    duplicates       integer,
    notes            jsonb,     -- exclusions by reason, unknown units, coverage, timings
    error            text
);

create index violation_engine_run_started_at_idx on violation_engine_run (started_at desc);

-- Severity of a ratio measured / benchmark (for ranges, pH: 10^(distance outside the range), the
-- factor by which H+ or OH- activity exceeds the limit). Thresholds: docs/VIOLATION_SCHEMA_MIGRATION.md.
create function violation_severity(ratio numeric) returns text
    language sql immutable
as $$
    select case when ratio is null then null
                when ratio <= 2 then 'low'
                when ratio <= 5 then 'moderate'
                when ratio <= 10 then 'high'
                else 'critical' end
$$;

create function severity_rank(severity text) returns integer
    language sql immutable
as $$
    select case severity when 'low' then 1 when 'moderate' then 2 when 'high' then 3
                         when 'critical' then 4 else 0 end
$$;

-------------------------------------------------------------------------------------------------
-- Duplicate candidates: a computed exceedance event and a SMARTS regulatory violation of the
-- same canonical facility that may describe the same thing. Reported, never merged.
-------------------------------------------------------------------------------------------------
create table violation_duplicate (
    id                 bigint generated always as identity primary key,
    facility_id        bigint not null references facility,
    event_id           bigint not null references violation_event on delete cascade,
    smarts_violation_id bigint not null references smarts_violation,
    score              real not null check (score between 0 and 1),
    reason             text not null,
    detected_at        timestamptz not null default now(),
    unique (event_id, smarts_violation_id)
);

create index violation_duplicate_facility_idx on violation_duplicate (facility_id);
create index violation_duplicate_smarts_idx on violation_duplicate (smarts_violation_id);

-------------------------------------------------------------------------------------------------
-- Alerts: one 'new' alert per subscription and event, and one 'escalated' alert per severity the
-- event escalates to.
-------------------------------------------------------------------------------------------------
alter table alert add column severity text check (severity in ('low', 'moderate', 'high', 'critical'));
alter table alert drop constraint alert_subscription_id_event_id_trigger_key;
create unique index alert_once_uniq on alert (subscription_id, event_id, trigger, coalesce(severity, ''));

-- level filter values: 'level_1' (Level 1 or 2) and 'level_2'.
alter table subscription add constraint subscription_level_values
    check (level is null or level in ('level_1', 'level_2'));
