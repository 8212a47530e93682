//! The client's address as rule P13's per-address throttle counts it.
//!
//! Behind a reverse proxy (the Kubernetes ingress controller) every connection comes from
//! the proxy, so the socket's address would count every patron's failed logins together.
//! The proxy says whom it forwards for in `X-Forwarded-For`, but anyone can send that
//! header: it is read only when the connection comes from an address of
//! `--trusted-proxies` (`KITSUKI_TRUSTED_PROXIES`), and then only as far as it was written
//! by trusted proxies. [`client_ip`] walks the list from the right (each proxy appends the
//! address it received the request from) past every trusted proxy; the first address that
//! is not one is the client. Whatever a client wrote further left is ignored, so a forged
//! header buys nothing: the address counted is at worst the one our proxy saw.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

/// The header a proxy names the addresses it forwards for in.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// The networks of the reverse proxies whose `X-Forwarded-For` is believed. Empty (the
/// default): the header is never read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A `--trusted-proxies` entry that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR network: {0:?}")]
pub struct BadProxy(pub String);

impl FromStr for TrustedProxies {
    type Err = BadProxy;

    /// Comma-separated addresses (`10.0.0.7`, `fd00::1`) and networks (`10.0.0.0/8`);
    /// blanks around entries and empty entries are allowed, so "" is the empty list.
    fn from_str(s: &str) -> Result<Self, BadProxy> {
        let mut nets = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(|ip| IpNet::from(canonical(ip)))
                    .map_err(|_| BadProxy(entry.to_string()))?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self.0.iter().map(IpNet::to_string).collect();
        f.write_str(&entries.join(","))
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:10.0.0.7`) is that IPv4 address,
/// so that `10.0.0.0/8` matches it and the throttle counts it once.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One entry of `X-Forwarded-For`: an address, possibly with a port (`1.2.3.4:5678`,
/// `[fd00::1]:5678`), as some proxies write it.
fn forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// The client's address: `peer` (the socket's) unless it is a trusted proxy; then, walking
/// `forwarded_for` (the `X-Forwarded-For` header values, in the order received) from the
/// right, the first address that is not a trusted proxy. If every entry is a trusted proxy,
/// the left-most one; if an entry cannot be read (garbage, `unknown`), the trusted hop that
/// passed it on, since nothing left of it was written by a proxy we trust.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut client = canonical(peer);
    if !trusted.contains(client) {
        return client;
    }
    let entries = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .collect::<Vec<_>>();
    for entry in entries.into_iter().rev() {
        match forwarded_entry(entry) {
            Some(ip) => {
                client = ip;
                if !trusted.contains(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(s: &str) -> TrustedProxies {
        s.parse().unwrap()
    }

    #[test]
    fn the_setting_reads_addresses_and_networks() {
        assert!(proxies("").is_empty());
        assert!(proxies(" , ").is_empty());
        let p = proxies("10.0.0.0/8, 192.168.1.7,fd00::/8 ,::1");
        assert_eq!(p.to_string(), "10.0.0.0/8,192.168.1.7/32,fd00::/8,::1/128");
        for inside in [
            "10.1.2.3",
            "192.168.1.7",
            "fd12::3",
            "::1",
            "::ffff:10.9.9.9",
        ] {
            assert!(p.contains(ip(inside)), "{inside}");
        }
        for outside in ["11.0.0.1", "192.168.1.8", "fe80::1", "127.0.0.1"] {
            assert!(!p.contains(ip(outside)), "{outside}");
        }
        // A network written with host bits set means its network.
        assert_eq!(proxies("10.1.2.3/8").to_string(), "10.0.0.0/8");
        // A mapped address given as the setting is its IPv4 address.
        assert!(proxies("::ffff:10.0.0.1").contains(ip("10.0.0.1")));
    }

    #[test]
    fn the_setting_refuses_what_is_not_an_address() {
        for bad in ["ingress", "10.0.0.0/33", "10.0.0", "10.0.0.1, x", "*"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }

    #[test]
    fn p13_without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            client_ip(ip("203.0.113.5"), &["198.51.100.1"], &none),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["198.51.100.1"], &none),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn p13_a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_forwards() {
        let p = proxies("10.0.0.0/8");
        for header in [&["198.51.100.1"][..], &["198.51.100.1, 10.0.0.3"], &[]] {
            assert_eq!(client_ip(ip("203.0.113.5"), header, &p), ip("203.0.113.5"));
        }
    }

    #[test]
    fn p13_from_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
        let p = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.2");
        assert_eq!(client_ip(peer, &["198.51.100.1"], &p), ip("198.51.100.1"));
        // A client's forged entries are left of what our proxy appended: ignored.
        assert_eq!(
            client_ip(peer, &["1.1.1.1, 2.2.2.2, 198.51.100.1"], &p),
            ip("198.51.100.1")
        );
        // Chained trusted proxies are walked past.
        assert_eq!(
            client_ip(peer, &["1.1.1.1, 198.51.100.1, 10.0.0.9, 10.3.3.3"], &p),
            ip("198.51.100.1")
        );
        // Several header lines are one list, in the order received.
        assert_eq!(
            client_ip(peer, &["1.1.1.1", "198.51.100.1, 10.0.0.9"], &p),
            ip("198.51.100.1")
        );
        // Ports and IPv6, as some proxies write them; mapped addresses are IPv4.
        assert_eq!(
            client_ip(peer, &["198.51.100.1:4711"], &p),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(peer, &["[2001:db8::7]:4711"], &p),
            ip("2001:db8::7")
        );
        assert_eq!(client_ip(peer, &[" 2001:db8::7 "], &p), ip("2001:db8::7"));
        assert_eq!(
            client_ip(peer, &["::ffff:198.51.100.1"], &p),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &["198.51.100.1"], &p),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn p13_from_a_trusted_proxy_without_a_readable_entry_the_last_trusted_hop_is_the_client() {
        let p = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.2");
        // No header: the proxy itself (it forwarded nothing to believe).
        assert_eq!(client_ip(peer, &[], &p), peer);
        assert_eq!(client_ip(peer, &[""], &p), peer);
        // Garbage stops the walk at the hop that passed it on.
        assert_eq!(client_ip(peer, &["unknown"], &p), peer);
        assert_eq!(
            client_ip(peer, &["198.51.100.1, garbage, 10.0.0.9"], &p),
            ip("10.0.0.9")
        );
        // Every entry a trusted proxy: the left-most.
        assert_eq!(client_ip(peer, &["10.7.7.7, 10.0.0.9"], &p), ip("10.7.7.7"));
    }
}
