-- The shipping service's model: one shipment per confirmed order, with the tracking
-- number the customer follows and where the parcel stands. Not a copy of the order;
-- the row is made from orders.order.confirmed (the address and the user are copied
-- from it, as sold) and changed only here.
--
-- CREATED -> DISPATCHED -> DELIVERED, or CREATED -> CANCELLED (the order was
-- cancelled before the parcel left). The constraints keep each status's timestamp
-- set exactly when the shipment has reached it, whatever the code does.
CREATE TABLE shipments (
    id               uuid PRIMARY KEY,                  -- UUIDv7
    -- One shipment per order: the idempotency key of orders.order.confirmed.
    order_id         uuid NOT NULL CONSTRAINT shipments_order_id_key UNIQUE,
    -- The customer who placed the order: the owner who may read it.
    user_id          uuid NOT NULL,
    tracking_number  text NOT NULL CONSTRAINT shipments_tracking_number_key UNIQUE
        CONSTRAINT shipments_tracking_number_format CHECK (tracking_number ~ '^SHP[0-9A-Z]{10}$'),
    status           text NOT NULL
        CONSTRAINT shipments_status CHECK (status IN ('CREATED', 'DISPATCHED', 'DELIVERED', 'CANCELLED')),
    -- Where the parcel goes, as the order was confirmed with it.
    address          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    dispatched_at    timestamptz,
    delivered_at     timestamptz,
    cancelled_at     timestamptz,
    -- The order's cancellation reason (OUT_OF_STOCK, CANCELLED_BY_CUSTOMER ...).
    cancel_reason    text,
    CONSTRAINT shipments_dispatched_at CHECK ((status IN ('DISPATCHED', 'DELIVERED')) = (dispatched_at IS NOT NULL)),
    CONSTRAINT shipments_delivered_at CHECK ((status = 'DELIVERED') = (delivered_at IS NOT NULL)),
    CONSTRAINT shipments_cancelled_at CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL AND cancel_reason IS NOT NULL))
);
-- The listings, newest first, paginated by (created_at, id): a customer's own, and
-- everyone's for an admin.
CREATE INDEX shipments_user_idx ON shipments (user_id, created_at DESC, id DESC);
CREATE INDEX shipments_created_idx ON shipments (created_at DESC, id DESC);
-- What the simulated carrier scans for shipments due to move on.
CREATE INDEX shipments_awaiting_dispatch_idx ON shipments (created_at) WHERE status = 'CREATED';
CREATE INDEX shipments_awaiting_delivery_idx ON shipments (dispatched_at) WHERE status = 'DISPATCHED';

-- Every status a shipment took, when, and what moved it ('order confirmed',
-- 'admin <user id>', 'carrier', 'order cancelled (<reason>)'), written in the
-- transaction of the change.
CREATE TABLE shipment_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id  uuid NOT NULL REFERENCES shipments (id),
    status       text NOT NULL
        CONSTRAINT shipment_history_status CHECK (status IN ('CREATED', 'DISPATCHED', 'DELIVERED', 'CANCELLED')),
    at           timestamptz NOT NULL DEFAULT now(),
    cause        text NOT NULL
);
CREATE INDEX shipment_history_shipment_idx ON shipment_history (shipment_id, id);

-- Tombstones: orders cancelled while they had no shipment. The confirmation and the
-- cancellation of one order travel through two durable consumers, which keep no order
-- between them, so a cancellation can be handled first; the confirmation that follows
-- finds its tombstone and ships nothing. Purged once no redelivery can come (older
-- than the streams' retention plus a day).
CREATE TABLE cancelled_orders (
    order_id      uuid PRIMARY KEY,
    reason        text NOT NULL,
    cancelled_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cancelled_orders_age_idx ON cancelled_orders (cancelled_at);
