//! The published key set and key rotation.

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use shop_auth::{Role, Verifier};

use crate::helpers::{spawn_app, start, test_settings};

#[tokio::test]
async fn access_tokens_verify_against_the_published_jwks() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: jsonwebtoken::jwk::JwkSet = response.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert!(
        serde_json::to_string(&jwks)
            .unwrap()
            .contains("\"crv\":\"Ed25519\"")
    );

    let header = jsonwebtoken::decode_header(&customer.access_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let claims = Verifier::with_keys(&jwks, "http://localhost:8081", "shop")
        .verify(&customer.access_token)
        .await
        .unwrap();
    assert_eq!(claims.roles, [Role::Customer]);
    assert_eq!(claims.iss, "http://localhost:8081");
    assert_eq!(claims.aud, "shop");
    assert_eq!(
        Some(claims.sub.to_string()),
        me_id(&app, &customer.access_token).await
    );
}

async fn me_id(app: &crate::helpers::TestApp, token: &str) -> Option<String> {
    let me: Value = app
        .get_with_token("/api/v1/users/me", token)
        .await
        .json()
        .await
        .ok()?;
    me["id"].as_str().map(str::to_owned)
}

/// A rotation: the service restarts with a new current key and the old one listed as
/// previous. Tokens signed by the old key keep working until they expire, new tokens
/// carry the new `kid`, and a verifier that cached the old set fetches it again when
/// it first meets the new `kid`.
#[tokio::test]
async fn a_key_rotation_keeps_old_tokens_valid_and_verifiers_pick_up_the_new_key() {
    let port = shop_servers::free_port().unwrap();
    let before = {
        let db = shop_testkit::fresh_database().await;
        let mut settings = test_settings(&db).await;
        settings.service.http.port = port;
        start(db, settings).await
    };
    let old_token = before.customer().await.access_token;
    let verifier = Verifier::remote_with_min_refresh(
        before.url("/.well-known/jwks.json"),
        "http://localhost:8081",
        "shop",
        Duration::ZERO,
    );
    verifier
        .verify(&old_token)
        .await
        .expect("the verifier fetched the first key set");
    let old_key = before.signing_key.expose_secret().to_owned();
    let db = before.stop().await;

    let mut settings = test_settings(&db).await;
    settings.service.http.port = port;
    let old_key_file = tempfile_with(&old_key);
    settings.jwt.previous_key_files = vec![old_key_file.path().to_owned()];
    let after = start(db, settings).await;

    let jwks: Value = after.get_json("/.well-known/jwks.json").await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "current and previous key"
    );
    let new_token = after.customer().await.access_token;
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();
    let new_kid = jsonwebtoken::decode_header(&new_token)
        .unwrap()
        .kid
        .unwrap();
    assert_ne!(old_kid, new_kid);
    assert_eq!(
        jwks["keys"][0]["kid"],
        new_kid.as_str(),
        "the current key comes first"
    );

    assert_eq!(
        after
            .get_with_token("/api/v1/users/me", &old_token)
            .await
            .status(),
        StatusCode::OK
    );
    assert!(
        verifier.verify(&new_token).await.is_ok(),
        "the unknown kid triggered a refresh"
    );
    assert!(verifier.verify(&old_token).await.is_ok());
}

fn tempfile_with(contents: &str) -> tempfile::NamedTempFile {
    use std::io::Write as _;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}
