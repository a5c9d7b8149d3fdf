//! A real nats-server with JetStream.

use std::net::TcpListener;
use std::time::Duration;

use shop_servers::{LogSink, NatsOptions, NatsServer};

use crate::scratch;

/// A throw-away server's options: its folder deleted when it stops.
fn throw_away(root: &std::path::Path, port: u16) -> NatsOptions {
    NatsOptions {
        log: LogSink::File(root.join("nats.log")),
        remove_after_stop: Some(root.to_path_buf()),
        ..NatsOptions::new(root.join("store"), port)
    }
}

#[tokio::test]
async fn a_started_nats_stores_messages_in_jetstream() {
    let root = scratch("shop-servers-nats-");
    let nats = NatsServer::start(throw_away(&root, shop_servers::free_port().unwrap()))
        .await
        .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();

    let ack = jetstream
        .publish("orders.order.placed", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();

    assert_eq!(ack.sequence, 1);
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    nats.stop().await;
    assert!(!root.exists(), "a throw-away server removes its folder");
}

#[tokio::test]
async fn a_nats_left_running_is_found_through_its_pid_file_and_stopped() {
    let root = scratch("shop-servers-nats-");
    let pid_file = root.join("nats.pid");
    let nats = NatsServer::start(NatsOptions {
        pid_file: Some(pid_file.clone()),
        ..throw_away(&root, shop_servers::free_port().unwrap())
    })
    .await
    .unwrap();

    let stopped = shop_servers::nats::stop_orphan(&pid_file).await.unwrap();

    assert_eq!(stopped, Some(nats.process().pid()));
    tokio::time::timeout(Duration::from_secs(10), nats.process().exited())
        .await
        .expect("the server exited");
    assert!(!pid_file.exists(), "the pid file goes with it");
    nats.stop().await;
}

#[tokio::test]
async fn a_taken_port_fails_the_start_and_says_so() {
    let root = scratch("shop-servers-nats-");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();

    let error = NatsServer::start(throw_away(&root, port))
        .await
        .unwrap_err();

    // The test kit retries on exactly this message.
    let message = format!("{error:#}").to_lowercase();
    assert!(message.contains("already in use"), "{message}");
}
