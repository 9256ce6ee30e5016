-- Keys the API signs with, one per purpose, generated here: each deployment's database has its
-- own, so no key sits in the environment, the template or a log, and a cursor made by one
-- deployment (or one test database) is refused by every other.
--   cursor: HMAC-SHA256 key of list cursors (shared/src/http.rs `CursorKey`). Replacing it
--           only makes outstanding cursors fail with a 400 (clients start again from page 1).
create table signing_key (
    purpose    text primary key,
    key        bytea not null check (length(key) >= 16),
    created_at timestamptz not null default now()
);

-- 32 bytes from two random (version 4) UUIDs: 244 random bits from the server's strong
-- random source, without an extension.
insert into signing_key (purpose, key)
values ('cursor', sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')));
