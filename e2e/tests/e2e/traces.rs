//! An OTLP receiver of the test's own, which every process of the stack exports its
//! spans to (`OTEL_EXPORTER_OTLP_ENDPOINT`), and the check that one checkout is one
//! trace across every hop.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use serde_json::json;

use crate::{http, stack, within};

/// One span as received: its trace, the service that sent it, its name.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub service: String,
    pub name: String,
}

static SPANS: Mutex<Vec<ReceivedSpan>> = Mutex::new(Vec::new());

/// Starts the receiver on a free port and returns its base URL (the value of
/// `OTEL_EXPORTER_OTLP_ENDPOINT`). It runs on a thread of its own: each test has its
/// own runtime, and the receiver must outlive the test that started the stack.
pub fn start_receiver() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/v1/traces",
        post(|body: Bytes| async move {
            if let Ok(request) = ExportTraceServiceRequest::decode(body) {
                let mut spans = SPANS.lock().unwrap();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                            AnyValue::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            spans.push(ReceivedSpan {
                                trace_id: span
                                    .trace_id
                                    .iter()
                                    .map(|b| format!("{b:02x}"))
                                    .collect(),
                                service: service.clone(),
                                name: span.name,
                            });
                        }
                    }
                }
            }
            (
                [("content-type", "application/x-protobuf")],
                Vec::<u8>::new(),
            )
        }),
    );
    std::thread::Builder::new()
        .name("otlp-receiver".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the receiver");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("the listener");
                let _ = axum::serve(listener, app).await;
            });
        })?;
    Ok(format!("http://{addr}"))
}

fn spans_of(trace_id: &str) -> Vec<ReceivedSpan> {
    SPANS
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .cloned()
        .collect()
}

#[tokio::test]
async fn one_checkout_is_one_trace_across_the_gateway_and_every_service_and_nats_hop() {
    let stack = stack().await;
    let client = http();
    let gateway = stack.base_url("gateway");
    let email = format!("traced-{:016x}@shop.test", fastrand::u64(..));
    let password = "a-long-enough-password";
    client
        .post(format!("{gateway}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": password, "name": "Traced"}))
        .send()
        .await
        .unwrap();
    let pair: serde_json::Value = client
        .post(format!("{gateway}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = pair["access_token"].as_str().unwrap();
    let products: serde_json::Value = client
        .get(format!("{gateway}/api/v1/products?in_stock=true&limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = products["items"][0]["id"].as_str().unwrap();

    let placed = client
        .post(format!("{gateway}/api/v1/orders"))
        .bearer_auth(token)
        .header(
            "idempotency-key",
            format!("trace-{:032x}", fastrand::u128(..)),
        )
        .json(&json!({
            "items": [{"product_id": product, "quantity": 1}],
            "shipping_address": {"name": "T", "line1": "1 Trace Road", "city": "Oslo",
                                 "postal_code": "0150", "country": "NO"},
            "payment": {"card_token": "tok_visa"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    let trace_id = placed.headers()["x-trace-id"].to_str().unwrap().to_owned();

    let wanted = [
        "gateway",
        "order",
        "catalog",
        "inventory",
        "payment",
        "shipping",
    ];
    let services = within(
        Duration::from_secs(60),
        "spans of every service in the checkout's trace",
        || async {
            let services: BTreeSet<String> =
                spans_of(&trace_id).into_iter().map(|s| s.service).collect();
            wanted
                .iter()
                .all(|w| services.iter().any(|s| s.starts_with(w)))
                .then_some(services)
        },
    )
    .await;
    // Each NATS hop is a consumer span (`event.handle`) whose parent is the span that
    // wrote the event to its outbox: the reserve command in the inventory, its answer in
    // the order, the authorize command in the payment, the confirmation in shipping.
    let hops: BTreeSet<String> = spans_of(&trace_id)
        .into_iter()
        .filter(|s| s.name == "event.handle")
        .map(|s| s.service)
        .collect();
    for consumer in ["inventory", "order", "payment", "shipping"] {
        assert!(
            hops.iter().any(|s| s.starts_with(consumer)),
            "a NATS hop into {consumer} in {hops:?} (services: {services:?})"
        );
    }
}
