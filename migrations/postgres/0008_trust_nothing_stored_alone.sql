-- Security, round two.

-- Sessions are stored under a hash of their id from now on, never under the
-- id itself (the cookie's value): rows stored the old way are dropped, and
-- everyone signs in again once.
DELETE FROM sessions;

-- Each signing key row carries a MAC over its columns, under a key derived
-- from the master key: a row written without the master key is not
-- published. Rows from before this version are bound once, at the first
-- start that finds them sound (kid = thumbprint, private half matches).
ALTER TABLE signing_keys ADD COLUMN mac TEXT;
ALTER TABLE key_ring ADD COLUMN rows_bound_at BIGINT;

-- A sign-in whose address an enabled person already holds under another
-- subject (an account recreated at the provider, or an address given to
-- someone new) is held here until an admin confirms it is the same person.
CREATE TABLE held_identities (
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    email         TEXT NOT NULL,
    name          TEXT,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    attempts      BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX held_identities_email_idx ON held_identities (email);
