//! Requests the server makes to addresses that users chose (an organization's OpenID provider,
//! its webhook endpoints): without the setting that allows private networks, only public
//! addresses. A host name is resolved and its loopback, private, link-local and other
//! non-public addresses are dropped before connecting (so the address connected to is the one
//! checked, and a name cannot be pointed inward after the check), an address written in a URL
//! is checked as it is, and redirects are never followed. Otherwise a user could make the server
//! fetch its own network (SSRF). Each user of it names the setting that opens it in its errors.

use std::time::Duration;

/// An HTTP client that reaches only what its setting allows.
pub struct Http {
    client: reqwest::Client,
    private_networks: bool,
    /// The setting that allows private networks, named in refusals.
    setting: &'static str,
}

/// Why a URL may not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0:?} is not an http(s) URL")]
    NotHttp(String),
    #[error("{url} is on a private network ({setting} allows that)")]
    Private { url: String, setting: &'static str },
}

/// A client with `timeout` per request; `private_networks` lets it reach loopback and private
/// addresses; `setting` is the name of the setting that does so (for the messages).
pub fn client(private_networks: bool, timeout: Duration, setting: &'static str) -> Http {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if !private_networks {
        builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly { setting }));
    }
    Http {
        client: builder.build().unwrap_or_default(),
        private_networks,
        setting,
    }
}

impl Http {
    /// Whether `url` may be fetched as written: an http(s) URL, and without the setting not an
    /// address of a private network. A host name is checked again when it is resolved.
    pub fn check(&self, url: &str) -> Result<reqwest::Url, Refused> {
        let parsed = reqwest::Url::parse(url).map_err(|_| Refused::NotHttp(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Refused::NotHttp(url.to_owned()));
        }
        if !self.private_networks {
            let host = parsed.host_str().unwrap_or_default();
            let literal = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .ok();
            if literal.is_some_and(|ip| !is_public(ip)) {
                return Err(Refused::Private {
                    url: url.to_owned(),
                    setting: self.setting,
                });
            }
        }
        Ok(parsed)
    }

    /// The client, for `url`, once `url` may be fetched.
    pub fn to(&self, url: &str) -> Result<&reqwest::Client, Refused> {
        self.check(url).map(|_| &self.client)
    }

    /// The client itself (tests look at its transport).
    #[cfg(test)]
    pub(crate) fn inner(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Whether the server may connect to `ip`: a unicast address of the public internet.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// Resolves a host name to its public addresses only.
struct PublicOnly {
    setting: &'static str,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let setting = self.setting;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{host} has no public address ({setting} allows private ones)"
                )
                .into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A transport error with its causes (reqwest's own text leaves out why a connection failed,
/// such as an address refused as private).
pub fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTING: &str = "JONO_TEST_PRIVATE_NETWORKS";

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        let http = client(false, Duration::from_secs(1), SETTING);
        assert!(http.to("http://127.0.0.1:8080/x").is_err());
        assert!(http.to("http://[::1]/x").is_err());
        assert!(http.to("file:///etc/passwd").is_err());
        assert!(http.to("https://id.example.com/x").is_ok());
        // Other spellings of loopback are addresses too.
        assert!(http.to("http://2130706433/x").is_err());
        assert!(http.to("http://0x7f.1/x").is_err());
        assert!(http.to("http://[::ffff:7f00:1]/x").is_err());
        let message = http.to("http://10.0.0.1/x").unwrap_err().to_string();
        assert!(message.contains(SETTING), "{message}");
        let open = client(true, Duration::from_secs(1), SETTING);
        assert!(open.to("http://127.0.0.1:8080/x").is_ok());
    }

    /// A name that resolves only to loopback is refused when connecting, not only when written
    /// as an address.
    #[tokio::test]
    async fn a_name_of_a_private_address_is_refused_at_connect_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let http = client(false, Duration::from_secs(2), SETTING);
        let url = format!("http://localhost:{port}/");
        let error = http.to(&url).unwrap().get(&url).send().await.unwrap_err();
        let text = error_text(&error);
        assert!(text.contains("no public address"), "{text}");
    }
}
