-- Tokens for the admin API (/api/v1): made by an admin (or the server's
-- operator), shown once, kept only as the SHA-256 of the secret. A token
-- acts with its scopes only while its maker is still an enabled admin.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL UNIQUE,
    -- The secret's first characters, to tell tokens apart in a list.
    prefix       TEXT NOT NULL,
    -- Space-separated, such as "sites:read sites:write".
    scopes       TEXT NOT NULL,
    -- The maker's e-mail, or "command line".
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- A write's answer kept under the caller's Idempotency-Key for a day, so
-- that a retried request is answered the same and does not act twice.
-- status 0: the first request is still being carried out.
CREATE TABLE api_idempotency (
    token_id     TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (token_id, idem_key)
);
CREATE INDEX api_idempotency_created_idx ON api_idempotency (created_at);
