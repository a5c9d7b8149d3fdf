//! The docs portal: one Swagger UI at `/docs` listing every service's API, each spec
//! fetched from the service (`GET /openapi.json` on one of its instances) and rewritten
//! to the paths a client uses through the gateway, served at `/openapi/{service}.json`.
//!
//! The rewrite keeps only what the gateway routes: a path survives when some route's
//! upstream prefix matches it on whole segments, renamed to that route's gateway
//! prefix; the rest (`/api/v1/internal/...`, the ops endpoints) is dropped, so the
//! portal never advertises what a client cannot call. `servers` becomes the gateway
//! (`/`), so "try it out" goes through it too. Components and `$ref`s are left alone.
//!
//! Specs are cached for a while (they change with a deployment, not per request) and
//! served stale while the service is down: documentation that is a little old beats
//! none. Only a spec never fetched is a 503.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::Bytes;
use http::{StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use shop_http::Problem;
use tokio::time::Instant;
use utoipa_swagger_ui::{Config, SwaggerUi, Url};

/// Where the Swagger UI is served.
pub const DOCS_PATH: &str = "/docs";

/// How long a service may take to hand over its spec.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest spec accepted: the shop's are tens of kilobytes.
pub const MAX_SPEC_BYTES: usize = 8 * 1024 * 1024;

/// Seconds a client is asked to wait when no spec could be had yet.
const RETRY_AFTER_S: u64 = 5;

/// Where the gateway serves a service's rewritten spec.
pub fn spec_path(service: &str) -> String {
    format!("/openapi/{service}.json")
}

/// The service named by the last segment of a spec path (`catalog.json`): the router
/// cannot match a parameter with a suffix, so the route is `/openapi/{file}`.
pub fn service_of(file: &str) -> Option<&str> {
    file.strip_suffix(".json").filter(|s| !s.is_empty())
}

/// The Swagger UI at `/docs`, listing `/openapi/{service}.json` for each service, then
/// the gateway's own `/openapi.json` (the routes it answers itself, the order details
/// aggregate among them). The specs are not embedded: the UI fetches them from the
/// gateway, so it shows them as they are now.
pub fn swagger_ui(services: &[String]) -> Router {
    let urls: Vec<Url<'static>> = services
        .iter()
        .map(|s| Url::from(spec_path(s)))
        .chain([Url::from("/openapi.json")])
        .collect();
    // No validator: it would send the specs to swagger.io, and the CSP blocks it anyway.
    let config = Config::new(urls).validator_url("none");
    SwaggerUi::new(DOCS_PATH).config(config).into()
}

/// The migration guides the services' deprecated versions link to (`Link: <...>;
/// rel="deprecation"`, RFC 9745), served by the portal as the repository has them.
const GUIDES: &[(&str, &str)] = &[(
    "/docs/payments-v1-to-v2.md",
    include_str!("../../docs/payments-v1-to-v2.md"),
)];

/// The routes serving [`GUIDES`] as `text/markdown`.
pub fn guides() -> Router {
    GUIDES.iter().fold(Router::new(), |router, &(path, text)| {
        router.route(
            path,
            axum::routing::get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
                    text,
                )
            }),
        )
    })
}

/// 503: no spec has been had from the service yet.
fn unavailable() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "docs-unavailable",
        "The service's API description is not available yet.",
    )
    .with_detail("The service has not handed it over. Try again shortly.")
    .with_retry_after(RETRY_AFTER_S)
}

/// A spec as last fetched.
struct Cached {
    doc: Arc<Value>,
    /// When it was fetched, or when a refetch last failed: a service that is down is
    /// asked again after a `ttl`, not on every request.
    checked: Instant,
}

