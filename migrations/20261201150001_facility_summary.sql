-- One stored summary row per canonical facility: what the directory (GET /api/facilities)
-- lists, filters and sorts by, so a page reads one table through its indexes instead of
-- counting six source tables per facility.
--
-- Everything here is derived (repo::summary::refresh): from the facility's linked source
-- records (facility_link, status 'linked': SMARTS by APP_ID|WDID, eSMR by place id), its
-- computed events (violation_event, not retracted) and its ERA Levels (nal_level). Refreshed
-- when a state is published (sync-finalize, facility-link, violations-compute, link decisions)
-- and for one facility by a review action. Merged facilities have no row.
--
-- The SMARTS counts join records as /api/facilities/{id} does: a record belongs to the
-- facility when its WDID equals the link's and its APP_ID (empty when missing) equals the
-- link's, current rows only.

create table facility_summary (
    facility_id             bigint primary key references facility on delete cascade,
    -- Copied from facility (its served fields) so the directory filters and sorts one table.
    name                    text not null,
    county                  text,
    region                  text,
    primary_sic             text,
    -- The linked source records: SMARTS record ids (smarts_*_facility.id) and eSMR place ids;
    -- `records` lists them with their keys ({smartsIndustrial: [{id, appId, wdid}], ...}).
    smarts_industrial_ids   bigint[] not null,
    smarts_construction_ids bigint[] not null,
    esmr_place_ids          text[] not null,
    records                 jsonb not null,
    wdids                   text[] not null,
    app_ids                 text[] not null,
    permit_types            text[] not null,
    statuses                text[] not null,
    -- Computed exceedance events (not retracted); open = not yet resolved or dismissed.
    events                  integer not null,
    open_events             integer not null,
    pollutants              text[] not null,   -- pollutant keys with an event
    last_exceedance_date    date,              -- the latest sample date of an event
    last_exceedance_year    integer,           -- the latest reporting year with an event
    -- ERA Levels: the earliest date any pollutant reached Level 1 / Level 2. The worst Level
    -- on a day d is level_2 when level_2_since <= d, else level_1 when level_1_since <= d
    -- (dates, not a frozen label: a July 1 changes the Level without a refresh).
    level_1_since           date,
    level_2_since           date,
    -- SMARTS regulatory records.
    smarts_violations       integer not null,
    enforcement_actions     integer not null,
    inspections             integer not null,
    penalties_assessed      numeric not null,  -- sum of TOTAL_ASSESSMENT
    penalties_paid          numeric not null,  -- sum of RECEIVED_AMOUNT
    last_sample_date        date,              -- SMARTS industrial, construction or eSMR
    last_violation_date     date,              -- occurrence date, else discovery date
    last_inspection_date    date,
    last_enforcement_date   date,              -- issuance date
    last_activity_date      date,              -- the latest of the four dates above
    computed_at             timestamptz not null default now()
);

-- The default order (newest activity first) and the name order, each with its keyset tie.
create index facility_summary_activity_idx
    on facility_summary (last_activity_date desc nulls last, facility_id desc);
create index facility_summary_name_idx on facility_summary (name, facility_id);
create index facility_summary_county_idx on facility_summary (lower(county));
create index facility_summary_region_idx on facility_summary (upper(region));
create index facility_summary_name_trgm_idx
    on facility_summary using gin (lower(name) gin_trgm_ops);
create index facility_summary_keys_idx
    on facility_summary using gin (wdids, app_ids, esmr_place_ids, pollutants);
