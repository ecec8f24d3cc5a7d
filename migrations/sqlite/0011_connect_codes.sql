-- Connection codes: a site connects itself by redeeming one. Single use,
-- bound to one site URL, expiring; only the SHA-256 of the secret part is
-- kept. `via`: 'code' (console, command line) or 'approval' (an admin
-- approved the site's request in the browser).
CREATE TABLE connect_codes (
    id          TEXT PRIMARY KEY,
    code_hash   TEXT NOT NULL UNIQUE,
    site_url    TEXT NOT NULL,
    -- The client a new site is filed under ('' : the site's host).
    client      TEXT NOT NULL DEFAULT '',
    via         TEXT NOT NULL CHECK (via IN ('code', 'approval')),
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    -- The site it connected.
    site_id     TEXT
);
CREATE INDEX connect_codes_url_idx ON connect_codes (site_url, created_at);
