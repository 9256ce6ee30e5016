-- SMARTS (data.ca.gov "Stormwater - Regulatory ... and Water Quality Results"): seven portal files,
-- one source-row table each, plus link tables between inspections/enforcement and violations.
--
-- Conventions shared by every source-row table here and esmr_sample (see docs/SCHEMA.md):
-- * The first eight columns are importer bookkeeping. A row's identity is (row_key, row_ord):
--   row_key is a 64-bit hash of the dataset's declared key columns, row_ord numbers repeated keys in
--   file order. SMARTS ids are NOT unique (APP_ID, (APP_ID, WDID) and even whole rows repeat), so
--   every published row is kept, duplicates included.
-- * row_hash (128-bit hash of all source values) detects changes; a changed row is updated in
--   place and gets changed_run_id. Rows that vanish from the source get withdrawn_run_id and are
--   never deleted, so surrogate ids stay stable for anything pointing at them.
-- * Then one column per published column, in dictionary order, named as the official data
--   dictionary column lowercased, misspellings included (construction_commertial,
--   construction_other_desription). Ids (WDID, APP_ID, *_ID) stay text: they are text in the
--   dictionary, may carry leading zeros/junk, and are only ever compared, never summed.
-- * Types: Y/N flags -> boolean; dates -> date; HH:MM[:SS] -> time ('24:00' is valid);
--   Oracle timestamps -> timestamp (no zone is published; the values are California local time);
--   counts/years -> integer; everything the dictionary calls numeric -> numeric (exact decimal,
--   so a published 0.0332 stays 0.0332).
--
-- Indexes: key/join indexes ((wdid, app_id), source ids) are full indexes, so they also serve
-- history and withdrawn rows. Browse/filter indexes on the small tables (facilities, violations,
-- enforcement, inspections) are partial `where withdrawn_run_id is null`: queries must repeat that
-- predicate to use them (the smarts_facility view does). The big monitoring tables get full
-- indexes only, so a forgotten predicate never turns into a sequential scan of millions of rows.

-------------------------------------------------------------------------------------------------
-- Industrial facilities: Industrial_Application_Specific_Data (38 columns).
-------------------------------------------------------------------------------------------------
create table smarts_industrial_facility (
    id               bigint generated always as identity primary key,
    row_key          bigint not null,
    row_ord          integer not null,
    row_hash         bytea not null,
    source_line      bigint not null,
    first_run_id     bigint not null references sync_run,
    changed_run_id   bigint not null references sync_run,
    withdrawn_run_id bigint references sync_run,

    permit_type                    text,
    app_id                         text,
    wdid                           text,
    status                         text,
    noi_processed_date             date,
    not_effective_date             date,
    region_board                   text,
    county                         text,
    operator_name                  text,
    facility_name                  text,
    facility_address               text,
    facility_address_2             text,
    facility_city                  text,
    facility_state                 text,
    facility_zip                   text,     -- text: 4- and 7-digit values occur
    facility_latitude              numeric,
    facility_longitude             numeric,
    facility_county                text,
    facility_contact_first_name    text,
    facility_contact_last_name     text,
    facility_title                 text,
    facility_phone                 text,
    facility_email                 text,
    facility_total_size            numeric,
    facility_total_size_unit       text,
    facility_area_activity         numeric,
    facility_area_activity_unit    text,
    percent_of_site_imperviousness numeric,
    primary_sic                    text,     -- '4212-Local Trucking Without Storage' (code-description)
    secondary_sic                  text,
    tertiary_sic                   text,
    receiving_water_name           text,
    indirectly                     boolean,
    directly                       boolean,
    certifier_by                   text,
    certifier_title                text,
    -- Portal files publish a date (the publisher keeps only DD-MON-YY); raw SMARTS exports carry
    -- the full Oracle timestamp. timestamp holds both.
    certification_date             timestamp,
    -- Only in newer files (2025 has it, 2019 lacks it): null when the file has no such column.
    question_tmdl_answer           text,

    unique (row_key, row_ord)
);

