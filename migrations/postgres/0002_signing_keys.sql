-- The signing key ring. Public halves are kept for good (old audit
-- checkpoints are verified with them); the private half is sealed under the
-- master key and destroyed (NULL) once a key is retired, removed or revoked.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    state          TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired', 'revoked', 'removed')),
    bits           BIGINT NOT NULL,
    n              TEXT NOT NULL,
    e              TEXT NOT NULL,
    private_key    TEXT,
    created_at     BIGINT NOT NULL,
    activates_at   BIGINT,
    activated_at   BIGINT,
    retired_at     BIGINT,
    remove_at      BIGINT,
    removed_at     BIGINT,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
-- Exactly one signer and at most one key waiting, whatever the instances do.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';

-- One row: bumped by every change to the ring. Instances poll it to know
-- when to reload, and every change locks it first, which serialises
-- rotations across instances.
CREATE TABLE key_ring (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO key_ring (id, version) VALUES (1, 0);
