//! A real PostgreSQL server in a folder of our choosing.

use std::net::TcpListener;
use std::time::Duration;

use shop_servers::{LogSink, PgOptions, PgServer};
use sqlx::{Connection as _, PgConnection};

use crate::scratch;

/// A throw-away server's options: no fsync, its folder deleted when it stops.
fn throw_away(root: &std::path::Path, port: u16) -> PgOptions {
    PgOptions {
        durable: false,
        log: LogSink::File(root.join("postgres.log")),
        remove_after_stop: Some(root.to_path_buf()),
        ..PgOptions::new(root.join("data"), port)
    }
}

#[tokio::test]
async fn a_started_postgres_answers_its_superuser_on_the_loopback_only() {
    let root = scratch("shop-servers-pg-");
    let pg = PgServer::start(throw_away(&root, shop_servers::free_port().unwrap()))
        .await
        .unwrap();

    let mut conn = PgConnection::connect(&pg.admin_url()).await.unwrap();
    let (is_superuser, listens_on): (bool, String) = sqlx::query_as(
        "SELECT rolsuper, current_setting('listen_addresses') \
         FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    assert!(is_superuser);
    assert_eq!(listens_on, "127.0.0.1");
    assert!(pg.stop().await.success(), "a fast shutdown is a clean exit");
    assert!(!root.exists(), "a throw-away server removes its folder");
}

#[tokio::test]
async fn a_second_start_on_the_same_folder_keeps_the_data() {
    let root = scratch("shop-servers-pg-");
    let options = || PgOptions {
        remove_after_stop: None,
        ..throw_away(&root, shop_servers::free_port().unwrap())
    };
    let first = PgServer::start(options()).await.unwrap();
    let mut conn = PgConnection::connect(&first.admin_url()).await.unwrap();
    sqlx::query("CREATE TABLE kept (id int)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    first.stop().await;

    let second = PgServer::start(PgOptions {
        remove_after_stop: Some(root.clone()),
        ..options()
    })
    .await
    .unwrap();
    let mut conn = PgConnection::connect(&second.admin_url()).await.unwrap();
    let kept: Option<String> = sqlx::query_scalar("SELECT to_regclass('kept')::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    second.stop().await;

    assert_eq!(kept.as_deref(), Some("kept"));
}

#[tokio::test]
async fn a_postgres_left_running_is_found_through_its_pid_file_and_stopped() {
    let root = scratch("shop-servers-pg-");
    let pg = PgServer::start(throw_away(&root, shop_servers::free_port().unwrap()))
        .await
        .unwrap();

    let stopped = shop_servers::postgres::stop_orphan(pg.data_dir())
        .await
        .unwrap();

    assert_eq!(stopped, Some(pg.process().pid()));
    tokio::time::timeout(Duration::from_secs(10), pg.process().exited())
        .await
        .expect("the server exited");
    pg.stop().await;
    assert_eq!(
        shop_servers::postgres::stop_orphan(&root).await.unwrap(),
        None,
        "nothing left to stop"
    );
}

#[tokio::test]
async fn a_taken_port_fails_the_start_and_says_so() {
    let root = scratch("shop-servers-pg-");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();

    let error = PgServer::start(throw_away(&root, port)).await.unwrap_err();

    // The test kit retries on exactly this message.
    let message = format!("{error:#}").to_lowercase();
    assert!(message.contains("already in use"), "{message}");
}
