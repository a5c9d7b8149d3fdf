//! The consumer-driven contract test. `services/payment/contracts/consumers.json`
//! says what the payment service's consumers rely on: the order service, the fields
//! and types of the `payments.payment.*` answers it decodes; the gateway's
//! aggregation, what it reads from `GET /api/v2/payments?order_id=`. This test drives
//! the real service into each `given` state through real commands, takes its real
//! answer and checks every expectation: a provider change that breaks a consumer
//! fails here, in the provider's build, not in production.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, User, authorize_command, eventually, spawn_app};

#[derive(Debug, Deserialize)]
struct Contracts {
    consumers: Vec<Consumer>,
}

#[derive(Debug, Deserialize)]
struct Consumer {
    consumer: String,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    requests: Vec<Request>,
}

/// An event the consumer reads, after the `given` steps.
#[derive(Debug, Deserialize)]
struct Message {
    given: String,
    subject: String,
    version: u64,
    fields: BTreeMap<String, Field>,
}

/// A request the consumer makes, after the `given` steps.
#[derive(Debug, Deserialize)]
struct Request {
    given: String,
    /// `owner`, `admin` or `someone else`.
    #[serde(rename = "as")]
    caller: String,
    method: String,
    /// With `{order_id}` for the order of the `given` steps.
    path: String,
    status: u16,
    fields: BTreeMap<String, Field>,
}

/// What a field must be: a type, or a type with a rule.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Field {
    Type(String),
    Rule {
        #[serde(rename = "type")]
        kind: String,
        one_of: Option<Vec<Value>>,
        equals: Option<Value>,
        prefix: Option<String>,
        length: Option<usize>,
    },
}

fn contracts() -> Contracts {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contracts/consumers.json");
    let text = std::fs::read_to_string(path).expect("the consumers' contract file");
    serde_json::from_str(&text).expect("the contract file parses")
}

#[tokio::test]
async fn the_service_meets_every_expectation_its_consumers_wrote_down() {
    let app = spawn_app().await;
    let owner = app.customer().await;
    let contracts = contracts();
    let mut broken = Vec::new();
    let mut checked = 0;

    for consumer in &contracts.consumers {
        for expected in &consumer.messages {
            let (_, answer) = given(&app, &owner, &expected.given).await;
            let at = format!(
                "{} <- {} ({})",
                consumer.consumer, expected.subject, expected.given
            );
            if answer["type"] != expected.subject.as_str() {
                broken.push(format!("{at}: answered {} instead", answer["type"]));
                continue;
            }
            if answer["version"] != expected.version {
                broken.push(format!("{at}: version {} instead", answer["version"]));
            }
            broken.extend(
                check(&answer["data"], &expected.fields)
                    .into_iter()
                    .map(|e| format!("{at}: {e}")),
            );
            checked += 1;
        }
        for expected in &consumer.requests {
            let (order, _) = given(&app, &owner, &expected.given).await;
            let caller = match expected.caller.as_str() {
                "owner" => User {
                    token: owner.token.clone(),
                    id: owner.id,
                },
                "admin" => app.admin().await,
                "someone else" => app.customer().await,
                other => panic!("unknown caller {other:?} in the contract file"),
            };
            assert_eq!(expected.method, "GET", "only reads are offered");
            let path = expected.path.replace("{order_id}", &order.to_string());
            let at = format!(
                "{} -> {} {path} as {} ({})",
                consumer.consumer, expected.method, expected.caller, expected.given
            );
            let response = app.get_as(&path, &caller).await;
            if response.status().as_u16() != expected.status {
                broken.push(format!(
                    "{at}: status {} instead of {}",
                    response.status(),
                    expected.status
                ));
                continue;
            }
            let body: Value = response.json().await.unwrap();
            broken.extend(
                check(&body, &expected.fields)
                    .into_iter()
                    .map(|e| format!("{at}: {e}")),
            );
            checked += 1;
        }
    }

    assert!(
        broken.is_empty(),
        "consumer expectations broken:\n{}",
        broken.join("\n")
    );
    assert_eq!(checked, 8, "every expectation of the file was checked");
}

