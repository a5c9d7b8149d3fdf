-- The event backbone's tables (shop-events), as every producing or consuming service
-- has them in its own schema.

-- Events written in the same transaction as the change they describe; the relay
-- publishes them to JetStream and sets sent_at. Sent rows are purged after an hour.
CREATE TABLE outbox (
    id          uuid PRIMARY KEY,          -- the event id (UUIDv7), also Nats-Msg-Id
    subject     text NOT NULL,
    payload     bytea NOT NULL,            -- the envelope, exactly as published
    headers     jsonb NOT NULL DEFAULT '{}',  -- W3C trace context of the producer
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;

-- One row per event a consumer has applied, written in the same transaction as the
-- effect: a redelivered or duplicated event finds its row and changes nothing.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