create index smarts_industrial_facility_wdid_app_id_idx on smarts_industrial_facility (wdid, app_id);
-- One APP_ID can carry several WDIDs (I -> NEC conversion), so APP_ID alone is a lookup too.
create index smarts_industrial_facility_app_id_idx on smarts_industrial_facility (app_id);
create index smarts_industrial_facility_changed_run_idx on smarts_industrial_facility (changed_run_id);
create index smarts_industrial_facility_withdrawn_run_idx on smarts_industrial_facility (withdrawn_run_id)
    where withdrawn_run_id is not null;
create index smarts_industrial_facility_noi_processed_date_idx on smarts_industrial_facility (noi_processed_date)
    where withdrawn_run_id is null;
create index smarts_industrial_facility_status_idx on smarts_industrial_facility (status)
    where withdrawn_run_id is null;
create index smarts_industrial_facility_permit_type_idx on smarts_industrial_facility (permit_type)
    where withdrawn_run_id is null;
create index smarts_industrial_facility_county_idx on smarts_industrial_facility (county)
    where withdrawn_run_id is null;
create index smarts_industrial_facility_region_board_idx on smarts_industrial_facility (region_board)
    where withdrawn_run_id is null;
create index smarts_industrial_facility_primary_sic_idx on smarts_industrial_facility (primary_sic)
    where withdrawn_run_id is null;
create index smarts_industrial_facility_name_trgm_idx on smarts_industrial_facility
    using gin (lower(facility_name) gin_trgm_ops) where withdrawn_run_id is null;

-------------------------------------------------------------------------------------------------
-- Construction sites: Construction_Application_Specific_Data (80 columns per the portal
-- dictionary; no real rows were available, so the order is taken from the dictionary and the
-- importer matches columns by name).
-------------------------------------------------------------------------------------------------
create table smarts_construction_facility (
    id               bigint generated always as identity primary key,
    row_key          bigint not null,
    row_ord          integer not null,
    row_hash         bytea not null,
    source_line      bigint not null,
    first_run_id     bigint not null references sync_run,
    changed_run_id   bigint not null references sync_run,
    withdrawn_run_id bigint references sync_run,

    permit_type                    text,
    app_id                         text,
    wdid                           text,
    status                         text,
    noi_processed_date             date,
    not_effective_date             date,
    region                         text,
    county                         text,
    owner_name                     text,
    developer_name                 text,
    developer_address              text,
    developer_address_2            text,
    developer_city                 text,
    developer_state                text,
    developer_zip                  text,
    developer_contact_first_name   text,
    developer_contact_last_name    text,
    developer_title                text,
    developer_phone                text,
    developer_email                text,
    site_name                      text,
    site_address                   text,
    site_address_2                 text,
    site_city                      text,
    site_state                     text,
    site_zip                       text,
    site_latitude                  numeric,
    site_longitude                 numeric,
    site_county                    text,
    site_contact_first_name        text,
    site_contact_last_name         text,
    site_title                     text,
    site_phone                     text,
    site_email                     text,
    site_total_size                numeric,
    site_total_size_unit           text,
    site_total_disturbed_acreage   numeric,
    total_disturbed_acreage_unit   text,
    percent_total_disturbed        numeric,
    imperviousness_before          numeric,
    imperviousness_after           numeric,
    tract_numbers                  text,
    mile_post_marker               text,
    part_of_a_larger_common_plan   boolean,
    name_of_plan_or_development    text,
    construction_commencement_date date,
    complete_grading_date          date,
    complete_project_date          date,
    type_of_construction           text,     -- 'traditional' / 'linear'
    construction_residential       boolean,
    -- Publisher's spelling. The raw SMARTS sheet says CONSTRUCTION_COMMERCIAL; the importer maps
    -- that header here too.
    construction_commertial        boolean,
    construction_industrial        boolean,
    construction_reconstruction    boolean,
    construction_transportation    boolean,
    type_of_construction_utility   boolean,
    construction_other             boolean,
    construction_other_desription  text,     -- publisher's spelling
    construction_above_ground      boolean,
    construction_below_ground      boolean,
    construction_gas_line          boolean,
    construction_water_sewer_line  boolean,
    cons_communication_line        boolean,
    cons_cable_line                boolean,
    cons_electrical_line           boolean,
    r_factor                       numeric,
    k_factor                       numeric,
    ls_factor                      numeric,
    watershed_erosion_estimate     numeric,
    site_sediment_risk_factor      text,
    receiving_water_risk           text,
    project_combined_risk          text,
    receiving_water_name           text,
    indirectly                     boolean,
    directly                       boolean,
    qsd_first_name                 text,
    qsd_last_name                  text,
    qsd_certification_number       text,
    certifier_by                   text,
    certifier_title                text,
    certification_date             timestamp, -- see smarts_industrial_facility.certification_date

    unique (row_key, row_ord)
);

