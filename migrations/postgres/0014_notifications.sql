-- Notifications of just-in-time access requests and decisions, sent to the
-- agency's webhook (SSO_NOTIFY_URL) through an outbox like the site
-- messages': written in the transaction of the step they tell of, sent
-- and retried by the workers, at least once, each with its id as the
-- idempotency key.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    event           TEXT NOT NULL,
    -- The facts told (JSON); the body is made from them and the settings
    -- at each attempt, and signed then.
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    -- skipped: no webhook was set when it fell due.
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'skipped')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT NOT NULL DEFAULT '',
    done_at         BIGINT
);
CREATE INDEX notifications_due_idx ON notifications (state, next_attempt_at);
