-- Just-in-time access. A grant (a person's, or a team's) may make its
-- holders eligible for a higher role on its site: `eligible_role` for up
-- to `eligible_minutes` at a time, asked for and approved (an elevation).
ALTER TABLE grants ADD COLUMN eligible_role TEXT;
ALTER TABLE grants ADD COLUMN eligible_minutes INTEGER;
ALTER TABLE team_grants ADD COLUMN eligible_role TEXT;
ALTER TABLE team_grants ADD COLUMN eligible_minutes INTEGER;

-- Break-glass: people eligible on this site may approve their own request
-- for up to this many minutes (NULL: never).
ALTER TABLE sites ADD COLUMN self_approval_minutes INTEGER;

-- Who, besides admins, may decide requests: for one site, or for the sites
-- a team's grants cover.
CREATE TABLE approvers (
    email      TEXT NOT NULL,
    site_id    TEXT REFERENCES sites (id) ON DELETE CASCADE,
    team_id    TEXT REFERENCES teams (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    CONSTRAINT approvers_target_check CHECK ((site_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX approvers_site_key ON approvers (email, site_id) WHERE site_id IS NOT NULL;
CREATE UNIQUE INDEX approvers_team_key ON approvers (email, team_id) WHERE team_id IS NOT NULL;

-- Requests and elevations: pending, then active (approved) until ends_at,
-- then ended; or denied, or cancelled while pending. The end is this row's
-- due time, not a timer: it ends on time across restarts.
CREATE TABLE elevations (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    site_id       TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    -- The eligible grant it rests on (grants.id or team_grants.id).
    grant_id      TEXT NOT NULL,
    role          TEXT NOT NULL,
    minutes       INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'active', 'denied', 'cancelled', 'ended')),
    requested_at  INTEGER NOT NULL,
    -- The requester, or the operator who filed it on their behalf.
    requested_by  TEXT NOT NULL,
    decided_at    INTEGER,
    decided_by    TEXT,
    comment       TEXT NOT NULL DEFAULT '',
    -- Break-glass: approved by its own requester.
    self_approved INTEGER NOT NULL DEFAULT 0,
    starts_at     INTEGER,
    ends_at       INTEGER,
    ended_at      INTEGER,
    end_reason    TEXT NOT NULL DEFAULT '',
    ended_by      TEXT NOT NULL DEFAULT ''
);
-- One open request or elevation per person and site.
CREATE UNIQUE INDEX elevations_open_key ON elevations (email, site_id) WHERE state IN ('pending', 'active');
CREATE INDEX elevations_due_idx ON elevations (ends_at) WHERE state = 'active';
CREATE INDEX elevations_state_idx ON elevations (state, requested_at);
CREATE INDEX elevations_site_idx ON elevations (site_id, requested_at);
