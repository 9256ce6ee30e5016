-- Stored summaries for the read API's lists (issue 16): what a list's `stats` and `total`
-- would otherwise compute over its whole filtered set on every request.
--
-- 1. The SMARTS record lists' stats (GET /api/smarts/violations, /enforcement, /inspections,
--    /facilities), one table per list, each a cube: one row per combination of the values the
--    list's filters and stats read, with its count (and sums). A request filtered only by those
--    values sums the rows that match its filters, so its stats and total read a few hundred
--    rows instead of every record; any other filter (wdid, appId, facilityId, a date range, an
--    id, a name) is answered by the live query, through the tables' own indexes.
--    Region is stored upper-cased and county lower-cased, as the filters compare them; the
--    other values as published, since the stats count them as published.
-- 2. What the map needs per facility (GET /api/facilities.geojson), on facility_summary.
--
-- Everything here is derived (repo::summary::refresh: the cubes with every full rebuild, in its
-- transaction; the facility columns with the facility's row). Current rows only, as the lists.

create table smarts_violation_stats (
    region            text,
    county            text,
    violation_type    text,
    violation_status  text,
    serious           boolean,
    -- linked_enforcement_action, or an enforcement action names the violation
    with_enforcement  boolean not null,
    n                 bigint  not null
);

create table smarts_enforcement_stats (
    region              text,
    county              text,
    enforcement_type    text,
    enforcement_status  text,
    n                   bigint  not null,
    -- sums of the group's values (0 when all are missing)
    total_assessment    numeric not null,
    received_amount     numeric not null,
    balance_due         numeric not null
);

create table smarts_inspection_stats (
    region              text,
    county              text,
    inspection_purpose  text,
    -- a violation is linked to the inspection
    with_violations     boolean not null,
    n                   bigint  not null
);

create table smarts_facility_stats (
    kind    text not null,
    status  text,
    region  text,
    county  text,
    n       bigint not null
);

-- The map's point and colour per facility: the trusted-or-published coordinates and the worst
-- severity of its open or under-review events.
alter table facility_summary
    add column latitude            double precision,
    add column longitude           double precision,
    add column coordinates_trusted boolean,
    add column max_open_severity   text;

-- Features of an area in id order: the facilities with a point, by latitude band.
create index facility_summary_point_idx on facility_summary (latitude, longitude)
    where latitude is not null;
