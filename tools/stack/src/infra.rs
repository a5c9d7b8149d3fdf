//! What the services stand on: Postgres and NATS started side by side on the stack's
//! data folder, then the shop's database with every service's schema and role.

use anyhow::Context as _;
use shop_servers::{NatsOptions, NatsServer, PgOptions, PgServer};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection as _, Executor as _, PgConnection};

use crate::config::StackConfig;
use crate::output::Output;

/// Starts Postgres and NATS at once and returns when both are ready. When either
/// fails, the other is stopped again and both reasons are reported.
pub(crate) async fn start_servers(
    config: &StackConfig,
    output: &Output,
) -> anyhow::Result<(PgServer, NatsServer)> {
    let ports = &config.ports;
    let data = &config.data_dir;
    let ephemeral = config.ephemeral;
    if !data.join("pg").join("PG_VERSION").exists() {
        output.say("first run: creating a new Postgres cluster (initdb)");
    }
    output.say(&format!(
        "starting Postgres on 127.0.0.1:{} and NATS on 127.0.0.1:{} (data in {})",
        ports.postgres,
        ports.nats,
        data.display()
    ));
    let pg_options = PgOptions {
        durable: !ephemeral,
        log: output.sink("postgres"),
        remove_after_stop: ephemeral.then(|| data.join("pg")),
        ..PgOptions::new(data.join("pg"), ports.postgres)
    };
    let nats_options = NatsOptions {
        monitor_port: Some(ports.nats_monitor),
        pid_file: Some(data.join("nats.pid")),
        log: output.sink("nats"),
        remove_after_stop: ephemeral.then(|| data.join("nats")),
        ..NatsOptions::new(data.join("nats"), ports.nats)
    };
    match tokio::join!(PgServer::start(pg_options), NatsServer::start(nats_options)) {
        (Ok(postgres), Ok(nats)) => Ok((postgres, nats)),
        (Ok(postgres), Err(e)) => {
            postgres.stop().await;
            Err(e)
        }
        (Err(e), Ok(nats)) => {
            nats.stop().await;
            Err(e)
        }
        (Err(pg), Err(nats)) => anyhow::bail!("{pg:#}\n\n{nats:#}"),
    }
}

/// Creates the stack's database unless it exists, then bootstraps every service's
/// schema and role in it, with the local passwords.
pub(crate) async fn prepare_database(
    postgres: &PgServer,
    database: &str,
    output: &Output,
) -> anyhow::Result<()> {
    ensure_database(&postgres.admin_url(), database).await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&postgres.url("postgres", None, database))
        .await
        .context("connecting to the shop database as the superuser")?;
    let bootstrapped = shop_db::bootstrap(&pool, |data| shop_db::local_password(data.role)).await;
    pool.close().await;
    bootstrapped.context("bootstrapping schemas and roles")?;
    output.say(&format!(
        "database {database} ready: one schema and one role per service"
    ));
    Ok(())
}

async fn ensure_database(server_admin_url: &str, database: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(server_admin_url)
        .await
        .context("connecting to Postgres as the superuser")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let create = format!("CREATE DATABASE {}", shop_db::quote_ident(database));
        admin
            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create)))
            .await
            .with_context(|| format!("creating database {database}"))?;
    }
    let _ = admin.close().await;
    Ok(())
}
