//! The servers integration tests share: started once per test binary, on free ports,
//! in temporary folders, and gone (folders too) when the test binary exits.
//!
//! Cargo's harness never drops statics, so nothing here relies on `Drop`: each server
//! runs beside a watchdog (see [`shop_servers::process`]) that stops it and deletes its folder
//! when this process exits. Each `#[tokio::test]` has a runtime of its own, so the
//! statics hold no pools or tasks: only processes and URLs.

use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tokio::sync::OnceCell;

use shop_servers::{LogSink, NatsOptions, NatsServer, PgOptions, PgServer};

/// The Postgres the tests of this binary share.
#[derive(Debug)]
pub struct TestPostgres {
    admin_url: String,
    host: String,
    port: u16,
    _server: Option<PgServer>,
}

impl TestPostgres {
    /// A superuser URL (on the `postgres` database, or whatever `DATABASE_URL` names).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// The nats-server (JetStream on) the tests of this binary share.
#[derive(Debug)]
pub struct TestNats {
    url: String,
    _server: Option<NatsServer>,
}

impl TestNats {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A fresh client, connected in the caller's runtime.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test NATS at {}: {e}", self.url))
    }
}

static POSTGRES: OnceCell<Result<TestPostgres, String>> = OnceCell::const_new();
static NATS: OnceCell<Result<TestNats, String>> = OnceCell::const_new();

/// The shared test Postgres: the server at `DATABASE_URL` (a superuser URL) when set,
/// otherwise one started for this test binary. Panics with the reason if it cannot start.
pub async fn postgres() -> &'static TestPostgres {
    let started = POSTGRES
        .get_or_init(|| async { start_postgres().await.map_err(|e| format!("{e:#}")) })
        .await;
    match started {
        Ok(pg) => pg,
        Err(e) => panic!("the test Postgres is not available: {e}"),
    }
}

/// The shared test NATS: the server at `NATS_URL` when set, otherwise one started for
/// this test binary. Panics with the reason if it cannot start.
pub async fn nats() -> &'static TestNats {
    let started = NATS
        .get_or_init(|| async { start_nats().await.map_err(|e| format!("{e:#}")) })
        .await;
    match started {
        Ok(nats) => nats,
        Err(e) => panic!("the test NATS is not available: {e}"),
    }
}

/// Attempts per server: a free port can be taken by someone else before we bind it.
const ATTEMPTS: u32 = 3;

async fn start_postgres() -> anyhow::Result<TestPostgres> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let options: PgConnectOptions = url.parse().context("parsing DATABASE_URL")?;
        return Ok(TestPostgres {
            host: options.get_host().to_owned(),
            port: options.get_port(),
            admin_url: url,
            _server: None,
        });
    }
    let mut attempt = 1;
    loop {
        let root = tempfile::Builder::new()
            .prefix("shop-test-pg-")
            .tempdir()?
            .keep();
        if let Some(owner) = shop_servers::postgres::postgres_owner()? {
            owner.chown(&root)?;
        }
        let port = shop_servers::free_port()?;
        let options = PgOptions {
            data_dir: root.join("data"),
            port,
            durable: false,
            max_connections: 200,
            log: LogSink::File(root.join("postgres.log")),
            remove_after_stop: Some(root),
            start_timeout: Duration::from_secs(60),
            settings: Vec::new(),
        };
        match PgServer::start(options).await {
            Ok(server) => {
                return Ok(TestPostgres {
                    admin_url: server.admin_url(),
                    host: "127.0.0.1".into(),
                    port,
                    _server: Some(server),
                });
            }
            Err(e) if attempt < ATTEMPTS && port_was_taken(&e) => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

async fn start_nats() -> anyhow::Result<TestNats> {
    if let Ok(url) = std::env::var("NATS_URL") {
        return Ok(TestNats { url, _server: None });
    }
    let mut attempt = 1;
    loop {
        let root = tempfile::Builder::new()
            .prefix("shop-test-nats-")
            .tempdir()?
            .keep();
        let options = NatsOptions {
            log: LogSink::File(root.join("nats.log")),
            remove_after_stop: Some(root.clone()),
            ..NatsOptions::new(root.join("store"), shop_servers::free_port()?)
        };
        match NatsServer::start(options).await {
            Ok(server) => {
                return Ok(TestNats {
                    url: server.url(),
                    _server: Some(server),
                });
            }
            Err(e) if attempt < ATTEMPTS && port_was_taken(&e) => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

fn port_was_taken(error: &anyhow::Error) -> bool {
    format!("{error:#}")
        .to_lowercase()
        .contains("already in use")
}

/// A database of its own for one test: created on the shared server, with every
/// service's schema and role bootstrapped (`shop_db::bootstrap`, local passwords).
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    admin_url: String,
    host: String,
    port: u16,
    admin_pool: PgPool,
}

impl TestDatabase {
    /// The superuser on this database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// A small superuser pool on this database.
    pub fn admin_pool(&self) -> &PgPool {
        &self.admin_pool
    }

    /// `postgres://<role>:<local password>@<host>:<port>/<db>` for a service
    /// (`user`, `catalog` ...). Panics on a name that owns no data in
    /// `shop_topology::SERVICES`.
    pub fn service_url(&self, service: &str) -> String {
        let data = shop_topology::service(service)
            .and_then(|svc| svc.data)
            .unwrap_or_else(|| panic!("no service named {service:?} owns data in shop_topology"));
        let password = shop_db::local_password(data.role);
        format!(
            "postgres://{}:{}@{}:{}/{}",
            data.role,
            password.expose_secret(),
            self.host,
            self.port,
            self.name
        )
    }
}

/// Creates a uniquely named database (`t_<uuid>`) and bootstraps it. Panics with
/// the reason on failure. The databases live as long as the test server does.
pub async fn fresh_database() -> TestDatabase {
    match create_database().await {
        Ok(db) => db,
        Err(e) => panic!("could not create a test database: {e:#}"),
    }
}

async fn create_database() -> anyhow::Result<TestDatabase> {
    let pg = postgres().await;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(pg.admin_url())
        .await
        .context("connecting as the superuser")?;
    let create = format!("CREATE DATABASE {}", shop_db::quote_ident(&name));
    admin
        .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create)))
        .await
        .with_context(|| format!("creating database {name}"))?;
    let admin_url = with_database(pg.admin_url(), &name);
    let admin_pool = PgPoolOptions::new()
        .max_connections(5)
        .connect(&admin_url)
        .await
        .with_context(|| format!("connecting to {name}"))?;

    // Roles are cluster-wide; shop_db::bootstrap serializes concurrent runs itself.
    let bootstrapped =
        shop_db::bootstrap(&admin_pool, |svc| shop_db::local_password(svc.role)).await;
    let _ = admin.close().await;
    bootstrapped.with_context(|| format!("bootstrapping {name}"))?;

    Ok(TestDatabase {
        name,
        admin_url,
        host: pg.host().to_owned(),
        port: pg.port(),
        admin_pool,
    })
}

/// The same URL, naming another database.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A unique prefix for the streams, subjects and consumers of one test, so parallel
/// tests on the shared NATS never see each other's messages: `t` + 12 hex digits.
pub fn nats_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t{}", &id[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_can_point_at_another_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t_1"),
            "postgres://postgres@127.0.0.1:5432/t_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1?sslmode=disable", "t_2"),
            "postgres://u:p@h:1/t_2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h/db/x?a=b", "t_3"),
            "postgres://h/t_3?a=b"
        );
    }

    #[test]
    fn nats_prefixes_are_unique_and_valid_stream_names() {
        let (a, b) = (nats_prefix(), nats_prefix());
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
