//! The foundation's promise, end to end on real processes: register, log in, call
//! `/users/me`, refresh, log out, and verify the access token against the JWKS.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_auth::{Role, Verifier};

use crate::{http, post, stack};

#[tokio::test]
async fn a_customer_registers_logs_in_refreshes_and_logs_out() {
    let stack = stack().await;
    let user = stack.base_url("user");
    let client = http();
    let email = format!("e2e-{}@example.com", std::process::id());
    let credentials = json!({"email": email, "password": "correct horse battery"});

    let mut register = credentials.clone();
    register["name"] = json!("E2E Customer");
    let created = post(&client, format!("{user}/api/v1/auth/register"), &register).await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let pair: Value = post(&client, format!("{user}/api/v1/auth/login"), &credentials)
        .await
        .json()
        .await
        .unwrap();
    let access = pair["access_token"].as_str().unwrap();
    let refresh = pair["refresh_token"].as_str().unwrap();

    let me: Value = client
        .get(format!("{user}/api/v1/users/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email.as_str());

    let verifier = Verifier::remote(
        format!("{user}/.well-known/jwks.json"),
        "http://localhost:8081",
        "shop",
    );
    let claims = verifier
        .verify(access)
        .await
        .expect("the token verifies against the published JWKS");
    assert_eq!(claims.roles, [Role::Customer]);
    assert_eq!(claims.sub.to_string(), me["id"].as_str().unwrap());

    let renewed = post(
        &client,
        format!("{user}/api/v1/auth/refresh"),
        &json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(renewed.status(), StatusCode::OK);
    let renewed: Value = renewed.json().await.unwrap();
    let next = renewed["refresh_token"].as_str().unwrap();

    let logout = post(
        &client,
        format!("{user}/api/v1/auth/logout"),
        &json!({"refresh_token": next}),
    )
    .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = post(
        &client,
        format!("{user}/api/v1/auth/refresh"),
        &json!({"refresh_token": next}),
    )
    .await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(after.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn the_seeded_admin_can_list_users() {
    let stack = stack().await;
    let user = stack.base_url("user");
    let client = http();
    let pair: Value = post(
        &client,
        format!("{user}/api/v1/auth/login"),
        &json!({"email": "admin@shop.local", "password": "admin-password-dev"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let access = pair["access_token"]
        .as_str()
        .expect("the local admin logs in");

    let page = client
        .get(format!("{user}/api/v1/users?limit=100"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();

    assert_eq!(page.status(), StatusCode::OK);
    let page: Value = page.json().await.unwrap();
    let emails: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(emails.contains(&"admin@shop.local"), "{emails:?}");
}
