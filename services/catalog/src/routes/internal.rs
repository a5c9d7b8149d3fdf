//! Reads for other services, not for shoppers: the order service prices a checkout
//! here. Not cacheable (a price must be current), and not routed by the gateway.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shop_http::{Json, Problem, Valid};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Result;
use crate::products::{self, Money, ProductId};
use crate::requests::LookupRequest;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(lookup_products))
}

/// What a checkout needs of a product.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f", "sku": "KIT-KETTLE-01",
    "name": "Stainless steel kettle", "price": {"amount": 4999, "currency": "EUR"},
    "active": true, "version": 3
}))]
pub struct ProductPrice {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub price: Money,
    /// An inactive product cannot be bought.
    pub active: bool,
    pub version: i64,
}

/// The products found and the ids that were not.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "items": [{
        "id": "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f", "sku": "KIT-KETTLE-01",
        "name": "Stainless steel kettle", "price": {"amount": 4999, "currency": "EUR"},
        "active": true, "version": 3
    }],
    "not_found": ["prod_01936f0e7c4a7d3e9a516f1b2c3d4e60"]
}))]
pub struct LookupResponse {
    pub items: Vec<ProductPrice>,
    pub not_found: Vec<ProductId>,
}

/// Current price, currency, active flag, SKU and name of up to 100 products, by id,
/// for other services (the order service at checkout). Answered `no-store`.
#[utoipa::path(
    post, path = "/api/v1/internal/products/lookup", tag = "internal",
    request_body = LookupRequest,
    responses(
        (status = 200, description = "The products found, and the ids not found.", body = LookupResponse),
        (status = 422, description = "No ids, more than 100, or a malformed one.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn lookup_products(
    State(state): State<AppState>,
    Valid(Json(req)): Valid<Json<LookupRequest>>,
) -> Result<Response> {
    let ids = req.ids();
    let found = products::find_many(&state.db, &ids).await?;
    let not_found = ids
        .into_iter()
        .filter(|id| found.iter().all(|p| p.id != *id))
        .collect();
    let items = found
        .into_iter()
        .map(|p| ProductPrice {
            id: p.id,
            sku: p.sku,
            name: p.name,
            price: p.price,
            active: p.active,
            version: p.version,
        })
        .collect();
    let body = LookupResponse { items, not_found };
    Ok((
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response())
}
