-- The directory's item, stored with its summary row at each rebuild (repo::summary::refresh):
-- a page reads one column through the sort's index instead of building ~30 fields and joining
-- the facility per row. Only the ERA Level label (it changes on July 1 without a rebuild) and
-- the rebuild time are added when the page is read.
alter table facility_summary add column item jsonb;
