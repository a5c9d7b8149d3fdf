//! The servers the tests of one binary share, and the prefixes that keep them apart.

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
async fn the_shared_nats_keeps_tests_apart_by_prefix() {
    let nats = shop_testkit::nats().await;
    let jetstream = async_nats::jetstream::new(nats.client().await);
    let (mine, theirs) = (shop_testkit::nats_prefix(), shop_testkit::nats_prefix());
    for prefix in [&mine, &theirs] {
        jetstream
            .create_stream(async_nats::jetstream::stream::Config {
                name: format!("{prefix}_ORDERS"),
                subjects: vec![format!("{prefix}.orders.>")],
                ..Default::default()
            })
            .await
            .unwrap();
    }

    jetstream
        .publish(format!("{mine}.orders.order.placed"), "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let messages = |name: String| {
        let jetstream = jetstream.clone();
        async move {
            let mut stream = jetstream.get_stream(name).await.unwrap();
            stream.info().await.unwrap().state.messages
        }
    };
    assert_eq!(messages(format!("{mine}_ORDERS")).await, 1);
    assert_eq!(messages(format!("{theirs}_ORDERS")).await, 0);
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
