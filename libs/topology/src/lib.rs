//! The shop's processes, listed once. Everything that must know "which services are
//! there" reads this list: the launcher (which binary, which port), the database
//! bootstrap (which schema and role), the event backbone (which context and stream).
//! Adding a seventh service starts with one entry here (see `docs/architecture.md`).
//! It also says how many processes of each service the local stack runs (the
//! catalog runs two, so the gateway's load balancing and ejection can be watched).
//!
//! No dependencies: every crate can read it without compiling anything else.

/// One process of the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// `user`, `catalog` ...; also the `source` of the events it publishes.
    pub name: &'static str,
    /// The binary's file name (next to the launcher's).
    pub binary: &'static str,
    /// Its port on a developer machine (`SHOP_PORT` overrides it); the port of its
    /// first instance, the one other services' settings name by default.
    pub default_port: u16,
    /// How many processes of it the local stack (`make up`, the e2e tests) runs, all
    /// alike but for the port (see [`Service::local_ports`]). At least 1.
    pub instances: u16,
    /// The data it owns, if any.
    pub data: Option<Data>,
    /// The event context it owns, if any: its subjects are `<context>.>`, kept in
    /// `stream`, and the service creates that stream at start-up.
    pub events: Option<Events>,
}

/// Instance `n` (from 0) of a service listens on `default_port + n * INSTANCE_PORT_STEP`
/// locally: the second catalog on 8182. A step of 100 keeps a service's instances
/// recognisable by their last digits (8082, 8182) and clear of the other services'
/// ports (8080-8086) and of NATS's monitoring port (8222) for up to two instances of
/// any service.
pub const INSTANCE_PORT_STEP: u16 = 100;

impl Service {
    /// Its instances' ports on a developer machine, the first being `default_port`.
    pub fn local_ports(&self) -> impl Iterator<Item = u16> + use<> {
        let first = self.default_port;
        (0..self.instances).map(move |n| first + n * INSTANCE_PORT_STEP)
    }

    /// The same service, run as `instances` processes locally.
    const fn times(mut self, instances: u16) -> Service {
        self.instances = instances;
        self
    }
}

/// A service's slice of the shared database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data {
    /// The schema it owns; nobody else can read it.
    pub schema: &'static str,
    /// The login role it connects as; it can touch nothing but `schema`.
    pub role: &'static str,
}

/// A service's event context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Events {
    /// The first segment of its subjects (`users` in `users.user.registered`).
    pub context: &'static str,
    /// Its JetStream stream.
    pub stream: &'static str,
}

const fn owning(
    name: &'static str,
    binary: &'static str,
    default_port: u16,
    schema: &'static str,
    role: &'static str,
    context: &'static str,
    stream: &'static str,
) -> Service {
    Service {
        name,
        binary,
        default_port,
        instances: 1,
        data: Some(Data { schema, role }),
        events: Some(Events { context, stream }),
    }
}

/// Every process, in start order: the gateway last, because it fronts the others.
pub const SERVICES: &[Service] = &[
    owning(
        "user",
        "shop-user",
        8081,
        "users",
        "user_svc",
        "users",
        "USERS",
    ),
    owning(
        "catalog",
        "shop-catalog",
        8082,
        "catalog",
        "catalog_svc",
        "catalog",
        "CATALOG",
    )
    // Two, behind the gateway: both migrate and load the demo at start (safely at
    // once) and share the durable consumers' messages.
    .times(2),
    owning(
        "inventory",
        "shop-inventory",
        8083,
        "inventory",
        "inventory_svc",
        "inventory",
        "INVENTORY",
    ),
    owning(
        "order",
        "shop-order",
        8084,
        "orders",
        "order_svc",
        "orders",
        "ORDERS",
    ),
    owning(
        "payment",
        "shop-payment",
        8085,
        "payments",
        "payment_svc",
        "payments",
        "PAYMENTS",
    ),
    owning(
        "shipping",
        "shop-shipping",
        8086,
        "shipping",
        "shipping_svc",
        "shipping",
        "SHIPPING",
    ),
    Service {
        name: "gateway",
        binary: "shop-gateway",
        default_port: 8080,
        instances: 1,
        data: None,
        events: None,
    },
];

/// A process by name (`user`, `gateway` ...).
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// The service that owns an event context (`users` -> the user service).
pub fn owner_of_context(context: &str) -> Option<&'static Service> {
    SERVICES
        .iter()
        .find(|s| s.events.is_some_and(|e| e.context == context))
}

/// The services that own data, in bootstrap order.
pub fn with_data() -> impl Iterator<Item = (&'static Service, Data)> {
    SERVICES.iter().filter_map(|s| s.data.map(|d| (s, d)))
}

/// Every event context and its stream.
pub fn contexts() -> impl Iterator<Item = Events> {
    SERVICES.iter().filter_map(|s| s.events)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_ports_schemas_roles_contexts_and_streams_are_each_unique() {
        fn unique<T: std::hash::Hash + Eq>(items: impl Iterator<Item = T>) -> bool {
            let mut seen = HashSet::new();
            items.into_iter().all(|i| seen.insert(i))
        }
        assert!(unique(SERVICES.iter().map(|s| s.name)));
        assert!(unique(SERVICES.iter().map(|s| s.binary)));
        assert!(unique(SERVICES.iter().flat_map(Service::local_ports)));
        assert!(unique(with_data().map(|(_, d)| d.schema)));
        assert!(unique(with_data().map(|(_, d)| d.role)));
        assert!(unique(contexts().map(|e| e.context)));
        assert!(unique(contexts().map(|e| e.stream)));
    }

    #[test]
    fn the_catalog_runs_twice_locally_the_second_a_hundred_ports_up() {
        let catalog = service("catalog").unwrap();
        assert_eq!(catalog.local_ports().collect::<Vec<_>>(), [8082, 8182]);
        assert_eq!(
            service("user").unwrap().local_ports().collect::<Vec<_>>(),
            [8081]
        );
        assert!(
            SERVICES.iter().all(|s| s.instances >= 1),
            "every service runs"
        );
    }

    #[test]
    fn lookups_find_the_owner() {
        assert_eq!(
            service("order").and_then(|s| s.data).map(|d| d.schema),
            Some("orders")
        );
        assert_eq!(
            owner_of_context("payments").map(|s| s.name),
            Some("payment")
        );
        assert_eq!(service("gateway").and_then(|s| s.data), None);
        assert_eq!(SERVICES.last().map(|s| s.name), Some("gateway"));
    }
}