create index smarts_construction_facility_wdid_app_id_idx on smarts_construction_facility (wdid, app_id);
create index smarts_construction_facility_app_id_idx on smarts_construction_facility (app_id);
create index smarts_construction_facility_changed_run_idx on smarts_construction_facility (changed_run_id);
create index smarts_construction_facility_withdrawn_run_idx on smarts_construction_facility (withdrawn_run_id)
    where withdrawn_run_id is not null;
create index smarts_construction_facility_noi_processed_date_idx on smarts_construction_facility (noi_processed_date)
    where withdrawn_run_id is null;
create index smarts_construction_facility_status_idx on smarts_construction_facility (status)
    where withdrawn_run_id is null;
create index smarts_construction_facility_permit_type_idx on smarts_construction_facility (permit_type)
    where withdrawn_run_id is null;
create index smarts_construction_facility_county_idx on smarts_construction_facility (county)
    where withdrawn_run_id is null;
create index smarts_construction_facility_region_idx on smarts_construction_facility (region)
    where withdrawn_run_id is null;
create index smarts_construction_facility_name_trgm_idx on smarts_construction_facility
    using gin (lower(site_name) gin_trgm_ops) where withdrawn_run_id is null;

-------------------------------------------------------------------------------------------------
-- smarts_facility: the columns both permit programs share, current rows only.
--
-- Two tables + a view rather than one wide table: the two files have different column sets (38
-- vs 80) and different names for the same thing (FACILITY_* vs SITE_*, REGION_BOARD vs REGION,
-- OPERATOR_NAME vs OWNER_NAME). Separate tables keep each row exactly as published (one row_hash
-- over one file's columns, typed columns named as the dictionary names them, no half-null union
-- table), while the view gives the API and the facility linker a single shape.
--
-- (kind, source_id) identifies a row of the view; source_key is the facility_link.source_key
-- used for SMARTS sources ('APP_ID|WDID', missing parts as empty strings).
-------------------------------------------------------------------------------------------------
create view smarts_facility as
select 'industrial'::text                                      as kind,
       f.id                                                    as source_id,
       coalesce(f.app_id, '') || '|' || coalesce(f.wdid, '')   as source_key,
       f.permit_type,
       f.app_id,
       f.wdid,
       f.status,
       f.noi_processed_date,
       f.not_effective_date,
       f.region_board                                          as region,
       f.county,
       f.operator_name,
       f.facility_name,
       f.facility_address                                      as address,
       f.facility_address_2                                    as address_2,
       f.facility_city                                         as city,
       f.facility_state                                        as state,
       f.facility_zip                                          as zip,
       f.facility_latitude                                     as latitude,
       f.facility_longitude                                    as longitude,
       f.facility_county,
       f.receiving_water_name,
       f.indirectly,
       f.directly,
       f.changed_run_id
