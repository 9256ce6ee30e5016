-- `/api/smarts/facilities` reads its page from each record table through that table's own
-- indexes (shared/src/api/smarts.rs, as the violations feed does).
--
-- Its default page sorted the whole `smarts_facility` view (127 ms at full scale): Postgres
-- does not merge the ordered index scans of a UNION ALL's branches. Each branch is now a view
-- of its own, which the page reads in order and merges; `smarts_facility` is their union, with
-- the same columns as before and one more, `record_key`: the record's one key over both tables
-- (construction ids after industrial ones), which orders ties and pages.

create view smarts_industrial_record as
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
       f.row_ord,
       f.id                                                    as record_key
from smarts_industrial_facility f
where f.withdrawn_run_id is null;

create view smarts_construction_record as
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
       c.row_ord,
       c.id + 4611686018427387904                              as record_key
from smarts_construction_facility c
where c.withdrawn_run_id is null;

create or replace view smarts_facility as
select * from smarts_industrial_record
union all
select * from smarts_construction_record;

-- The orders the page reads by (nulls last, ties by the key in the same direction), each
-- over the live records only (`withdrawn_run_id is null`, the branches' own condition).
create index smarts_industrial_facility_noi_key_idx on smarts_industrial_facility
    (noi_processed_date desc nulls last, id desc) where withdrawn_run_id is null;
create index smarts_construction_facility_noi_key_idx on smarts_construction_facility
    (noi_processed_date desc nulls last, (id + 4611686018427387904) desc) where withdrawn_run_id is null;
create index smarts_industrial_facility_name_key_idx on smarts_industrial_facility
    (facility_name, id) where withdrawn_run_id is null;
create index smarts_construction_facility_name_key_idx on smarts_construction_facility
    (site_name, (id + 4611686018427387904)) where withdrawn_run_id is null;
create index smarts_construction_facility_key_idx on smarts_construction_facility
    ((id + 4611686018427387904)) where withdrawn_run_id is null;
