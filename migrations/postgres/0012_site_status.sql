-- What each connector site said of itself the last time it was asked (a
-- signed `status` site message), and when it is asked next. One row per
-- site, made when the site is first checked; gone with the site.
CREATE TABLE site_status (
    site_id         TEXT PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    -- When it is asked next (the schedule, spread out; "Check now" makes it now).
    next_check_at   BIGINT NOT NULL,
    -- 'status' or 'refresh-keys' (an admin asked the site to refetch the key set).
    next_action     TEXT NOT NULL DEFAULT 'status' CHECK (next_action IN ('status', 'refresh-keys')),
    lease_owner     TEXT,
    lease_until     BIGINT,
    checked_at      BIGINT,
    -- The last time it answered with its report (the last contact).
    answered_at     BIGINT,
    -- Why the last check got no report ('' when it did).
    problem         TEXT NOT NULL DEFAULT '',
    plugin_version  TEXT NOT NULL DEFAULT '',
    wp_version      TEXT NOT NULL DEFAULT '',
    php_version     TEXT NOT NULL DEFAULT '',
    multisite       BIGINT NOT NULL DEFAULT 0,
    -- The site's connection record names this dashboard.
    connected       BIGINT NOT NULL DEFAULT 0,
    -- The key ids it holds, comma-separated.
    keys            TEXT NOT NULL DEFAULT '',
    keys_fetched_at BIGINT,
    -- Refusals by code (JSON object), since refusals_since.
    refusals        TEXT NOT NULL DEFAULT '{}',
    refusals_since  BIGINT
);
CREATE INDEX site_status_due_idx ON site_status (next_check_at);
