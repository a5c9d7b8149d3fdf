//! The processes a stack runs for its services: one per instance, as many as each
//! service's entry in `shop_topology::SERVICES` asks for, each with its own name (the
//! prefix of its output lines, its pid file, its handle in [`crate::Stack`]).

use shop_topology::{SERVICES, Service};

/// One process of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub spec: &'static Service,
    /// Its place among the service's instances, from 0; the first is the one other
    /// services' settings name when they need a single address (the JWKS URL).
    pub index: u16,
}

impl Instance {
    /// Every instance of a service, the first first.
    pub fn of(spec: &'static Service) -> impl Iterator<Item = Instance> {
        (0..spec.instances).map(move |index| Instance { spec, index })
    }

    /// Every instance of every service, in start order.
    pub fn every() -> impl Iterator<Item = Instance> {
        SERVICES.iter().flat_map(Instance::of)
    }

    /// The instance of this name (`user`, `catalog-2` ...).
    pub fn named(name: &str) -> Option<Instance> {
        Instance::every().find(|instance| instance.name() == name)
    }

    /// The service's name when it runs once (`user`); numbered from 1 when it runs
    /// more than once (`catalog-1`, `catalog-2`), so neither looks like the real one.
    pub fn name(&self) -> String {
        if self.spec.instances == 1 {
            self.spec.name.to_owned()
        } else {
            format!("{}-{}", self.spec.name, self.index + 1)
        }
    }
}

/// The longest instance name, for aligned output (`const`: the width is a constant).
pub(crate) const fn widest_name() -> usize {
    let mut widest = 0;
    let mut i = 0;
    while i < SERVICES.len() {
        let service = &SERVICES[i];
        let mut len = service.name.len();
        if service.instances > 1 {
            // `-` and the digits of the last number.
            len += 1;
            let mut n = service.instances;
            while n > 0 {
                len += 1;
                n /= 10;
            }
        }
        if len > widest {
            widest = len;
        }
        i += 1;
    }
    widest
}

#[cfg(test)]
mod tests {
    use shop_topology::service;

    use super::*;

    #[test]
    fn a_service_run_once_keeps_its_name_and_one_run_twice_is_numbered() {
        let user: Vec<String> = Instance::of(service("user").unwrap())
            .map(|i| i.name())
            .collect();
        assert_eq!(user, ["user"]);
        let catalog: Vec<String> = Instance::of(service("catalog").unwrap())
            .map(|i| i.name())
            .collect();
        assert_eq!(catalog, ["catalog-1", "catalog-2"]);
        assert_eq!(
            Instance::named("catalog-2"),
            Some(Instance {
                spec: service("catalog").unwrap(),
                index: 1
            })
        );
        assert_eq!(Instance::named("catalog"), None);
    }

    #[test]
    fn the_widest_name_fits_every_instance() {
        let widest = Instance::every().map(|i| i.name().len()).max().unwrap();
        assert_eq!(widest_name(), widest);
    }
}
