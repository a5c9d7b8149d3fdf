//! `stack bootstrap`: every service's schema and role on a server the launcher did not
//! start (a Kubernetes or Compose init job), with passwords from the environment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use secrecy::SecretString;

pub(super) async fn bootstrap(args: &[&str]) -> anyhow::Result<()> {
    let url = match args {
        ["--database-url", url] => (*url).to_owned(),
        [flag] if flag.starts_with("--database-url=") => flag["--database-url=".len()..].to_owned(),
        _ => anyhow::bail!("usage: stack bootstrap --database-url URL"),
    };
    let local = std::env::var("SHOP_ENV").is_ok_and(|env| env == "local");
    let passwords = role_passwords(|name| std::env::var(name).ok(), local)?;

    // A job may start before its database: keep trying for a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pool = loop {
        match sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
        {
            Ok(pool) => break pool,
            Err(e) if Instant::now() >= deadline => {
                return Err(e).context("connecting to the database (for a minute)");
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    let bootstrapped = shop_db::bootstrap(&pool, |data| passwords[data.role].clone()).await;
    pool.close().await;
    bootstrapped?;
    println!("bootstrapped {} schemas and roles", passwords.len());
    Ok(())
}

/// Every service role's password: `SHOP_DB_PASSWORD_<ROLE>`, or (only when `local`)
/// the local default. All missing variables are named at once.
fn role_passwords(
    var: impl Fn(&str) -> Option<String>,
    local: bool,
) -> anyhow::Result<HashMap<&'static str, SecretString>> {
    let mut passwords = HashMap::new();
    let mut missing = Vec::new();
    for (_, data) in shop_topology::with_data() {
        let name = format!("SHOP_DB_PASSWORD_{}", data.role.to_uppercase());
        match var(&name).filter(|p| !p.is_empty()) {
            Some(password) => {
                passwords.insert(data.role, SecretString::from(password));
            }
            None if local => {
                passwords.insert(data.role, shop_db::local_password(data.role));
            }
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "no password for some roles: set {} (or SHOP_ENV=local for the local defaults)",
            missing.join(", ")
        );
    }
    Ok(passwords)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn bootstrap_passwords_come_from_the_environment() {
        let passwords = role_passwords(|name| Some(format!("from {name}")), false).unwrap();
        assert_eq!(
            passwords["user_svc"].expose_secret(),
            "from SHOP_DB_PASSWORD_USER_SVC"
        );
    }

    #[test]
    fn bootstrap_refuses_default_passwords_outside_local() {
        let error = role_passwords(|_| None, false).unwrap_err().to_string();
        assert!(error.contains("SHOP_DB_PASSWORD_ORDER_SVC"), "{error}");

        let local = role_passwords(|_| None, true).unwrap();
        assert_eq!(
            local["order_svc"].expose_secret(),
            "order_svc-local-password"
        );
    }
}
