//! Shipments: their owners' and admins' reads, and the admin's steps (dispatch,
//! deliver), each step in one transaction with its event.
//!
//! Who sees what: a customer sees the shipments of their own orders, an admin every
//! shipment. Someone else's shipment is answered as if it did not exist: `404` by id,
//! and an empty list for `?order_id=` of someone else's order (a filter that matches
//! nothing the caller may see), so neither says whether the order exists.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use shop_auth::{Admin, Authenticated, Claims};
use shop_http::{FieldError, Json, Problem, Query, Valid, Validate, page};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::cursor;
use crate::error::{Error, Result};
use crate::lifecycle::{self, Step};
use crate::shipments::{self, Scope, Shipment, ShipmentId};
use crate::state::AppState;

/// The default and the largest page.
pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shipments))
        .routes(routes!(get_shipment))
        .routes(routes!(dispatch))
        .routes(routes!(deliver))
}

/// `GET /api/v1/shipments`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only the shipment of this order (a UUID). Someone else's order: an empty list.
    #[param(value_type = Option<Uuid>)]
    pub order_id: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (opaque).
    pub cursor: Option<String>,
}

impl ListParams {
    fn order_id(&self) -> Option<Uuid> {
        self.order_id
            .as_deref()
            .and_then(|id| Uuid::try_parse(id).ok())
    }
}

impl Validate for ListParams {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.order_id.is_some() && self.order_id().is_none() {
            errors.push(FieldError::new(
                "order_id",
                "invalid_format",
                "must be a UUID",
            ));
        }
        if self.limit.is_some_and(|l| !(1..=MAX_PAGE).contains(&l)) {
            errors.push(FieldError::new(
                "limit",
                "out_of_range",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        errors
    }
}

/// One page of shipments, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentPage {
    pub items: Vec<Shipment>,
    /// Pass as `cursor` (with the same `order_id`) for the next page; `null` on the
    /// last page.
    pub next_cursor: Option<String>,
}

/// The caller's shipments (an admin: everyone's), newest first, paginated by key;
/// with `order_id`, that order's shipment (at most one).
#[utoipa::path(
    get, path = "/api/v1/shipments", tag = "shipments",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page.", body = ShipmentPage),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter or the cursor is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_shipments(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Valid(Query(params)): Valid<Query<ListParams>>,
) -> Result<Json<ShipmentPage>> {
    let after = params.cursor.as_deref().map(cursor::decode).transpose()?;
    let scope = match claims.owner_scope() {
        None => Scope::All,
        Some(owner) => Scope::Owner(owner),
    };
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    // One more than asked: whether it comes back says whether there is a next page.
    let mut items = shipments::list(&state.db, scope, params.order_id(), after, limit + 1).await?;
    let next_cursor = page::cut(&mut items, limit, |last| cursor::encode(&last.after()));
    Ok(Json(ShipmentPage { items, next_cursor }))
}

/// One shipment, with its history (its owner or an admin).
#[utoipa::path(
    get, path = "/api/v1/shipments/{id}", tag = "shipments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The shipment's id.")),
    responses(
        (status = 200, description = "The shipment.", body = Shipment),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shipment, or someone else's.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a UUID.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_shipment(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Shipment>> {
    let id = parse_id(&id)?;
    let shipment = shipments::find(&state.db, id)
        .await?
        .filter(|s| may_see(&claims, s))
        .ok_or(Error::ShipmentNotFound)?;
    Ok(Json(shipment))
}

/// The parcel left the warehouse: `CREATED -> DISPATCHED` (admin only); publishes
/// `shipping.shipment.dispatched`. Already dispatched: 200, nothing changes.
#[utoipa::path(
    post, path = "/api/v1/shipments/{id}/dispatch", tag = "shipments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The shipment's id.")),
    responses(
        (status = 200, description = "The shipment, dispatched (now or before).", body = Shipment),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shipment.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is delivered or cancelled (`urn:shop:problem:invalid-transition`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a UUID.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn dispatch(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Shipment>> {
    take_step(&state, admin.claims(), &id, Step::Dispatch).await
}

/// The parcel reached its address: `DISPATCHED -> DELIVERED` (admin only); publishes
/// `shipping.shipment.delivered`. Already delivered: 200, nothing changes.
#[utoipa::path(
    post, path = "/api/v1/shipments/{id}/deliver", tag = "shipments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The shipment's id.")),
    responses(
        (status = 200, description = "The shipment, delivered (now or before).", body = Shipment),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shipment.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is not dispatched yet, or cancelled (`urn:shop:problem:invalid-transition`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not a UUID.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn deliver(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Shipment>> {
    take_step(&state, admin.claims(), &id, Step::Deliver).await
}

/// One transaction: lock the shipment, step it (history and event included), commit.
async fn take_step(
    state: &AppState,
    admin: &Claims,
    id: &str,
    step: Step,
) -> Result<Json<Shipment>> {
    let id = parse_id(id)?;
    let cause = format!("admin {}", admin.user_id());
    let mut tx = state.db.begin().await?;
    let stepped = lifecycle::step(&mut tx, &state.outbox, id, step, &cause).await?;
    tx.commit().await?;
    Ok(Json(stepped.shipment()))
}

fn may_see(claims: &Claims, shipment: &Shipment) -> bool {
    claims.may_see(shipment.user_id)
}

/// A path id: a malformed one is a 422 naming `id`.
fn parse_id(raw: &str) -> Result<ShipmentId> {
    ShipmentId::parse(raw).ok_or_else(|| Error::invalid("id", "invalid_format", "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(order_id: Option<&str>, limit: Option<i64>) -> ListParams {
        ListParams {
            order_id: order_id.map(str::to_owned),
            limit,
            cursor: None,
        }
    }

    #[test]
    fn a_listing_needs_a_uuid_order_id_and_a_page_size_of_1_to_100() {
        let order = Uuid::now_v7().to_string();
        assert!(params(Some(&order), Some(1)).validate().is_empty());
        assert!(params(None, Some(MAX_PAGE)).validate().is_empty());
        let bad = params(Some("ord_123"), Some(0)).validate();
        let fields: Vec<_> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["order_id", "limit"]);
        assert_eq!(
            params(None, Some(MAX_PAGE + 1)).validate()[0].code,
            "out_of_range"
        );
    }
}
