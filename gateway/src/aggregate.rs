//! Aggregation at the edge: `GET /api/v1/orders/{id}/details` answers with the order,
//! its payment and its shipment in one response, fetched from the three services in
//! parallel with the caller's own token (each service decides what the caller may
//! see: zero trust, the gateway only assembles).
//!
//! The order is the anchor: its answer (404 for someone else's order, 401 ...) is the
//! answer, and without it there is nothing to assemble (503). A payment or shipment
//! that does not exist yet is `null`; one whose service is down, slow or failing is
//! `null` and named in `unavailable`, so a client still sees the order instead of an
//! error page while shipping is being redeployed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts as _, Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt as _, Empty, Limited};
use serde_json::{Value, json};
use shop_auth::Authenticated;
use shop_http::Problem;
use shop_http::observe::RouteLabel;

use crate::cores::CoreClient;
use crate::edge::client::ClientKey;
use crate::state::{Gateway, Snapshot, UpstreamClient};

/// The route, for logs and metrics.
const ROUTE: &str = "order-details";
/// How long each part may take.
const PART_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest answer read from a part.
const MAX_PART_BYTES: usize = 1024 * 1024;

/// What became of one part.
enum Part {
    Found(Value),
    Missing,
    Unavailable,
    /// The service refused the caller (the order's own status, passed on).
    Refused(StatusCode, Value),
}

/// `GET /api/v1/orders/{id}/details`
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/details",
    tag = "aggregation",
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "`{order, payment, shipment, unavailable}`: payment and shipment are null when missing or unavailable; `unavailable` names the parts whose service did not answer"),
        (status = 401, description = "No valid bearer token"),
        (status = 404, description = "No such order, or someone else's"),
        (status = 503, description = "The order service is unavailable"),
    )
)]
pub async fn order_details(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut response = details(&gateway, &id, request)
        .await
        .unwrap_or_else(|refusal| refusal);
    response
        .extensions_mut()
        .insert(RouteLabel(Arc::from(ROUTE)));
    response
}

async fn details(gateway: &Gateway, id: &str, request: Request) -> Result<Response, Response> {
    let (mut parts, _) = request.into_parts();
    let Authenticated(claims) = Authenticated::from_request_parts(&mut parts, &gateway.verifier)
        .await
        .map_err(IntoResponse::into_response)?;
    let snapshot = gateway.snapshot();
    // The orders route's budget applies here as to the order itself.
    let mut decision = None;
    if let Some(limit) = snapshot
        .routes
        .find("/api/v1/orders")
        .and_then(|r| r.rate_limit.as_deref())
    {
        let checked = snapshot
            .rate_limits
            .check(limit, &ClientKey::user(claims.sub));
        if !checked.allowed() {
            return Err(checked.refusal());
        }
        decision = Some(checked);
    }
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Problem::not_found("no such order").into_response());
    }
    let token = parts.headers.get(header::AUTHORIZATION).cloned();
    let order_path = format!("/api/v1/orders/{id}");
    let payment_path = format!("/api/v2/payments?order_id={id}");
    let shipment_path = format!("/api/v1/shipments?order_id={id}");
    let client = CoreClient::of(&parts.extensions, gateway);
    let (order, payment, shipment) = tokio::join!(
        fetch(client, &snapshot, "order", &order_path, token.as_ref()),
        fetch(client, &snapshot, "payment", &payment_path, token.as_ref()),
        fetch(
            client,
            &snapshot,
            "shipping",
            &shipment_path,
            token.as_ref()
        ),
    );
    let order = match order {
        Part::Found(order) => order,
        Part::Refused(status, body) => {
            let mut refused = (status, axum::Json(body)).into_response();
            refused.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            return Err(refused);
        }
        Part::Missing => return Err(Problem::not_found("no such order").into_response()),
        Part::Unavailable => {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream-unavailable",
                "The order service is unavailable.",
            )
            .with_retry_after(1)
            .into_response());
        }
    };
    let mut unavailable = Vec::new();
    let mut value_of = |name: &'static str, part: Part| match part {
        Part::Found(v) => v,
        Part::Unavailable => {
            unavailable.push(name);
            Value::Null
        }
        Part::Missing | Part::Refused(..) => Value::Null,
    };
    let body = json!({
        "order": order,
        "payment": value_of("payment", payment),
        "shipment": value_of("shipment", shipment),
        "unavailable": unavailable,
    });
    let mut response = ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response();
    if let Some(decision) = decision {
        decision.headers(response.headers_mut());
    }
    Ok(response)
}

/// One part: GET `path` on an instance of `upstream` with the caller's token. A list
/// answer (`[...]` or `{items: [...]}`) gives its first item.
async fn fetch(
    client: &UpstreamClient,
    snapshot: &Snapshot,
    upstream: &str,
    path: &str,
    token: Option<&HeaderValue>,
) -> Part {
    let Some(backend) = snapshot.backends.get(upstream) else {
        return Part::Unavailable;
    };
    let Ok(permit) = backend.breaker.try_acquire() else {
        return Part::Unavailable;
    };
    let Some(lease) = backend.upstream.pick() else {
        permit.failure();
        return Part::Unavailable;
    };
    let Ok(uri) = lease.instance().uri(path) else {
        return Part::Unavailable;
    };
    let mut request =
        http::Request::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(token) = token {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, token.clone());
    }
    shop_telemetry::inject_current_context(request.headers_mut());
    let answer = tokio::time::timeout(PART_TIMEOUT, async {
        let response = client.request(request).await.ok()?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_PART_BYTES)
            .collect()
            .await
            .ok()?
            .to_bytes();
        Some((
            status,
            serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
        ))
    })
    .await
    .ok()
    .flatten();
    let Some((status, body)) = answer else {
        permit.failure();
        lease.report(crate::upstream::Outcome::Failure);
        return Part::Unavailable;
    };
    if status.is_server_error() {
        permit.failure();
        lease.report(crate::upstream::Outcome::Failure);
        return Part::Unavailable;
    }
    permit.success();
    lease.report(crate::upstream::Outcome::Success);
    match status {
        StatusCode::OK => first(body).map_or(Part::Missing, Part::Found),
        StatusCode::NOT_FOUND => Part::Missing,
        refused => Part::Refused(refused, body),
    }
}

fn first(body: Value) -> Option<Value> {
    match body {
        Value::Array(items) => items.into_iter().next(),
        Value::Object(mut object) => match object.remove("items") {
            Some(Value::Array(items)) => items.into_iter().next(),
            Some(other) => {
                object.insert("items".to_owned(), other);
                Some(Value::Object(object))
            }
            None => Some(Value::Object(object)),
        },
        _ => None,
    }
}
