//! Routes' policies at the edge; the token still goes upstream (zero trust).

use serde_json::Value;
use shop_auth::Role;

use crate::helpers::{echo_upstream, problem, spawn_gateway};

#[tokio::test]
async fn an_authenticated_route_needs_a_valid_token_and_passes_it_on_unchanged() {
    let upstream = echo_upstream("a").await;
    let gateway = spawn_gateway(&upstream, |_| {}).await;
    let url = gateway.url("/api/v1/users/me");

    let none = gateway.client.get(&url).send().await.unwrap();
    problem(none, 401).await;
    let garbage = gateway
        .client
        .get(&url)
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    problem(garbage, 401).await;
    let expired = gateway
        .client
        .get(&url)
        .bearer_auth(gateway.token(&[Role::Customer], -120))
        .send()
        .await
        .unwrap();
    let expired = problem(expired, 401).await;
    assert!(expired["detail"].as_str().unwrap().contains("expired"));

    let token = gateway.customer();
    let echoed: Value = gateway
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        echoed["headers"]["authorization"],
        format!("Bearer {token}")
    );
}

#[tokio::test]
async fn a_write_to_an_admin_route_needs_the_admin_role_and_reads_stay_public() {
    let upstream = echo_upstream("a").await;
    let gateway = spawn_gateway(&upstream, |_| {}).await;
    let url = gateway.url("/api/v1/products");

    let read = gateway.client.get(&url).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let anonymous = gateway.client.post(&url).body("{}").send().await.unwrap();
    problem(anonymous, 401).await;
    let customer = gateway
        .client
        .post(&url)
        .bearer_auth(gateway.customer())
        .body("{}")
        .send()
        .await
        .unwrap();
    let refused = problem(customer, 403).await;
    assert!(refused["detail"].as_str().unwrap().contains("admin"));
    let admin = gateway
        .client
        .post(&url)
        .bearer_auth(gateway.admin())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
}
