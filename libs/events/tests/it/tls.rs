//! NATS over TLS and with credentials: the connection every service makes
//! (`connect::connect`), to a nats-server that serves TLS only or knows one user.

use std::time::Duration;

use async_nats::jetstream::stream;
use shop_events::connect::{Security, connect};
use shop_servers::{LogSink, NatsOptions, NatsServer, NatsTls};

#[tokio::test]
async fn a_service_reaches_nats_over_tls_with_its_ca_and_is_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let (cert, key) = (dir.path().join("nats.crt"), dir.path().join("nats.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let nats = NatsServer::start(NatsOptions {
        tls: Some(NatsTls {
            cert_file: cert.clone(),
            key_file: key,
        }),
        log: LogSink::File(dir.path().join("nats.log")),
        ..NatsOptions::new(dir.path().join("store"), shop_servers::free_port().unwrap())
    })
    .await
    .unwrap();
    assert!(nats.url().starts_with("tls://"), "{}", nats.url());

    // With the CA that signed the server's certificate: connected over TLS, and
    // JetStream stores and acknowledges through it.
    let with_ca = Security {
        ca_file: Some(&cert),
        credentials: None,
    };
    let (client, js) = connect(&nats.url(), "tls-test", Duration::from_secs(10), &with_ca)
        .await
        .expect("connected with the CA");
    assert!(client.server_info().tls_required);
    js.create_stream(stream::Config {
        name: "TLS_TEST".to_owned(),
        subjects: vec!["tls.>".to_owned()],
        ..Default::default()
    })
    .await
    .unwrap();
    let ack = js
        .publish("tls.one", "over tls".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 1);

    // Without it the certificate does not verify: no connection, not a plaintext one.
    let refused = connect(
        &nats.url(),
        "tls-test",
        Duration::from_millis(500),
        &Security::default(),
    )
    .await
    .map(|_| ())
    .expect_err("an unverified server is refused")
    .to_string();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    nats.stop().await;
}

#[tokio::test]
async fn a_nats_that_knows_one_user_takes_its_password_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(NatsOptions {
        credentials: Some(("shop".to_owned(), "s3cret-of-the-test".to_owned())),
        log: LogSink::File(dir.path().join("nats.log")),
        ..NatsOptions::new(dir.path().join("store"), shop_servers::free_port().unwrap())
    })
    .await
    .unwrap();
    let with = |user: &'static str, password: &'static str| Security {
        ca_file: None,
        credentials: Some((user, password)),
    };

    let (client, _js) = connect(
        &nats.url(),
        "auth-test",
        Duration::from_secs(10),
        &with("shop", "s3cret-of-the-test"),
    )
    .await
    .expect("the right password is taken");
    client.publish("auth.ok", "x".into()).await.unwrap();
    client.flush().await.unwrap();

    for (what, security) in [
        ("no credentials", Security::default()),
        ("a wrong password", with("shop", "guess")),
    ] {
        let refused = connect(
            &nats.url(),
            "auth-test",
            Duration::from_millis(500),
            &security,
        )
        .await
        .map(|_| ())
        .expect_err(what)
        .to_string();
        assert!(
            refused.to_lowercase().contains("authorization"),
            "{what}: {refused}"
        );
        assert!(
            !refused.contains("s3cret"),
            "the password is never in an error"
        );
    }
    assert!(!format!("{:?}", with("shop", "s3cret-of-the-test")).contains("s3cret"));
    nats.stop().await;
}
