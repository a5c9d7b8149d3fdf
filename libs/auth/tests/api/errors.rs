//! What a client is told when its token is refused: the kind, never the details.

use axum::extract::FromRequestParts as _;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse as _;
use serde_json::Value;
use shop_auth::{AUDIENCE, AuthError, Authenticated, Verifier};

use crate::helpers::{ISSUER, TestKey, jwks};

async fn problem(error: AuthError) -> (StatusCode, Option<String>, Value) {
    let response = error.into_response();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, challenge, serde_json::from_slice(&body).unwrap())
}

/// The text a variant carries for the log.
fn detail_of(error: &AuthError) -> Option<String> {
    match error {
        AuthError::Malformed(s)
        | AuthError::UnknownKey(s)
        | AuthError::Invalid(s)
        | AuthError::KeysUnavailable(s) => Some(s.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn refused_tokens_get_a_fixed_message_per_kind_without_the_kid_or_the_jwt_library_text() {
    let ours = TestKey::generate();
    let stranger = TestKey::generate();
    let verifier = Verifier::with_keys(&jwks(&[&ours]), ISSUER, AUDIENCE);
    let callers_kid = "kid-chosen-by-the-caller-<script>";

    let cases = [
        (
            stranger.token_with(callers_kid, 600),
            "The access token is invalid.",
        ),
        // Our kid, someone else's signature: the library says `InvalidSignature`.
        (
            stranger.token_with(&ours.kid, 600),
            "The access token is invalid.",
        ),
        ("not.a.jwt".to_owned(), "The access token is malformed."),
        ("%%%".to_owned(), "The access token is malformed."),
        (
            ours.token_with(&ours.kid, -3600),
            "The access token has expired.",
        ),
    ];
    for (token, expected) in cases {
        let error = verifier.verify(&token).await.unwrap_err();
        let logged = error.to_string();
        let detail = detail_of(&error);
        let (status, challenge, body) = problem(error).await;

        assert_eq!(status, StatusCode::UNAUTHORIZED, "{logged}");
        assert_eq!(body["detail"], expected, "{logged}");
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer realm="shop", error="invalid_token""#)
        );
        let text = body.to_string();
        assert!(!text.contains("kid-chosen"), "{text}");
        if let Some(detail) = detail {
            assert!(!text.contains(&detail), "{text} quotes {detail:?}");
        }
    }
}

#[tokio::test]
async fn a_missing_token_and_unavailable_keys_get_fixed_messages() {
    let verifier = Verifier::with_keys(&jwks(&[]), ISSUER, AUDIENCE);
    let (mut parts, ()) = Request::new(()).into_parts();
    let missing = Authenticated::from_request_parts(&mut parts, &verifier)
        .await
        .unwrap_err();
    let (status, challenge, body) = problem(missing).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="shop""#));
    assert_eq!(
        body["detail"],
        "Send an access token as `Authorization: Bearer <token>`."
    );

    let internal = "error sending request for url (http://10.0.0.7/.well-known/jwks.json)";
    let (status, _, body) = problem(AuthError::KeysUnavailable(internal.into())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!body.to_string().contains("10.0.0.7"), "{body}");
}
