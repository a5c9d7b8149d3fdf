//! Products: the public, cacheable reads (listing with search, filters, sorts and
//! cursor pagination; one product) and the admin writes, each publishing its event
//! through the outbox in the transaction that makes the change.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, ETAG, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shop_auth::Admin;
use shop_http::{Json, Problem, Query, Valid, page};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::cache;
use crate::error::{Error, Result};
use crate::products::{self, Filter, Product, ProductId};
use crate::requests::{CreateProductRequest, ListParams, UpdateProductRequest};
use crate::state::AppState;
use crate::{cursor, events, search};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product))
        .routes(routes!(deactivate_product))
}

/// One page of products.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "items": [{
        "id": "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f", "sku": "KIT-KETTLE-01",
        "name": "Stainless steel kettle", "description": "1.7 l electric kettle.",
        "price": {"amount": 4999, "currency": "EUR"}, "category": "kitchen",
        "image_url": null, "active": true, "version": 1,
        "created_at": "2026-11-21T12:00:00Z", "updated_at": "2026-11-21T12:00:00Z"
    }],
    "next_cursor": "eyJzIjoibmV3ZXN0IiwiayI6MTc5MDAwMDAwMDAwMDAwMCwiaWQiOiJwcm9kXy4uLiJ9"
}))]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Pass as `cursor` (with the same parameters) for the next page; `null` on the
    /// last page.
    pub next_cursor: Option<String>,
}

