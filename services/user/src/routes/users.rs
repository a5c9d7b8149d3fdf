//! Who am I, and (for admins) who is there.

use axum::extract::State;
use serde::Deserialize;
use shop_auth::{Admin, Authenticated};
use shop_http::{FieldError, Json, Problem, Query};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::users::{self, User, UserPage};

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
    let user = users::find(&state.db, claims.sub).await?;
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
    let Some(limit) = u16::try_from(limit).ok().filter(|l| (1..=100).contains(l)) else {
        let error = FieldError::new("limit", "out_of_range", "must be between 1 and 100");
        return Err(Problem::validation(vec![error]).into());
    };
    Ok(Json(users::page(&state.db, params.after, limit).await?))
}
