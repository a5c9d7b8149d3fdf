-- The order service's schema (`orders`): orders with the lines they were sold with,
-- the history of every saga transition, and the idempotency keys of placements.
-- Applied by the service at start-up; never edited once released: change it with a
-- new numbered file.

-- One row per order: where its checkout saga stands. The saga's state is this row;
-- every step locks it FOR UPDATE, checks `status`, moves it on and writes its history
-- row and its outbox messages in the same transaction.
CREATE TABLE orders (
    id                uuid PRIMARY KEY,      -- UUIDv7: id order is creation order
    user_id           uuid NOT NULL,
    status            text NOT NULL
        CONSTRAINT orders_status CHECK (status IN
            ('PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    cancel_reason     text
        CONSTRAINT orders_cancel_reason CHECK (cancel_reason IN
            ('OUT_OF_STOCK', 'PAYMENT_DECLINED', 'TIMEOUT', 'CANCELLED_BY_CUSTOMER')),
    -- The sum of the lines, in integer minor units of one ISO 4217 currency.
    total_amount      bigint NOT NULL CONSTRAINT orders_total_positive CHECK (total_amount > 0),
    currency          text NOT NULL CONSTRAINT orders_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    -- A processor's token (`tok_...`), never a card number; sent with the authorize
    -- command once the stock is reserved.
    card_token        text NOT NULL,
    shipping_address  jsonb NOT NULL,
    -- When the state the order waits in (PENDING, AWAITING_PAYMENT) gives up: the
    -- deadline job cancels it with TIMEOUT. Unset in every other state.
    deadline_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_reason_iff_cancelled CHECK ((status = 'CANCELLED') = (cancel_reason IS NOT NULL)),
    CONSTRAINT orders_deadline_iff_waiting
        CHECK ((status IN ('PENDING', 'AWAITING_PAYMENT')) = (deadline_at IS NOT NULL))
);
-- "My orders", newest first (keyset on the id).
CREATE INDEX orders_user_idx ON orders (user_id, id DESC);
-- An admin's filter by status.
CREATE INDEX orders_status_idx ON orders (status, id DESC);
-- What the deadline job scans.
CREATE INDEX orders_deadline_idx ON orders (deadline_at) WHERE deadline_at IS NOT NULL;

-- The lines as sold: the catalog's price, SKU and name at placement, kept with the
-- order so a later price change does not touch it.
CREATE TABLE order_lines (
    order_id     uuid NOT NULL REFERENCES orders (id),
    position     integer NOT NULL,           -- the line's place in the request, from 0
    product_id   text NOT NULL,
    sku          text NOT NULL,
    name         text NOT NULL,
    quantity     integer NOT NULL CONSTRAINT order_lines_quantity CHECK (quantity BETWEEN 1 AND 100),
    unit_amount  bigint NOT NULL CONSTRAINT order_lines_unit_positive CHECK (unit_amount > 0),
    currency     text NOT NULL,
    PRIMARY KEY (order_id, position),
    CONSTRAINT order_lines_product_once UNIQUE (order_id, product_id)
);

-- Every transition of an order, with its time and cause; also the events recorded
-- without a transition (a shipment created, a late answer compensated again), where
-- from_status = to_status.
CREATE TABLE order_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     uuid NOT NULL REFERENCES orders (id),
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_status  text,                       -- NULL for the placement
    to_status    text NOT NULL,
    -- The event type that caused it (`inventory.stock.reserved`), or `placement`,
    -- `deadline`, `cancel-request`.
    cause        text NOT NULL,
    event_id     uuid,                       -- the causing event's id, if an event
    detail       text
);
CREATE INDEX order_history_order_idx ON order_history (order_id, id);

-- Idempotent placement: one row per (user, Idempotency-Key), written in the
-- transaction that creates the order. The same key with the same request (its
-- SHA-256) returns that order; with another request it is refused. A key expires
-- (expires_at) and is purged by a job; an expired key may be used again.
CREATE TABLE idempotency_keys (
    user_id       uuid NOT NULL,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    order_id      uuid NOT NULL REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);