from smarts_industrial_facility f
where f.withdrawn_run_id is null
union all
select 'construction'::text                                    as kind,
       c.id                                                    as source_id,
       coalesce(c.app_id, '') || '|' || coalesce(c.wdid, '')   as source_key,
       c.permit_type,
       c.app_id,
       c.wdid,
       c.status,
       c.noi_processed_date,
       c.not_effective_date,
       c.region                                                as region,
       c.county,
       c.owner_name                                            as operator_name,
       c.site_name                                             as facility_name,
       c.site_address                                          as address,
       c.site_address_2                                        as address_2,
       c.site_city                                             as city,
       c.site_state                                            as state,
       c.site_zip                                              as zip,
       c.site_latitude                                         as latitude,
       c.site_longitude                                        as longitude,
       c.site_county                                           as facility_county,
       c.receiving_water_name,
       c.indirectly,
       c.directly,
       c.changed_run_id
from smarts_construction_facility c
where c.withdrawn_run_id is null;

-------------------------------------------------------------------------------------------------
-- Monitoring results. One published row = one sample result (one parameter of one sample).
-- REPORT_ID groups the rows of one report/storm event; report-level fields (event type, dates,
-- location, certifier) are repeated on every row. No separate report table or view: a REPORT_ID
-- spans several monitoring locations, so the "report row" is not well defined, and any report
-- listing is a `group by report_id` over the (report_id) index.
-------------------------------------------------------------------------------------------------
create table smarts_industrial_monitoring (
    id               bigint generated always as identity primary key,
    row_key          bigint not null,
    row_ord          integer not null,
    row_hash         bytea not null,
    source_line      bigint not null,
    first_run_id     bigint not null references sync_run,
    changed_run_id   bigint not null references sync_run,
    withdrawn_run_id bigint references sync_run,

    permit_type                  text,
    wdid                         text,
    app_id                       text,
    reporting_year               integer,  -- July 1 - June 30 year as published ('2016')
    report_id                    text,
    event_type                   text,
    monitoring_location_name     text,
    monitoring_location_type     text,
    monitor_location_description text,
    monitoring_latitude          numeric,
    monitoring_longitude         numeric,
    sample_id                    text,     -- repeats across the parameters of one sample
    sample_date                  date,
    sample_time                  time,     -- HH:MM in the source
    discharge_start_date         date,
    discharge_start_time         time,
    parameter                    text,
    result_qualifier             text,     -- '=', 'ND', 'DNQ', '<', '>'
    result                       numeric,  -- null for ND
    units                        text,
    analytical_method            text,
    mdl                          numeric,
    rl                           numeric,
    discharge_end_date           date,
    discharge_end_time           time,
    certifier_name               text,
    certified_date               timestamp, -- Oracle timestamp text in the source, parsed

    unique (row_key, row_ord)
);

-- (wdid, app_id) leads, so it serves plain facility lookups as well as facility date ranges.
-- Only the indexes the read paths need: each index on a multi-million-row table costs import
-- throughput (docs/BENCHMARKS.md). Date, parameter and report lookups go through (wdid, app_id, …);
-- query-specific indexes come with the features that need them, measured.
create index smarts_industrial_monitoring_wdid_app_id_idx
    on smarts_industrial_monitoring (wdid, app_id, sample_date);
-- Lets the violation engine process only rows changed by a run.
create index smarts_industrial_monitoring_changed_run_idx on smarts_industrial_monitoring (changed_run_id);
create index smarts_industrial_monitoring_withdrawn_run_idx on smarts_industrial_monitoring (withdrawn_run_id)
    where withdrawn_run_id is not null;

