-- How many facilities the directory lists statewide, per county, per region and per county and
-- region, rebuilt with the summaries (repo::summary::refresh): a directory page filtered by
-- area only is counted by one key lookup instead of a scan of its summary rows.
-- `area` is '' (statewide), 'county:<lower(county)>', 'region:<upper(region)>' or both joined
-- by '|' (county first); an area without a facility has no row (its count is 0).
create table facility_area_count (
    area       text primary key,
    facilities bigint not null
);
insert into facility_area_count (area, facilities)
select concat_ws('|', 'county:' || c, 'region:' || r), count(*)
  from (select lower(county) as c, upper(region) as r from facility_summary) s
 group by grouping sets ((), (c), (r), (c, r))
having (grouping(c) = 1 or c is not null) and (grouping(r) = 1 or r is not null);
