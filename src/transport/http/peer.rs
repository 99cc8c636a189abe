//! Where a request comes from. `Forwarded` and `X-Forwarded-For` are believed only from a
//! peer listed in `http.trusted_proxies`: anyone can write them, so from any other peer
//! their values are ignored. Their presence still says something: the request went through a
//! proxy, and open access — which lets a request act as whichever user its path names — is
//! only for requests from this machine, so it refuses a forwarded request unless a trusted
//! proxy says the client itself is on loopback.

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderName};
use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::config::proxy_net;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Entries are addresses or CIDR ranges; the settings validated them already, so a bad
    /// one here is skipped.
    pub fn parse(entries: &[String]) -> TrustedProxies {
        TrustedProxies(
            entries
                .iter()
                .filter_map(|entry| proxy_net(entry))
                .collect(),
        )
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether `request` comes from this machine: its peer is on loopback and it was not
    /// forwarded, or every hop a trusted proxy added says so.
    pub fn is_local(&self, request: &HttpRequest) -> bool {
        let Some(peer) = request.peer_addr().map(|addr| addr.ip()) else {
            return false;
        };
        let Some(hops) = forwarded_for(request) else {
            return peer.is_loopback();
        };
        if !peer.is_loopback() || !self.trusts(peer) {
            return false;
        }
        // The client is the last hop no trusted proxy stands for (the first hop if every one
        // is trusted); a hop that is not an address is not known to be local.
        let client = hops
            .iter()
            .rev()
            .find(|hop| !hop.is_some_and(|ip| self.trusts(ip)))
            .or(hops.first());
        matches!(client, Some(Some(ip)) if ip.is_loopback())
    }
}

/// Named once: a header looked up by a string is parsed and checked on every request.
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Every hop `Forwarded` (RFC 7239 `for=`) and `X-Forwarded-For` name, in order; `None` when
/// neither header is present. A hop that is not an address (`unknown`, an obfuscated name) is
/// `Some(None)`.
fn forwarded_for(request: &HttpRequest) -> Option<Vec<Option<IpAddr>>> {
    let headers = request.headers();
    let mut hops = Vec::new();
    let mut present = false;
    for value in headers.get_all(header::FORWARDED) {
        present = true;
        let text = value.to_str().unwrap_or("");
        for element in text.split(',') {
            let found = element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.eq_ignore_ascii_case("for").then_some(value)
            });
            if let Some(node) = found {
                hops.push(node_address(node));
            }
        }
    }
    for value in headers.get_all(header::X_FORWARDED_FOR) {
        present = true;
        let text = value.to_str().unwrap_or("");
        hops.extend(text.split(',').map(node_address));
    }
    for name in [
        &header::X_FORWARDED_HOST,
        &header::X_FORWARDED_PROTO,
        &X_REAL_IP,
    ] {
        present |= headers.contains_key(name);
    }
    present.then_some(hops)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"` or `2001:db8::1` as an address.
fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut request = TestRequest::default().peer_addr(peer.parse().unwrap());
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        request.to_http_request()
    }

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn a_loopback_peer_without_forwarding_is_local() {
        let none = trusted(&[]);
        assert!(none.is_local(&request("127.0.0.1:5000", &[])));
        assert!(none.is_local(&request("[::1]:5000", &[])));
        assert!(!none.is_local(&request("192.0.2.7:5000", &[])));
    }

    #[test]
    fn forwarding_from_an_untrusted_peer_is_never_local() {
        let none = trusted(&[]);
        for header in [
            ("x-forwarded-for", "127.0.0.1"),
            ("forwarded", "for=127.0.0.1"),
            ("x-forwarded-proto", "https"),
        ] {
            assert!(
                !none.is_local(&request("127.0.0.1:5000", &[header])),
                "{header:?}"
            );
        }
    }

    #[test]
    fn a_trusted_proxy_is_believed_about_its_client() {
        let proxy = trusted(&["127.0.0.1/32", "::1"]);
        let from = |value| request("127.0.0.1:5000", &[("x-forwarded-for", value)]);
        assert!(proxy.is_local(&from("127.0.0.1")));
        assert!(!proxy.is_local(&from("203.0.113.9")));
        // A client cannot hide behind a loopback address it wrote itself.
        assert!(!proxy.is_local(&from("127.0.0.1, 203.0.113.9")));
        assert!(!proxy.is_local(&from("unknown")));
        let rfc = request(
            "127.0.0.1:5000",
            &[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")],
        );
        assert!(!proxy.is_local(&rfc));
        let local = request("127.0.0.1:5000", &[("forwarded", "for=\"[::1]:4711\"")]);
        assert!(proxy.is_local(&local));
    }

    #[test]
    fn entries_are_addresses_or_ranges() {
        assert!(proxy_net("10.0.0.0/8").is_some());
        assert!(proxy_net("::1").is_some());
        assert!(proxy_net("proxy.example").is_none());
    }
}
