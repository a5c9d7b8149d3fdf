-- A confirmed order cancelled before shipping gives its committed stock back
-- (`inventory.reservation.return`): a movement of kind 'return' and a reservation
-- that ends 'returned'.
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_kind;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_kind
    CHECK (kind IN ('receive', 'adjust', 'reserve', 'commit', 'release', 'expire', 'return'));
ALTER TABLE reservations DROP CONSTRAINT reservations_status;
ALTER TABLE reservations ADD CONSTRAINT reservations_status
    CHECK (status IN ('reserved', 'rejected', 'committed', 'released', 'expired', 'returned'));
