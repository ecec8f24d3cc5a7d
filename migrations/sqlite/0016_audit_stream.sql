-- Where the audit chain is streamed: syslog receivers and HTTPS webhooks.
-- Each has its own cursor (the last record it acknowledged), so a receiver
-- that was down gets everything when it is back, in chain order; a lease
-- lets one instance at a time send to it.
CREATE TABLE audit_destinations (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    target          TEXT NOT NULL,
    -- A webhook's HMAC secret, sealed under the master key ('' for syslog).
    secret_sealed   TEXT NOT NULL DEFAULT '',
    -- PEM of the CA a syslog+tls receiver's certificate chains to ('': the
    -- public web's roots).
    ca_pem          TEXT NOT NULL DEFAULT '',
    last_seq        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    last_attempt_at INTEGER,
    last_success_at INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER
);
