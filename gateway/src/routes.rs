//! The route table: which upstream serves a path, under which policy and timeout.
//!
//! Read from the `[[routes]]` of the gateway file (see `gateway/gateway.toml`) and checked as a
//! whole before the gateway starts: a mistake is refused with a message naming the
//! route and the field, never discovered by the first request that hits it.
//!
//! Matching is by path prefix on whole segments (`/api/v1/products` matches
//! `/api/v1/products` and `/api/v1/products/42`, not `/api/v1/productsearch`); the
//! longest matching prefix wins, so a specific route can sit under a general one.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use http::{HeaderName, Method};
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
    /// A valid API key of a consumer in the file (`apikey` header): machine clients,
    /// the seed's Kong `key-auth` example.
    ApiKey,
}

/// One `[[routes]]` entry as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    pub prefix: String,
    pub upstream: String,
    pub policy: Policy,
    /// The policy of POST, PUT, PATCH and DELETE, when stricter than `policy`.
    pub write_policy: Option<Policy>,
    /// The methods the route accepts; any other is refused at the edge with 405.
    /// Absent: every method goes upstream, which answers for itself.
    pub methods: Option<Vec<String>>,
    pub timeout_ms: u64,
    /// Further attempts after a failed one, for idempotent requests without a body.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// A key of `[rate_limits]`; absent: not limited.
    pub rate_limit: Option<String>,
    /// Replaces `prefix` before the request goes upstream.
    pub rewrite: Option<String>,
    /// A second upstream taking a share of the traffic: a canary, or the other colour
    /// of a blue/green pair.
    pub canary: Option<CanarySpec>,
}

fn default_retries() -> u32 {
    1
}

/// Release routing between two versions of a service (see `crate::release`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySpec {
    /// The upstream running the new version.
    pub upstream: String,
    /// The percentage of requests it takes, 0 to 100.
    #[serde(default)]
    pub weight: u8,
    /// A request header that picks the version whatever the weight: `always` (or
    /// `1`, `true`) sends the request to the canary, `never` (`0`, `false`) keeps it
    /// on the stable upstream. Testers pin themselves with it.
    pub header: Option<String>,
}

/// A checked canary.
#[derive(Debug, Clone)]
pub struct Canary {
    pub upstream: String,
    pub weight: u8,
    pub header: Option<HeaderName>,
}