/// Fetches, caches and rewrites the services' specs.
pub struct Portal {
    ttl: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Portal {
    /// Keeps each spec for `ttl` before asking the service again.
    pub fn new(ttl: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(FETCH_TIMEOUT));
        Self {
            ttl,
            client: Client::builder(TokioExecutor::new()).build(connector),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `service`'s spec in gateway paths. `base` is the base URL of one available
    /// instance (`None` when there is none); `mapping` lists, for each route to the
    /// service, its upstream path prefix and its gateway prefix. No mapping means the
    /// gateway routes nothing to `service`: 404. A spec that cannot be fetched is served
    /// from the cache however old, else 503 with `Retry-After`.
    pub async fn spec(
        &self,
        service: &str,
        base: Option<Uri>,
        mapping: &[(String, String)],
    ) -> Result<Value, Problem> {
        if mapping.is_empty() {
            return Err(Problem::not_found(
                "the gateway routes nothing to a service of this name",
            ));
        }
        let cached = self.cached(service);
        if let Some((doc, true)) = &cached {
            return Ok(rewrite(doc, mapping));
        }
        let doc = match self.fetch(base).await {
            Ok(doc) => self.store(service, doc),
            Err(e) => {
                let error = format!("{e:#}");
                let Some((doc, _)) = cached else {
                    tracing::warn!(service, %error, "spec fetch failed");
                    return Err(unavailable());
                };
                tracing::warn!(service, %error, "spec refetch failed; serving the cached one");
                self.touch(service);
                doc
            }
        };
        Ok(rewrite(&doc, mapping))
    }

    /// The cached spec and whether it is still fresh.
    fn cached(&self, service: &str) -> Option<(Arc<Value>, bool)> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(service)
            .map(|c| (c.doc.clone(), c.checked.elapsed() < self.ttl))
    }

    fn store(&self, service: &str, doc: Value) -> Arc<Value> {
        let doc = Arc::new(doc);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            service.to_owned(),
            Cached {
                doc: doc.clone(),
                checked: Instant::now(),
            },
        );
        doc
    }

    fn touch(&self, service: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.get_mut(service) {
            cached.checked = Instant::now();
        }
    }

    async fn fetch(&self, base: Option<Uri>) -> anyhow::Result<Value> {
        let Some(base) = base else {
            bail!("no instance available");
        };
        let uri: Uri = format!("{}/openapi.json", base.to_string().trim_end_matches('/'))
            .parse()
            .context("the spec's URL")?;
        let request = http::Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())?;
        let exchange = async {
            let response = self.client.request(request).await?;
            if response.status() != StatusCode::OK {
                bail!("answered {}", response.status());
            }
            let body = Limited::new(response.into_body(), MAX_SPEC_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("reading the spec: {e}"))?
                .to_bytes();
            let doc: Value = serde_json::from_slice(&body).context("the spec is not JSON")?;
            if !doc.get("paths").is_some_and(Value::is_object) {
                bail!("not an OpenAPI document (no `paths` object)");
            }
            Ok(doc)
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("no spec within {} ms", FETCH_TIMEOUT.as_millis()))?
    }
}

/// `doc` in gateway terms: `servers` is the gateway, each path is renamed from the
/// longest upstream prefix of `mapping` that matches it on whole segments to that
/// entry's gateway prefix (once per entry with that prefix: two routes can reach one
/// path), and a path no entry matches is dropped. Nothing else changes.
pub fn rewrite(doc: &Value, mapping: &[(String, String)]) -> Value {
    let mut doc = doc.clone();
    let Some(root) = doc.as_object_mut() else {
        return doc;
    };
    root.insert("servers".to_owned(), json!([{ "url": "/" }]));
    if let Some(Value::Object(paths)) = root.get_mut("paths") {
        for (path, mut item) in std::mem::take(paths) {
            // Path- and operation-level servers would send "try it out" past the
            // gateway, straight to the service.
            strip_servers(&mut item);
            for gateway_path in gateway_paths(&path, mapping) {
                paths.entry(gateway_path).or_insert_with(|| item.clone());
            }
        }
    }
    doc
}

fn gateway_paths(path: &str, mapping: &[(String, String)]) -> Vec<String> {
    let matches: Vec<(usize, &str, &str)> = mapping
        .iter()
        .filter_map(|(upstream, gateway)| {
            let prefix = upstream.trim_end_matches('/');
            let rest = path.strip_prefix(prefix)?;
            (rest.is_empty() || rest.starts_with('/')).then_some((
                prefix.len(),
                gateway.as_str(),
                rest,
            ))
        })
        .collect();
    let Some(longest) = matches.iter().map(|(len, ..)| *len).max() else {
        return Vec::new();
    };
    matches
        .into_iter()
        .filter(|(len, ..)| *len == longest)
        .map(|(_, gateway, rest)| {
            let joined = format!("{}{rest}", gateway.trim_end_matches('/'));
            if joined.is_empty() {
                "/".to_owned()
            } else {
                joined
            }
        })
        .collect()
}

