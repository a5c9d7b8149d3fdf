//! The environment every service is started with: the launcher's side of the
//! services' configuration contract.

use std::path::Path;

use secrecy::ExposeSecret as _;
use shop_topology::SERVICES;

use crate::config::Ports;
use crate::instance::Instance;

/// What the environment of a service is made from.
#[derive(Debug, Clone, Copy)]
pub struct EnvContext<'a> {
    pub ports: &'a Ports,
    pub database: &'a str,
    pub signing_key: &'a Path,
    pub log_format: &'a str,
    /// The demo catalog, for the services that load it.
    pub demo_file: Option<&'a Path>,
}

/// Services that call other services over HTTP get their upstreams' base URLs: every
/// instance's, comma-separated, so they can balance over them.
const NEEDS_UPSTREAMS: &[&str] = &["gateway", "order"];

/// The services that load the demo file: the catalog its products, the inventory
/// their stock.
const LOADS_DEMO: &[&str] = &["catalog", "inventory"];

/// The variables set for one instance of a service (on top of the launcher's own
/// environment, which passes through: `RUST_LOG`, `OTEL_*` ...). The instances of a
/// service differ only in their port.
pub fn service_env(instance: &Instance, ctx: &EnvContext<'_>) -> Vec<(String, String)> {
    let spec = instance.spec;
    let ports = ctx.ports;
    let mut env = vec![
        ("SHOP_ENV".to_owned(), "local".to_owned()),
        ("SHOP_SERVICE_NAME".to_owned(), spec.name.to_owned()),
        ("SHOP_HOST".to_owned(), "127.0.0.1".to_owned()),
        ("SHOP_PORT".to_owned(), ports.port_of(instance).to_string()),
        (
            "SHOP_NATS_URL".to_owned(),
            format!("nats://127.0.0.1:{}", ports.nats),
        ),
        (
            "SHOP_AUTH__JWKS_URL".to_owned(),
            format!(
                "http://127.0.0.1:{}/.well-known/jwks.json",
                ports.service("user")
            ),
        ),
        ("LOG_FORMAT".to_owned(), ctx.log_format.to_owned()),
    ];
    if let Some(db) = spec.data {
        let password = shop_db::local_password(db.role);
        env.push((
            "SHOP_DATABASE_URL".to_owned(),
            format!(
                "postgres://{}:{}@127.0.0.1:{}/{}",
                db.role,
                password.expose_secret(),
                ports.postgres,
                ctx.database
            ),
        ));
    }
    if spec.name == "user" {
        env.push((
            "SHOP_JWT__SIGNING_KEY_FILE".to_owned(),
            ctx.signing_key.display().to_string(),
        ));
        // The gateway runs on the loopback and names the client in X-Forwarded-For;
        // without this, every login through it would count against one client (its
        // address) in the login throttle.
        env.push((
            "SHOP_THROTTLE__TRUSTED_PROXIES".to_owned(),
            "[127.0.0.1]".to_owned(),
        ));
    }
    if let Some(demo) = ctx.demo_file
        && LOADS_DEMO.contains(&spec.name)
    {
        env.push(("SHOP_DEMO__FILE".to_owned(), demo.display().to_string()));
    }
    if spec.name == "shipping" {
        // A simulated carrier, so a local order goes on to SHIPPED and DELIVERED by
        // itself (tests and admins can still step shipments by hand).
        env.push((
            "SHOP_CARRIER__DISPATCH_AFTER_MS".to_owned(),
            "20000".to_owned(),
        ));
        env.push((
            "SHOP_CARRIER__DELIVER_AFTER_MS".to_owned(),
            "40000".to_owned(),
        ));
    }
    if NEEDS_UPSTREAMS.contains(&spec.name) {
        for upstream in SERVICES
            .iter()
            .filter(|s| s.name != "gateway" && s.name != spec.name)
        {
            env.push((
                format!("SHOP_UPSTREAMS__{}", upstream.name.to_uppercase()),
                ports.base_urls(upstream.name).join(","),
            ));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use shop_topology::service;

    use super::*;

    /// The environment of the first instance of a service.
    fn env_of(name: &str) -> BTreeMap<String, String> {
        env_of_instance(Instance {
            spec: service(name).unwrap(),
            index: 0,
        })
    }

    fn env_of_instance(instance: Instance) -> BTreeMap<String, String> {
        let ports = Ports::local_defaults();
        let ctx = EnvContext {
            ports: &ports,
            database: "shop",
            signing_key: Path::new("/repo/.data/keys/jwt-signing.pem"),
            log_format: "pretty",
            demo_file: Some(Path::new("/repo/services/catalog/demo/products.json")),
        };
        service_env(&instance, &ctx).into_iter().collect()
    }

    #[test]
    fn a_service_gets_its_own_database_role_and_the_shared_settings() {
        let env = env_of("catalog");
        assert_eq!(env["SHOP_ENV"], "local");
        assert_eq!(env["SHOP_SERVICE_NAME"], "catalog");
        assert_eq!(env["SHOP_HOST"], "127.0.0.1");
        assert_eq!(env["SHOP_PORT"], "8082");
        assert_eq!(
            env["SHOP_DATABASE_URL"],
            "postgres://catalog_svc:catalog_svc-local-password@127.0.0.1:54329/shop"
        );
        assert_eq!(env["SHOP_NATS_URL"], "nats://127.0.0.1:4222");
        assert_eq!(
            env["SHOP_AUTH__JWKS_URL"],
            "http://127.0.0.1:8081/.well-known/jwks.json"
        );
        assert_eq!(env["LOG_FORMAT"], "pretty");
        assert!(!env.contains_key("SHOP_JWT__SIGNING_KEY_FILE"));
        assert!(!env.contains_key("SHOP_UPSTREAMS__USER"));
    }

    #[test]
    fn only_the_user_service_gets_the_signing_key() {
        assert_eq!(
            env_of("user")["SHOP_JWT__SIGNING_KEY_FILE"],
            "/repo/.data/keys/jwt-signing.pem"
        );
    }

    #[test]
    fn the_user_service_believes_the_local_gateways_forwarded_for() {
        assert_eq!(
            env_of("user")["SHOP_THROTTLE__TRUSTED_PROXIES"],
            "[127.0.0.1]"
        );
        assert!(!env_of("catalog").contains_key("SHOP_THROTTLE__TRUSTED_PROXIES"));
    }

    #[test]
    fn only_the_catalog_and_the_inventory_load_the_demo_file() {
        let demo = "/repo/services/catalog/demo/products.json";
        assert_eq!(env_of("catalog")["SHOP_DEMO__FILE"], demo);
        assert_eq!(env_of("inventory")["SHOP_DEMO__FILE"], demo);
        for other in ["user", "order", "payment", "shipping", "gateway"] {
            assert!(!env_of(other).contains_key("SHOP_DEMO__FILE"), "{other}");
        }
    }

    #[test]
    fn the_gateway_gets_upstreams_and_no_database() {
        let env = env_of("gateway");
        assert!(!env.contains_key("SHOP_DATABASE_URL"));
        assert_eq!(env["SHOP_PORT"], "8080");
        assert_eq!(env["SHOP_UPSTREAMS__USER"], "http://127.0.0.1:8081");
        assert_eq!(env["SHOP_UPSTREAMS__SHIPPING"], "http://127.0.0.1:8086");
        assert!(!env.contains_key("SHOP_UPSTREAMS__GATEWAY"));
    }

    #[test]
    fn the_gateway_and_the_order_service_get_every_catalog_instance() {
        for caller in ["gateway", "order"] {
            assert_eq!(
                env_of(caller)["SHOP_UPSTREAMS__CATALOG"],
                "http://127.0.0.1:8082,http://127.0.0.1:8182",
                "{caller}"
            );
        }
        assert_eq!(
            env_of("order")["SHOP_UPSTREAMS__INVENTORY"],
            "http://127.0.0.1:8083"
        );
        assert!(!env_of("order").contains_key("SHOP_UPSTREAMS__ORDER"));
    }

    #[test]
    fn each_catalog_instance_gets_its_own_port_and_the_same_everything_else() {
        let catalog = service("catalog").unwrap();
        let mut envs: Vec<BTreeMap<String, String>> =
            Instance::of(catalog).map(env_of_instance).collect();
        assert_eq!(envs.len(), 2);
        assert_eq!(envs[0]["SHOP_PORT"], "8082");
        assert_eq!(envs[1]["SHOP_PORT"], "8182");
        for env in &mut envs {
            env.remove("SHOP_PORT");
        }
        assert_eq!(envs[0], envs[1], "same role, schema, demo file, NATS");
        assert_eq!(envs[1]["SHOP_SERVICE_NAME"], "catalog");
    }
}
