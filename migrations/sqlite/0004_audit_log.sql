-- The audit trail: append-only, hash-chained (see src/domain/audit.rs).
-- seq is the record's place in the chain, handed out under the head's
-- row lock, so appends from several instances never fork the chain.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    actor      TEXT NOT NULL,
    subject    TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    site_url   TEXT NOT NULL,
    client     TEXT NOT NULL,
    role       TEXT NOT NULL,
    jti        TEXT,
    reason     TEXT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    CONSTRAINT audit_log_jti_key UNIQUE (jti)
);
-- Filters walk these newest first (keyset on seq, no OFFSET).
CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);
CREATE INDEX audit_log_site_idx ON audit_log (site_id, seq);
CREATE INDEX audit_log_client_idx ON audit_log (client, seq);
CREATE INDEX audit_log_kind_idx ON audit_log (kind, seq);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- The chain head: the last seq handed out and its hash. Every append
-- updates it first, which takes the lock that serialises appends.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Signed chain heads (JWS, RS256, the dashboard's signing key). kind
-- 'prune' marks the checkpoint the remaining records start after.
CREATE TABLE audit_checkpoints (
    seq  INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    at   INTEGER NOT NULL,
    kid  TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('periodic', 'prune')),
    jws  TEXT NOT NULL
);

-- Launches are audit records now (kind launch / launch_refused).
DROP TABLE launches;
