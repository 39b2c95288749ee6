//! An authenticator app, for the tests: RFC 6238 codes computed here from the secret the
//! server handed out, written from the RFCs and not from the server's code, so that a mistake
//! in one is not copied into the other.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// RFC 4648 base 32 (the enrolment's `secret`) to bytes.
pub fn decode_base32(text: &str) -> Vec<u8> {
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = String::new();
    for c in text.trim_end_matches('=').chars() {
        let value = alphabet.find(c).expect("a base 32 character");
        bits.push_str(&format!("{value:05b}"));
    }
    bits.as_bytes()
        .chunks(8)
        .filter(|chunk| chunk.len() == 8)
        .map(|chunk| u8::from_str_radix(std::str::from_utf8(chunk).unwrap(), 2).unwrap())
        .collect()
}

/// The 6-digit code of time step `step` (30-second steps since the epoch).
pub fn code_at_step(secret: &[u8], step: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = (hash[hash.len() - 1] & 0xf) as usize;
    let number = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!("{:06}", number % 1_000_000)
}

/// The current time step.
pub fn step_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The code the app shows now, for the secret in base 32.
pub fn code_now(secret_base32: &str) -> String {
    code_at_step(&decode_base32(secret_base32), step_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_appendix_b() {
        // The SHA-1 seed; the RFC's 8-digit values end in these 6 digits.
        let secret = b"12345678901234567890";
        assert_eq!(code_at_step(secret, 59 / 30), "287082");
        assert_eq!(code_at_step(secret, 1_111_111_109 / 30), "081804");
        assert_eq!(code_at_step(secret, 20_000_000_000 / 30), "353130");
        assert_eq!(decode_base32("GEZDGNBVGY3TQOJQ"), b"1234567890");
    }
}
