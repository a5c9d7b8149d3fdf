//! What every refusal looks like from the outside.

use reqwest::{Response, StatusCode};
use serde_json::Value;

/// Asserts an RFC 9457 answer: `status`, `application/problem+json`, a body whose
/// `status` says the same and which has a `title`. Returns the body.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "a refusal is problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string(), "a problem has a title: {body}");
    body
}
