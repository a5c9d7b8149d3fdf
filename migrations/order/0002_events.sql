-- The event backbone's tables (shop-events), in their current shape. A new service
-- copies this file as one of its own migrations (services never share a migration:
-- each owns its schema). The user service reached the same shape in two steps
-- (migrations/user/0002_outbox.sql and 0004_outbox_parking.sql).

-- Events written in the same transaction as the change they describe; the relay
-- publishes them to JetStream and sets sent_at. Sent rows are purged after an hour.
-- A row the broker refuses for good (too large, no stream for its subject, a header
-- it cannot carry) is parked with the reason instead of blocking the rows behind it.
CREATE TABLE outbox (
    id          uuid PRIMARY KEY,          -- the event id (UUIDv7), also Nats-Msg-Id
    subject     text NOT NULL,
    payload     bytea NOT NULL,            -- the envelope, exactly as published
    headers     jsonb NOT NULL DEFAULT '{}',  -- W3C trace context of the producer
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at     timestamptz,
    parked_at   timestamptz,
    park_reason text
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE sent_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked_idx ON outbox (id) WHERE sent_at IS NULL AND parked_at IS NOT NULL;

-- One row per event a consumer has applied, written in the same transaction as the
-- effect: a redelivered or duplicated event finds its row and changes nothing. Rows
-- older than the streams' retention can no longer meet a redelivery and are purged.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_age_idx ON processed_events (processed_at);
