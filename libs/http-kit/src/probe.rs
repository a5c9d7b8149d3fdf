//! `shop-<name> healthcheck`: the process asks itself `GET /healthz` on loopback and
//! exits 0 on a 2xx answer, 1 otherwise. A container image without a shell or curl
//! (distroless) probes itself this way (`HEALTHCHECK CMD ["/usr/local/bin/shop",
//! "healthcheck"]`).
//!
//! Plain blocking sockets, no runtime: the probe runs in a fresh process every few
//! seconds and should cost next to nothing.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// How long the probe waits to connect, and then for the answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The port to probe: `SHOP_PORT` when set (as the service itself reads it), else the
/// service's default.
pub fn probe_port(default_port: u16) -> anyhow::Result<u16> {
    match std::env::var("SHOP_PORT") {
        Ok(port) => port
            .trim()
            .parse()
            .with_context(|| format!("SHOP_PORT={port:?} is not a port")),
        Err(_) => Ok(default_port),
    }
}

/// `GET /healthz` on `127.0.0.1:port`: `Ok` for a 2xx status.
pub fn healthcheck(port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .with_context(|| format!("nothing answers on {addr}"))?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: shop-healthcheck\r\nConnection: close\r\n\r\n",
    )?;
    // The status line is all that matters: `HTTP/1.1 200 OK`.
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..])?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("not an HTTP answer: {line:?}"))?;
    if !(200..300).contains(&status) {
        bail!("/healthz answered {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answering(status_line: &'static str) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 512];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(status_line.as_bytes());
        });
        port
    }

    #[test]
    fn a_2xx_passes_anything_else_fails() {
        assert!(healthcheck(answering("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).is_ok());
        let failed = healthcheck(answering("HTTP/1.1 503 Service Unavailable\r\n\r\n"));
        assert!(failed.unwrap_err().to_string().contains("503"));
        assert!(healthcheck(answering("garbage")).is_err());
    }

    #[test]
    fn nothing_listening_fails() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        assert!(healthcheck(port).is_err());
    }
}
