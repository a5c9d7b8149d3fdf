//! Registration, login, token refresh and logout.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use shop_auth::Role;
use shop_events::contracts::users::UserRegistered;
use shop_http::{Json, Problem, Valid};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::client_ip::ClientIp;
use crate::error::{Error, Result};
use crate::requests::{LoginRequest, RefreshRequest, RegisterRequest, normalize_email};
use crate::state::AppState;
use crate::users::{self, NewUser, User};
use crate::{refresh, throttle};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh_tokens))
        .routes(routes!(logout))
}

/// Creates a customer account.
#[utoipa::path(
    post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account was created.", body = User),
        (status = 409, description = "The e-mail address is taken.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn register(
    State(state): State<AppState>,
    Valid(Json(req)): Valid<Json<RegisterRequest>>,
) -> Result<(StatusCode, Json<User>)> {
    let password_hash = state.passwords.hash(req.password).await?;
    let mut tx = state.db.begin().await?;
    let new = NewUser {
        email: &normalize_email(&req.email),
        name: req.name.trim(),
        password_hash: &password_hash,
        roles: &[Role::Customer],
    };
    let user = users::insert(&mut *tx, &new).await?;
    // In the same transaction: the account and its event exist together or not at all.
    // The welcome e-mail reacts to the event later; this request does not wait for it.
    let event = UserRegistered {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
    };
    state.outbox.enqueue(&mut tx, event).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok((StatusCode::CREATED, Json(user)))
}

/// Exchanges an e-mail and password for an access token and a refresh token.
///
/// Takes the same time whether or not the account exists. After 5 failures within
/// 15 minutes the account is locked for 15 minutes, and after 30 failures within
/// 15 minutes from one client (any e-mails) the client is refused until the 15
/// minutes are over (429 with `Retry-After`; the defaults).
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in.", body = TokenPair),
        (status = 401, description = "Wrong e-mail or password.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins for this account or from this client; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    Valid(Json(req)): Valid<Json<LoginRequest>>,
) -> Result<Json<TokenPair>> {
    let email = normalize_email(&req.email);
    // Taken before the hash and counted as a failure until the password proves right
    // (see `crate::throttle`).
    let attempt = throttle::reserve(&state.db, &email, client, &state.settings.throttle).await?;
    let account = users::credentials(&state.db, &email).await?;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let verified = state.passwords.verify(req.password, hash).await?;
    let account = match account {
        Some(account) if verified => account,
        _ => return Err(Error::InvalidCredentials),
    };
    throttle::succeeded(&state.db, attempt).await?;
    let mut tx = state.db.begin().await?;
    let refresh_token = refresh::start_family(&mut tx, account.id, &state.settings.jwt).await?;
    tx.commit().await?;
    tracing::info!(user_id = %account.id, "user logged in");
    token_pair(&state, account.id, account.roles.0, refresh_token)
}

/// Spends a refresh token for a new pair. Presenting a spent token again revokes
/// every token of that login (reuse detection), also when it is the client's own
/// retry after a lost response: the client then logs in again.
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the presented refresh token is spent.", body = TokenPair),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn refresh_tokens(
    State(state): State<AppState>,
    Valid(Json(req)): Valid<Json<RefreshRequest>>,
) -> Result<Json<TokenPair>> {
    let (user_id, next) =
        refresh::rotate(&state.db, &req.refresh_token, &state.settings.jwt).await?;
    // Roles are read afresh so a promotion or demotion shows in the next token.
    let roles = users::roles(&state.db, user_id)
        .await?
        .ok_or(Error::InvalidRefreshToken)?;
    token_pair(&state, user_id, roles.0, next)
}

/// Ends a login: revokes its refresh token family. Access tokens already issued stay
/// valid until they expire (at most 15 minutes); that is the price of stateless
/// verification.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Logged out (also when the token was unknown or already revoked)."),
        (status = 422, description = "A field is invalid.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn logout(
    State(state): State<AppState>,
    Valid(Json(req)): Valid<Json<RefreshRequest>>,
) -> Result<StatusCode> {
    let revoked = refresh::logout(&state.db, &req.refresh_token).await?;
    tracing::info!(revoked, "logged out");
    Ok(StatusCode::NO_CONTENT)
}

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2ln",
    "refresh_token": "rt_Vb3k2m0W8q1lQ6y2c8JtV0oYfXh1r4aGmN7sE9dK5uI",
    "token_type": "Bearer",
    "expires_in": 900
}))]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

fn token_pair(
    state: &AppState,
    user_id: Uuid,
    roles: Vec<Role>,
    refresh: SecretString,
) -> Result<Json<TokenPair>> {
    let access = state.keys.issue(user_id, roles)?;
    Ok(Json(TokenPair {
        access_token: access.token,
        refresh_token: refresh.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in: access.expires_in,
    }))
}
