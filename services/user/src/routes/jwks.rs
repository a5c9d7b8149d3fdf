//! The public keys that verify our access tokens (RFC 7517), for every other service
//! and the gateway.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

/// The JSON Web Key Set: the current signing key first, then keys retired by a
/// rotation whose tokens may still be alive.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "The key set.", body = Object, example = json!({
        "keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "use": "sig", "alg": "EdDSA", "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}]
    })))
)]
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    // Verifiers cache the set; five minutes keeps a rotation quick to propagate.
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(state.keys.jwks().clone()),
    )
}
