//! Registration, login, token refresh and logout.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use shop_auth::Role;
use shop_events::Envelope;
use shop_events::contracts::users::UserRegistered;
use shop_http::{Json, Problem, Valid};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Roles, TokenPair, USER_COLUMNS, User};
use crate::app::INFO;
use crate::domain::{LoginRequest, RefreshRequest, RegisterRequest, normalize_email};
use crate::error::{Error, Result, violates};
use crate::state::AppState;
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
    let user: User = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, email, name, password_hash, roles)
         VALUES ($1, $2, $3, $4, ARRAY['customer']) RETURNING {USER_COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(normalize_email(&req.email))
    .bind(req.name.trim())
    .bind(password_hash)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if violates(&e, "users_email_key") {
            Error::EmailTaken
        } else {
            e.into()
        }
    })?;
    // In the same transaction: the account and its event exist together or not at all.
    // The welcome e-mail reacts to the event later; this request does not wait for it.
    let event = UserRegistered {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
    };
    state
        .outbox
        .enqueue(&mut tx, &Envelope::new(INFO.name, event))
        .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(sqlx::FromRow)]
struct Credentials {
    id: Uuid,
    password_hash: String,
    #[sqlx(try_from = "Vec<String>")]
    roles: Roles,
}

/// Exchanges an e-mail and password for an access token and a refresh token.
///
/// Takes the same time whether or not the account exists. After 5 failures within
/// 15 minutes the account is locked for 15 minutes (429 with `Retry-After`).
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in.", body = TokenPair),
        (status = 401, description = "Wrong e-mail or password.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins; see `Retry-After`.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn login(
    State(state): State<AppState>,
    Valid(Json(req)): Valid<Json<LoginRequest>>,
) -> Result<Json<TokenPair>> {
    let email = normalize_email(&req.email);
    throttle::check(&state.db, &email).await?;
    let account: Option<Credentials> =
        sqlx::query_as("SELECT id, password_hash, roles FROM users WHERE email = $1")
            .bind(&email)
            .fetch_optional(&state.db)
            .await?;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let verified = state.passwords.verify(req.password, hash).await?;
    let account = match account {
        Some(account) if verified => account,
        _ => {
            throttle::record_failure(&state.db, &email, &state.settings.throttle).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    throttle::clear(&state.db, &email).await?;
    let mut conn = state.db.acquire().await?;
    let refresh_token =
        refresh::start_family(&mut conn, account.id, state.settings.jwt.refresh_ttl_secs).await?;
    tracing::info!(user_id = %account.id, "user logged in");
    token_pair(&state, account.id, account.roles.0, refresh_token)
}

/// Spends a refresh token for a new pair. Presenting a spent token again revokes
/// every token of that login (reuse detection).
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
    let (user_id, next) = refresh::rotate(
        &state.db,
        &req.refresh_token,
        state.settings.jwt.refresh_ttl_secs,
    )
    .await?;
    // Roles are read afresh so a promotion or demotion shows in the next token.
    let roles: Option<Roles> =
        sqlx::query_scalar::<_, Vec<String>>("SELECT roles FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&state.db)
            .await?
            .map(Roles::try_from)
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?;
    let roles = roles.ok_or(Error::InvalidRefreshToken)?;
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