create table smarts_construction_monitoring (
    id               bigint generated always as identity primary key,
    row_key          bigint not null,
    row_ord          integer not null,
    row_hash         bytea not null,
    source_line      bigint not null,
    first_run_id     bigint not null references sync_run,
    changed_run_id   bigint not null references sync_run,
    withdrawn_run_id bigint references sync_run,

    permit_type                  text,
    wdid                         text,
    app_id                       text,
    report_year                  integer,  -- REPORT_YEAR here, REPORTING_YEAR in industrial
    report_id                    text,
    event_type                   text,
    event_start_date             date,
    event_end_date               date,
    rainfall_amount              numeric,
    business_days                integer,  -- undocumented in the dictionary ('-'); numeric there
    monitoring_location_name     text,
    monitoring_location_type     text,
    monitor_location_description text,
    monitoring_latitude          numeric,
    monitoring_longitude         numeric,
    sample_id                    text,
    sample_date                  date,
    sample_time                  time,     -- HH:MM:SS in the source
    percent_of_total_discharge   numeric,  -- undocumented in the dictionary ('-')
    qsp                          text,     -- a person's name, not a flag
    parameter                    text,
    result_qualifier             text,
    result                       numeric,
    units                        text,
    analytical_method            text,
    mdl                          numeric,
    rl                           numeric,
    analyzed_by                  text,
    certifier_name               text,
    certified_date               timestamp,

    unique (row_key, row_ord)
);

-- Only the indexes the read paths need: each index on a multi-million-row table costs import
-- throughput (docs/BENCHMARKS.md). Date, parameter and report lookups go through (wdid, app_id, …);
-- query-specific indexes come with the features that need them, measured.
create index smarts_construction_monitoring_wdid_app_id_idx
    on smarts_construction_monitoring (wdid, app_id, sample_date);
create index smarts_construction_monitoring_changed_run_idx on smarts_construction_monitoring (changed_run_id);
create index smarts_construction_monitoring_withdrawn_run_idx on smarts_construction_monitoring (withdrawn_run_id)
    where withdrawn_run_id is not null;

-------------------------------------------------------------------------------------------------
-- Violations (32 columns: 16 own + the 16-column PLACE block the publisher joins on from the
-- facility files; PLACE_* may be all-missing when no facility matched).
-------------------------------------------------------------------------------------------------
create table smarts_violation (
    id               bigint generated always as identity primary key,
    row_key          bigint not null,
    row_ord          integer not null,
    row_hash         bytea not null,
    source_line      bigint not null,
    first_run_id     bigint not null references sync_run,
    changed_run_id   bigint not null references sync_run,
    withdrawn_run_id bigint references sync_run,

    wdid                      text,
    app_id                    text,
    violation_id              text,
    violation_source          text,     -- Annual Report, Inspection, Report, Internal Report, Referral
    violation_source_id       text,     -- an inspection id when violation_source = 'Inspection'
    violation_type            text,
    serious_violation         boolean,
    violation_priority        text,     -- '1'/'2'/'3', legacy 'Yes'/'No', 'Not Authorized to Assign Rank'
    occurrence_date           date,
    discovery_date            date,
    determined_by             text,
    exempt_from_mmp           boolean,
    memo                      text,
    description               text,
    violation_status          text,     -- Violation, Potential, Dismissed
    linked_enforcement_action boolean,
    permit_type               text,
    regional_board            text,
    place_name                text,
    place_address             text,
    place_address_2           text,
    place_city                text,
    place_state               text,
    place_zip                 text,
    place_latitude            numeric,
    place_longitude           numeric,
    place_county              text,
    place_total_size          numeric,
    place_total_size_unit     text,
    receiving_water_name      text,
    indirectly                boolean,
    directly                  boolean,

    unique (row_key, row_ord)
);

create index smarts_violation_wdid_app_id_idx on smarts_violation (wdid, app_id);
create index smarts_violation_violation_id_idx on smarts_violation (violation_id);
create index smarts_violation_source_id_idx on smarts_violation (violation_source_id)
    where violation_source_id is not null;
create index smarts_violation_changed_run_idx on smarts_violation (changed_run_id);
create index smarts_violation_withdrawn_run_idx on smarts_violation (withdrawn_run_id)
    where withdrawn_run_id is not null;
create index smarts_violation_occurrence_date_idx on smarts_violation (occurrence_date)
    where withdrawn_run_id is null;
create index smarts_violation_violation_type_idx on smarts_violation (violation_type)
    where withdrawn_run_id is null;
create index smarts_violation_violation_status_idx on smarts_violation (violation_status)
    where withdrawn_run_id is null;
create index smarts_violation_permit_type_idx on smarts_violation (permit_type)
    where withdrawn_run_id is null;
