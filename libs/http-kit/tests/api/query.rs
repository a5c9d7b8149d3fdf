//! `Valid<Query<T>>`: query strings checked by the type's own rules.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use http_body_util::BodyExt as _;
use serde::Deserialize;
use serde_json::Value;
use shop_http::{FieldError, Query, Valid, Validate};
use tower::ServiceExt as _;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: u32,
    #[serde(default)]
    cursor: Option<String>,
}

impl Validate for Page {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !(1..=100).contains(&self.limit) {
            errors.push(FieldError::new(
                "limit",
                "out_of_range",
                "between 1 and 100",
            ));
        }
        if self.cursor.as_deref().is_some_and(str::is_empty) {
            errors.push(FieldError::new("cursor", "empty", "must not be empty"));
        }
        errors
    }
}

fn router() -> Router {
    Router::new().route(
        "/items",
        get(|Valid(Query(page)): Valid<Query<Page>>| async move { page.limit.to_string() }),
    )
}

async fn call(uri: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let response = router()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, body.to_vec())
}

#[tokio::test]
async fn a_query_that_parses_but_breaks_its_rules_gets_a_422_listing_every_field() {
    let (status, content_type, body) = call("/items?limit=500&cursor=").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["type"], "urn:shop:problem:validation");
    assert_eq!(problem["errors"][0]["field"], "limit");
    assert_eq!(problem["errors"][0]["code"], "out_of_range");
    assert_eq!(problem["errors"][1]["field"], "cursor");
}

#[tokio::test]
async fn a_valid_query_reaches_the_handler_and_a_badly_typed_one_is_named() {
    let (status, _, body) = call("/items?limit=20").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"20");

    let (status, _, body) = call("/items?limit=many").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["errors"][0]["field"], "limit");
}
