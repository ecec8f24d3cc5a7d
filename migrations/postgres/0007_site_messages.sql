-- Messages to connector sites (back-channel logout tokens): written in the
-- transaction of the change that calls for them (the outbox), sent by a
-- worker in every instance, each claimed by one instance at a time (its
-- lease), retried with backoff until delivered or given up.
CREATE TABLE site_messages (
    id              TEXT PRIMARY KEY,
    person_id       TEXT NOT NULL,
    email           TEXT NOT NULL,
    site_id         TEXT NOT NULL,
    -- The audience: the site's URL when the message was written.
    site_url        TEXT NOT NULL,
    client          TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('end-sessions', 'lock', 'set-role')),
    -- set-role: the role the person now holds there ('' for none).
    role            TEXT NOT NULL DEFAULT '',
    -- What called for it (person_disabled, grant_revoked, ...).
    cause           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'superseded')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_attempt_at BIGINT,
    -- The last attempt's outcome in words (why it failed), if it failed.
    last_error      TEXT,
    -- The site's answer (JSON) once delivered.
    result          TEXT,
    done_at         BIGINT
);
CREATE INDEX site_messages_due_idx ON site_messages (state, next_attempt_at);
CREATE INDEX site_messages_person_idx ON site_messages (person_id, created_at);

-- How far a periodic job (noticing grants that ended, say) has got, so
-- that each stretch of time is handled once whichever instance runs it.
CREATE TABLE job_marks (
    job          TEXT PRIMARY KEY,
    done_through BIGINT NOT NULL
);
