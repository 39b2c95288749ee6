//! The deployment's webhook key: Ed25519, its seed kept beside the log
//! (`secrets::webhook_signing_seed`), so that endpoints can verify every delivery with the
//! public key the organization page shows (README, "Webhooks").

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey};

/// The deployment's webhook key (its seed is `secrets::webhook_signing_seed`).
#[derive(Clone)]
pub struct Signer(SigningKey);

impl Signer {
    pub fn new(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// A key of this process only (tests of the router alone; `jono serve` sets the kept one).
    pub fn ephemeral() -> Self {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
        Self::new(seed)
    }

    /// The public key, 32 bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The public key as PEM (SubjectPublicKeyInfo, RFC 8410), for tools that want one.
    pub fn public_key_pem(&self) -> String {
        // The DER of SubjectPublicKeyInfo { id-Ed25519 (1.3.101.112) } before the 32 bytes.
        const PREFIX: [u8; 12] = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        let mut der = PREFIX.to_vec();
        der.extend_from_slice(&self.public_key());
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        )
    }

    /// `Jono-Signature`'s value: `t=<unix seconds>,ed25519=<base64 of the signature of
    /// "<t>.<body>">`.
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        let signature = self.0.sign(&signed);
        format!(
            "t={timestamp},ed25519={}",
            STANDARD.encode(signature.to_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn a_signature_verifies_over_the_timestamp_and_the_body() {
        let signer = Signer::new([7; 32]);
        let header = signer.signature(1_700_000_000, b"{\"position\":3}");
        let (t, signature) = header
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",ed25519="))
            .unwrap();
        assert_eq!(t, "1700000000");
        let key = VerifyingKey::from_bytes(&signer.public_key()).unwrap();
        let signature = Signature::from_slice(&STANDARD.decode(signature).unwrap()).unwrap();
        assert!(key
            .verify(b"1700000000.{\"position\":3}", &signature)
            .is_ok());
        assert!(key
            .verify(b"1700000001.{\"position\":3}", &signature)
            .is_err());
        let pem = signer.public_key_pem();
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"),
            "{pem}"
        );
    }
}
