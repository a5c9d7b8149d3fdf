use shop_stack::Instance;

use crate::{http, stack};

/// `GET <base>/<path>` for every instance of every service and the gateway; the ones
/// not answering 200, each with its status and the last lines it logged.
async fn not_ok(path: &str) -> Vec<String> {
    let stack = stack().await;
    let client = http();
    let mut failures = Vec::new();
    for instance in Instance::every() {
        let name = instance.name();
        let url = format!("{}{path}", stack.url_of(&instance));
        let status = match client.get(&url).send().await {
            Ok(response) => response.status().to_string(),
            Err(e) => format!("no answer: {e}"),
        };
        if status != "200 OK" {
            let tail = stack.log_tail(&name, 15).unwrap_or_default();
            failures.push(format!("{name} {url}: {status}\n{tail}"));
        }
    }
    failures
}

#[tokio::test]
async fn every_instance_of_every_service_and_the_gateway_are_alive() {
    let failures = not_ok("/healthz").await;
    assert!(
        failures.is_empty(),
        "/healthz failed:\n{}",
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn every_instance_of_every_service_and_the_gateway_reach_their_database_and_nats() {
    let failures = not_ok("/readyz").await;
    assert!(
        failures.is_empty(),
        "/readyz failed:\n{}",
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn every_context_has_its_stream_created_by_its_owner() {
    let stack = stack().await;
    let url = format!("{}/jsz?streams=true", stack.nats_monitor_url());
    let jsz: serde_json::Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    let mut names = Vec::new();
    collect_names(&jsz, &mut names);
    let owned = shop_topology::contexts().map(|events| events.stream);
    for stream in owned.chain(["DEAD_LETTERS"]) {
        assert!(
            names.contains(&stream),
            "no stream {stream} in {url}: {names:?}"
        );
    }
}

/// Every `"name"` in the monitoring document (streams sit under the account's
/// `stream_detail`).
fn collect_names<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value.as_str()) {
                    ("name", Some(name)) => out.push(name),
                    _ => collect_names(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_names(v, out)),
        _ => {}
    }
}