/// Active products: search, filter, sort, paginate.
///
/// With `q`, full-text search over name and description, every word a prefix, best
/// match first (a name match ranks above a description match). Pages are keyset
/// pages: walking `next_cursor` visits every matching product exactly once, ties
/// included. Cacheable: `ETag` (a hash of the body), `If-None-Match` -> 304,
/// `Cache-Control: public, max-age=30`.
#[utoipa::path(
    get, path = "/api/v1/products", tag = "products",
    params(ListParams),
    responses(
        (status = 200, description = "One page.", body = ProductPage,
            headers(("ETag" = String, description = "Strong tag of this body"), ("Cache-Control" = String, description = "public, max-age=30"))),
        (status = 304, description = "The page is unchanged since the `If-None-Match` ETag."),
        (status = 422, description = "A parameter or the cursor is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_products(
    State(state): State<AppState>,
    headers: HeaderMap,
    Valid(Query(params)): Valid<Query<ListParams>>,
) -> Result<Response> {
    let sort = params.sort();
    let after = params
        .cursor
        .as_deref()
        .map(|c| cursor::decode(c, sort))
        .transpose()?;
    let filter = Filter {
        tsquery: params.q().and_then(search::prefix_query),
        category: params.category.clone(),
        min_price: params.min_price,
        max_price: params.max_price,
        in_stock: params.in_stock,
    };
    let limit = params.limit();
    // One more than asked: whether it comes back says whether there is a next page.
    let mut rows = products::list(&state.db, &filter, sort, after.as_ref(), limit + 1).await?;
    let next_cursor = page::cut(&mut rows, limit, |last| {
        cursor::encode(sort, &last.after(sort))
    });
    let page = ProductPage {
        items: rows.into_iter().map(|r| r.product).collect(),
        next_cursor,
    };
    cache::cached_json(&headers, None, &page)
}

/// One product, active or not (old orders still show deactivated ones).
///
/// Cacheable: `ETag: "<id>-v<version>"`, `If-None-Match` -> 304,
/// `Cache-Control: public, max-age=30`.
#[utoipa::path(
    get, path = "/api/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "`prod_...`")),
    responses(
        (status = 200, description = "The product.", body = Product,
            headers(("ETag" = String, description = "\"<id>-v<version>\""), ("Cache-Control" = String, description = "public, max-age=30"))),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag."),
        (status = 404, description = "No such product.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is malformed.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_product(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let product = products::find(&state.db, &id)
        .await?
        .ok_or(Error::ProductNotFound)?;
    cache::cached_json(&headers, Some(product.etag()), &product)
}

/// Adds a product (admin only); publishes `catalog.product.created`.
#[utoipa::path(
    post, path = "/api/v1/products", tag = "products",
    security(("bearer" = [])),
    request_body = CreateProductRequest,
    responses(
        (status = 201, description = "Created; `Location` names it, `ETag` is its version.", body = Product),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The SKU is taken.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid or the category unknown.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_product(
    State(state): State<AppState>,
    _admin: Admin,
    Valid(Json(req)): Valid<Json<CreateProductRequest>>,
) -> Result<Response> {
    let mut tx = state.db.begin().await?;
    let product = products::insert(&mut *tx, &req.fields()).await?;
    // In the same transaction: the product and its event exist together or not at all.
    state
        .outbox
        .enqueue(&mut tx, events::created(&product))
        .await?;
    tx.commit().await?;
    tracing::info!(product_id = %product.id, sku = %product.sku, "product created");
    let location = format!("/api/v1/products/{}", product.id);
    let mut response = written(StatusCode::CREATED, &product)?;
    response.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(&location).map_err(anyhow::Error::from)?,
    );
    Ok(response)
}

/// Replaces a product's details (admin only); publishes `catalog.product.updated`.
/// The body's `sku` must be the product's own: a SKU never changes.
///
/// Optimistic concurrency: send `If-Match` with the ETag you read (a stale one is a
/// 412) or the `version` you read in the body (a stale one is a 409); with neither,
/// 428. A refused update changes nothing.
#[utoipa::path(
    put, path = "/api/v1/products/{id}", tag = "products",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "`prod_...`"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
    ),
    request_body = UpdateProductRequest,
    responses(
        (status = 200, description = "Updated; `ETag` is the new version.", body = Product),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The body's `version` is stale.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The `If-Match` ETag is stale.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid, the category unknown, or the SKU not the product's.", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "Neither `If-Match` nor `version` was sent.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_product(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Valid(Json(req)): Valid<Json<UpdateProductRequest>>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let if_match = cache::if_match(&headers)?;
    if if_match.is_none() && req.version.is_none() {
        return Err(Error::PreconditionRequired);
    }
    let mut tx = state.db.begin().await?;
    let current = products::find_for_update(&mut *tx, &id)
        .await?
        .ok_or(Error::ProductNotFound)?;
    check_preconditions(&current, if_match.as_deref(), req.version)?;
    if req.sku != current.sku {
        return Err(Error::invalid(
            "sku",
            "immutable",
            "a product's SKU never changes (the inventory knows the item by it): \
             deactivate this product and create a new one",
        ));
    }
    let product = products::update(&mut *tx, &id, &req.fields()).await?;
    state
        .outbox
        .enqueue(&mut tx, events::updated(&product))
        .await?;
    tx.commit().await?;
    tracing::info!(product_id = %product.id, version = product.version, "product updated");
    written(StatusCode::OK, &product)
}

/// Takes a product off sale (admin only); publishes `catalog.product.deactivated`.
/// It stays readable by id, leaves the listing, and the lookup reports it inactive.
/// Deactivating an inactive product changes nothing. `If-Match` is optional here.
#[utoipa::path(
    post, path = "/api/v1/products/{id}/deactivate", tag = "products",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "`prod_...`"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
    ),
    responses(
        (status = 200, description = "Inactive now (or already).", body = Product),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The `If-Match` ETag is stale.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is malformed.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn deactivate_product(
    State(state): State<AppState>,
    _admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let if_match = cache::if_match(&headers)?;
    let mut tx = state.db.begin().await?;
    let current = products::find_for_update(&mut *tx, &id)
        .await?
        .ok_or(Error::ProductNotFound)?;
    check_preconditions(&current, if_match.as_deref(), None)?;
    if !current.active {
        return written(StatusCode::OK, &current);
    }
    let product = products::deactivate(&mut *tx, &id).await?;
    state
        .outbox
        .enqueue(&mut tx, events::deactivated(&product))
        .await?;
    tx.commit().await?;
    tracing::info!(product_id = %product.id, "product deactivated");
    written(StatusCode::OK, &product)
}

/// A malformed id is the client's mistake (422), not an unknown product (404).
fn parse_id(raw: &str) -> Result<ProductId> {
    ProductId::parse(raw).ok_or_else(|| {
        Error::invalid(
            "id",
            "invalid_format",
            "is not a product id (`prod_` + 32 hex digits)",
        )
    })
}

/// `If-Match` (any listed tag must be the current ETag) and the body's `version`.
fn check_preconditions(
    current: &Product,
    if_match: Option<&[String]>,
    version: Option<i64>,
) -> Result<()> {
    let etag = current.etag();
    if let Some(tags) = if_match
        && !tags.contains(&etag)
    {
        return Err(Error::PreconditionFailed { current: etag });
    }
    if let Some(version) = version
        && version != current.version
    {
        return Err(Error::VersionConflict {
            current: current.version,
        });
    }
    Ok(())
}

/// A write's answer: the product, its ETag, and no caching.
fn written(status: StatusCode, product: &Product) -> Result<Response> {
    let etag = HeaderValue::from_str(&product.etag()).map_err(anyhow::Error::from)?;
    Ok((
        status,
        [
            (ETAG, etag),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(product),
    )
        .into_response())
}
