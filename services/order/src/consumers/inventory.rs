//! The inventory's answers to the reservation commands.

use shop_events::contracts::inventory::{StockExpired, StockRejected, StockReserved};

use super::step;

pub const RESERVED: &str = "order-stock-reserved";
pub const REJECTED: &str = "order-stock-rejected";
pub const EXPIRED: &str = "order-stock-expired";

step!(
    /// `inventory.stock.reserved`: `PENDING -> AWAITING_PAYMENT`, or a late
    /// reservation of a cancelled order released again.
    Reserved,
    StockReserved,
    stock_reserved
);

step!(
    /// `inventory.stock.rejected`: `PENDING -> CANCELLED (OUT_OF_STOCK)`.
    Rejected,
    StockRejected,
    stock_rejected
);

step!(
    /// `inventory.stock.expired`: the reservation lapsed: `CANCELLED (TIMEOUT)`.
    Expired,
    StockExpired,
    stock_expired
);
