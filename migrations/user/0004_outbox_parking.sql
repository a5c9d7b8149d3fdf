-- A row the broker refuses for good (payload over the server's limit, a subject no
-- stream captures, a header NATS cannot carry) is parked with its reason, so it no
-- longer blocks the rows behind it. See docs/runbook.md, "parked outbox rows".
ALTER TABLE outbox ADD COLUMN parked_at timestamptz, ADD COLUMN park_reason text;
DROP INDEX outbox_unsent_idx;
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE sent_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked_idx ON outbox (id) WHERE sent_at IS NULL AND parked_at IS NOT NULL;

-- processed_events is purged by age (older than the streams' retention).
CREATE INDEX processed_events_age_idx ON processed_events (processed_at);
