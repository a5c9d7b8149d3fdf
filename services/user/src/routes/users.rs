//! Who am I, and (for admins) who is there.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use shop_auth::{Admin, Authenticated};
use shop_http::{FieldError, Json, Problem, Query};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{USER_COLUMNS, User};
use crate::error::{Error, Result};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users))
}

/// The caller's own account.
#[utoipa::path(
    get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller.", body = User),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The account no longer exists.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<User>> {
    let user: Option<User> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(claims.sub)
    .fetch_optional(&state.db)
    .await?;
    user.map(Json).ok_or(Error::UserNotFound)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Page size, 1 to 100 (default 20).
    limit: Option<i64>,
    /// The `next_after` of the previous page.
    after: Option<Uuid>,
}

/// One page of users, oldest first.
#[derive(Debug, Serialize, ToSchema)]
struct UserPage {
    items: Vec<User>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<Uuid>,
}

/// Every user, paginated by key (admin only).
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page of users.", body = UserPage),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an admin.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    _admin: Admin,
    Query(params): Query<ListParams>,
) -> Result<Json<UserPage>> {
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        let error = FieldError::new("limit", "out_of_range", "must be between 1 and 100");
        return Err(Problem::validation(vec![error]).into());
    }
    // UUIDv7 ids sort by creation time, so the id is a stable cursor.
    let mut items: Vec<User> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    )))
    .bind(params.after)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let next_after = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|u| u.id)
    } else {
        None
    };
    Ok(Json(UserPage { items, next_after }))
}
