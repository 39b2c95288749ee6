//! Keys the server made for itself, kept beside the log (never in it) so that what they sign
//! survives a restart and every process of a deployment agrees: 32 bytes each, stored as hex,
//! by name (`url_signing`, `account_ids`, `customer_refs`, `visitor_keys`, `webhook_signing`).

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 1] = [
    // Keys the server made for itself, hex: `url_signing` signs attachments' URLs,
    // `account_ids` is the secret accounts' ids are derived under. Kept so that a URL handed
    // out survives a restart and every process of a deployment agrees.
    "CREATE TABLE IF NOT EXISTS server_keys (
        name TEXT PRIMARY KEY,
        key_hex TEXT NOT NULL
    )",
];

/// The key `name`: the one kept, or else `fresh`, kept now. Two servers starting at once both
/// insert; the first wins and both read it back.
pub async fn key_or_keep(
    backend: &Backend,
    name: &str,
    fresh: [u8; 32],
) -> Result<[u8; 32], StoreError> {
    let fresh_hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    let insert = "INSERT INTO server_keys (name, key_hex) VALUES ($1, $2)
                  ON CONFLICT (name) DO NOTHING";
    dialect::execute(backend, insert, params![name, fresh_hex]).await?;
    let select = "SELECT key_hex FROM server_keys WHERE name = $1";
    let (key_hex,): (String,) = dialect::fetch_one(backend, select, params![name]).await?;
    let mut key = [0u8; 32];
    let parsed = (0..32).all(|i| {
        key_hex
            .get(2 * i..2 * i + 2)
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            .map(|byte| key[i] = byte)
            .is_some()
    });
    if !parsed || key_hex.len() != 64 {
        return Err(sqlx::Error::Decode(
            format!("server_keys.{name} is not 32 bytes of hex").into(),
        )
        .into());
    }
    Ok(key)
}