fn strip_servers(item: &mut Value) {
    if let Some(item) = item.as_object_mut() {
        item.remove("servers");
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            operation.remove("servers");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::routing::get;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;
    use tower::ServiceExt as _;

    use super::*;

    fn mapping(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(u, g)| ((*u).to_owned(), (*g).to_owned()))
            .collect()
    }

    fn catalog_spec() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": { "title": "catalog", "version": "1" },
            "servers": [{ "url": "http://catalog:8082" }],
            "paths": {
                "/api/v1/products": { "get": { "responses": { "200": {
                    "content": { "application/json": { "schema": {
                        "$ref": "#/components/schemas/Product" } } } } } } },
                "/api/v1/products/{id}": {
                    "servers": [{ "url": "http://catalog:8082" }],
                    "get": { "servers": [{ "url": "http://x" }], "responses": {} }
                },
                "/api/v1/productsearch": { "get": { "responses": {} } },
                "/api/v1/categories": { "get": { "responses": {} } },
                "/api/v1/internal/products/{id}": { "get": { "responses": {} } },
                "/healthz": { "get": { "responses": {} } }
            },
            "components": { "schemas": { "Product": { "type": "object", "properties": {
                "category": { "$ref": "#/components/schemas/Category" } } } } }
        })
    }

    #[test]
    fn the_rewrite_keeps_routed_paths_drops_internal_and_ops_ones_and_points_servers_at_the_gateway()
     {
        let doc = catalog_spec();
        let out = rewrite(
            &doc,
            &mapping(&[
                ("/api/v1/products", "/api/v1/products"),
                ("/api/v1/categories", "/shop/categories"),
            ]),
        );
        let mut paths: Vec<&str> = out["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "/api/v1/products",
                "/api/v1/products/{id}",
                "/shop/categories"
            ]
        );
        assert_eq!(out["servers"], json!([{ "url": "/" }]));
        let by_id = &out["paths"]["/api/v1/products/{id}"];
        assert!(by_id.get("servers").is_none());
        assert!(by_id["get"].get("servers").is_none());
        // Components and references untouched.
        assert_eq!(out["components"], doc["components"]);
        assert_eq!(
            out["paths"]["/api/v1/products"]["get"]["responses"]["200"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/Product"
        );
        assert_eq!(out["info"], doc["info"]);
    }

    #[test]
    fn the_longest_upstream_prefix_wins_and_two_routes_to_one_prefix_list_the_path_twice() {
        let doc = json!({ "paths": {
            "/v1/things/special/1": {}, "/v1/things/2": {}, "/": {}
        }});
        let out = rewrite(
            &doc,
            &mapping(&[
                ("/v1/things", "/api/v1/things"),
                ("/v1/things/special", "/api/v1/special"),
                ("/v1/things/special", "/api/v2/special"),
            ]),
        );
        let mut paths: Vec<&str> = out["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            ["/api/v1/special/1", "/api/v1/things/2", "/api/v2/special/1"]
        );

        let root = rewrite(&doc, &mapping(&[("/", "/svc")]));
        assert!(root["paths"].get("/svc/v1/things/2").is_some());
        assert!(root["paths"].get("/svc/").is_some());
    }

    #[test]
    fn spec_paths_name_the_service() {
        assert_eq!(spec_path("catalog"), "/openapi/catalog.json");
        assert_eq!(service_of("catalog.json"), Some("catalog"));
        assert_eq!(service_of("catalog"), None);
        assert_eq!(service_of(".json"), None);
    }

    /// A service serving `spec` at `/openapi.json`, counting the fetches, until `stop`.
    async fn upstream(spec: Value) -> (Uri, Arc<AtomicUsize>, oneshot::Sender<()>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = Router::new().route(
            "/openapi.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let spec = spec.clone();
                async move { axum::Json(spec) }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        (format!("http://{addr}").parse().unwrap(), hits, stop)
    }

    fn dead_base() -> Uri {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}").parse().unwrap()
    }

    #[tokio::test]
    async fn a_spec_is_fetched_rewritten_and_cached_for_the_ttl() {
        let (base, hits, _stop) = upstream(catalog_spec()).await;
        let portal = Portal::new(Duration::from_secs(3600));
        let routes = mapping(&[("/api/v1/products", "/api/v1/products")]);

        let first = portal
            .spec("catalog", Some(base.clone()), &routes)
            .await
            .unwrap();
        assert!(first["paths"].get("/api/v1/products/{id}").is_some());
        assert!(first["paths"].get("/healthz").is_none());
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        let second = portal.spec("catalog", Some(base), &routes).await.unwrap();
        assert_eq!(second, first);
        assert_eq!(hits.load(Ordering::SeqCst), 1, "served from the cache");
    }

    #[tokio::test]
    async fn a_spec_is_served_stale_once_its_service_has_stopped() {
        let (base, hits, stop) = upstream(catalog_spec()).await;
        // A zero ttl: every call asks the service again.
        let portal = Portal::new(Duration::ZERO);
        let routes = mapping(&[("/api/v1/products", "/api/v1/products")]);
        let fresh = portal
            .spec("catalog", Some(base.clone()), &routes)
            .await
            .unwrap();
        portal
            .spec("catalog", Some(base.clone()), &routes)
            .await
            .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2);

        stop.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(base.authority().unwrap().as_str())
            .await
            .is_ok()
        {
            assert!(Instant::now() < deadline, "the upstream never stopped");
            tokio::task::yield_now().await;
        }
        let stale = portal.spec("catalog", Some(base), &routes).await.unwrap();
        assert_eq!(stale, fresh);
        let no_instance = portal.spec("catalog", None, &routes).await.unwrap();
        assert_eq!(no_instance, fresh);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_spec_never_fetched_is_503_with_retry_after_and_an_unrouted_service_404() {
        let portal = Portal::new(Duration::from_secs(60));
        let routes = mapping(&[("/api/v1/orders", "/api/v1/orders")]);
        for base in [Some(dead_base()), None] {
            let problem = portal.spec("order", base, &routes).await.unwrap_err();
            assert_eq!(problem.status, 503);
            assert_eq!(problem.retry_after, Some(RETRY_AFTER_S));
            assert_eq!(problem.kind, "urn:shop:problem:docs-unavailable");
        }
        let unknown = portal
            .spec("nosuch", Some(dead_base()), &[])
            .await
            .unwrap_err();
        assert_eq!(unknown.status, 404);
    }

    #[tokio::test]
    async fn an_answer_that_is_no_openapi_document_is_not_cached() {
        let (base, _hits, _stop) = upstream(json!({ "hello": "world" })).await;
        let portal = Portal::new(Duration::from_secs(60));
        let routes = mapping(&[("/", "/")]);
        let problem = portal.spec("odd", Some(base), &routes).await.unwrap_err();
        assert_eq!(problem.status, 503);
        assert!(portal.cached("odd").is_none());
    }

    async fn get_text(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(
                http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_swagger_ui_lists_every_services_spec_url_without_embedding_them() {
        let ui = swagger_ui(&["catalog".to_owned(), "order".to_owned()]);
        let (status, initializer) = get_text(ui.clone(), "/docs/swagger-initializer.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            initializer.contains("\"/openapi/catalog.json\""),
            "{initializer}"
        );
        assert!(initializer.contains("\"/openapi/order.json\""));
        assert!(
            initializer.contains("\"/openapi.json\""),
            "the gateway's own"
        );
        assert!(initializer.contains("\"validatorUrl\": \"none\""));
        let (status, _) = get_text(ui.clone(), "/docs/openapi.json").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = get_text(ui, "/docs").await;
        assert!(status.is_redirection());
    }

    #[tokio::test]
    async fn the_migration_guides_are_served_as_markdown() {
        let router = guides().merge(swagger_ui(&[]));
        let response = router
            .oneshot(
                http::Request::get("/docs/payments-v1-to-v2.md")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/markdown; charset=utf-8"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("pay_"));
    }

    /// The docs CSP (crate::edge::headers) allows no inline script: this checks the
    /// vendored page needs none.
    #[tokio::test]
    async fn the_swagger_ui_page_loads_every_script_from_a_file() {
        let (status, page) = get_text(swagger_ui(&[]), "/docs/").await;
        assert_eq!(status, StatusCode::OK);
        let scripts: Vec<&str> = page.split("<script").skip(1).collect();
        assert!(!scripts.is_empty());
        for script in scripts {
            let tag = &script[..script.find('>').unwrap()];
            assert!(tag.contains("src="), "an inline script: {script}");
            let body = &script[script.find('>').unwrap() + 1..script.find("</script>").unwrap()];
            assert!(body.trim().is_empty(), "an inline script: {script}");
        }
        assert!(!page.contains("onload="), "no inline event handlers");
    }
}
