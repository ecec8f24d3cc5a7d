-- Messages about one person and one site carry their order (`seq`, sent
-- to the site, which answers an older lock or set-role than the last it
-- applied as superseded): a newer message always has a greater seq, a
-- retried or re-targeted one keeps its own. A message is 'cancelled' when
-- its site is deleted or leaves the connector profile before it got
-- through. An attempt whose answer was not the plugin's answer to that
-- message saying it was done is 'unexpected' (tried again, and shown as
-- needing attention). Existing messages are numbered in the order they
-- were written.
ALTER TABLE site_messages DROP CONSTRAINT site_messages_state_check;
ALTER TABLE site_messages ADD CONSTRAINT site_messages_state_check CHECK (state IN
    ('pending', 'done', 'failed', 'superseded', 'cancelled'));
ALTER TABLE site_message_attempts DROP CONSTRAINT site_message_attempts_outcome_check;
ALTER TABLE site_message_attempts ADD CONSTRAINT site_message_attempts_outcome_check
    CHECK (outcome IN ('sending', 'delivered', 'retry', 'unexpected', 'refused', 'given-up',
                       'interrupted', 'cancelled'));

-- Taken from a sequence when the message is written: a message written
-- after another committed always has a greater seq.
CREATE SEQUENCE site_messages_seq;
ALTER TABLE site_messages ADD COLUMN seq BIGINT;
UPDATE site_messages SET seq = o.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY created_at, id) AS n FROM site_messages) o
WHERE o.id = site_messages.id;
SELECT setval('site_messages_seq', (SELECT COALESCE(MAX(seq), 0) + 1 FROM site_messages), false);
ALTER TABLE site_messages ALTER COLUMN seq SET DEFAULT nextval('site_messages_seq');
ALTER TABLE site_messages ALTER COLUMN seq SET NOT NULL;
ALTER SEQUENCE site_messages_seq OWNED BY site_messages.seq;
CREATE UNIQUE INDEX site_messages_seq_key ON site_messages (seq);
CREATE INDEX site_messages_site_idx ON site_messages (site_id, state);
