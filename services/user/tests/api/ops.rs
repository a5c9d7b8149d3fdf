//! The operational surface every service shares: health, readiness, metrics, OpenAPI,
//! docs, request ids and problem+json for unknown routes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;

    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["postgres"], "ok");
    assert_eq!(ready["checks"]["nats"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    app.get_with_token("/api/v1/users/me", &customer.access_token)
        .await;

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(text.contains("http_server_requests_total{"), "{text}");
    assert!(text.contains(r#"route="/api/v1/users/me""#));
    assert!(text.contains(r#"route="/api/v1/auth/login""#));
    assert!(text.contains("http_server_request_duration_seconds_bucket{"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_app().await;

    let doc: Value = app.get_json("/openapi.json").await;

    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users/me",
        "/api/v1/users",
        "/.well-known/jwks.json",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "Swagger UI is served"
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_made_up() {
    let app = spawn_app().await;

    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    let made = app.client.get(app.url("/healthz")).send().await.unwrap();

    assert_eq!(given.headers()["x-request-id"], "req-123");
    assert_eq!(made.headers()["x-request-id"].len(), 36, "a UUID");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;

    problem(
        app.client
            .get(app.url("/api/v1/nothing"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.client
            .get(app.url("/api/v1/auth/login"))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
}
