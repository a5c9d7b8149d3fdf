//! API v2 of payments, the current one. What changed from v1, each a breaking change
//! (so a new version, not an edit of v1; `docs/payments-v1-to-v2.md` is the guide):
//!
//! 1. ids are `pay_` + 32 hex digits (the same UUID, written as a typed id);
//! 2. `status: "AUTHORIZED"` became `state: "authorized"` (renamed, lower case);
//! 3. `amount: 1299, currency: "EUR"` became `amount: {value: 1299, currency: "EUR"}`;
//! 4. a listing is an object, `{items: [...]}`, not a bare array (room for paging).
//!
//! Added, not breaking: `authorized_at`, `captured_at`, `voided_at`.
//!
//! What the gateway's aggregation relies on here is pinned by a consumer-driven
//! contract test (`services/payment/contracts/consumers.json`,
//! `tests/api/contract.rs`).

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shop_auth::Authenticated;
use shop_http::{Json, Problem, Query};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ByOrder;
use crate::error::{Error, Result};
use crate::id::PaymentId;
use crate::payments::{Payment, Status};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_payment))
        .routes(routes!(list_payments))
}

/// A payment as v2 shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PaymentV2, example = json!({
    "id": "pay_01936f0e7c4a7d3e9a516f1b2c3d4e5f",
    "order_id": "01936f0e-7c4a-7d3e-9a51-000000000010",
    "state": "captured",
    "amount": {"value": 1299, "currency": "EUR"},
    "decline_reason": null,
    "created_at": "2026-11-21T12:00:00Z",
    "updated_at": "2026-11-21T12:00:02Z",
    "authorized_at": "2026-11-21T12:00:01Z",
    "captured_at": "2026-11-21T12:00:02Z",
    "voided_at": null
}))]
pub struct PaymentV2 {
    /// `pay_` + 32 hex digits.
    pub id: String,
    pub order_id: Uuid,
    pub state: PaymentState,
    pub amount: Amount,
    /// Why nothing is held: `card_declined`, `insufficient_funds`,
    /// `processor_timeout`, or `voided` (the order was cancelled first).
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub authorized_at: Option<DateTime<Utc>>,
    pub captured_at: Option<DateTime<Utc>>,
    /// When the hold was dropped or the capture refunded.
    pub voided_at: Option<DateTime<Utc>>,
}

/// Money: integer minor units and an ISO 4217 currency. Never a float.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AmountV2)]
pub struct Amount {
    /// Minor units (1299 = 12.99).
    pub value: i64,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// The processor is being asked.
    Pending,
    /// The amount is held on the card.
    Authorized,
    /// Nothing is held: see `decline_reason`.
    Declined,
    /// The held amount was taken.
    Captured,
    /// Nothing is held any more (or never was: the order was cancelled first).
    Voided,
    /// A captured amount was given back.
    Refunded,
}

impl From<Status> for PaymentState {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => PaymentState::Pending,
            Status::Authorized => PaymentState::Authorized,
            Status::Declined => PaymentState::Declined,
            Status::Captured => PaymentState::Captured,
            Status::Voided => PaymentState::Voided,
            Status::Refunded => PaymentState::Refunded,
        }
    }
}

impl From<Payment> for PaymentV2 {
    fn from(p: Payment) -> Self {
        let money = p.money();
        Self {
            id: p.id().v2(),
            order_id: p.order_id,
            state: p.status.into(),
            amount: Amount {
                value: money.amount,
                currency: money.currency,
            },
            decline_reason: p.decline_reason,
            created_at: p.created_at,
            updated_at: p.updated_at,
            authorized_at: p.authorized_at,
            captured_at: p.captured_at,
            voided_at: p.voided_at,
        }
    }
}

/// A listing.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PaymentListV2)]
pub struct PaymentList {
    /// Oldest first.
    pub items: Vec<PaymentV2>,
}

/// One payment by its `pay_...` id.
#[utoipa::path(
    get, path = "/api/v2/payments/{id}", tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "`pay_` + 32 hex digits.", example = "pay_01936f0e7c4a7d3e9a516f1b2c3d4e5f")),
    responses(
        (status = 200, description = "The payment.", body = PaymentV2),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment, or someone else's.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a `pay_...` id (a UUID is v1's).", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_payment(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<PaymentV2>> {
    let id = PaymentId::parse_v2(&id).ok_or_else(|| {
        Error::invalid(
            "id",
            "invalid_format",
            "is not a payment id of API v2 (`pay_` + 32 hex digits); UUIDs are API v1's",
        )
    })?;
    let payment = super::visible(&state, &claims, id).await?;
    Ok(Json(payment.into()))
}

/// The payments of an order.
#[utoipa::path(
    get, path = "/api/v2/payments", tag = "payments",
    security(("bearer" = [])),
    params(ByOrder),
    responses(
        (status = 200, description = "The order's payments the caller may see, oldest first (at most one today: one payment per order).", body = PaymentList),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`order_id` is missing or not a UUID.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_payments(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Query(params): Query<ByOrder>,
) -> Result<Json<PaymentList>> {
    let payments = super::of_order(&state, &claims, params.order_id).await?;
    Ok(Json(PaymentList {
        items: payments.into_iter().map(Into::into).collect(),
    }))
}