create index smarts_violation_regional_board_idx on smarts_violation (regional_board)
    where withdrawn_run_id is null;
create index smarts_violation_place_county_idx on smarts_violation (place_county)
    where withdrawn_run_id is null;

-------------------------------------------------------------------------------------------------
-- Enforcement actions (41 columns = 25 own + PLACE block). The source has no violation id;
-- links to violations live in smarts_enforcement_violation.
-------------------------------------------------------------------------------------------------
create table smarts_enforcement_action (
    id               bigint generated always as identity primary key,
    row_key          bigint not null,
    row_ord          integer not null,
    row_hash         bytea not null,
    source_line      bigint not null,
    first_run_id     bigint not null references sync_run,
    changed_run_id   bigint not null references sync_run,
    withdrawn_run_id bigint references sync_run,

    wdid                        text,
    app_id                      text,
    enforcement_id              text,
    enforcement_type            text,     -- NNC, NOV, CAO, SEL, 13267 Letter, ...
    enforcement_status          text,     -- Active, Historical, ...
    issuance_date               date,
    due_date                    date,
    description                 text,
    corrective_action           text,
    order_number                text,
    economic_benefits           numeric,  -- money: numeric, never float
    total_max_liability         numeric,
    staff_costs                 numeric,
    initial_assessment          numeric,
    total_assessment            numeric,
    received_amount             numeric,
    spent_amount                numeric,
    balance_due                 numeric,
    acl_complaint_issuance_date date,
    adoption_date               date,
    compliance_date             date,
    epl_issuance_date           date,
    received_date               date,
    waiver_received_date        date,
    count_of_violations         integer,
    permit_type                 text,
    regional_board              text,
    place_name                  text,
    place_address               text,
    place_address_2             text,
    place_city                  text,
    place_state                 text,
    place_zip                   text,
    place_latitude              numeric,
    place_longitude             numeric,
    place_county                text,
    place_total_size            numeric,
    place_total_size_unit       text,
    receiving_water_name        text,
    indirectly                  boolean,
    directly                    boolean,

    unique (row_key, row_ord)
);

create index smarts_enforcement_action_wdid_app_id_idx on smarts_enforcement_action (wdid, app_id);
create index smarts_enforcement_action_enforcement_id_idx on smarts_enforcement_action (enforcement_id);
create index smarts_enforcement_action_changed_run_idx on smarts_enforcement_action (changed_run_id);
create index smarts_enforcement_action_withdrawn_run_idx on smarts_enforcement_action (withdrawn_run_id)
    where withdrawn_run_id is not null;
create index smarts_enforcement_action_issuance_date_idx on smarts_enforcement_action (issuance_date)
    where withdrawn_run_id is null;
create index smarts_enforcement_action_type_idx on smarts_enforcement_action (enforcement_type)
    where withdrawn_run_id is null;
create index smarts_enforcement_action_status_idx on smarts_enforcement_action (enforcement_status)
    where withdrawn_run_id is null;
create index smarts_enforcement_action_permit_type_idx on smarts_enforcement_action (permit_type)
    where withdrawn_run_id is null;
create index smarts_enforcement_action_regional_board_idx on smarts_enforcement_action (regional_board)
    where withdrawn_run_id is null;
create index smarts_enforcement_action_place_county_idx on smarts_enforcement_action (place_county)
    where withdrawn_run_id is null;