/// A checked route.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// The name again, shared: the label of the route's metrics, without an
    /// allocation per request.
    pub label: Arc<str>,
    pub prefix: String,
    pub upstream: String,
    pub policy: Policy,
    pub write_policy: Policy,
    /// `None`: every method.
    pub methods: Option<Vec<Method>>,
    pub timeout: Duration,
    pub retries: u32,
    pub rate_limit: Option<String>,
    pub rewrite: Option<String>,
    pub canary: Option<Canary>,
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

    /// Whether the route takes `method` (`false`: 405 at the edge).
    pub fn allows(&self, method: &Method) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(method))
    }

    /// The `Allow` header of a 405.
    pub fn allow_header(&self) -> String {
        self.methods
            .iter()
            .flatten()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
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
    /// Checks every route and the table as a whole: `upstreams` are the upstreams the
    /// settings give addresses for, `rate_limits` the policies the file defines.
    pub fn check(
        specs: Vec<RouteSpec>,
        upstreams: &BTreeMap<String, String>,
        rate_limits: &BTreeSet<String>,
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
            defined(&place, "upstream", &spec.upstream, upstreams)?;
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
            if (spec.policy == Policy::ApiKey) != (write_policy == Policy::ApiKey) {
                bail!("{place}: `api_key` is a route's only policy, not mixed with tokens");
            }
            let methods = match &spec.methods {
                None => None,
                Some(list) if list.is_empty() => {
                    bail!("{place}: `methods` must not be empty (leave it out for all)")
                }
                Some(list) => Some(
                    list.iter()
                        .map(|m| match m.to_ascii_uppercase().parse::<Method>() {
                            Ok(method) if is_standard(&method) => Ok(method),
                            _ => bail!("{place}: `methods` has {m:?}, not an HTTP method"),
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?,
                ),
            };
            if spec.retries > MAX_RETRIES {
                bail!("{place}: `retries` must be 0 to {MAX_RETRIES}");
            }
            if let Some(limit) = &spec.rate_limit
                && !rate_limits.contains(limit)
            {
                bail!("{place}: `rate_limit` {limit:?} is not a key of [rate_limits]");
            }
            let canary = match spec.canary {
                None => None,
                Some(c) => {
                    defined(&place, "canary.upstream", &c.upstream, upstreams)?;
                    if c.upstream == spec.upstream {
                        bail!("{place}: `canary.upstream` must differ from `upstream`");
                    }
                    if c.weight > 100 {
                        bail!("{place}: `canary.weight` is a percentage, 0 to 100");
                    }
                    let header = match &c.header {
                        None => None,
                        Some(h) => Some(HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                            anyhow::anyhow!("{place}: `canary.header` {h:?} is not a header name")
                        })?),
                    };
                    Some(Canary {
                        upstream: c.upstream,
                        weight: c.weight,
                        header,
                    })
                }
            };
            routes.push(Route {
                label: Arc::from(spec.name.as_str()),
                name: spec.name,
                prefix: spec.prefix,
                upstream: spec.upstream,
                policy: spec.policy,
                write_policy,
                methods,
                timeout: std::time::Duration::from_millis(spec.timeout_ms),
                retries: spec.retries,
                rate_limit: spec.rate_limit,
                rewrite: spec.rewrite,
                canary,
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

    /// How `upstream`'s own paths appear at the gateway: (upstream prefix, gateway
    /// prefix) for each route to it, canaries included. The docs portal rewrites a
    /// service's OpenAPI paths with it.
    pub fn mapping(&self, upstream: &str) -> Vec<(String, String)> {
        self.routes
            .iter()
            .filter(|r| {
                r.upstream == upstream || r.canary.as_ref().is_some_and(|c| c.upstream == upstream)
            })
            .map(|r| {
                let upstream_prefix = r.rewrite.clone().unwrap_or_else(|| r.prefix.clone());
                (upstream_prefix, r.prefix.clone())
            })
            .collect()
    }
}

/// The most `retries` a route may set.
pub const MAX_RETRIES: u32 = 5;

fn defined(
    place: &str,
    field: &str,
    upstream: &str,
    upstreams: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if upstreams.contains_key(upstream) {
        return Ok(());
    }
    let known: Vec<&str> = upstreams.keys().map(String::as_str).collect();
    bail!(
        "{place}: `{field}` {upstream:?} is not defined (SHOP_UPSTREAMS__{} is unset; defined: {})",
        upstream.to_uppercase(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// The methods of RFC 9110 and PATCH: an extension method in `methods` is a typo.
fn is_standard(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::PATCH,
    ]
    .contains(method)
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
            methods: None,
            timeout_ms: 1000,
            retries: 1,
            rate_limit: None,
            rewrite: None,
            canary: None,
        }
    }

    fn upstreams() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("catalog".to_owned(), "http://127.0.0.1:8082".to_owned()),
            ("catalog_v2".to_owned(), "http://127.0.0.1:9082".to_owned()),
        ])
    }

    fn check(specs: Vec<RouteSpec>) -> anyhow::Result<RouteTable> {
        RouteTable::check(specs, &upstreams(), &BTreeSet::from(["default".to_owned()]))
    }

    #[test]
    fn prefixes_match_whole_segments_and_the_longest_wins() {
        let table = check(vec![
            spec("api", "/api/v1"),
            spec("products", "/api/v1/products"),
        ])
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
        let table = check(vec![s, spec("plain", "/api/v1/orders")]).unwrap();
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
        let table = check(vec![s]).unwrap();
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
            let error = check(specs).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }

    #[test]
    fn methods_release_and_limits_are_checked_too() {
        let canary = |upstream: &str, weight: u8, header: Option<&str>| RouteSpec {
            canary: Some(CanarySpec {
                upstream: upstream.to_owned(),
                weight,
                header: header.map(str::to_owned),
            }),
            ..spec("a", "/x")
        };
        let cases: Vec<(RouteSpec, &str)> = vec![
            (
                RouteSpec {
                    methods: Some(vec!["GET".to_owned(), "FETCH".to_owned()]),
                    ..spec("a", "/x")
                },
                "`methods` has \"FETCH\"",
            ),
            (
                RouteSpec {
                    methods: Some(vec![]),
                    ..spec("a", "/x")
                },
                "`methods` must not be empty",
            ),
            (
                RouteSpec {
                    retries: 9,
                    ..spec("a", "/x")
                },
                "`retries`",
            ),
            (
                RouteSpec {
                    rate_limit: Some("strict".to_owned()),
                    ..spec("a", "/x")
                },
                "`rate_limit` \"strict\"",
            ),
            (canary("nope", 5, None), "`canary.upstream` \"nope\""),
            (canary("catalog", 5, None), "must differ"),
            (canary("catalog_v2", 101, None), "`canary.weight`"),
            (
                canary("catalog_v2", 5, Some("bad header")),
                "`canary.header`",
            ),
            (
                RouteSpec {
                    policy: Policy::Public,
                    write_policy: Some(Policy::ApiKey),
                    ..spec("a", "/x")
                },
                "`api_key`",
            ),
        ];
        for (spec, expected) in cases {
            let error = check(vec![spec]).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
        let route = check(vec![RouteSpec {
            methods: Some(vec!["get".to_owned(), "POST".to_owned()]),
            ..canary("catalog_v2", 10, Some("x-shop-canary"))
        }])
        .unwrap()
        .routes()[0]
            .clone();
        assert!(route.allows(&Method::GET) && route.allows(&Method::POST));
        assert!(!route.allows(&Method::DELETE));
        assert_eq!(route.allow_header(), "GET, POST");
        assert_eq!(route.canary.unwrap().weight, 10);
    }

    #[test]
    fn the_mapping_of_an_upstream_gives_each_route_to_it_with_its_rewrite() {
        let mut legacy = spec("legacy", "/shop/products");
        legacy.rewrite = Some("/api/v1/products".to_owned());
        let table = check(vec![
            legacy,
            spec("products", "/api/v1/products"),
            RouteSpec {
                upstream: "catalog_v2".to_owned(),
                ..spec("v2", "/api/v2/products")
            },
        ])
        .unwrap();
        let mut mapping = table.mapping("catalog");
        mapping.sort();
        assert_eq!(
            mapping,
            [
                ("/api/v1/products".to_owned(), "/api/v1/products".to_owned()),
                ("/api/v1/products".to_owned(), "/shop/products".to_owned()),
            ]
        );
    }
}
