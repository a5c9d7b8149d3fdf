//! The route table: which upstream serves a path, under which policy and timeout.
//!
//! Read from a TOML file of `[[routes]]` (see `gateway/routes.toml`) and checked as a
//! whole before the gateway starts: a mistake is refused with a message naming the
//! route and the field, never discovered by the first request that hits it.
//!
//! Matching is by path prefix on whole segments (`/api/v1/products` matches
//! `/api/v1/products` and `/api/v1/products/42`, not `/api/v1/productsearch`); the
//! longest matching prefix wins, so a specific route can sit under a general one.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use figment::Figment;
use figment::providers::{Format as _, Toml};
use http::Method;
use serde::Deserialize;

/// The longest timeout a route may set.
pub const MAX_TIMEOUT_MS: u64 = 120_000;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Anyone.
    Public,
    /// A valid access token.
    Authenticated,
    /// A valid access token with the role `admin`.
    Admin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    routes: Vec<RouteSpec>,
}

/// One `[[routes]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    pub prefix: String,
    pub upstream: String,
    pub policy: Policy,
    /// The policy of POST, PUT, PATCH and DELETE, when stricter than `policy`.
    pub write_policy: Option<Policy>,
    pub timeout_ms: u64,
    /// Replaces `prefix` before the request goes upstream.
    pub rewrite: Option<String>,
}

/// A checked route.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub prefix: String,
    pub upstream: String,
    pub policy: Policy,
    pub write_policy: Policy,
    pub timeout: Duration,
    pub rewrite: Option<String>,
}

impl Route {
    /// The policy that applies to `method`.
    pub fn policy_for(&self, method: &Method) -> Policy {
        if method.is_safe() {
            self.policy
        } else {
            self.write_policy
        }
    }

    /// The upstream path (and query) for `path_and_query`, which this route matched.
    pub fn upstream_path(&self, path: &str, query: Option<&str>) -> String {
        let rest = &path[self.prefix.len()..];
        let mut out = match &self.rewrite {
            Some(to) => format!("{}{rest}", to.trim_end_matches('/')),
            None => path.to_owned(),
        };
        if out.is_empty() {
            out.push('/');
        }
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    }

    fn matches(&self, path: &str) -> bool {
        match path.strip_prefix(self.prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || self.prefix.ends_with('/'),
            None => false,
        }
    }
}

