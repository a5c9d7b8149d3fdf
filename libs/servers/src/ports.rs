//! Free TCP ports on 127.0.0.1, chosen by the kernel.

use std::net::TcpListener;

/// One free port.
pub fn free_port() -> std::io::Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `count` distinct free ports: every listener stays open until all are picked, so
/// the kernel cannot hand out the same port twice. Another process may still take
/// one before we use it; the server starts then fail loudly ("address in use").
pub fn free_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_asked_for_together_are_distinct() {
        let mut ports = free_ports(16).unwrap();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 16);
    }
}
