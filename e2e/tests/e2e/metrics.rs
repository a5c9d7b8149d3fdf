//! Every metric the alert rules and the Grafana dashboards use
//! (`observability/`, listed by `tools/metric-names`) is exported by the running shop:
//! a rule over a name nothing exports never fires, and a panel over one stays empty,
//! both silently.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::checkout::Shopper;
use crate::{http, stack};

/// The names the rules and dashboards use, as `tools/metric-names` prints them
/// (histograms as their `_bucket`, `_sum` and `_count` series).
fn names_used() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new("python3")
        .arg(root.join("tools/metric-names"))
        .output()
        .expect("python3 runs tools/metric-names");
    assert!(
        output.status.success(),
        "tools/metric-names failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: BTreeSet<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        names.len() > 20,
        "too few names to be the real list: {names:?}"
    );
    names
}

/// Names the rules or dashboards use that exist only under a configuration the
/// shipped one does not have, each with where it is exported and tested.
const CONDITIONAL: &[(&str, &str)] = &[(
    "gateway_release_requests_total",
    "only for a route with a canary, which gateway/gateway.toml has none of (the canary \
     example in k8s/components/catalog-canary has); gateway/tests/it/release.rs checks it",
)];

/// The series names in a Prometheus text exposition.
fn exported(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
}

#[tokio::test]
async fn every_metric_the_alerts_and_dashboards_use_is_exported() {
    let stack = stack().await;
    let used = names_used();
    for (name, _) in CONDITIONAL {
        assert!(
            used.contains(*name),
            "{name} is no longer used: drop it from CONDITIONAL"
        );
    }
    // One checkout through every service, so the event and saga series exist.
    let shop = Shopper::new(&stack).await;
    let (product, _) = shop.product(1500, 5).await;
    let order = shop
        .order(json!([{"product_id": product, "quantity": 1}]), "tok_visa")
        .await;
    shop.reaches(&order, "CONFIRMED").await;

    let client = http();
    let targets: Vec<String> = shop_topology::SERVICES
        .iter()
        .flat_map(|service| stack.base_urls(service.name))
        .collect();
    // Gauges set by periodic jobs (orders per state, rate-limit clients) take a turn
    // of their job to appear.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = BTreeSet::new();
        for target in &targets {
            if let Ok(response) = client.get(format!("{target}/metrics")).send().await
                && let Ok(text) = response.text().await
            {
                seen.extend(exported(&text).map(str::to_owned));
            }
        }
        let missing: Vec<&String> = used
            .difference(&seen)
            .filter(|name| !CONDITIONAL.iter().any(|(n, _)| n == name))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rules or dashboards use metrics nothing exports: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[test]
fn the_exposition_parser_takes_the_series_name_only() {
    let text = "# HELP x y\n# TYPE a counter\na_total{b=\"c\"} 1\nd 2\n\ne_bucket{le=\"0.1\"} 3\n";
    let names: Vec<&str> = exported(text).collect();
    assert_eq!(names, ["a_total", "d", "e_bucket"]);
}