/// Every route, longest prefix first.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Reads and checks the file; `upstreams` are the names the settings define.
    pub fn load(path: &Path, upstreams: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let file: RouteFile = Figment::from(Toml::file_exact(path))
            .extract()
            .with_context(|| format!("reading the routes in {}", path.display()))?;
        Self::check(file.routes, upstreams).with_context(|| format!("in {}", path.display()))
    }

    /// Checks every route and the table as a whole.
    pub fn check(
        specs: Vec<RouteSpec>,
        upstreams: &BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        if specs.is_empty() {
            bail!("no routes: the gateway would answer 404 to everything");
        }
        let mut names = HashSet::new();
        let mut prefixes = HashSet::new();
        let mut routes = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let place = format!("routes[{i}] ({:?})", spec.name);
            if spec.name.is_empty() || !names.insert(spec.name.clone()) {
                bail!("{place}: `name` must be present and unique");
            }
            if !spec.prefix.starts_with('/') || spec.prefix.contains(['?', '#', ' ']) {
                bail!(
                    "{place}: `prefix` {:?} must be a path starting with /",
                    spec.prefix
                );
            }
            if !prefixes.insert(spec.prefix.clone()) {
                bail!("{place}: `prefix` {:?} is already routed", spec.prefix);
            }
            if !upstreams.contains_key(&spec.upstream) {
                let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
                bail!(
                    "{place}: `upstream` {:?} is not defined (SHOP_UPSTREAMS__{} is unset; defined: {})",
                    spec.upstream,
                    spec.upstream.to_uppercase(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
            if !(1..=MAX_TIMEOUT_MS).contains(&spec.timeout_ms) {
                bail!("{place}: `timeout_ms` must be 1 to {MAX_TIMEOUT_MS}");
            }
            if let Some(to) = &spec.rewrite
                && !to.starts_with('/')
            {
                bail!("{place}: `rewrite` {to:?} must be a path starting with /");
            }
            let write_policy = spec.write_policy.unwrap_or(spec.policy);
            if write_policy < spec.policy {
                bail!("{place}: `write_policy` must not be weaker than `policy`");
            }
            routes.push(Route {
                name: spec.name,
                prefix: spec.prefix,
                upstream: spec.upstream,
                policy: spec.policy,
                write_policy,
                timeout: std::time::Duration::from_millis(spec.timeout_ms),
                rewrite: spec.rewrite,
            });
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(Self { routes })
    }

    /// The route of `path`, if any.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, prefix: &str) -> RouteSpec {
        RouteSpec {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            upstream: "catalog".to_owned(),
            policy: Policy::Public,
            write_policy: None,
            timeout_ms: 1000,
            rewrite: None,
        }
    }

    fn upstreams() -> BTreeMap<String, String> {
        BTreeMap::from([("catalog".to_owned(), "http://127.0.0.1:8082".to_owned())])
    }

    #[test]
    fn prefixes_match_whole_segments_and_the_longest_wins() {
        let table = RouteTable::check(
            vec![spec("api", "/api/v1"), spec("products", "/api/v1/products")],
            &upstreams(),
        )
        .unwrap();
        assert_eq!(table.find("/api/v1/products").unwrap().name, "products");
        assert_eq!(table.find("/api/v1/products/p1").unwrap().name, "products");
        assert_eq!(table.find("/api/v1/productsearch").unwrap().name, "api");
        assert_eq!(table.find("/api/v1").unwrap().name, "api");
        assert!(table.find("/api/v10").is_none());
        assert!(table.find("/other").is_none());
    }

    #[test]
    fn a_rewrite_replaces_the_prefix_and_keeps_the_query() {
        let mut s = spec("legacy", "/shop/products");
        s.rewrite = Some("/api/v1/products".to_owned());
        let table =
            RouteTable::check(vec![s, spec("plain", "/api/v1/orders")], &upstreams()).unwrap();
        let legacy = table.find("/shop/products/p1").unwrap();
        assert_eq!(
            legacy.upstream_path("/shop/products/p1", Some("a=1")),
            "/api/v1/products/p1?a=1"
        );
        let plain = table.find("/api/v1/orders").unwrap();
        assert_eq!(
            plain.upstream_path("/api/v1/orders", None),
            "/api/v1/orders"
        );
    }

    #[test]
    fn writes_take_the_stricter_policy() {
        let mut s = spec("products", "/api/v1/products");
        s.write_policy = Some(Policy::Admin);
        let table = RouteTable::check(vec![s], &upstreams()).unwrap();
        let route = table.find("/api/v1/products").unwrap();
        assert_eq!(route.policy_for(&Method::GET), Policy::Public);
        assert_eq!(route.policy_for(&Method::HEAD), Policy::Public);
        assert_eq!(route.policy_for(&Method::POST), Policy::Admin);
        assert_eq!(route.policy_for(&Method::DELETE), Policy::Admin);
    }

    #[test]
    fn a_bad_table_is_refused_naming_the_route_and_the_field() {
        let cases: Vec<(Vec<RouteSpec>, &str)> = vec![
            (vec![], "no routes"),
            (
                vec![spec("a", "/x"), spec("a", "/y")],
                "routes[1] (\"a\"): `name`",
            ),
            (vec![spec("a", "x")], "routes[0] (\"a\"): `prefix`"),
            (
                vec![spec("a", "/x"), spec("b", "/x")],
                "routes[1] (\"b\"): `prefix`",
            ),
            (
                vec![RouteSpec {
                    upstream: "ordr".to_owned(),
                    ..spec("orders", "/o")
                }],
                "routes[0] (\"orders\"): `upstream` \"ordr\" is not defined (SHOP_UPSTREAMS__ORDR",
            ),
            (
                vec![RouteSpec {
                    timeout_ms: 0,
                    ..spec("a", "/x")
                }],
                "`timeout_ms`",
            ),
            (
                vec![RouteSpec {
                    policy: Policy::Admin,
                    write_policy: Some(Policy::Public),
                    ..spec("a", "/x")
                }],
                "`write_policy`",
            ),
        ];
        for (specs, expected) in cases {
            let error = RouteTable::check(specs, &upstreams())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }

    #[test]
    fn the_shipped_route_file_is_valid_and_routes_no_internal_path() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("routes.toml");
        let upstreams = [
            "user",
            "catalog",
            "inventory",
            "order",
            "payment",
            "shipping",
        ]
        .into_iter()
        .map(|u| (u.to_owned(), format!("http://{u}")))
        .collect();
        let table = RouteTable::load(&path, &upstreams).unwrap();
        assert!(table.find("/api/v1/internal/products/lookup").is_none());
        assert_eq!(
            table.find("/api/v1/products/p1").unwrap().upstream,
            "catalog"
        );
        assert_eq!(
            table.find("/api/v2/payments/pay_1").unwrap().upstream,
            "payment"
        );
    }
}
