//! Where an upstream's instances come from: a static list of base URLs, or every address
//! a DNS name resolves to (so a Kubernetes headless Service works unchanged), looked up
//! again periodically by the upstream's loop.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;

use anyhow::{Context as _, bail};
use http::uri::Authority;

use super::Instance;

/// The instances of an upstream, as its `SHOP_UPSTREAMS__<NAME>` variable gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `http://a:8082, http://b:8082`: these instances, always.
    Static(Vec<Instance>),
    /// `dns://catalog-headless:8082`: every address of `host`, on `port`.
    Dns { host: String, port: u16 },
}

impl Source {
    /// Base URLs separated by commas, or one `dns://name:port`.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let raw = raw.trim();
        if let Some(name) = raw.strip_prefix("dns://") {
            return Self::parse_dns(name).with_context(|| {
                format!("{raw:?}: a DNS upstream is dns://name:port (one name, no path)")
            });
        }
        let mut instances: Vec<Instance> = Vec::new();
        for part in raw.split(',').filter(|s| !s.trim().is_empty()) {
            if part.trim().starts_with("dns://") {
                bail!("{raw:?}: a dns:// name cannot be mixed with other instances");
            }
            let instance = Instance::parse(part)?;
            if instances.contains(&instance) {
                bail!("{raw:?}: {instance} is listed twice");
            }
            instances.push(instance);
        }
        if instances.is_empty() {
            bail!(
                "{raw:?} names no instance: give base URLs separated by commas \
                 (http://host:port) or dns://name:port"
            );
        }
        Ok(Self::Static(instances))
    }

    fn parse_dns(name: &str) -> anyhow::Result<Self> {
        let authority: Authority = name.parse().context("not a name and port")?;
        if authority.as_str().contains('@') {
            bail!("no user info");
        }
        let Some(port) = authority.port_u16() else {
            bail!("the port is missing");
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            bail!("the name is missing");
        }
        Ok(Self::Dns {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(instances) => {
                for (i, instance) in instances.iter().enumerate() {
                    let comma = if i == 0 { "" } else { ", " };
                    write!(f, "{comma}http://{instance}")?;
                }
                Ok(())
            }
            Self::Dns { host, port } if host.contains(':') => write!(f, "dns://[{host}]:{port}"),
            Self::Dns { host, port } => write!(f, "dns://{host}:{port}"),
        }
    }
}

/// A lookup in progress.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Turns a name into addresses. An error means "no answer" (the upstream keeps the
/// instances it knew); an empty answer means "no instance".
pub trait Resolve: Send + Sync {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a>;
}

/// The system's resolver (`getaddrinfo`, through tokio): DNS, `/etc/hosts`, whatever the
/// host is configured with. What production uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// "DNS" from a file in `/etc/hosts` format (`address name [alias...]`, `#` comments),
/// read again at every lookup. For tests and laptops: editing the file changes what a
/// `dns://` upstream resolves to, without a DNS server. A name the file does not hold
/// is an error, as a DNS server's "no such name" would be; so is an unreadable file.
#[derive(Debug, Clone)]
pub struct HostsFileResolver {
    path: PathBuf,
}

impl HostsFileResolver {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl Resolve for HostsFileResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        Box::pin(async move {
            let text = tokio::fs::read_to_string(&self.path).await?;
            let addresses: Vec<SocketAddr> = text
                .lines()
                .filter_map(|line| {
                    let mut words = line.split('#').next()?.split_whitespace();
                    let address: IpAddr = words.next()?.parse().ok()?;
                    let named = words.any(|name| name.eq_ignore_ascii_case(host));
                    named.then_some(SocketAddr::new(address, port))
                })
                .collect();
            if addresses.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} is not in {}", self.path.display()),
                ));
            }
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(raw: &str) -> Instance {
        Instance::parse(raw).unwrap()
    }

    #[test]
    fn a_list_of_base_urls_is_a_static_source() {
        let source = Source::parse(" http://a:1, http://b:2 ,").unwrap();
        assert_eq!(
            source,
            Source::Static(vec![instance("http://a:1"), instance("http://b:2")])
        );
        assert_eq!(source.to_string(), "http://a:1, http://b:2");
    }

    #[test]
    fn a_dns_url_names_a_host_and_a_port() {
        let source = Source::parse("dns://catalog-headless.shop.svc:8082").unwrap();
        let expected = Source::Dns {
            host: "catalog-headless.shop.svc".to_owned(),
            port: 8082,
        };
        assert_eq!(source, expected);
        assert_eq!(source.to_string(), "dns://catalog-headless.shop.svc:8082");
        let v6 = Source::parse("dns://[::1]:80").unwrap();
        assert_eq!(v6.to_string(), "dns://[::1]:80");
    }

    #[test]
    fn bad_sources_are_refused_saying_what_is_wrong() {
        for (raw, says) in [
            ("", "names no instance"),
            (" , ", "names no instance"),
            ("http://a:1,http://a:1", "listed twice"),
            ("http://a:1/api", "without a path"),
            ("a:1", "needs a scheme"),
            ("dns://catalog", "dns://name:port"),
            ("dns://catalog:8082/api", "dns://name:port"),
            ("dns://catalog:8082,dns://order:8084", "dns://name:port"),
            ("dns://user@catalog:8082", "dns://name:port"),
            ("http://a:1, dns://catalog:8082", "cannot be mixed"),
        ] {
            let error = format!("{:#}", Source::parse(raw).unwrap_err());
            assert!(error.contains(says), "{raw:?}: {error}");
        }
    }

    #[tokio::test]
    async fn the_hosts_file_resolver_gives_every_address_of_the_name_on_the_port() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(
            &path,
            "# test hosts\n127.0.0.1 localhost\n10.0.0.5 catalog other # a comment\n\
             not-an-address catalog\n\n10.0.0.6\tCatalog\n# 10.0.0.7 catalog\nfd00::8 catalog\n",
        )
        .unwrap();
        let resolver = HostsFileResolver::new(&path);
        let found = resolver.lookup("catalog", 8082).await.unwrap();
        let expected: Vec<SocketAddr> = ["10.0.0.5:8082", "10.0.0.6:8082", "[fd00::8]:8082"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(found, expected);

        let unknown = resolver.lookup("order", 8084).await.unwrap_err();
        assert_eq!(unknown.kind(), io::ErrorKind::NotFound);
        std::fs::remove_file(&path).unwrap();
        assert!(resolver.lookup("catalog", 8082).await.is_err());
    }

    #[tokio::test]
    async fn the_system_resolver_resolves_an_address_literal_to_itself() {
        let found = SystemResolver.lookup("127.0.0.1", 8082).await.unwrap();
        assert_eq!(found, ["127.0.0.1:8082".parse::<SocketAddr>().unwrap()]);
    }
}
