-- A yearly eSMR file withdraws only the rows sampled in its year (shared/src/import/registry.rs,
-- `ScopeRule::Year`): read through this index, each year's withdrawal reads that year, where the
-- `to_char(sampling_date, 'YYYY')` filter read the whole table once per year file (21 times a
-- full refresh of the real record).
create index esmr_sample_sampling_date_idx on esmr_sample (sampling_date);
