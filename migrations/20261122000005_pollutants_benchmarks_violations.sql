-- Pollutants, their benchmarks (IGP NALs, aquatic-life criteria, drinking-water standards) and
-- the violation (benchmark exceedance) tables.
--
-- Seed data comes from shared/data/benchmarks/{igp_nals,aquatic_and_drinking}.csv; every column
-- of those files has a home here (mapping in docs/SCHEMA.md).

create table pollutant (
    key            text primary key,   -- 'copper', 'tss', 'ph', 'oil_and_grease'
    name           text not null,
    category       text,               -- 'metal', 'nutrient', 'conventional', ...
    canonical_unit text                -- unit values are converted to before comparison ('mg/L')
);

-- Maps a published parameter name (SMARTS PARAMETER, eSMR parameter) to a pollutant and the
-- fraction the measurement is of. Matching is case-insensitive (see the unique index).
create table pollutant_alias (
    alias         text primary key,    -- e.g. 'Copper, Total Recoverable'
    pollutant_key text not null references pollutant on update cascade,
    fraction      text not null default 'any'
                  check (fraction in ('total', 'dissolved', 'total_recoverable', 'any'))
);

create unique index pollutant_alias_lower_uniq on pollutant_alias (lower(alias));
create index pollutant_alias_pollutant_key_idx on pollutant_alias (pollutant_key);

-- One threshold value.
-- * Threshold vs range: with value_max null, `value` is an upper limit (exceeded when the result is
--   greater). With value_max set it is an allowed range [value, value_max] (pH 6.0-9.0: exceeded when
--   the result is below value or above value_max).
-- * IGP (igp_nals.csv) rows: annual_nal -> NAL_ANNUAL, instantaneous_max_nal -> NAL_INSTANT,
--   instantaneous_range_min/max -> NAL_INSTANT value/value_max; water_type 'all'.
-- * The same pollutant/type/water/fraction legitimately has several values from different
--   authorities (CTR vs EPA NRWQC, federal vs California MCL) and over time (lead action level
--   0.015 -> 0.010 under the 2024 LCRI), so `source` and `effective_date` are part of the key.
--   `source` is a short authority label ('IGP 2014-0057-DWQ', 'CTR', 'EPA NRWQC',
--   'Federal NPDWR', 'California MCL'); the full citation note goes to `verification`.
create table benchmark (
    id                 bigint generated always as identity primary key,
    pollutant_key      text not null references pollutant on update cascade,
    benchmark_type     text not null check (benchmark_type in ('NAL_ANNUAL', 'NAL_INSTANT', 'MCL',
                           'ACTION_LEVEL', 'CMC', 'CCC', 'SECONDARY_MCL', 'OTHER')),
    water_type         text not null check (water_type in ('freshwater', 'saltwater', 'drinking', 'all')),
    -- CSV `basis`; null when fraction is meaningless (pH, TSS).
    fraction           text check (fraction in ('total', 'dissolved', 'total_recoverable', 'any')),
    value              numeric not null,
    value_max          numeric,
    unit               text not null,       -- as published: 'mg/L', 'ug/L', 'mg/L as N', 'pH units'
    source             text not null,
    source_url         text,                -- may hold several URLs separated by ' ; ' as in the CSVs
    verification       text,                -- CSV source_note: verification status and caveats
    -- true when the value is not confirmed against an authoritative text (source_note says
    -- UNVERIFIED for the value). Such rows must not be presented as authoritative.
    unverified         boolean not null default false,
    hardness_dependent boolean not null default false,
    -- Criterion as a function of hardness H (mg/L CaCO3), e.g.
    -- 'exp(0.9422*ln(H) - 1.700) * 0.960'; `value` is the criterion at H = 100.
    hardness_equation  text,
    test_method        text,                -- IGP Table 2 test method (igp_nals.csv test_method)
    effective_date     date,                -- when this value takes/took effect; null = long-standing
    notes              text,
    constraint benchmark_range_order check (value_max is null or value_max >= value),
    constraint benchmark_hardness_equation check (hardness_dependent or hardness_equation is null),
    constraint benchmark_uniq unique nulls not distinct
        (pollutant_key, benchmark_type, water_type, fraction, source, effective_date)
);

