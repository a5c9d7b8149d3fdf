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

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key, as PEM files in
/// `dir`, readable by the server only (Postgres refuses a key others can read).
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    if let Some(owner) = shop_servers::postgres::postgres_owner().unwrap() {
        for path in [dir, cert.as_path(), key.as_path()] {
            owner.chown(path).unwrap();
        }
    }
    (cert, key)
}

#[tokio::test]
async fn the_services_reach_a_postgres_over_tls_and_verify_its_certificate() {
    let root = scratch("shop-servers-pg-tls-");
    let (cert, key) = certificate(&root.join("tls"));
    let pg = PgServer::start(PgOptions {
        settings: vec![
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ],
        ..throw_away(&root, shop_servers::free_port().unwrap())
    })
    .await
    .unwrap();
    let encrypted = |url: String| async move {
        let mut conn = PgConnection::connect(&url).await?;
        let ssl: (bool, String) =
            sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut conn)
                .await?;
        conn.close().await?;
        Ok::<_, sqlx::Error>(ssl)
    };

    // What the prod overlay's URLs ask for (`sslmode=require`): encrypted.
    let (ssl, version) = encrypted(format!("{}?sslmode=require", pg.admin_url()))
        .await
        .expect("sqlx speaks TLS to Postgres");
    assert!(ssl, "the connection is encrypted");
    assert!(version.starts_with("TLSv1."), "{version}");

    // verify-full with the server's certificate as the root: verified, and encrypted.
    let trusting = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.admin_url(),
        cert.display()
    );
    assert!(encrypted(trusting).await.unwrap().0);

    // verify-full against another root: refused, so the check is real.
    let elsewhere = root.join("other");
    let (other, _) = certificate(&elsewhere);
    let doubting = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.admin_url(),
        other.display()
    );
    assert!(
        encrypted(doubting).await.is_err(),
        "a certificate no trusted root signed is refused"
    );
    pg.stop().await;
}
