-- Alert subscriptions, the alert outbox, API keys and the audit log.

-- A subscription selects violation events by area and thresholds and says where to deliver.
-- Area modes and the fields each one requires:
--   polygon:      polygon (GeoJSON Polygon/MultiPolygon geometry object, WGS84)
--   buffer:       center_lat, center_lon, radius_m (> 0)
--   jurisdiction: at least one county or region
create table subscription (
    id               bigint generated always as identity primary key,
    name             text not null,
    owner            text,
    mode             text not null check (mode in ('polygon', 'buffer', 'jurisdiction')),
    polygon          jsonb,
    center_lat       double precision,
    center_lon       double precision,
    radius_m         double precision,
    counties         text[],
    regions          text[],           -- SMARTS region codes ('4', '5F')
    min_ratio        numeric,          -- only events with max_ratio >= this
    repeat_threshold integer,          -- only facilities with at least this many events
    min_severity     text check (min_severity in ('low', 'moderate', 'high', 'critical')),
    -- Free-form for now (e.g. an IGP ERA level filter); the alert engine defines its values.
    level            text,
    delivery         text not null check (delivery in ('email', 'webhook')),
    email            text,
    webhook_url      text,
    -- Kept in clear text because it is needed to sign webhook payloads (HMAC); never returned by
    -- the API.
    webhook_secret   text,
    active           boolean not null default true,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),

    constraint subscription_polygon_fields check (
        mode <> 'polygon' or (polygon is not null and jsonb_typeof(polygon) = 'object')),
    constraint subscription_buffer_fields check (
        mode <> 'buffer' or (center_lat between -90 and 90
                             and center_lon between -180 and 180
                             and radius_m > 0)),
    constraint subscription_jurisdiction_fields check (
        mode <> 'jurisdiction' or (coalesce(cardinality(counties), 0) + coalesce(cardinality(regions), 0) > 0)),
    constraint subscription_delivery_fields check (
        (delivery = 'email' and email is not null)
        or (delivery = 'webhook' and webhook_url is not null)),
    constraint subscription_thresholds check (
        (min_ratio is null or min_ratio > 0) and (repeat_threshold is null or repeat_threshold > 0))
);

create trigger subscription_set_updated_at before update on subscription
    for each row execute function set_updated_at();

create index subscription_owner_idx on subscription (owner);
create index subscription_active_mode_idx on subscription (mode) where active;

-- Outbox: one alert per subscription, event and trigger. The unique key makes the alert engine
-- idempotent (re-running it cannot double-send), while an event that later escalates still
-- produces a second, 'escalated' alert.
create table alert (
    id              bigint generated always as identity primary key,
    subscription_id bigint not null references subscription on delete cascade,
    event_id        bigint not null references violation_event on delete cascade,
    trigger         text not null check (trigger in ('new', 'escalated')),
    status          text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts        integer not null default 0,
    last_error      text,
    payload         jsonb,             -- what was (or will be) sent, frozen at creation
    created_at      timestamptz not null default now(),
    sent_at         timestamptz,
    unique (subscription_id, event_id, trigger)
);

create index alert_pending_idx on alert (created_at) where status = 'pending';
create index alert_event_id_idx on alert (event_id);

-- API keys: only a hash of the key is stored (the key itself is shown once at creation).
create table api_key (
    id         bigint generated always as identity primary key,
    name       text not null,
    key_hash   text not null unique,   -- e.g. sha256 hex of the presented key
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

-- Who did what: manual link decisions, violation status changes, subscription edits, key
-- creation/revocation, manual sync runs.
create table audit_log (
    id        bigint generated always as identity primary key,
    actor     text not null,          -- api_key name, user, or 'system'
    action    text not null,          -- 'facility_link.decide', 'violation_event.status', ...
    entity    text,                   -- table name
    entity_id text,                   -- text: some entities have text keys (SMARTS ids, source_key)
    details   jsonb,
    at        timestamptz not null default now()
);

create index audit_log_entity_idx on audit_log (entity, entity_id);
create index audit_log_at_idx on audit_log (at);
