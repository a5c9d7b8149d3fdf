//! Data ownership: every service owns one schema in the shared database and logs in
//! with its own role, which can touch nothing else. Which service owns which schema
//! and role is `shop_topology::SERVICES`; this crate holds the idempotent bootstrap
//! that creates them, and the pool each service opens on its schema.

use std::time::Duration;

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use shop_topology::Data;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions as _};

mod constraint;
pub use constraint::{OnConstraint, violates};

/// Whether an error says the database cannot be reached (rather than that this
/// statement failed): connection lost or refused, pool exhausted, server shutting
/// down or not accepting connections yet (SQLSTATE class 08 and 57P01-57P03). A
/// request answers it with 503 (try again), an event consumer waits it out.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// The password a role gets on a developer machine and in tests. Anywhere else the
/// passwords come from secrets and are handed to [`bootstrap`] explicitly.
pub fn local_password(role: &str) -> SecretString {
    SecretString::from(format!("{role}-local-password"))
}

/// Creates (or brings up to date) the role and schema of every service that owns data
/// (`shop_topology::with_data`, in that order) in the database that `admin` is
/// connected to. Safe to run any number of times, also concurrently (several
/// replicas' init jobs, parallel tests): runs are serialized by an advisory lock on
/// the database, and role updates that collide with a bootstrap of another database
/// on the same server are retried. Roles that exist keep existing and only get their
/// password and search path reset.
///
/// `admin` must be a superuser (or a role with CREATEROLE that owns the database).
pub async fn bootstrap(
    admin: &PgPool,
    password_for: impl Fn(&Data) -> SecretString,
) -> anyhow::Result<()> {
    let mut conn = admin.acquire().await.context("connecting as the admin")?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(BOOTSTRAP_LOCK)
        .execute(&mut *conn)
        .await
        .context("taking the bootstrap lock")?;
    let outcome = bootstrap_locked(&mut conn, password_for).await;
    // Unlock even after a failure; if this fails too, closing the connection does it.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(BOOTSTRAP_LOCK)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        conn.detach();
    }
    outcome
}

/// The advisory lock key of the bootstrap ("shopboot" in ASCII).
const BOOTSTRAP_LOCK: i64 = 0x73686f70_626f6f74;

async fn bootstrap_locked(
    admin: &mut PgConnection,
    password_for: impl Fn(&Data) -> SecretString,
) -> anyhow::Result<()> {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut *admin)
        .await
        .context("reading the current database name")?;
    let db_ident = quote_ident(&database);

    // Nobody gets anything by default: connecting and the public schema are granted
    // explicitly below, one role at a time.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "REVOKE ALL ON DATABASE {db_ident} FROM PUBLIC"
    )))
    .execute(&mut *admin)
    .await
    .context("revoking default database privileges")?;
    sqlx::raw_sql("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        .execute(&mut *admin)
        .await
        .context("revoking default privileges on schema public")?;

    for (svc, data) in shop_topology::with_data() {
        let Data { role, schema } = data;
        let password = quote_literal(password_for(&data).expose_secret());
        // CREATE ROLE has no IF NOT EXISTS; two bootstraps racing must both succeed.
        let create_role = format!(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        );
        let statements = [
            create_role,
            format!(
                "ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {password}"
            ),
            format!("ALTER ROLE {role} SET search_path = {schema}"),
            format!("GRANT CONNECT, TEMPORARY ON DATABASE {db_ident} TO {role}"),
        ];
        for sql in &statements {
            execute_retrying(&mut *admin, sql)
                .await
                .with_context(|| format!("bootstrapping role {role}"))?;
        }
        create_schema(&mut *admin, schema, role).await?;
        tracing::debug!(service = svc.name, schema, role, "schema and role ready");
    }
    Ok(())
}

/// Roles live in the cluster, not in a database, while advisory locks are scoped to
/// a database: bootstraps of two databases on one server (parallel tests) can still
/// update one role at once, and Postgres refuses the loser with "tuple concurrently
/// updated" (XX000). The statements are idempotent, so the loser simply tries again.
async fn execute_retrying(admin: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    let mut attempt = 0u32;
    loop {
        match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *admin).await {
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("XX000")
                    && e.message().contains("concurrently updated")
                    && attempt < 20 =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            other => return other.map(|_| ()),
        }
    }
}

async fn create_schema(admin: &mut PgConnection, schema: &str, role: &str) -> anyhow::Result<()> {
    let sql = format!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}");
    match sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *admin).await {
        Ok(_) => {}
        // A concurrent bootstrap created it between the check and the insert.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {}
        Err(e) => return Err(e).with_context(|| format!("creating schema {schema}")),
    }
    // The owner may already be right; saying it again keeps a re-run idempotent even if
    // someone changed it by hand.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "ALTER SCHEMA {schema} OWNER TO {role}"
    )))
    .execute(&mut *admin)
    .await
    .with_context(|| format!("setting the owner of schema {schema}"))?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"
    )))
    .execute(&mut *admin)
    .await
    .with_context(|| format!("closing schema {schema} to others"))?;
    Ok(())
}

/// Settings of a service's connection pool.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a service's pool: its own role, its own schema first on the search path.
/// Connecting is lazy so a service can start (and answer `/healthz`, with `/readyz`
/// saying not ready) while the database is still coming up.
pub fn connect_lazy(
    url: &SecretString,
    schema: &str,
    settings: &PoolSettings,
) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .expose_secret()
        .parse()
        .context("parsing the database URL")?;
    let options = options
        .options([("search_path", schema)])
        .log_statements(log::LevelFilter::Debug)
        .log_slow_statements(log::LevelFilter::Warn, Duration::from_millis(500));
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options))
}

/// Quotes an SQL identifier (a database name may hold anything).
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Quotes an SQL string literal, for the few statements (CREATE/ALTER ROLE) that
/// cannot take bind parameters.
fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_identifiers_are_quoted() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
