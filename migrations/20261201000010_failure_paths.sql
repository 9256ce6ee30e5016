-- Failure paths: lines the stager skips or repairs, results the violation engine excludes,
-- and the date the IGP's NALs took effect.

-- data_quality_issue.action gains:
--   line_skipped   a line that is not a record (a repeated header line) was not stored;
--   line_repaired  a line was stored after a layout repair (trailing delimiter, stray BOM);
--   value_excluded the violation engine did not count a stored result (no valid date, a date
--                  in the future or outside every benchmark's period, a reporting year that
--                  contradicts the date, a negative or impossible value, no usable unit).
alter table data_quality_issue drop constraint data_quality_issue_action_check;
alter table data_quality_issue add constraint data_quality_issue_action_check
    check (action in ('row_quarantined', 'value_nulled', 'value_flagged', 'line_skipped',
                      'line_repaired', 'value_excluded'));

-- The stored row an engine exclusion is about (the file and line say where it came from).
alter table data_quality_issue add column source_table text;
alter table data_quality_issue add column source_row_id bigint;

-- One issue per row and reason, however often the engine recomputes the row.
create unique index data_quality_issue_excluded_uniq
    on data_quality_issue (source_table, source_row_id, reason)
    where action = 'value_excluded';

-- Results of a facility x pollutant the engine did not count, and why; shown with the events of
-- that facility, pollutant and reporting year. Replaced with the pair's samples on every run.
create table violation_exclusion (
    id              bigint generated always as identity primary key,
    facility_id     bigint not null references facility on delete cascade,
    pollutant_key   text not null references pollutant,
    -- From the sample date; the published reporting year when the date is missing.
    reporting_year  integer,
    source          text not null,
    source_table    text not null,
    source_row_id   bigint not null,
    reason          text not null,
    sample_date     date,
    raw_value       numeric,
    raw_unit        text,
    engine_run_id   bigint references violation_engine_run on delete set null,
    unique (source_table, source_row_id)
);

create index violation_exclusion_pair_idx
    on violation_exclusion (facility_id, pollutant_key, reporting_year);

-- The IGP (2014-0057-DWQ) took effect on 2015-07-01; its NAL rows were loaded without a date.
update benchmark set effective_date = '2015-07-01'
 where source = 'IGP 2014-0057-DWQ' and effective_date is null;
