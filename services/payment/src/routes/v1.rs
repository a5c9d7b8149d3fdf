//! API v1 of payments, **deprecated**: UUID ids, an upper-case `status`, the amount
//! as two flat fields, a listing as a bare array. Every v1 answer (errors included)
//! carries
//!
//! ```text
//! Deprecation: @1796083200                        (RFC 9745: since 2026-12-01T00:00:00Z)
//! Sunset: Tue, 01 Jun 2027 00:00:00 GMT            (RFC 8594: it may stop answering then)
//! Link: </docs/payments-v1-to-v2.md>; rel="deprecation"; type="text/markdown"
//! ```
//!
//! and a payment read by id also links its v2 self (`rel="successor-version"`).

#![allow(deprecated)] // the handlers are deprecated on purpose: the OpenAPI document says so

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
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

/// When v1 was deprecated: 2026-12-01T00:00:00Z.
pub const DEPRECATED_AT: i64 = 1_796_083_200;
/// When v1 may stop answering: 2027-06-01T00:00:00Z.
pub const SUNSET_AT: i64 = 1_811_808_000;
/// The link to the migration guide, `docs/payments-v1-to-v2.md` in the repository.
pub const DEPRECATION_LINK: &str =
    "</docs/payments-v1-to-v2.md>; rel=\"deprecation\"; type=\"text/markdown\"";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_payment))
        .routes(routes!(list_payments))
        .route_layer(axum::middleware::map_response(deprecated))
}

/// A payment as v1 shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PaymentV1, example = json!({
    "id": "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e5f",
    "order_id": "01936f0e-7c4a-7d3e-9a51-000000000010",
    "status": "AUTHORIZED",
    "amount": 1299,
    "currency": "EUR",
    "decline_reason": null,
    "created_at": "2026-11-21T12:00:00Z",
    "updated_at": "2026-11-21T12:00:01Z"
}))]
pub struct PaymentV1 {
    /// A UUID.
    pub id: Uuid,
    pub order_id: Uuid,
    pub status: StatusV1,
    /// Minor units (1299 = 12.99).
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// Why nothing is held: `card_declined`, `insufficient_funds`,
    /// `processor_timeout`, or `voided` (the order was cancelled first).
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a payment stands, v1's spelling.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusV1 {
    Pending,
    Authorized,
    Declined,
    Captured,
    Voided,
    Refunded,
}

impl From<Status> for StatusV1 {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => StatusV1::Pending,
            Status::Authorized => StatusV1::Authorized,
            Status::Declined => StatusV1::Declined,
            Status::Captured => StatusV1::Captured,
            Status::Voided => StatusV1::Voided,
            Status::Refunded => StatusV1::Refunded,
        }
    }
}

impl From<Payment> for PaymentV1 {
    fn from(p: Payment) -> Self {
        let money = p.money();
        Self {
            id: p.id,
            order_id: p.order_id,
            status: p.status.into(),
            amount: money.amount,
            currency: money.currency,
            decline_reason: p.decline_reason,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// One payment by its UUID (deprecated: use `GET /api/v2/payments/{id}`).
#[utoipa::path(
    get, path = "/api/v1/payments/{id}", tag = "payments v1 (deprecated)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment's UUID.", example = "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e5f")),
    responses(
        (status = 200, description = "The payment, with the deprecation headers and a `Link` to its v2 self.", body = PaymentV1,
            headers(
                ("Deprecation" = String, description = "RFC 9745: `@1796083200`, v1 is deprecated since 2026-12-01"),
                ("Sunset" = String, description = "RFC 8594: `Tue, 01 Jun 2027 00:00:00 GMT`"),
                ("Link" = String, description = "`</docs/payments-v1-to-v2.md>; rel=\"deprecation\"` and `</api/v2/payments/pay_...>; rel=\"successor-version\"`"),
            )),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment, or someone else's.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a UUID (a `pay_...` id is v2's).", body = Problem, content_type = "application/problem+json"),
    )
)]
#[deprecated = "API v1 of payments is deprecated; see docs/payments-v1-to-v2.md"]
async fn get_payment(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<(HeaderMap, Json<PaymentV1>)> {
    let id = PaymentId::parse_v1(&id).ok_or_else(|| {
        Error::invalid(
            "id",
            "invalid_format",
            "is not a payment id of API v1 (a UUID); `pay_...` ids are API v2's",
        )
    })?;
    let payment = super::visible(&state, &claims, id).await?;
    let mut headers = HeaderMap::new();
    let successor = format!("</api/v2/payments/{}>; rel=\"successor-version\"", id.v2());
    if let Ok(link) = HeaderValue::from_str(&successor) {
        headers.insert(header::LINK, link);
    }
    Ok((headers, Json(payment.into())))
}

/// The payments of an order, as a bare array (deprecated: use
/// `GET /api/v2/payments?order_id=`).
#[utoipa::path(
    get, path = "/api/v1/payments", tag = "payments v1 (deprecated)",
    security(("bearer" = [])),
    params(ByOrder),
    responses(
        (status = 200, description = "The order's payments the caller may see, oldest first (at most one today: one payment per order); with the deprecation headers.", body = [PaymentV1]),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`order_id` is missing or not a UUID.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[deprecated = "API v1 of payments is deprecated; see docs/payments-v1-to-v2.md"]
async fn list_payments(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Query(params): Query<ByOrder>,
) -> Result<Json<Vec<PaymentV1>>> {
    let payments = super::of_order(&state, &claims, params.order_id).await?;
    Ok(Json(payments.into_iter().map(Into::into).collect()))
}

/// Marks every v1 answer deprecated (RFC 9745), with its sunset (RFC 8594) and the
/// migration guide.
async fn deprecated(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("deprecation", HeaderValue::from_static(DEPRECATION));
    if let Ok(sunset) = HeaderValue::from_str(&sunset()) {
        headers.insert("sunset", sunset);
    }
    headers.append(header::LINK, HeaderValue::from_static(DEPRECATION_LINK));
    response
}

/// RFC 9745's structured-field date: `@` and seconds since the epoch.
const DEPRECATION: &str = "@1796083200";

/// RFC 8594's HTTP-date (IMF-fixdate).
fn sunset() -> String {
    DateTime::from_timestamp(SUNSET_AT, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_carry_the_documented_dates() {
        assert_eq!(DEPRECATION, format!("@{DEPRECATED_AT}"));
        assert_eq!(
            DateTime::from_timestamp(DEPRECATED_AT, 0)
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(sunset(), "Tue, 01 Jun 2027 00:00:00 GMT");
        const { assert!(DEPRECATED_AT < SUNSET_AT) };
        assert!(DEPRECATION_LINK.starts_with("</docs/payments-v1-to-v2.md>"));
    }
}
