//! Categories: the public, cacheable list and the admin's create.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use shop_auth::Admin;
use shop_http::{Json, Problem, Valid};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::cache;
use crate::categories::{self, Category};
use crate::error::Result;
use crate::requests::CreateCategoryRequest;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_categories, create_category))
}

/// Every category.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"slug": "kitchen", "name": "Kitchen"}, {"slug": "outdoor", "name": "Outdoor"}]}))]
pub struct CategoryList {
    pub items: Vec<Category>,
}

/// Every category, by slug. Cacheable like the products (`ETag`, 304,
/// `Cache-Control: public, max-age=30`).
#[utoipa::path(
    get, path = "/api/v1/categories", tag = "categories",
    responses(
        (status = 200, description = "The categories.", body = CategoryList),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag."),
    )
)]
async fn list_categories(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let items = categories::all(&state.db).await?;
    cache::cached_json(&headers, None, &CategoryList { items })
}

/// Adds a category (admin only).
#[utoipa::path(
    post, path = "/api/v1/categories", tag = "categories",
    security(("bearer" = [])),
    request_body = CreateCategoryRequest,
    responses(
        (status = 201, description = "Created.", body = Category),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_category(
    State(state): State<AppState>,
    _admin: Admin,
    Valid(Json(req)): Valid<Json<CreateCategoryRequest>>,
) -> Result<(StatusCode, Json<Category>)> {
    let category = categories::insert(&state.db, &req.slug, req.name.trim()).await?;
    tracing::info!(slug = %category.slug, "category created");
    Ok((StatusCode::CREATED, Json(category)))
}
