//! Messages of the payments context (stream `PAYMENTS`, owned by the payment service):
//! the commands the checkout saga sends it and the events it answers with.
//!
//! ```text
//! authorize --> authorized (payment_id, amount held) | declined (reason)
//! capture   --> captured   (the held amount is taken)
//! void      --> voided     (hold dropped, or a capture refunded; before any
//!                           authorization, a later authorize is refused: declined)
//! ```
//!
//! Every command is idempotent per `order_id`: one order has at most one payment, the
//! same command twice has one effect and gets the same answer again. A payment holds
//! the card *token*, never a card number.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;
use crate::contracts::catalog::Money;

/// Command: hold `amount` on the card behind `card_token` for this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizePayment {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
    pub card_token: String,
}

impl Event for AuthorizePayment {
    const TYPE: &'static str = "payments.payment.authorize";
    const VERSION: u32 = 1;
}

/// Command: take the held amount (the order is confirmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePayment {
    pub order_id: Uuid,
}

impl Event for CapturePayment {
    const TYPE: &'static str = "payments.payment.capture";
    const VERSION: u32 = 1;
}

/// Command: compensation. Drop the hold, or refund a capture; sent before any
/// authorization (a timeout), it makes a late `authorize` decline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoidPayment {
    pub order_id: Uuid,
    pub reason: String,
}

impl Event for VoidPayment {
    const TYPE: &'static str = "payments.payment.void";
    const VERSION: u32 = 1;
}

/// The amount is held on the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: Money,
}

impl Event for PaymentAuthorized {
    const TYPE: &'static str = "payments.payment.authorized";
    const VERSION: u32 = 1;
}

/// Nothing is held; `reason` is `card_declined`, `insufficient_funds`,
/// `processor_timeout` or `voided` (a void came first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub reason: String,
}

impl Event for PaymentDeclined {
    const TYPE: &'static str = "payments.payment.declined";
    const VERSION: u32 = 1;
}

/// The held amount was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: Money,
}

impl Event for PaymentCaptured {
    const TYPE: &'static str = "payments.payment.captured";
    const VERSION: u32 = 1;
}

/// The hold was dropped (`refunded: false`) or a capture refunded (`true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentVoided {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub refunded: bool,
    pub reason: String,
}

impl Event for PaymentVoided {
    const TYPE: &'static str = "payments.payment.voided";
    const VERSION: u32 = 1;
}
