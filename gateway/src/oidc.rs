//! OpenID Connect's authorization-code flow with PKCE (RFC 7636), `state` and `nonce`, as a
//! relying party: the provider's discovery document, the authorization URL, the code's exchange
//! at the token endpoint (client_secret_basic), and the ID token's checks — its RS256 signature
//! against the provider's JWKS, `iss`, `aud` (and `azp`), `exp`, `nonce`, and an email accepted
//! only when `email_verified`. What is kept between the two legs is `sso_secrets`'.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::outbound;

/// How far a provider's clock may be ahead or behind.
const LEEWAY_SECONDS: i64 = 60;
/// A provider slower than this is taken as away.
const PROVIDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a sign-in through a provider did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense.
    #[error("the identity provider: {0}")]
    Provider(String),
    /// The ID token (or the exchange) is not one to take.
    #[error("the identity provider's answer is refused: {0}")]
    Refused(String),
}

fn provider(what: impl std::fmt::Display) -> OidcError {
    OidcError::Provider(what.to_string())
}

fn refused(what: impl Into<String>) -> OidcError {
    OidcError::Refused(what.into())
}

/// The endpoints of a provider, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Provider {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// The HTTP client for providers: issuer, token and JWKS URLs come from an owner's setting and
/// a provider's discovery document, so without `JONO_SSO_PRIVATE_NETWORKS` it reaches only
/// public addresses, follows no redirects (`crate::outbound`).
pub struct Http(outbound::Http);

pub fn client(private_networks: bool) -> Http {
    Http(outbound::client(
        private_networks,
        PROVIDER_TIMEOUT,
        "JONO_SSO_PRIVATE_NETWORKS",
    ))
}

impl Http {
    /// The client, for `url`, once `url` may be fetched.
    fn to(&self, url: &str) -> Result<&reqwest::Client, OidcError> {
        self.0.to(url).map_err(provider)
    }
}

/// `{issuer}/.well-known/openid-configuration`, whose `issuer` must be `issuer` itself.
pub async fn discover(http: &Http, issuer: &str) -> Result<Provider, OidcError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let response = http
        .to(&url)?
        .get(&url)
        .send()
        .await
        .map_err(provider_error)?;
    if !response.status().is_success() {
        return Err(provider(format!("{url} answered {}", response.status())));
    }
    let found: Provider = response.json().await.map_err(provider_error)?;
    if found.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(provider(format!(
            "its discovery document names another issuer ({})",
            found.issuer
        )));
    }
    Ok(found)
}

/// PKCE's S256 challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where the browser goes to sign in.
pub struct Authorization<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub verifier: &'a str,
    pub login_hint: Option<&'a str>,
}

pub fn authorization_url(provider: &Provider, request: &Authorization<'_>) -> String {
    let mut url = format!(
        "{}{}response_type=code&scope=openid%20email%20profile&client_id={}&redirect_uri={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        provider.authorization_endpoint,
        if provider.authorization_endpoint.contains('?') { '&' } else { '?' },
        encode(request.client_id),
        encode(request.redirect_uri),
        encode(request.state),
        encode(request.nonce),
        pkce_challenge(request.verifier),
    );
    if let Some(hint) = request.login_hint {
        url.push_str(&format!("&login_hint={}", encode(hint)));
    }
    url
}

/// Trades the code for the provider's tokens: the ID token.
pub async fn exchange(
    http: &Http,
    provider: &Provider,
    client_id: &str,
    client_secret: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<String, OidcError> {
    // RFC 6749 2.3.1: the id and secret are form-encoded before they are joined.
    let basic = STANDARD.encode(format!("{}:{}", encode(client_id), encode(client_secret)));
    let response = http
        .to(&provider.token_endpoint)?
        .post(&provider.token_endpoint)
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .map_err(provider_error)?;
    let status = response.status();
    let body: Value = response.json().await.map_err(provider_error)?;
    if !status.is_success() {
        let error = body["error"].as_str().unwrap_or("an error");
        return Err(refused(format!("the code was not taken ({error})")));
    }
    body["id_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| self::provider("no id_token in the token response"))
}

/// A transport error with its causes.
fn provider_error(error: reqwest::Error) -> OidcError {
    provider(outbound::error_text(&error))
}

/// What Jono takes from a checked ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    /// Verified by the provider.
    pub email: String,
    pub name: Option<String>,
}

fn part(token_part: &str) -> Result<Value, OidcError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token_part.trim_end_matches('='))
        .map_err(|_| refused("the ID token is not a JWT"))?;
    serde_json::from_slice(&bytes).map_err(|_| refused("the ID token is not a JWT"))
}

