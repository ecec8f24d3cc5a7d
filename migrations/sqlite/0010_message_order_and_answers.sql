-- Messages about one person and one site carry their order (`seq`, sent
-- to the site, which answers an older lock or set-role than the last it
-- applied as superseded): a newer message always has a greater seq, a
-- retried or re-targeted one keeps its own. A message is 'cancelled' when
-- its site is deleted or leaves the connector profile before it got
-- through. An attempt whose answer was not the plugin's answer to that
-- message saying it was done is 'unexpected' (tried again, and shown as
-- needing attention).
--
-- SQLite cannot change a CHECK constraint in place: both tables are
-- written anew. Existing messages are numbered in the order they were
-- written.
CREATE TABLE site_messages_new (
    id              TEXT PRIMARY KEY,
    person_id       TEXT NOT NULL,
    email           TEXT NOT NULL,
    site_id         TEXT NOT NULL,
    -- The audience: the site's URL (kept current while the message waits).
    site_url        TEXT NOT NULL,
    client          TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('end-sessions', 'lock', 'set-role')),
    -- set-role: the role the person now holds there ('' for none).
    role            TEXT NOT NULL DEFAULT '',
    -- What called for it (person_disabled, grant_revoked, ...).
    cause           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                      ('pending', 'done', 'failed', 'superseded', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_attempt_at INTEGER,
    -- The last attempt's outcome in words (why it failed), if it failed;
    -- why it was cancelled.
    last_error      TEXT,
    -- The site's answer once delivered: the plugin's fields only (JSON).
    result          TEXT,
    done_at         INTEGER,
    -- Written as one more than the greatest so far (SQLite has one writer).
    seq             INTEGER NOT NULL
);
INSERT INTO site_messages_new (id, person_id, email, site_id, site_url, client, action, role,
    cause, created_at, created_by, state, attempts, next_attempt_at, lease_owner, lease_until,
    last_attempt_at, last_error, result, done_at, seq)
SELECT id, person_id, email, site_id, site_url, client, action, role,
    cause, created_at, created_by, state, attempts, next_attempt_at, lease_owner, lease_until,
    last_attempt_at, last_error, result, done_at,
    ROW_NUMBER() OVER (ORDER BY created_at, rowid)
FROM site_messages;
DROP TABLE site_messages;
ALTER TABLE site_messages_new RENAME TO site_messages;
CREATE INDEX site_messages_due_idx ON site_messages (state, next_attempt_at);
CREATE INDEX site_messages_person_idx ON site_messages (person_id, created_at);
CREATE INDEX site_messages_site_idx ON site_messages (site_id, state);
CREATE UNIQUE INDEX site_messages_seq_key ON site_messages (seq);

CREATE TABLE site_message_attempts_new (
    message_id  TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT NOT NULL CHECK (outcome IN
                  ('sending', 'delivered', 'retry', 'unexpected', 'refused', 'given-up',
                   'interrupted', 'cancelled')),
    -- Why it did not get through, or the site's answer (the plugin's
    -- fields only, JSON) when it did.
    detail      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, attempt)
);
INSERT INTO site_message_attempts_new
SELECT message_id, attempt, started_at, finished_at, outcome, detail FROM site_message_attempts;
DROP TABLE site_message_attempts;
ALTER TABLE site_message_attempts_new RENAME TO site_message_attempts;