#[test]
fn an_answer_that_breaks_an_expectation_is_reported_field_by_field() {
    let contracts = contracts();
    let gateway = contracts
        .consumers
        .iter()
        .find(|c| c.consumer == "gateway")
        .unwrap();
    let expected = &gateway.requests[0].fields;
    let good = serde_json::json!({"items": [{
        "id": "pay_01936f0e7c4a7d3e9a516f1b2c3d4e5f",
        "state": "captured",
        "amount": {"value": 1299, "currency": "EUR"},
    }]});
    assert_eq!(check(&good, expected), Vec::<String>::new());

    // What a careless v2 change would do: v1's id, a renamed state, a decimal amount.
    let broken = serde_json::json!({"items": [{
        "id": "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e5f",
        "status": "CAPTURED",
        "amount": {"value": "12.99", "currency": "EUR"},
    }]});
    let reported = check(&broken, expected);
    assert_eq!(reported.len(), 3, "{reported:?}");
    for field in ["items[0].id", "items[0].state", "items[0].amount.value"] {
        assert!(
            reported.iter().any(|r| r.starts_with(field)),
            "{field}: {reported:?}"
        );
    }

    let order = contracts
        .consumers
        .iter()
        .find(|c| c.consumer == "order")
        .unwrap();
    let declined = order
        .messages
        .iter()
        .find(|m| m.given == "authorize with tok_chargeDeclined")
        .unwrap();
    let without_reason = serde_json::json!({"payment_id": Uuid::now_v7(), "order_id": "42"});
    assert_eq!(
        check(&without_reason, &declined.fields),
        ["order_id: \"42\" is not of type uuid", "reason: missing"]
    );
}

/// Runs the `given` steps for a new order of `owner`'s and returns the order id and
/// the envelope answering the last step.
async fn given(app: &TestApp, owner: &User, steps: &str) -> (Uuid, Value) {
    let order = Uuid::now_v7();
    for (n, step) in steps.split(", ").enumerate() {
        let step = step.strip_prefix("then ").unwrap_or(step);
        if let Some(token) = step.strip_prefix("authorize with ") {
            app.publish(authorize_command(order, owner.id, token)).await;
        } else if step == "capture" {
            app.capture(order).await;
        } else if step == "void" {
            app.void(order).await;
        } else {
            panic!("unknown step {step:?} in the contract file: the provider cannot set it up");
        }
        eventually(&format!("the answer to {step:?}"), || async {
            envelopes(app, order).await.len() > n
        })
        .await;
    }
    let last = envelopes(app, order).await.pop().unwrap();
    (order, last)
}

/// The envelopes the service wrote about `order`, oldest first: what it published.
async fn envelopes(app: &TestApp, order: Uuid) -> Vec<Value> {
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM payments.outbox ORDER BY created_at, id")
            .fetch_all(app.db.admin_pool())
            .await
            .unwrap();
    payloads
        .iter()
        .map(|p| serde_json::from_slice::<Value>(p).unwrap())
        .filter(|e| e["data"]["order_id"] == order.to_string())
        .collect()
}

/// Every field of `fields` that `answer` does not meet, as `path: why`.
fn check(answer: &Value, fields: &BTreeMap<String, Field>) -> Vec<String> {
    let mut broken = Vec::new();
    for (path, field) in fields {
        let Some(value) = lookup(answer, path) else {
            broken.push(format!("{path}: missing"));
            continue;
        };
        let (kind, rule) = match field {
            Field::Type(kind) => (kind, None),
            Field::Rule { kind, .. } => (kind, Some(field)),
        };
        if !has_type(value, kind) {
            broken.push(format!("{path}: {value} is not of type {kind}"));
            continue;
        }
        if let Some(Field::Rule {
            one_of,
            equals,
            prefix,
            length,
            ..
        }) = rule
        {
            if let Some(allowed) = one_of
                && !allowed.contains(value)
            {
                broken.push(format!("{path}: {value} is not one of {allowed:?}"));
            }
            if let Some(expected) = equals
                && value != expected
            {
                broken.push(format!("{path}: {value} is not {expected}"));
            }
            if let Some(prefix) = prefix
                && !value
                    .as_str()
                    .is_some_and(|s| s.starts_with(prefix.as_str()))
            {
                broken.push(format!("{path}: {value} does not start with {prefix:?}"));
            }
            if let Some(length) = length
                && value.as_array().map(Vec::len) != Some(*length)
            {
                broken.push(format!("{path}: {value} does not have {length} items"));
            }
        }
    }
    broken
}

/// `items[0].amount.value` in `value`.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(value, |at, segment| match segment.split_once('[') {
            Some((key, index)) => {
                let index: usize = index.strip_suffix(']')?.parse().ok()?;
                at.get(key)?.get(index)
            }
            None => at.get(segment),
        })
}

fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "uuid" => value.as_str().is_some_and(|s| Uuid::try_parse(s).is_ok()),
        "timestamp" => value
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown type {other:?} in the contract file"),
    }
}
