//! Outbound HTTP cannot be aimed inward. A grant names a destination, but a name is only
//! as good as what it resolves to: every address a request would connect to is checked
//! when it connects (after resolution, so a name that resolves to 127.0.0.1 or to the
//! cloud metadata address is refused, and so is one that changes its answer between the
//! manifest review and the call). Loopback, private, link-local, shared (CGNAT),
//! unique-local, multicast and reserved addresses are refused unless the operator lists
//! their range in `CRM_EGRESS_ALLOW` (the tests' loopback servers do).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Which internal ranges outbound HTTP may reach anyway; public addresses always may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<IpNet>,
}

/// A destination refused because of where it points.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InternalAddress {
    pub host: String,
    pub addr: IpAddr,
}

impl std::fmt::Display for InternalAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if literal_address(&self.host) == Some(self.addr) {
            write!(f, "{} is an internal address", self.host)?;
        } else {
            write!(f, "{} resolves to {}, an internal address", self.host, self.addr)?;
        }
        f.write_str(" outbound HTTP may not reach (an operator may allow its range with CRM_EGRESS_ALLOW)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address range: expected a list like 10.1.0.0/16, 127.0.0.1")]
pub struct BadRange(pub String);

impl EgressPolicy {
    pub fn allowing(allowed: Vec<IpNet>) -> EgressPolicy {
        EgressPolicy { allowed }
    }

    /// A comma-separated list of ranges; a bare address is a range of one.
    pub fn parse(list: &str) -> Result<EgressPolicy, BadRange> {
        let mut allowed = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| BadRange(item.to_string()))?,
            };
            allowed.push(net);
        }
        Ok(EgressPolicy { allowed })
    }

    pub fn permits(&self, addr: IpAddr) -> bool {
        is_public(addr) || self.allowed.iter().any(|net| net.contains(&addr))
    }

    /// `Ok` unless `addr` is internal and not allowed.
    pub fn check(&self, host: &str, addr: IpAddr) -> Result<(), InternalAddress> {
        if self.permits(addr) { Ok(()) } else { Err(InternalAddress { host: host.to_string(), addr }) }
    }
}

/// Whether an address is on the public internet. Written out rather than taken from
/// `IpAddr::is_global`, which is not stable.
fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o1, o2, o3, _] = a.octets();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local() // 169.254/16, the cloud metadata address among them
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_multicast()
        || o1 == 0
        || (o1 == 100 && (64..128).contains(&o2)) // shared address space (CGNAT)
        || (o1 == 192 && o2 == 0 && o3 == 0) // IETF protocol assignments
        || (o1 == 198 && (18..20).contains(&o2)) // benchmarking
        || o1 >= 240) // reserved
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    // Addresses that embed an IPv4 address reach what it reaches.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0] == 0x64 && s[1] == 0xff9b {
        return is_public_v4(embedded(s[6], s[7])); // NAT64
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2])); // 6to4
    }
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated, still routed inward)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo
        || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard
        || s[..6] == [0; 6]) // IPv4-compatible, deprecated
}

/// The steps' HTTP client and the policy it connects under, shared by every step of a
/// process (connections are pooled across steps).
#[derive(Clone)]
pub(crate) struct Outbound {
    pub(crate) client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl Outbound {
    /// Fails rather than fall back to a client without the guard.
    pub(crate) fn new(policy: EgressPolicy) -> Result<Outbound, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            // a redirect to another destination would slip past the allow-list
            .redirect(reqwest::redirect::Policy::none())
            // a proxy would resolve names where the policy cannot see the addresses
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .user_agent(concat!("crm-step/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Outbound { client, policy })
    }

    /// An address written in the URL is never resolved, so the resolver's check cannot see
    /// it: it is checked here, before the request. (The URL parser has already turned forms
    /// like `0x7f.1` into dotted decimals.)
    pub(crate) fn check_literal(&self, host: &str) -> Result<(), InternalAddress> {
        match literal_address(host) {
            Some(addr) => self.policy.check(host, addr),
            None => Ok(()),
        }
    }
}

/// The address a URL's host names literally (`10.0.0.1`, `[::1]`), if it is one.
fn literal_address(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).parse().ok()
}

/// The resolver of the steps' HTTP client: the system's answer, less what the policy
/// refuses. Only permitted addresses are ever handed to the connector.
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let permitted: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            match (permitted.is_empty(), refused) {
                (true, Some(e)) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// The refusal behind a failed request, if the policy refused it.
pub(crate) fn refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a InternalAddress> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(refused) = err.downcast_ref::<InternalAddress>() {
            return Some(refused);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let deny = EgressPolicy::default();
        for internal in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            let addr: IpAddr = internal.parse().unwrap();
            assert!(!deny.permits(addr), "{internal} permitted");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "100.128.0.1"] {
            assert!(deny.permits(public.parse().unwrap()), "{public} refused");
        }
        let tests = EgressPolicy::parse("127.0.0.0/8, ::1").unwrap();
        assert!(tests.permits("127.0.0.1".parse().unwrap()));
        assert!(tests.permits("::1".parse().unwrap()));
        assert!(!tests.permits("10.0.0.1".parse().unwrap()));
        assert!(EgressPolicy::parse("127.0.0.0/33").is_err());
        assert!(EgressPolicy::parse("localhost").is_err());
        assert_eq!(EgressPolicy::parse("").unwrap(), EgressPolicy::default());
    }
}
