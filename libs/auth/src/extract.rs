//! Axum extractors: `Authenticated` for any valid token, `RequireRole<R>` (and the
//! `Admin` alias) for a token carrying a role.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shop_http::Problem;

use crate::claims::{Claims, Role};
use crate::verifier::{AuthError, Verifier};

/// The claims of a request with a valid bearer token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

/// A role an extractor can demand.
pub trait RequiredRole: Send + Sync {
    const ROLE: Role;
}

/// Marker for [`RequireRole`]: the admin role.
#[derive(Debug)]
pub struct AdminRole;

impl RequiredRole for AdminRole {
    const ROLE: Role = Role::Admin;
}

/// The claims of a request whose valid token carries role `R`; 403 otherwise.
#[derive(Debug, Clone)]
pub struct RequireRole<R: RequiredRole>(pub Claims, PhantomData<R>);

/// An authenticated admin.
pub type Admin = RequireRole<AdminRole>;

impl<R: RequiredRole> RequireRole<R> {
    pub fn claims(&self) -> &Claims {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(AuthError::Missing)?;
        let verifier = Verifier::from_ref(state);
        let claims = verifier.verify(token).await?;
        tracing::Span::current().record("user_id", tracing::field::display(claims.sub));
        Ok(Authenticated(claims))
    }
}

impl<S, R> FromRequestParts<S> for RequireRole<R>
where
    Verifier: FromRef<S>,
    S: Send + Sync,
    R: RequiredRole,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        if claims.has_role(R::ROLE) {
            Ok(RequireRole(claims, PhantomData))
        } else {
            Err(AuthError::Forbidden(R::ROLE.as_str()))
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Clients get one fixed message per kind: the detail (the JWT library's words, the
/// token's own `kid`) would help an attacker probe and no honest client can act on it,
/// so it goes to the log instead. Client mistakes log at debug or info; only our own
/// inability to verify is an error.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let problem = match &self {
            AuthError::Missing => {
                tracing::debug!(reason = %self, "unauthenticated request");
                Problem::unauthorized("Send an access token as `Authorization: Bearer <token>`.")
            }
            AuthError::Expired => {
                tracing::debug!(reason = %self, "token refused");
                Problem::unauthorized("The access token has expired.")
            }
            AuthError::Malformed(_) => {
                tracing::info!(reason = %self, "token refused");
                Problem::unauthorized("The access token is malformed.")
            }
            AuthError::Invalid(_) | AuthError::UnknownKey(_) => {
                tracing::info!(reason = %self, "token refused");
                Problem::unauthorized("The access token is invalid.")
            }
            AuthError::Forbidden(role) => {
                tracing::info!(reason = %self, "request forbidden");
                // The role is ours to name, not anything the caller sent.
                Problem::forbidden(format!("This needs the `{role}` role."))
            }
            AuthError::KeysUnavailable(_) => {
                tracing::error!(reason = %self, "cannot verify tokens");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "auth-unavailable",
                    "Tokens cannot be verified right now.",
                )
                .with_retry_after(5)
            }
        };
        let status = problem.status;
        let mut response = problem.into_response();
        if status == 401 {
            // RFC 6750: tell the client which scheme and why.
            let challenge = match self {
                AuthError::Missing => r#"Bearer realm="shop""#,
                _ => r#"Bearer realm="shop", error="invalid_token""#,
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
