//! Orders: placement (idempotent, priced by the catalog, the saga's first step), one
//! order with its history, the listing, and the cancel request. A customer sees and
//! cancels only their own orders (someone else's is a 404, as if it did not exist);
//! an admin, any.

use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shop_auth::Authenticated;
use shop_http::{FieldError, Json, Problem, Query, Valid, page};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::catalog::LookupError;
use crate::error::{Error, Result};
use crate::idempotency::{self, Claim, Key};
use crate::orders::{self, Filter, NewOrder, Order, OrderSummary};
use crate::requests::{ListParams, PlaceOrder};
use crate::saga::CancelOutcome;
use crate::state::AppState;
use crate::{metrics, pricing};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(cancel_order))
}

/// Set on a placement answered from its idempotency key instead of placed again.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Places an order: the saga starts.
///
/// Validates the lines, prices them with the catalog (one lookup; timeout, retries
/// with backoff and jitter, a circuit breaker per catalog instance), then in one
/// transaction stores the order `PENDING` with the prices it is sold at, claims the
/// `Idempotency-Key` and sends the reserve command to the inventory. Answers 202: the
/// rest of the checkout happens asynchronously; follow `Location`.
///
/// The key is the caller's (1 to 255 visible ASCII characters), remembered 24 hours:
/// sent again with the same body (at once, or after a lost answer) it returns the same
/// order, again 202, with `Idempotent-Replayed: true`; with another body, 422.
#[utoipa::path(
    post, path = "/api/v1/orders", tag = "orders",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Unique per order: 1 to 255 visible ASCII characters (a UUID will do).")),
    request_body = PlaceOrder,
    responses(
        (status = 202, description = "Placed (or replayed): the order, `PENDING` at first.", body = Order,
            headers(("Location" = String, description = "/api/v1/orders/{id}"),
                    ("Idempotent-Replayed" = String, description = "`true` when the key's earlier order is returned"))),
        (status = 400, description = "No, or a malformed, `Idempotency-Key`; or a body that is not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines or address, an unknown or inactive product, mixed currencies, or the key used for another request.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The catalog cannot price the order now; nothing was stored. `Retry-After` says when to try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn place_order(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    key: Key,
    Valid(Json(request)): Valid<Json<PlaceOrder>>,
) -> Result<Response> {
    let user_id = claims.sub;
    let request = request.normalized();
    let fingerprint = request.fingerprint();
    // A retry of a placement that went through is answered without the catalog.
    if let Some(taken) = idempotency::find(&state.db, user_id, &key, &fingerprint).await? {
        return replay(&state, user_id, taken).await;
    }
    let (lines, total) = price(&state, &request).await?;
    let order = NewOrder {
        id: Uuid::now_v7(),
        user_id,
        lines,
        total,
        card_token: request.payment.card_token,
        shipping_address: request.shipping_address,
    };
    let ttl = std::time::Duration::from_secs(state.settings.idempotency.key_ttl_secs);
    let mut tx = state.db.begin().await?;
    match idempotency::claim(&mut tx, user_id, &key, &fingerprint, order.id, ttl).await? {
        Claim::Claimed => {}
        // A concurrent twin committed first: answer with its order.
        taken @ Claim::Taken { .. } => {
            tx.rollback().await?;
            return replay(&state, user_id, taken).await;
        }
    }
    let placed = state.saga.start(&mut tx, order).await?;
    tx.commit().await?;
    metrics::placed();
    tracing::info!(order_id = %placed.id, total = placed.total.amount, currency = %placed.total.currency, "order placed");
    Ok(accepted(placed, false))
}

/// The catalog's prices for the request's lines.
async fn price(
    state: &AppState,
    request: &PlaceOrder,
) -> Result<(Vec<orders::Line>, orders::Money)> {
    let ids: Vec<&str> = request
        .items
        .iter()
        .map(|i| i.product_id.as_str())
        .collect();
    let lookup = state.catalog.lookup(&ids).await.map_err(|e| match e {
        LookupError::Unavailable { retry_after } => Error::CatalogUnavailable {
            retry_after_secs: retry_after.as_secs_f64().ceil().max(1.0) as u64,
        },
        LookupError::Refused(why) => anyhow::anyhow!("the catalog refused a lookup: {why}").into(),
    })?;
    pricing::price(request, &lookup).map_err(|errors| Problem::validation(errors).into())
}

/// The answer for a key already used: its order, or a refusal if the request differs.
async fn replay(state: &AppState, user_id: Uuid, claim: Claim) -> Result<Response> {
    let Claim::Taken {
        order_id,
        same_request,
    } = claim
    else {
        return Err(anyhow::anyhow!("replay of a key that was not taken").into());
    };
    if !same_request {
        return Err(Error::IdempotencyKeyReused);
    }
    let order = load(state, order_id, Some(user_id)).await?;
    Ok(accepted(order, true))
}

fn accepted(order: Order, replayed: bool) -> Response {
    let location = format!("/api/v1/orders/{}", order.id);
    let mut response = (StatusCode::ACCEPTED, Json(order)).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(LOCATION, location);
    }
    if replayed {
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// The order, if the caller may see it (`owner` set for a customer).
async fn load(state: &AppState, id: Uuid, owner: Option<Uuid>) -> Result<Order> {
    let mut conn = state.db.acquire().await?;
    orders::find(&mut conn, id, owner)
        .await?
        .ok_or(Error::OrderNotFound)
}

fn parse_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| {
        let error = FieldError::new("id", "invalid_format", "must be an order id (a UUID)");
        Problem::validation(vec![error]).into()
    })
}

