//! Upstreams: the instances of each service the gateway forwards to, and which one
//! takes the next request (round-robin over a static list, from the settings).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use http::Uri;
use http::uri::{Authority, Scheme};

/// One instance: where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub scheme: Scheme,
    pub authority: Authority,
}

impl Instance {
    /// `http://host:port` (a path is refused: routes own the paths).
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let uri: Uri = raw
            .trim()
            .parse()
            .with_context(|| format!("{raw:?} is not a URL"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            bail!("{raw:?} needs a scheme and a host: http://host:port");
        };
        if scheme != &Scheme::HTTP {
            bail!("{raw:?}: only http:// upstreams are supported");
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!("{raw:?}: an upstream is a base URL without a path");
        }
        Ok(Self {
            scheme: scheme.clone(),
            authority: authority.clone(),
        })
    }

    /// The full URI of `path_and_query` on this instance.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

/// A service's instances and the round-robin position.
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    instances: Vec<Instance>,
    next: AtomicUsize,
}

impl Upstream {
    pub fn new(name: &str, instances: Vec<Instance>) -> anyhow::Result<Self> {
        if instances.is_empty() {
            bail!("upstream {name:?} has no instances");
        }
        Ok(Self {
            name: name.to_owned(),
            instances,
            next: AtomicUsize::new(0),
        })
    }

    /// The instance for the next request, in turn.
    pub fn pick(&self) -> &Instance {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.instances.len();
        &self.instances[i]
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }
}

/// Every upstream of the settings (`name` -> comma-separated base URLs).
pub fn from_settings(
    upstreams: &BTreeMap<String, String>,
) -> anyhow::Result<HashMap<String, Upstream>> {
    upstreams
        .iter()
        .map(|(name, list)| {
            let instances = list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(Instance::parse)
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| format!("SHOP_UPSTREAMS__{}", name.to_uppercase()))?;
            Ok((name.clone(), Upstream::new(name, instances)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_base_urls_and_anything_else_is_refused() {
        let ok = Instance::parse(" http://127.0.0.1:8082 ").unwrap();
        assert_eq!(ok.authority.as_str(), "127.0.0.1:8082");
        assert_eq!(
            ok.uri("/a?b=1").unwrap().to_string(),
            "http://127.0.0.1:8082/a?b=1"
        );
        for bad in [
            "127.0.0.1:8082",
            "ftp://x",
            "http://x/api",
            "http://x/?a=1",
            "https://x",
        ] {
            assert!(Instance::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_robin_takes_each_instance_in_turn() {
        let settings =
            BTreeMap::from([("catalog".to_owned(), "http://a:1, http://b:2,".to_owned())]);
        let upstreams = from_settings(&settings).unwrap();
        let catalog = &upstreams["catalog"];
        let picked: Vec<&str> = (0..4).map(|_| catalog.pick().authority.as_str()).collect();
        assert_eq!(picked, ["a:1", "b:2", "a:1", "b:2"]);
        let empty = BTreeMap::from([("x".to_owned(), " ".to_owned())]);
        assert!(from_settings(&empty).is_err());
    }
}
