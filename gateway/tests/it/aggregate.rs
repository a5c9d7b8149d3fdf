//! `GET /api/v1/orders/{id}/details`: the order, its payment and its shipment in one
//! answer, a part that is missing or down reported as such, and the order's own
//! refusal passed on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{GatewayFile, dead_upstream, problem, spawn_gateway_on};

/// A stand-in for one service: `path` answers `body` with 200 when the request carries
/// a token, else 401; `down` makes it answer 503.
async fn service(path: &'static str, body: Value, down: Arc<AtomicBool>) -> String {
    let app = Router::new().route(
        path,
        get(move |request: Request| {
            let body = body.clone();
            let down = down.clone();
            async move {
                if down.load(Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                if !request.headers().contains_key("authorization") {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({"status": 401})))
                        .into_response();
                }
                if request.uri().path().ends_with("/someone-elses") {
                    return (StatusCode::NOT_FOUND, axum::Json(json!({"status": 404})))
                        .into_response();
                }
                axum::Json(body).into_response()
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

const FILE: &str = r#"
[[routes]]
name = "orders"
prefix = "/api/v1/orders"
upstream = "order"
policy = "authenticated"
timeout_ms = 2000
"#;

#[tokio::test]
async fn the_details_assemble_order_payment_and_shipment_and_name_a_part_that_is_down() {
    let shipping_down = Arc::new(AtomicBool::new(false));
    let order = service(
        "/api/v1/orders/{id}",
        json!({"id": "o1", "status": "CONFIRMED"}),
        Arc::default(),
    )
    .await;
    let payment = service(
        "/api/v2/payments",
        json!({"items": [{"id": "pay_1", "state": "captured"}]}),
        Arc::default(),
    )
    .await;
    let shipping = service(
        "/api/v1/shipments",
        json!({"items": []}),
        shipping_down.clone(),
    )
    .await;
    let file = GatewayFile::new(FILE);
    let gateway = spawn_gateway_on(
        &file,
        &[
            ("order", order),
            ("payment", payment),
            ("shipping", shipping),
        ],
        |_| {},
    )
    .await;
    let token = gateway.customer();
    let get = |id: &'static str| {
        gateway
            .client
            .get(gateway.url(&format!("/api/v1/orders/{id}/details")))
            .bearer_auth(&token)
            .send()
    };

    let details: Value = get("o1").await.unwrap().json().await.unwrap();
    assert_eq!(details["order"]["status"], "CONFIRMED");
    assert_eq!(details["payment"]["id"], "pay_1");
    assert_eq!(details["shipment"], Value::Null, "no shipment yet");
    assert_eq!(details["unavailable"], json!([]));

    shipping_down.store(true, Ordering::SeqCst);
    let details: Value = get("o1").await.unwrap().json().await.unwrap();
    assert_eq!(details["order"]["id"], "o1", "the order still answers");
    assert_eq!(details["unavailable"], json!(["shipment"]));

    let refused = get("someone-elses").await.unwrap();
    assert_eq!(
        refused.status(),
        404,
        "the order service's refusal is the answer"
    );
    let anonymous = gateway
        .client
        .get(gateway.url("/api/v1/orders/o1/details"))
        .send()
        .await
        .unwrap();
    problem(anonymous, 401).await;
}

#[tokio::test]
async fn without_the_order_service_the_details_are_a_503() {
    let file = GatewayFile::new(FILE);
    let gateway = spawn_gateway_on(
        &file,
        &[
            ("order", dead_upstream()),
            ("payment", dead_upstream()),
            ("shipping", dead_upstream()),
        ],
        |_| {},
    )
    .await;
    let response = gateway
        .client
        .get(gateway.url("/api/v1/orders/o1/details"))
        .bearer_auth(gateway.customer())
        .send()
        .await
        .unwrap();
    problem(response, 503).await;
}

#[tokio::test]
async fn the_gateway_describes_its_own_endpoints_at_openapi_json() {
    let file = GatewayFile::new(FILE);
    let gateway = spawn_gateway_on(
        &file,
        &[
            ("order", dead_upstream()),
            ("payment", dead_upstream()),
            ("shipping", dead_upstream()),
        ],
        |_| {},
    )
    .await;
    let doc: Value = gateway
        .client
        .get(gateway.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/api/v1/orders/{id}/details"].is_object());
    assert!(doc["paths"]["/openapi/{file}"].is_object());
}
