use crate::{http, stack};

/// `GET <base>/<path>` for every service and the gateway; the ones not answering 200,
/// each with its status and the last lines it logged.
async fn not_ok(path: &str) -> Vec<String> {
    let stack = stack().await;
    let client = http();
    let mut failures = Vec::new();
    for service in shop_stack::SERVICES {
        let url = format!("{}{path}", stack.base_url(service.name));
        let status = match client.get(&url).send().await {
            Ok(response) => response.status().to_string(),
            Err(e) => format!("no answer: {e}"),
        };
        if status != "200 OK" {
            let tail = stack.log_tail(service.name, 15).unwrap_or_default();
            failures.push(format!("{} {url}: {status}\n{tail}", service.name));
        }
    }
    failures
}

#[tokio::test]
async fn every_service_and_the_gateway_are_alive() {
    let failures = not_ok("/healthz").await;
    assert!(
        failures.is_empty(),
        "/healthz failed:\n{}",
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn every_service_and_the_gateway_reach_their_database_and_nats() {
    let failures = not_ok("/readyz").await;
    assert!(
        failures.is_empty(),
        "/readyz failed:\n{}",
        failures.join("\n\n")
    );
}
