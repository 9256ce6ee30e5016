-- Canonical facilities and their links to source records.
--
-- SMARTS (APP_ID/WDID) and eSMR (facility_place_id) ids are unrelated, so one real facility can
-- appear in several sources. `facility` is the app's own entity; `facility_link` says which
-- source records belong to it and how sure we are. Source keys:
--   smarts_industrial / smarts_construction: 'APP_ID|WDID' (smarts_facility.source_key)
--   esmr:                                    facility_place_id

create table facility (
    id                  bigint generated always as identity primary key,
    name                text not null,
    normalized_name     text,     -- lowercased, punctuation/suffixes stripped; used for matching
    address             text,
    city                text,
    county              text,
    region              text,     -- SMARTS region code ('5F'), same vocabulary as esmr_region.code
    zip                 text,
    -- double precision is enough for map coordinates (the source values stay exact in the
    -- source-row tables).
    latitude            double precision,
    longitude           double precision,
    -- false until the coordinates are known to be right (checked source value or manual fix).
    coordinates_trusted boolean not null default false,
    primary_sic         text,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    -- Unknown coordinates are null: never a 0,0 or state-centroid placeholder (the old app's bug).
    constraint facility_coordinates_pair check ((latitude is null) = (longitude is null)),
    constraint facility_coordinates_range check (
        latitude between -90 and 90 and longitude between -180 and 180
        and not (latitude = 0 and longitude = 0))
);

create trigger facility_set_updated_at before update on facility
    for each row execute function set_updated_at();

create index facility_normalized_name_trgm_idx on facility using gin (normalized_name gin_trgm_ops);
create index facility_lat_lon_idx on facility (latitude, longitude);
create index facility_county_idx on facility (county);
create index facility_region_idx on facility (region);
create index facility_primary_sic_idx on facility (primary_sic);

create table facility_link (
    id          bigint generated always as identity primary key,
    facility_id bigint not null references facility on delete cascade,
    source      text not null check (source in ('smarts_industrial', 'smarts_construction', 'esmr')),
    source_key  text not null,
    method      text not null check (method in ('exact', 'fuzzy', 'manual', 'seed', 'unlinked')),
    confidence  real not null check (confidence between 0 and 1),
    -- 'proposed' links (e.g. fuzzy matches below the auto-accept threshold) wait for review.
    status      text not null check (status in ('linked', 'proposed', 'rejected')),
    verified_by text,
    verified_at timestamptz,
    notes       text,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    -- One row per candidate pair; several proposals for one source record are fine.
    unique (source, source_key, facility_id)
);

create trigger facility_link_set_updated_at before update on facility_link
    for each row execute function set_updated_at();

-- A source record belongs to at most one facility.
create unique index facility_link_linked_uniq on facility_link (source, source_key)
    where status = 'linked';
create index facility_link_facility_id_idx on facility_link (facility_id);
create index facility_link_status_idx on facility_link (status) where status = 'proposed';

-- Human decisions, kept apart from facility_link so that re-running the linker (which may rewrite
-- facility_link wholesale) replays them instead of losing them.
--   link:   source record belongs to facility_id.
--   unlink: source record must not be linked to facility_id; with facility_id null, it must not
--           be auto-linked to any facility.
-- facility_id does not cascade: deleting a facility that carries curated decisions must be a
-- deliberate step, not a side effect of a rebuild.
create table facility_link_decision (
    id          bigint generated always as identity primary key,
    source      text not null check (source in ('smarts_industrial', 'smarts_construction', 'esmr')),
    source_key  text not null,
    facility_id bigint references facility,
    decision    text not null check (decision in ('link', 'unlink')),
    decided_by  text not null,
    decided_at  timestamptz not null default now(),
    notes       text,
    constraint facility_link_decision_link_has_facility
        check (decision = 'unlink' or facility_id is not null),
    -- One current decision per pair (update it to change your mind); audit_log keeps history.
    constraint facility_link_decision_pair_uniq unique nulls not distinct (source, source_key, facility_id)
);

-- At most one manual 'link' per source record.
create unique index facility_link_decision_one_link_uniq on facility_link_decision (source, source_key)
    where decision = 'link';
create index facility_link_decision_facility_id_idx on facility_link_decision (facility_id);