/// The RSA key `kid` of a JWKS document.
fn key_of(jwks: &Value, kid: Option<&str>) -> Result<RsaPublicKey, OidcError> {
    let keys = jwks["keys"]
        .as_array()
        .ok_or_else(|| provider("its JWKS has no keys"))?;
    let key = keys
        .iter()
        .filter(|key| key["kty"] == "RSA")
        .filter(|key| key["use"].is_null() || key["use"] == "sig")
        .find(|key| kid.is_none() || key["kid"].as_str() == kid)
        .ok_or_else(|| refused("the ID token is signed by a key the provider does not publish"))?;
    let number = |field: &str| {
        key[field]
            .as_str()
            .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
            .map(|bytes| BigUint::from_bytes_be(&bytes))
            .ok_or_else(|| provider(format!("a JWKS key without {field}")))
    };
    RsaPublicKey::new(number("n")?, number("e")?).map_err(provider)
}

/// Checks everything an ID token must be (OpenID Connect Core 3.1.3.7) and gives its identity.
pub fn check_id_token(
    token: &str,
    jwks: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<Identity, OidcError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused("the ID token is not a JWT"));
    };
    let head = part(header)?;
    if head["alg"] != "RS256" {
        return Err(refused("the ID token is not signed with RS256"));
    }
    let key = key_of(jwks, head["kid"].as_str())?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| refused("the ID token's signature is not base64url"))?;
    let digest = Sha256::digest(format!("{header}.{payload}").as_bytes());
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .map_err(|_| refused("the ID token's signature does not verify"))?;
    let claims = part(payload)?;
    if claims["iss"].as_str().map(|iss| iss.trim_end_matches('/'))
        != Some(issuer.trim_end_matches('/'))
    {
        return Err(refused("the ID token is from another issuer"));
    }
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(refused("the ID token is for another client (aud)"));
    }
    if audiences.len() > 1 && claims["azp"].as_str() != Some(client_id) {
        return Err(refused("the ID token was issued to another party (azp)"));
    }
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| refused("the ID token has no expiry"))?;
    if exp + LEEWAY_SECONDS <= now {
        return Err(refused("the ID token has expired"));
    }
    if claims["iat"]
        .as_i64()
        .is_some_and(|iat| iat - LEEWAY_SECONDS > now)
    {
        return Err(refused("the ID token was issued in the future"));
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return Err(refused("the ID token's nonce is not this sign-in's"));
    }
    let subject = claims["sub"]
        .as_str()
        .ok_or_else(|| refused("the ID token has no subject"))?
        .to_owned();
    let email = claims["email"]
        .as_str()
        .ok_or_else(|| refused("the provider gave no email address"))?;
    if claims["email_verified"] != Value::Bool(true) {
        return Err(refused("the provider has not verified this email address"));
    }
    Ok(Identity {
        subject,
        email: email.to_owned(),
        name: claims["name"].as_str().map(str::to_owned),
    })
}

/// The provider's signing keys.
pub async fn jwks(http: &Http, provider: &Provider) -> Result<Value, OidcError> {
    let response = http
        .to(&provider.jwks_uri)?
        .get(&provider.jwks_uri)
        .send()
        .await
        .map_err(provider_error)?;
    if !response.status().is_success() {
        return Err(self::provider(format!(
            "its JWKS answered {}",
            response.status()
        )));
    }
    response.json().await.map_err(provider_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_of_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    /// Real providers are https: the client speaks TLS (a refused connection, not an unsupported
    /// scheme).
    #[tokio::test]
    async fn the_client_speaks_https() {
        let error = client(true)
            .0
            .inner()
            .get("https://127.0.0.1:1/.well-known/openid-configuration")
            .send()
            .await
            .unwrap_err();
        assert!(!error.is_builder(), "{error:?}");
        assert!(error.is_connect(), "{error:?}");
    }

    /// Which addresses are public is `outbound`'s (and tested there); this is SSO's setting.
    #[test]
    fn sso_fetches_private_addresses_only_when_allowed() {
        let http = client(false);
        assert!(http.to("http://127.0.0.1:8080/x").is_err());
        assert!(http.to("http://[::1]/x").is_err());
        assert!(http.to("file:///etc/passwd").is_err());
        assert!(http.to("https://id.example.com/x").is_ok());
        assert!(client(true).to("http://127.0.0.1:8080/x").is_ok());
    }

    #[test]
    fn a_token_that_is_not_a_jwt_or_not_rs256_is_refused() {
        let jwks = serde_json::json!({"keys": []});
        let check = |token: &str| check_id_token(token, &jwks, "http://i", "c", "n", 0);
        assert!(matches!(check("a.b"), Err(OidcError::Refused(_))));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"iss":"http://i"}"#)
        );
        assert!(matches!(check(&none), Err(OidcError::Refused(_))));
    }
}
