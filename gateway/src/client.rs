//! Who the client is (API.md, Limits): the peer's address, or, where `JONO_TRUSTED_PROXIES`
//! names the peer, the nearest untrusted address of `X-Forwarded-For`. Every per-address limit
//! keys on it, so that behind a reverse proxy each client is counted on its own, and a client
//! that writes its own `X-Forwarded-For` to a Jono it reaches directly is not believed.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::error::ApiError;
use crate::state::AppState;

/// The proxies whose `X-Forwarded-For` is believed (`JONO_TRUSTED_PROXIES`, CIDRs separated by
/// commas; a bare address is a /32 or /128). Empty by default: nobody's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8, 127.0.0.1, ::1`; names the first entry that is not a CIDR.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let network = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("JONO_TRUSTED_PROXIES: {entry:?} is not a CIDR or an address")
                })?;
            networks.push(network);
        }
        Ok(Self(networks))
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from its right end (the hop nearest
    /// to us) while the hop that added an entry is trusted. An entry that is not an address
    /// stops the walk at the hop that wrote it.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for entry in forwarded.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match parse_hop(entry) {
                Some(address) => client = address,
                None => break,
            }
        }
        client
    }
}

/// An IPv4 address that arrived as IPv6 (`::ffff:a.b.c.d`) is the IPv4 one.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// `203.0.113.5`, `2001:db8::1`, `203.0.113.5:4711` or `[2001:db8::1]:4711`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .map(canonical)
}

/// The client's address, for the per-address limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| ApiError::Internal("no peer address on the request".into()))?;
        Ok(Self(
            state
                .settings
                .trusted_proxies
                .client(peer.ip(), &parts.headers),
        ))
    }
}

/// Where a session is being opened from (`secrets::Device`): the User-Agent, cut to 256
/// characters, and the client address.
pub struct DeviceOf(pub crate::secrets::Device);

/// The longest User-Agent kept.
const USER_AGENT_CHARS: usize = 256;

impl FromRequestParts<AppState> for DeviceOf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ClientAddr(address) = ClientAddr::from_request_parts(parts, state).await?;
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.chars().take(USER_AGENT_CHARS).collect());
        Ok(Self(crate::secrets::Device {
            user_agent,
            address: Some(address.to_string()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_visitor_is_its_ipv4_address_or_its_ipv6_64_under_the_secret() {
        let keys = VisitorKeys::new([7; 32]);
        let key = |raw: &str| keys.key_of(raw.parse().unwrap());
        assert_eq!(key("203.0.113.7"), key("::ffff:203.0.113.7"));
        assert_ne!(key("203.0.113.7"), key("203.0.113.8"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        // Another deployment's secret makes other keys: none can be computed without it.
        let other = VisitorKeys::new([8; 32]);
        assert_ne!(
            key("203.0.113.7"),
            other.key_of("203.0.113.7".parse().unwrap())
        );
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("198.51.100.7"), &headers(&["203.0.113.5"])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        // The client forged the first entry; the proxies appended the rest.
        let forwarded = headers(&["6.6.6.6, 203.0.113.5", "10.1.2.3"]);
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &forwarded),
            ip("203.0.113.5")
        );
        // Through the IPv4-mapped form of a trusted peer too.
        assert_eq!(
            trusted.client(ip("::ffff:127.0.0.1"), &forwarded),
            ip("203.0.113.5")
        );
        // Nothing forwarded: the proxy itself.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        // Garbage stops the walk at the hop that wrote it.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &headers(&["203.0.113.5, nonsense"])),
            ip("127.0.0.1")
        );
        // Ports and brackets are taken off.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &headers(&["[2001:db8::1]:4711"])),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn a_bad_list_names_its_entry() {
        let error = TrustedProxies::parse("10.0.0.0/8, proxy.example").unwrap_err();
        assert!(error.contains("proxy.example"), "{error}");
    }
}

/// Makes the key a block of an abusive visitor holds (`domain::values::VisitorKey`): an HMAC of
/// the client address under a secret of the deployment (`secrets::visitor_key_secret`), so the
/// log never holds an address. An IPv6 client is known by its /64, the block an ISP gives one
/// subscriber, so that it cannot step around a block within its own network.
#[derive(Clone)]
pub struct VisitorKeys {
    secret: [u8; 32],
}

impl VisitorKeys {
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    /// A secret of this process only, until `jono serve` puts the deployment's kept one.
    pub fn ephemeral() -> Self {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut secret);
        Self { secret }
    }

    pub fn key_of(&self, address: IpAddr) -> domain::values::VisitorKey {
        use hmac::Mac;
        let network = match canonical(address) {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        };
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(b"jono visitor\0");
        mac.update(network.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        domain::values::VisitorKey::parse(hex)
            .unwrap_or_else(|_| unreachable!("32 hex digits make a visitor key"))
    }
}
