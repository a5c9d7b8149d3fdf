-- The payment service's model: one payment per order, the order id being the
-- idempotency key of every command about it (authorize, capture, void). A payment
-- holds the card *token* the customer chose, never a card number.
--
--   PENDING --processor approves--> AUTHORIZED --capture--> CAPTURED --void--> REFUNDED
--      |   '-processor declines / times out--> DECLINED        |
--      '-- void arrived during the call --> VOIDED <--void-----'  (from AUTHORIZED)
--   (no payment) --void--> VOIDED tombstone: a late authorize is declined `voided`
--
-- The processor is called *outside* any transaction: the authorize command records
-- the attempt (PENDING), the authorizer claims it with a lease, calls the processor
-- and applies the answer under FOR UPDATE, only if the row is still PENDING and the
-- attempt is still its own (services/payment/src/authorizer.rs).
CREATE TABLE payments (
    id                  uuid PRIMARY KEY,          -- UUIDv7; API v2 shows it as pay_<32 hex>
    order_id            uuid NOT NULL UNIQUE,      -- one payment per order
    -- Who pays, how much and with what: null only on the tombstone of a void that
    -- came before any authorize (filled in when the late authorize arrives).
    user_id             uuid,
    amount              bigint,                    -- minor units
    currency            text,
    card_token          text,                      -- tok_...; never a card number
    status              text NOT NULL
        CONSTRAINT payments_status CHECK (status IN ('PENDING', 'AUTHORIZED', 'DECLINED', 'CAPTURED', 'VOIDED', 'REFUNDED')),
    -- Why nothing is held: card_declined, insufficient_funds, processor_timeout, or
    -- voided (a void came before the authorize).
    decline_reason      text,
    -- The processor's reference of the hold, once approved.
    authorization_code  text,
    -- A void arrived while the processor was being asked: whatever it answers, the
    -- payment ends VOIDED (an approval is released first).
    void_requested      boolean NOT NULL DEFAULT false,
    void_reason         text,
    -- Processor calls claimed for this payment, and until when the current one owns
    -- the call: past the lease, an abandoned attempt (a crashed replica) is claimed
    -- again and the processor asked again under the same idempotency key (the id).
    attempts            integer NOT NULL DEFAULT 0,
    lease_until         timestamptz,
    -- The W3C trace context of the authorize command, so the authorizer's span (and
    -- the answer it publishes) continues the checkout's trace.
    trace_context       jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    authorized_at       timestamptz,
    captured_at         timestamptz,
    voided_at           timestamptz,
    CONSTRAINT payments_amount_positive CHECK (amount > 0),
    CONSTRAINT payments_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    -- Only a tombstone lacks the payer and the amount.
    CONSTRAINT payments_known_payer CHECK (
        status = 'VOIDED' OR (user_id IS NOT NULL AND amount IS NOT NULL AND currency IS NOT NULL)),
    CONSTRAINT payments_declined_has_reason CHECK (status <> 'DECLINED' OR decline_reason IS NOT NULL),
    CONSTRAINT payments_held_has_code CHECK (
        status NOT IN ('AUTHORIZED', 'CAPTURED', 'REFUNDED') OR authorization_code IS NOT NULL)
);

-- What the authorizer claims: new attempts and abandoned ones.
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE status = 'PENDING';
-- An owner's payments (the API lists an order's payments for its owner).
CREATE INDEX payments_user_idx ON payments (user_id);
