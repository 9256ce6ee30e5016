-- Dashboards without a date range, computed once per sync (and refreshed for the scopes a
-- review action touches): the statewide one, one per county, one per regional board. A request
-- for one of these scopes reads one row instead of aggregating every event and SMARTS record;
-- requests with a date range (or county and region together) are computed live. The same rows
-- hold GET /api/violations/stats per source for those scopes ('stats:<all|esmr|smarts>|<scope>').
create table dashboard_snapshot (
    scope       text primary key,   -- '' (statewide), 'county:<lowercase name>', 'region:<CODE>',
                                    -- or 'stats:<source>|' + one of those
    body        jsonb not null,     -- the `data` of the endpoint for the scope
    computed_at timestamptz not null default now()
);
