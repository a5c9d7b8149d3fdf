-- The inventory's model of an item: a SKU with a count. Not a copy of the catalog's
-- product; the record is created when the catalog announces the product
-- (catalog.product.created) and changed only here.
--
-- "Never oversell" is backed by the database itself: whatever the code does, no
-- committed row can have negative stock or more reserved than on hand.
CREATE TABLE stock (
    sku                  text PRIMARY KEY,
    on_hand              bigint NOT NULL DEFAULT 0,
    reserved             bigint NOT NULL DEFAULT 0,
    available            bigint GENERATED ALWAYS AS (on_hand - reserved) STORED,
    low_stock_threshold  bigint NOT NULL DEFAULT 5,
    -- Whether available is below the threshold: inventory.stock.low is published when
    -- this turns true (once per crossing) and re-armed when it turns false again.
    low                  boolean NOT NULL DEFAULT true,
    -- Bumped by every change, carried by inventory.stock.updated (readers drop stale ones).
    revision             bigint NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_on_hand_not_negative CHECK (on_hand >= 0),
    CONSTRAINT stock_reserved_not_negative CHECK (reserved >= 0),
    CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand),
    CONSTRAINT stock_threshold_not_negative CHECK (low_stock_threshold >= 0)
);

-- The ledger: every change of a stock row, written in the same transaction.
CREATE TABLE stock_movements (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku             text NOT NULL REFERENCES stock (sku),
    delta_on_hand   bigint NOT NULL,
    delta_reserved  bigint NOT NULL,
    kind            text NOT NULL
        CONSTRAINT stock_movements_kind CHECK (kind IN ('receive', 'adjust', 'reserve', 'commit', 'release', 'expire')),
    reason          text NOT NULL,
    order_id        uuid,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_movements_sku_idx ON stock_movements (sku, id);

-- One row per order id the inventory was asked about: the idempotency key of the
-- reservation commands, and the answer they got.
CREATE TABLE reservations (
    order_id    uuid PRIMARY KEY,
    status      text NOT NULL
        CONSTRAINT reservations_status CHECK (status IN ('reserved', 'rejected', 'committed', 'released', 'expired')),
    -- Set while (and after) the stock was held; a rejection holds nothing.
    expires_at  timestamptz,
    -- Why it was released (the command's reason).
    reason      text,
    -- A rejection's short lines, as published.
    shortages   jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reservations_reserved_expires CHECK (status <> 'reserved' OR expires_at IS NOT NULL)
);
-- What the expiry task scans.
CREATE INDEX reservations_due_idx ON reservations (expires_at) WHERE status = 'reserved';

CREATE TABLE reservation_lines (
    order_id  uuid NOT NULL REFERENCES reservations (order_id),
    sku       text NOT NULL,             -- not a foreign key: a rejected line may name an unknown SKU
    quantity  integer NOT NULL CONSTRAINT reservation_lines_quantity CHECK (quantity > 0),
    PRIMARY KEY (order_id, sku)
);
