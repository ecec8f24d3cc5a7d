-- Every attempt to deliver a message to a site, kept as evidence: when it
-- started and ended and what came of it. 'sending' until its outcome is
-- written; 'interrupted' when the instance making it stopped first (killed,
-- or the database went away) and the message was taken up again.
CREATE TABLE site_message_attempts (
    message_id  TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    outcome     TEXT NOT NULL CHECK (outcome IN
                  ('sending', 'delivered', 'retry', 'refused', 'given-up', 'interrupted')),
    -- Why it did not get through, or the site's answer (JSON) when it did.
    detail      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, attempt)
);
