//! The gateway file reloaded without a restart: a valid change goes into force, an
//! invalid one is refused and the running configuration stays.

use std::time::Duration;

use crate::helpers::{GatewayFile, TestUpstream, eventually, one_route, spawn_gateway_on};

fn with_extra_route(prefix: &str) -> String {
    one_route(
        "svc",
        "",
        &format!(
            "[[routes]]\nname = \"extra\"\nprefix = \"{prefix}\"\nupstream = \"svc\"\npolicy = \"public\"\ntimeout_ms = 1000\n"
        ),
    )
}

#[tokio::test]
async fn a_changed_file_is_put_in_force_and_a_broken_one_keeps_the_running_config() {
    let upstream = TestUpstream::start("a").await;
    let file = GatewayFile::new(&one_route("svc", "", ""));
    let gateway = spawn_gateway_on(&file, &[("svc", upstream.url())], |s| {
        s.reload_interval_ms = 50
    })
    .await;
    let status = |path: &'static str| {
        let gateway = &gateway;
        async move {
            gateway
                .client
                .get(gateway.url(path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("/extra").await, 404);

    file.write(&with_extra_route("/extra"));
    eventually(Duration::from_secs(5), "the new route", || async {
        status("/extra").await == 200
    })
    .await;

    // A typo: an upstream nobody defined. Refused; both routes keep working.
    file.write(
        &with_extra_route("/extra2")
            .replace("upstream = \"svc\"\npolicy", "upstream = \"svx\"\npolicy"),
    );
    let refused = || {
        shop_http::observe::prometheus()
            .render()
            .lines()
            .any(|l| l.starts_with("gateway_config_reloads_total{outcome=\"refused\"}"))
    };
    eventually(Duration::from_secs(5), "the refusal", || async {
        refused()
    })
    .await;
    assert_eq!(status("/extra").await, 200);
    assert_eq!(status("/api/v1/things").await, 200);
    assert_eq!(status("/extra2").await, 404);
}

#[tokio::test]
async fn a_reload_keeps_an_unchanged_upstream_and_its_state() {
    let upstream = TestUpstream::start("a").await;
    let file = GatewayFile::new(&one_route("svc", "", ""));
    let gateway = spawn_gateway_on(&file, &[("svc", upstream.url())], |s| {
        s.reload_interval_ms = 0
    })
    .await;
    let before = gateway.handle.snapshot().backends["svc"].upstream.clone();

    file.write(&with_extra_route("/extra"));
    assert!(gateway.handle.reload().unwrap(), "the file changed");
    let after = gateway.handle.snapshot().backends["svc"].upstream.clone();
    assert!(
        std::sync::Arc::ptr_eq(&before, &after),
        "same upstream object"
    );

    file.write(&one_route(
        "svc",
        "",
        "[upstreams.svc]\nbalance = \"round_robin\"\n",
    ));
    assert!(gateway.handle.reload().unwrap());
    let changed = gateway.handle.snapshot().backends["svc"].upstream.clone();
    assert!(
        !std::sync::Arc::ptr_eq(&before, &changed),
        "a new policy, a new upstream"
    );
    assert!(
        !gateway.handle.reload().unwrap(),
        "nothing changed this time"
    );
}
