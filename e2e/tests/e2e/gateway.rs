//! The single entry point: every public route of the stack through the gateway, with
//! its policies at the edge and the services verifying again behind it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{http, post, stack};

#[tokio::test]
async fn a_customer_logs_in_and_browses_through_the_gateway_and_cannot_write_the_catalog() {
    let stack = stack().await;
    let gateway = stack.base_url("gateway");
    let client = http();
    let email = format!("gw-{}@example.com", std::process::id());
    let credentials = json!({"email": email, "password": "correct horse battery"});
    let mut register = credentials.clone();
    register["name"] = json!("Gateway Customer");
    let created = post(
        &client,
        format!("{gateway}/api/v1/auth/register"),
        &register,
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let pair: Value = post(
        &client,
        format!("{gateway}/api/v1/auth/login"),
        &credentials,
    )
    .await
    .json()
    .await
    .unwrap();
    let token = pair["access_token"].as_str().unwrap();

    let me = client
        .get(format!("{gateway}/api/v1/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let anonymous_me = client
        .get(format!("{gateway}/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_me.status(), StatusCode::UNAUTHORIZED);

    let found: Value = client
        .get(format!("{gateway}/api/v1/products?q=kett"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"][0]["sku"], "KIT-KETTLE-01");
    let stock = client
        .get(format!("{gateway}/api/v1/inventory/KIT-KETTLE-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(stock.status(), StatusCode::OK);
    let keys = client
        .get(format!("{gateway}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), StatusCode::OK);

    let write = client
        .post(format!("{gateway}/api/v1/products"))
        .bearer_auth(token)
        .json(&json!({"sku": "GW-NO-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::FORBIDDEN, "refused at the edge");
    let internal = client
        .post(format!("{gateway}/api/v1/internal/products/lookup"))
        .json(&json!({"ids": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        internal.status(),
        StatusCode::NOT_FOUND,
        "internal reads are not routed"
    );
}
