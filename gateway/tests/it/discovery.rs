//! Instances found through DNS (every address of a name), here from a hosts file the
//! test rewrites, since no DNS server can be changed on a test machine.

use std::time::Duration;

use crate::helpers::{GatewayFile, TestUpstream, eventually, one_route, spawn_gateway_on};

#[tokio::test]
async fn an_address_added_to_the_name_becomes_an_instance_and_one_removed_stops_getting_traffic() {
    let a = TestUpstream::start("a").await;
    // Same port, another loopback address: a second host behind the same name.
    let b =
        TestUpstream::start_on("b", format!("127.0.0.2:{}", a.addr.port()).parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 catalog.test\n").unwrap();
    let file = GatewayFile::new(&one_route(
        "svc",
        "",
        "[upstreams.svc]\ndns_refresh_ms = 50\nbalance = \"round_robin\"\n",
    ));
    let gateway = spawn_gateway_on(
        &file,
        &[("svc", format!("dns://catalog.test:{}", a.addr.port()))],
        |settings| settings.hosts_file = Some(hosts.clone()),
    )
    .await;
    let get = || async {
        gateway
            .client
            .get(gateway.url("/api/v1/things"))
            .send()
            .await
            .unwrap()
    };

    for _ in 0..10 {
        assert_eq!(get().await.headers()["x-upstream"], "a");
    }
    assert_eq!(b.hits(), 0);

    std::fs::write(&hosts, "127.0.0.1 catalog.test\n127.0.0.2 catalog.test\n").unwrap();
    eventually(Duration::from_secs(5), "b to be discovered", || async {
        get().await.headers()["x-upstream"] == "b"
    })
    .await;

    std::fs::write(&hosts, "127.0.0.2 catalog.test\n").unwrap();
    eventually(Duration::from_secs(5), "a to be forgotten", || async {
        let before = a.hits();
        for _ in 0..4 {
            get().await;
        }
        a.hits() == before
    })
    .await;
    for _ in 0..10 {
        assert_eq!(get().await.headers()["x-upstream"], "b");
    }
}
