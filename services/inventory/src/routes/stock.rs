//! A SKU's availability (public), and the admin's view: receipts, adjustments, the
//! ledger.

use axum::extract::{Path, State};
use serde::Deserialize;
use shop_auth::Admin;
use shop_http::{FieldError, Json, Problem, Query, Valid};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, Result};
use crate::requests::{Adjust, Receive};
use crate::sku::Sku;
use crate::state::AppState;
use crate::stock::{self, Availability, Change, Kind, MovementPage, Stock};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(availability))
        .routes(routes!(receive))
        .routes(routes!(adjust))
        .routes(routes!(movements))
}

/// Whether a SKU can be bought, and how many.
#[utoipa::path(
    get, path = "/api/v1/inventory/{sku}", tag = "inventory",
    params(("sku" = String, Path, description = "The SKU.", example = "TEE-BLK-M")),
    responses(
        (status = 200, description = "Its availability.", body = Availability),
        (status = 404, description = "No such SKU.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The SKU is malformed.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn availability(
    State(state): State<AppState>,
    Path(sku): Path<String>,
) -> Result<Json<Availability>> {
    let sku = Sku::from_path(&sku)?;
    let stock = stock::find(&state.db, &sku).await?;
    stock
        .map(|s| Json(s.into()))
        .ok_or(Error::UnknownSku(sku.to_string()))
}

/// Goods arrived: more on hand (admin only).
#[utoipa::path(
    post, path = "/api/v1/inventory/{sku}/receive", tag = "inventory",
    security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU.", example = "TEE-BLK-M")),
    request_body = Receive,
    responses(
        (status = 200, description = "The stock after the receipt.", body = Stock),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such SKU.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The SKU or the body is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn receive(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sku): Path<String>,
    Valid(Json(body)): Valid<Json<Receive>>,
) -> Result<Json<Stock>> {
    let sku = Sku::from_path(&sku)?;
    let change = Change {
        kind: Kind::Receive,
        on_hand: body.quantity,
        reserved: 0,
        reason: body.reason.trim(),
        order_id: None,
    };
    change_stock(&state, &sku, change).await.map(Json)
}

/// A correction after a count, up or down; never below what is reserved (admin only).
#[utoipa::path(
    post, path = "/api/v1/inventory/{sku}/adjust", tag = "inventory",
    security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU.", example = "TEE-BLK-M")),
    request_body = Adjust,
    responses(
        (status = 200, description = "The stock after the adjustment.", body = Stock),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such SKU.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave less on hand than zero or than is reserved.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The SKU or the body is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn adjust(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sku): Path<String>,
    Valid(Json(body)): Valid<Json<Adjust>>,
) -> Result<Json<Stock>> {
    let sku = Sku::from_path(&sku)?;
    let change = Change {
        kind: Kind::Adjust,
        on_hand: body.delta,
        reserved: 0,
        reason: body.reason.trim(),
        order_id: None,
    };
    change_stock(&state, &sku, change).await.map(Json)
}

/// One transaction: lock the row, change it (ledger and events included), commit.
async fn change_stock(state: &AppState, sku: &Sku, change: Change<'_>) -> Result<Stock> {
    let mut tx = state.db.begin().await?;
    let locked = stock::lock(&mut tx, sku.as_str())
        .await?
        .ok_or_else(|| Error::UnknownSku(sku.to_string()))?;
    let stock = stock::apply(&mut tx, &state.outbox, &locked, change).await?;
    tx.commit().await?;
    Ok(stock)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct MovementParams {
    /// Page size, 1 to 100 (default 20).
    #[param(example = 20)]
    limit: Option<i64>,
    /// The `next_after` of the previous page.
    #[param(example = 41)]
    after: Option<i64>,
}

/// A SKU's ledger, oldest first, paginated by key (admin only).
#[utoipa::path(
    get, path = "/api/v1/inventory/{sku}/movements", tag = "inventory",
    security(("bearer" = [])),
    params(("sku" = String, Path, description = "The SKU.", example = "TEE-BLK-M"), MovementParams),
    responses(
        (status = 200, description = "One page of movements.", body = MovementPage),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such SKU.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The SKU or a parameter is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn movements(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sku): Path<String>,
    Query(params): Query<MovementParams>,
) -> Result<Json<MovementPage>> {
    let sku = Sku::from_path(&sku)?;
    let limit = params.limit.unwrap_or(20);
    let Some(limit) = u16::try_from(limit).ok().filter(|l| (1..=100).contains(l)) else {
        let error = FieldError::new("limit", "out_of_range", "must be between 1 and 100");
        return Err(Problem::validation(vec![error]).into());
    };
    if stock::find(&state.db, &sku).await?.is_none() {
        return Err(Error::UnknownSku(sku.to_string()));
    }
    Ok(Json(
        stock::movements(&state.db, &sku, params.after, limit).await?,
    ))
}
