//! The payment service's answers to the authorize command.

use shop_events::contracts::payments::{PaymentAuthorized, PaymentDeclined};

use super::step;

pub const AUTHORIZED: &str = "order-payment-authorized";
pub const DECLINED: &str = "order-payment-declined";

step!(
    /// `payments.payment.authorized`: `AWAITING_PAYMENT -> CONFIRMED`, or a late
    /// authorization of a cancelled order voided again.
    Authorized,
    PaymentAuthorized,
    payment_authorized
);

step!(
    /// `payments.payment.declined`: `AWAITING_PAYMENT -> CANCELLED (PAYMENT_DECLINED)`.
    Declined,
    PaymentDeclined,
    payment_declined
);
