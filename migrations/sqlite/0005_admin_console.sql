-- People an admin invited before their first sign-in: they are listed, can
-- be given grants and teams, and become admins on first sign-in if asked.
CREATE TABLE invitations (
    email      TEXT PRIMARY KEY,
    make_admin INTEGER NOT NULL DEFAULT 0,
    invited_at INTEGER NOT NULL,
    invited_by TEXT NOT NULL
);

-- Teams: a named set of people (by e-mail, so a new hire can be added
-- before they first sign in), granted roles on sites or on every site of a
-- client. Team grants are read beside direct grants, never copied.
CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    CONSTRAINT teams_name_key UNIQUE (name)
);

CREATE TABLE team_members (
    team_id  TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    email    TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (team_id, email)
);
CREATE INDEX team_members_email_idx ON team_members (email);

-- Exactly one target: one site, or every site of one client (now and later).
CREATE TABLE team_grants (
    id         TEXT PRIMARY KEY,
    team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    site_id    TEXT REFERENCES sites (id) ON DELETE CASCADE,
    client     TEXT,
    role       TEXT NOT NULL,
    expires_at INTEGER,
    reason     TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    CONSTRAINT team_grants_target_check CHECK ((site_id IS NULL) <> (client IS NULL))
);
CREATE UNIQUE INDEX team_grants_site_key ON team_grants (team_id, site_id) WHERE site_id IS NOT NULL;
CREATE UNIQUE INDEX team_grants_client_key ON team_grants (team_id, client) WHERE client IS NOT NULL;
CREATE INDEX team_grants_site_idx ON team_grants (site_id);
CREATE INDEX team_grants_client_idx ON team_grants (client);

-- The admin lists sort and search by these.
CREATE INDEX sites_name_idx ON sites (name);
CREATE INDEX sites_list_idx ON sites (client, name, url);

-- A person may hold one lasting and one time-limited grant on a site (four
-- hours of administrator on top of a lasting editor): the unique key becomes
-- two partial ones. SQLite cannot drop a table constraint, so the table is rebuilt.
CREATE TABLE grants_new (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    site_id    TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    expires_at INTEGER,
    reason     TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
INSERT INTO grants_new SELECT id, email, site_id, role, expires_at, reason, created_at, created_by FROM grants;
DROP TABLE grants;
ALTER TABLE grants_new RENAME TO grants;
CREATE INDEX grants_site_idx ON grants (site_id);
CREATE UNIQUE INDEX grants_lasting_key ON grants (email, site_id) WHERE expires_at IS NULL;
CREATE UNIQUE INDEX grants_limited_key ON grants (email, site_id) WHERE expires_at IS NOT NULL;
-- Home pages, launches and the people list look grants up by person.
CREATE INDEX grants_email_idx ON grants (email, site_id);
