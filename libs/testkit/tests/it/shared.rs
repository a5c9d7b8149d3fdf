use sqlx::{Connection as _, PgConnection};

#[tokio::test]
async fn the_shared_postgres_answers_as_superuser() {
    let pg = shop_testkit::postgres().await;
    let mut conn = PgConnection::connect(pg.admin_url()).await.unwrap();
    let is_superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(is_superuser);
}

#[tokio::test]
async fn the_shared_nats_stores_messages_in_jetstream() {
    let nats = shop_testkit::nats().await;
    let jetstream = async_nats::jetstream::new(nats.client().await);
    let prefix = shop_testkit::nats_prefix();
    let mut stream = jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: format!("{prefix}_ORDERS"),
            subjects: vec![format!("{prefix}.orders.>")],
            ..Default::default()
        })
        .await
        .unwrap();

    let ack = jetstream
        .publish(format!("{prefix}.orders.order.placed"), "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();

    assert_eq!(ack.sequence, 1);
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn tests_in_one_binary_share_one_postgres_and_one_nats() {
    let (a, b) = (
        shop_testkit::postgres().await,
        shop_testkit::postgres().await,
    );
    assert!(std::ptr::eq(a, b));
    let (a, b) = (shop_testkit::nats().await, shop_testkit::nats().await);
    assert_eq!(a.url(), b.url());
}