/// One order with its lines, totals, address and history (owner or admin).
#[utoipa::path(
    get, path = "/api/v1/orders/{id}", tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id (a UUID).")),
    responses(
        (status = 200, description = "The order and its history.", body = Order),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a UUID.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_order(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Order>> {
    let id = parse_id(&id)?;
    load(&state, id, claims.owner_scope()).await.map(Json)
}

/// One page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderSummary>,
    /// Pass as `cursor` (with the same filters) for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The caller's orders, newest first, paginated by key; an admin sees everyone's and
/// may filter by `user_id`. Anyone may filter by `status`.
#[utoipa::path(
    get, path = "/api/v1/orders", tag = "orders",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page.", body = OrderPage),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`user_id` of someone else, and not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter or the cursor is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_orders(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Valid(Query(params)): Valid<Query<ListParams>>,
) -> Result<Json<OrderPage>> {
    let user_id = match claims.owner_scope() {
        None => params.user_id,
        Some(me) if params.user_id.is_none_or(|asked| asked == me) => Some(me),
        Some(_) => {
            return Err(Problem::forbidden("Only an admin may list another user's orders.").into());
        }
    };
    // The opaque cursor: the last order's id (ids are a total order, so any filter may
    // continue from it).
    let after: Option<Uuid> = params
        .cursor
        .as_deref()
        .map(page::decode_cursor)
        .transpose()?;
    let filter = Filter {
        user_id,
        status: params.status,
    };
    let limit = params.limit();
    // One more than asked: whether it comes back says whether there is a next page.
    let mut items = orders::list(&state.db, &filter, after, limit + 1).await?;
    let next_cursor = page::cut(&mut items, limit, |last| page::encode_cursor(&last.id));
    Ok(Json(OrderPage { items, next_cursor }))
}

/// Cancels an order before it ships (owner or admin): `CANCELLED` with
/// `CANCELLED_BY_CUSTOMER`; the reservation is released (or the committed stock
/// returned) and the payment voided (or refunded). Cancelling a cancelled order
/// changes nothing and answers 200 again.
#[utoipa::path(
    post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The order's id (a UUID).")),
    responses(
        (status = 200, description = "The order, cancelled.", body = Order),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not the caller's.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It has shipped or been delivered.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a UUID.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_order(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Order>> {
    let id = parse_id(&id)?;
    let owner = claims.owner_scope();
    let mut tx = state.db.begin().await?;
    let order = orders::lock(&mut tx, id)
        .await?
        .filter(|o| owner.is_none_or(|me| o.user_id == me))
        .ok_or(Error::OrderNotFound)?;
    let by = if order.user_id == claims.sub {
        "the customer".to_owned()
    } else {
        format!("admin {}", claims.sub)
    };
    match state.saga.cancel_requested(&mut tx, &order, &by).await? {
        CancelOutcome::Cancelled | CancelOutcome::AlreadyCancelled => tx.commit().await?,
        CancelOutcome::TooLate(status) => return Err(Error::TooLateToCancel(status)),
    }
    load(&state, id, owner).await.map(Json)
}
