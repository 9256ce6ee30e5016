-- What the publisher's catalogue (CKAN) said of a file when it was staged: its download URL,
-- `last_modified`, `size` and `hash`, as one text (shared/src/sync/manifest.rs, `Resolved`).
-- A file whose catalogue entry is the same as that of its last good import is skipped before
-- any byte is downloaded (shared/src/sync/stage.rs); null where the source is not catalogued
-- (a `file://` or plain `https://` source) or the catalogue says none of these.
alter table sync_file add column catalogue_version text;
