-- A full violation-engine pass fanned out reads each source row once: map parts convert the
-- rows of one id range of a source table into measurements (unit-converted, classified, with
-- the reason a row cannot be compared), each written to the partition of the part its facility
-- belongs to (facility_id % parts); each part then reads its own partition instead of finding
-- its facilities' rows all over the source tables (which read most of every table's pages once
-- per part). Partitioned by engine run (one partition per pass, itself partitioned by part,
-- created by the pass and dropped when it ends); the part partitions are UNLOGGED: scratch that
-- a crash may lose (the pass then fails and the next one computes again).
create table engine_measure (
    engine_run_id  bigint not null,
    part           integer not null,
    source         text,
    source_table   text,
    source_row_id  bigint,
    row_key        bigint,
    row_ord        integer,
    row_hash       bytea,
    facility_id    bigint,
    pollutant_key  text,
    fraction       text,
    sample_date    date,
    reporting_year integer,
    eff_date       date,
    sample_key     text,
    qualifier      text,
    qclass         text,
    value          numeric,
    limit_value    numeric,
    raw_value      numeric,
    raw_unit       text,
    unit           text,
    exclusion      text
) partition by list (engine_run_id);
