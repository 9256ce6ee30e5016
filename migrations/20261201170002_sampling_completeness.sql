-- Monitoring completeness (docs/SAMPLING.md): the IGP asks an industrial discharger to sample
-- two qualifying storm events (QSEs) in each half of the reporting year (July-December,
-- January-June). Per canonical facility and half-year, the distinct days on which its published
-- industrial monitoring rows sampled a QSE.
--
-- Judged only: half-years that have ended and lie wholly inside the facility's IGP coverage:
-- its current records of permit type 'Industrial' that are Active (covered to today) or were
-- Terminated or Expired with a Notice of Termination date (covered to that date), from their
-- earliest NOI (their first QSE sample when none has one; never before the IGP took effect on
-- 2015-07-01) to the latest end. Other statuses (NOI Required, No Action Required, NEC
-- Required, NONA, Undetermined, ...) carry no sampling obligation the data can show.
-- What the published data cannot show (a half-year without a QSE, a No Exposure Certification,
-- a Sampling Frequency Reduction, a Compliance Group's schedule) is the reader's to check.
-- `facility_ids`: the canonical facilities to judge, or null for all.
create function igp_sampling_halves(facility_ids bigint[])
returns table (facility_id bigint, half_start date, half_end date, sampled_events integer,
               event_dates date[])
language sql stable as $$
  with records as (
    select l.facility_id, r.wdid, coalesce(r.app_id, '') as app_id, r.noi_processed_date,
           case when lower(r.status) = 'active' then current_date
                else r.not_effective_date end as covered_to
      from facility_link l
      join smarts_industrial_facility r
        on r.wdid = split_part(l.source_key, '|', 2)
       and coalesce(r.app_id, '') = split_part(l.source_key, '|', 1)
     where l.status = 'linked' and l.source = 'smarts_industrial'
       and r.withdrawn_run_id is null and lower(trim(r.permit_type)) = 'industrial'
       and (lower(r.status) = 'active'
            or (lower(r.status) in ('terminated', 'expired') and r.not_effective_date is not null))
       and (facility_ids is null or l.facility_id = any(facility_ids))),
  qse as (
    select distinct k.facility_id, m.sample_date
      from (select distinct facility_id, wdid, app_id from records) k
      join smarts_industrial_monitoring m
        on m.wdid = k.wdid and coalesce(m.app_id, '') = k.app_id
     where m.withdrawn_run_id is null and m.sample_date is not null
       and lower(trim(m.event_type)) = 'qualifying storm event'),
  coverage as (
    select r.facility_id,
           -- greatest ignores a null: nothing to start from judges nothing.
           case when min(r.noi_processed_date) is null
                     and not exists (select 1 from qse q where q.facility_id = r.facility_id)
                then null
                else greatest(coalesce(min(r.noi_processed_date),
                                       (select min(q.sample_date) from qse q
                                         where q.facility_id = r.facility_id)),
                              date '2015-07-01') end as start,
           least(max(r.covered_to), current_date) as stop
      from records r group by 1),
  halves as (
    select c.facility_id, h::date as half_start,
           (h + interval '6 months' - interval '1 day')::date as half_end
      from coverage c
      cross join lateral generate_series(make_date(extract(year from c.start)::integer, 1, 1),
                                         c.stop, interval '6 months') h
     where h::date >= c.start
       and (h + interval '6 months' - interval '1 day')::date <= c.stop
       and (h + interval '6 months')::date <= current_date)
  select h.facility_id, h.half_start, h.half_end, count(q.sample_date)::integer,
         coalesce(array_agg(q.sample_date order by q.sample_date)
                  filter (where q.sample_date is not null), '{}')
    from halves h
    left join qse q on q.facility_id = h.facility_id
                   and q.sample_date between h.half_start and h.half_end
   group by 1, 2, 3
$$;

-- The directory's filter: the half-years judged short of two QSEs, and how many were judged.
alter table facility_summary
    add column sampling_halves    integer not null default 0,
    add column sampling_shortfalls date[] not null default '{}';