-------------------------------------------------------------------------------------------------
-- Inspections (35 columns = 19 own + PLACE block).
-------------------------------------------------------------------------------------------------
create table smarts_inspection (
    id               bigint generated always as identity primary key,
    row_key          bigint not null,
    row_ord          integer not null,
    row_hash         bytea not null,
    source_line      bigint not null,
    first_run_id     bigint not null references sync_run,
    changed_run_id   bigint not null references sync_run,
    withdrawn_run_id bigint references sync_run,

    wdid                       text,
    app_id                     text,
    inspection_id              text,
    inspection_classification  text,
    -- Start/end times stay text: the publisher does not convert them, their format is
    -- undocumented and no real rows were available to confirm it.
    inspection_start_time      text,
    inspection_end_time        text,
    inspection_status          text,
    inspection_purpose         text,     -- 'A Type Compliance', 'B Type compliance', 'Complaint', ...
    inspection_date            date,
    inspection_contact         text,
    inspector_type             text,
    inspector_name             text,
    agency_name                text,
    agency_inspector_name      text,
    follow_up_action           text,
    general_notes              text,
    virtual_inspection         boolean,
    count_of_violations        integer,  -- not linked to violation rows in the source
    -- Text on purpose: the dictionary types it text and the publisher leaves it unconverted, so
    -- its format is unknown. Parse later once real values have been seen.
    final_insp_rpt_upload_date text,
    permit_type                text,
    regional_board             text,
    place_name                 text,
    place_address              text,
    place_address_2            text,
    place_city                 text,
    place_state                text,
    place_zip                  text,
    place_latitude             numeric,
    place_longitude            numeric,
    place_county               text,
    place_total_size           numeric,
    place_total_size_unit      text,
    receiving_water_name       text,
    indirectly                 boolean,
    directly                   boolean,

    unique (row_key, row_ord)
);

create index smarts_inspection_wdid_app_id_idx on smarts_inspection (wdid, app_id);
create index smarts_inspection_inspection_id_idx on smarts_inspection (inspection_id);
create index smarts_inspection_changed_run_idx on smarts_inspection (changed_run_id);
create index smarts_inspection_withdrawn_run_idx on smarts_inspection (withdrawn_run_id)
    where withdrawn_run_id is not null;
create index smarts_inspection_inspection_date_idx on smarts_inspection (inspection_date)
    where withdrawn_run_id is null;
create index smarts_inspection_purpose_idx on smarts_inspection (inspection_purpose)
    where withdrawn_run_id is null;
create index smarts_inspection_status_idx on smarts_inspection (inspection_status)
    where withdrawn_run_id is null;
create index smarts_inspection_permit_type_idx on smarts_inspection (permit_type)
    where withdrawn_run_id is null;
create index smarts_inspection_regional_board_idx on smarts_inspection (regional_board)
    where withdrawn_run_id is null;
create index smarts_inspection_place_county_idx on smarts_inspection (place_county)
    where withdrawn_run_id is null;

-------------------------------------------------------------------------------------------------
-- Links. Keyed by the SMARTS ids (text), not by surrogate ids: one SMARTS id can have several
-- source rows (duplicates, versions), and the link is between the SMARTS records, not between
-- particular published copies of them. No foreign keys for the same reason (the ids are not
-- unique in the source-row tables).
-------------------------------------------------------------------------------------------------

-- Derived by the importer from smarts_violation.violation_source_id when violation_source is
-- 'Inspection'. Rebuilt on each run; wdid/app_id are denormalized for filtering.
create table smarts_inspection_violation (
    inspection_id  text not null,
    violation_id   text not null,
    wdid           text,
    app_id         text,
    derived_from   text not null default 'violation_source_id',
    created_run_id bigint references sync_run on delete set null,
    primary key (inspection_id, violation_id)
);

create index smarts_inspection_violation_violation_id_idx on smarts_inspection_violation (violation_id);

-- The source publishes no violation id on enforcement actions (only WDID/APP_ID and a count), so
-- these links are inferred ('heuristic', e.g. same WDID/APP_ID and occurrence date shortly before
-- issuance), curated ('manual'), or taken from a future source field ('source').
create table smarts_enforcement_violation (
    enforcement_id text not null,
    violation_id   text not null,
    method         text not null check (method in ('heuristic', 'manual', 'source')),
    confidence     real not null check (confidence between 0 and 1),
    reason         text,
    created_run_id bigint references sync_run on delete set null,
    primary key (enforcement_id, violation_id)
);

create index smarts_enforcement_violation_violation_id_idx on smarts_enforcement_violation (violation_id);