create index benchmark_pollutant_key_idx on benchmark (pollutant_key);

-------------------------------------------------------------------------------------------------
-- Violations. First version; the violation engine issue finalizes these tables (severity
-- rules, event keys, how annual-average exceedances are represented) and may change them.
-------------------------------------------------------------------------------------------------

-- Aggregate: facility x pollutant x reporting year x benchmark type x source dataset.
-- source is part of the key: eSMR and SMARTS exceedances of one facility are different evidence
-- (different reports, different reporting rules) and are reviewed separately.
create table violation_event (
    id                bigint generated always as identity primary key,
    facility_id       bigint not null references facility,
    pollutant_key     text not null references pollutant on update cascade,
    reporting_year    integer not null,  -- IGP year starting July 1: 2016 = 2016-07-01..2017-06-30
    benchmark_type    text not null check (benchmark_type in ('NAL_ANNUAL', 'NAL_INSTANT', 'MCL',
                          'ACTION_LEVEL', 'CMC', 'CCC', 'SECONDARY_MCL', 'OTHER')),
    source            text not null check (source in ('esmr', 'smarts_industrial', 'smarts_construction')),
    first_date        date,
    last_date         date,
    sample_count      integer not null default 0,
    max_ratio         numeric,           -- max(measured / benchmark) over the samples
    severity          text check (severity in ('low', 'moderate', 'high', 'critical')),
    status            text not null default 'open'
                      check (status in ('open', 'under_review', 'resolved', 'dismissed')),
    status_changed_by text,
    status_changed_at timestamptz,
    status_notes      text,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    constraint violation_event_uniq
        unique (facility_id, pollutant_key, reporting_year, benchmark_type, source)
);

create trigger violation_event_set_updated_at before update on violation_event
    for each row execute function set_updated_at();

create index violation_event_pollutant_year_idx on violation_event (pollutant_key, reporting_year);
create index violation_event_reporting_year_idx on violation_event (reporting_year);
create index violation_event_status_idx on violation_event (status);
create index violation_event_severity_idx on violation_event (severity);
create index violation_event_updated_at_idx on violation_event (updated_at);

-- One source sample compared with one benchmark. source_row_id is the surrogate id in
-- source_table; it is stable because source rows are never deleted (only withdrawn), so no FK is
-- needed across the three possible tables. Measured/benchmark values are stored after unit
-- conversion (measured_unit = benchmark_unit).
create table violation_sample (
    id              bigint generated always as identity primary key,
    event_id        bigint not null references violation_event on delete cascade,
    source          text not null check (source in ('esmr', 'smarts_industrial', 'smarts_construction')),
    source_table    text not null check (source_table in ('esmr_sample', 'smarts_industrial_monitoring',
                                                          'smarts_construction_monitoring')),
    source_row_id   bigint not null,
    benchmark_id    bigint not null references benchmark,
    measured_value  numeric,
    measured_unit   text,
    benchmark_value numeric,
    benchmark_unit  text,
    ratio           numeric,
    severity        text check (severity in ('low', 'moderate', 'high', 'critical')),
    detected_on     date,              -- sampling date
    unique (source_table, source_row_id, benchmark_id)
);

create index violation_sample_event_id_idx on violation_sample (event_id);
create index violation_sample_benchmark_id_idx on violation_sample (benchmark_id);

create table violation_status_audit (
    id          bigint generated always as identity primary key,
    event_id    bigint not null references violation_event on delete cascade,
    from_status text,
    to_status   text not null,
    changed_by  text,
    changed_at  timestamptz not null default now(),
    notes       text
);

create index violation_status_audit_event_id_idx on violation_status_audit (event_id, changed_at);
