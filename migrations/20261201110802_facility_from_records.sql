-- A canonical facility shows what its linked source records say (shared/src/facility.rs).
--
-- Until now a facility row held only the values of the record it was built from, and never its
-- primary SIC (null on every facility though most industrial records carry one); a canonical
-- facility whose own record lacks coordinates, a county or a zip stayed without them even when
-- a record linked to it has them (not on the map, not in its county's dashboard).
--
-- Now a facility row carries two things:
--   own_*      the values of the record it was built from (what seeding writes, what the linker
--              compares records by: the match features are computed from own_name/own_address);
--   the served fields (name, address, city, county, region, zip, latitude, longitude,
--              coordinates_trusted, primary_sic): derived from the records linked to the
--              facility, each from its own record when that has it, else from the first linked
--              record that does (SMARTS industrial, construction, eSMR; the oldest first);
--              coordinates as a pair. A merged facility shows its own record.
-- The served fields are derived by `facility::derive`, run by seeding, by the linker after it
-- moves links and by `migrate` right after this migration (so no deploy serves stale fields).

alter table facility
    add column own_name        text,
    add column own_address     text,
    add column own_city        text,
    add column own_county      text,
    add column own_region      text,
    add column own_zip         text,
    add column own_latitude    double precision,
    add column own_longitude   double precision,
    add column own_primary_sic text;

-- The served fields held exactly the own record's values (seeding wrote and refreshed them).
update facility
   set own_name = name, own_address = address, own_city = city, own_county = county,
       own_region = region, own_zip = zip, own_latitude = latitude, own_longitude = longitude;

alter table facility alter column own_name set not null;
alter table facility add constraint facility_own_coordinates_pair
    check ((own_latitude is null) = (own_longitude is null));

-- The SMARTS view gains the industrial record's primary SIC (construction records have none)
-- and `row_ord`: of duplicate rows of one key (APP_ID, WDID), the first in the file (row_ord 0)
-- is the record a facility is built from.
create or replace view smarts_facility as
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
       f.changed_run_id,
       f.primary_sic,
       f.row_ord
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
       c.changed_run_id,
       null::text                                              as primary_sic,
       c.row_ord
from smarts_construction_facility c
where c.withdrawn_run_id is null;

-- The SIC of the industrial record a facility was built from (the first of duplicate rows).
update facility f
   set own_primary_sic = s.primary_sic
  from (select distinct on (source_key) source_key, nullif(btrim(primary_sic), '') as primary_sic
          from smarts_facility where kind = 'industrial'
         order by source_key, row_ord, source_id) s
 where f.origin_source = 'smarts_industrial' and f.origin_key = s.source_key;
