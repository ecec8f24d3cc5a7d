-- People who signed in, identified by their provider's (issuer, subject).
CREATE TABLE people (
    id              TEXT PRIMARY KEY,
    issuer          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    email           TEXT NOT NULL,
    name            TEXT,
    given_name      TEXT,
    family_name     TEXT,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_sign_in_at INTEGER,
    CONSTRAINT people_issuer_subject_key UNIQUE (issuer, subject)
);
CREATE INDEX people_email_idx ON people (email);

-- Server-side sessions (tower-sessions records as JSON). person_id is
-- copied out of the record so that all of a person's sessions can be ended at once.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    person_id  TEXT REFERENCES people (id) ON DELETE CASCADE,
    record     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_person_idx ON sessions (person_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
