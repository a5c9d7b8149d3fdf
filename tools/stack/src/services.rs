//! The processes of the shop: which binary, which port by default.

/// One service (or the gateway) as the launcher runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// `user`, `catalog` ... as in `shop_db::SERVICES`; `gateway` has no database.
    pub name: &'static str,
    /// The binary's file name, next to the `stack` binary.
    pub binary: &'static str,
    /// Its port on a developer machine.
    pub default_port: u16,
}

impl ServiceSpec {
    /// Its schema and role, if it owns any data.
    pub fn db(&self) -> Option<shop_db::ServiceDb> {
        shop_db::service(self.name)
    }
}

/// Every process of the shop, in start order (the gateway last: it fronts the others).
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "user",
        binary: "shop-user",
        default_port: 8081,
    },
    ServiceSpec {
        name: "catalog",
        binary: "shop-catalog",
        default_port: 8082,
    },
    ServiceSpec {
        name: "inventory",
        binary: "shop-inventory",
        default_port: 8083,
    },
    ServiceSpec {
        name: "order",
        binary: "shop-order",
        default_port: 8084,
    },
    ServiceSpec {
        name: "payment",
        binary: "shop-payment",
        default_port: 8085,
    },
    ServiceSpec {
        name: "shipping",
        binary: "shop-shipping",
        default_port: 8086,
    },
    ServiceSpec {
        name: "gateway",
        binary: "shop-gateway",
        default_port: 8080,
    },
];

/// Looks a service up by name.
pub fn service(name: &str) -> Option<&'static ServiceSpec> {
    SERVICES.iter().find(|s| s.name == name)
}

/// Every service's name, in start order.
pub fn all_names() -> Vec<&'static str> {
    SERVICES.iter().map(|s| s.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_with_data_is_known_to_shop_db() {
        for db in shop_db::SERVICES {
            assert!(
                service(db.service).is_some(),
                "{} has no process",
                db.service
            );
        }
        assert_eq!(service("gateway").and_then(|g| g.db()), None);
    }
}
