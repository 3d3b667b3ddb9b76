//! Where a step may send HTTP requests: a scheme, a host and a port, granted as
//! `http:HOST` (meaning `https://HOST:443`) or `http:SCHEME://HOST[:PORT]`. An exact
//! allow-list, never a pattern: a grant for one port does not open another.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// One destination outbound HTTP may reach.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Egress {
    pub scheme: Scheme,
    /// a lower-case DNS name, an IPv4 address, or an IPv6 address in brackets
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an HTTP destination: expected HOST, https://HOST[:PORT] or http://HOST[:PORT]")]
pub struct BadEgress(pub String);

impl Egress {
    /// The destination of a request URL, as a grant would name it.
    pub fn of_url(scheme: &str, host: &str, port: Option<u16>) -> Result<Egress, BadEgress> {
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(BadEgress(format!("{scheme}://{host}"))),
        };
        let host = host.to_ascii_lowercase();
        if !valid_host(&host) {
            return Err(BadEgress(host));
        }
        Ok(Egress { scheme, port: port.unwrap_or(scheme.default_port()), host })
    }
}

fn valid_host(h: &str) -> bool {
    if let Some(v6) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
        })
}

impl FromStr for Egress {
    type Err = BadEgress;
    fn from_str(s: &str) -> Result<Egress, BadEgress> {
        let bad = || BadEgress(s.to_string());
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            // a bare host: the common case, an HTTPS API
            None => ("https", s),
        };
        if rest.contains(['/', '?', '#', '@', '*']) {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            // an IPv6 literal's colons are inside its brackets
            Some((host, port)) if !port.contains(']') => {
                let port: u16 = port.parse().map_err(|_| bad())?;
                if port == 0 {
                    return Err(bad());
                }
                (host, Some(port))
            }
            _ => (rest, None),
        };
        Egress::of_url(scheme, host, port).map_err(|_| bad())
    }
}

impl fmt::Display for Egress {
    /// The shortest form that parses back to the same destination.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme == Scheme::Https && self.port == 443 {
            f.write_str(&self.host)
        } else if self.port == self.scheme.default_port() {
            write!(f, "{}://{}", self.scheme.as_str(), self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_their_meaning() {
        for (grant, scheme, host, port, shortest) in [
            ("api.example.com", Scheme::Https, "api.example.com", 443, "api.example.com"),
            ("https://API.example.com", Scheme::Https, "api.example.com", 443, "api.example.com"),
            ("https://api.example.com:8443", Scheme::Https, "api.example.com", 8443, "https://api.example.com:8443"),
            ("http://hooks.example.com", Scheme::Http, "hooks.example.com", 80, "http://hooks.example.com"),
            ("http://127.0.0.1:8080", Scheme::Http, "127.0.0.1", 8080, "http://127.0.0.1:8080"),
            ("https://[::1]:9000", Scheme::Https, "[::1]", 9000, "https://[::1]:9000"),
        ] {
            let e: Egress = grant.parse().unwrap_or_else(|e| panic!("{grant}: {e}"));
            assert_eq!((e.scheme, e.host.as_str(), e.port), (scheme, host, port), "{grant}");
            assert_eq!(e.to_string(), shortest);
            assert_eq!(shortest.parse::<Egress>().unwrap(), e);
        }
        for bad in [
            "",
            "*",
            "*.example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "example.com:0",
            "example.com:99999",
            "example.com:http",
            "https://[not-v6]",
            "exa mple.com",
            "-bad.example.com",
        ] {
            assert!(bad.parse::<Egress>().is_err(), "{bad:?} parsed");
        }
    }
}
