//! One instance of an upstream: where to connect (scheme and authority), nothing else.
//! Routes own the paths, so an instance is a base URL without one.

use std::fmt;
use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use http::Uri;
use http::uri::{Authority, Scheme};

/// Where to connect: `http://host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

    /// The instance at a resolved address (`[v6]:port` for IPv6).
    pub fn from_addr(addr: SocketAddr) -> Self {
        let authority = Authority::try_from(addr.to_string())
            .expect("a socket address is always a valid authority");
        Self {
            scheme: Scheme::HTTP,
            authority,
        }
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

/// The authority alone (`10.0.0.5:8082`): the label of logs and metrics.
impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.authority.as_str())
    }
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
    fn a_resolved_address_becomes_an_http_instance_of_that_address() {
        let v4 = Instance::from_addr("10.0.0.5:8082".parse().unwrap());
        assert_eq!(v4, Instance::parse("http://10.0.0.5:8082").unwrap());
        let v6 = Instance::from_addr("[fd00::5]:8082".parse().unwrap());
        assert_eq!(v6.to_string(), "[fd00::5]:8082");
        assert_eq!(v6.uri("/x").unwrap().to_string(), "http://[fd00::5]:8082/x");
    }
}
