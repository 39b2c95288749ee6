//! Attachments' bytes: where they are kept, what they are, and the signed URLs that open them.
//!
//! - [`Blobs`]: files under `DATA_DIR/attachments/` with the embedded store (written and
//!   fsynced before the command that names them is run, so a log entry never points at bytes a
//!   crash lost), or rows of `attachment_blobs` with Postgres ([`store::blob_table`]).
//! - [`sniff`]: the content type, read from the bytes alone. The client's word is never taken:
//!   a file that claims to be an image and is HTML must not be served as one.
//! - [`UrlSigner`]: `/v1/attachments/{id}?expires=UNIX&sig=HEX`, with
//!   `sig = HMAC-SHA256(key, "{id}|{expires}")`. The URL is the permission: it needs no token,
//!   works for an hour, and cannot be made for another id or a later time without the key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use store::log::Backend;
use uuid::Uuid;

/// How long a signed URL works.
pub const URL_LIFETIME_SECONDS: i64 = 3600;

/// Why bytes could not be kept or read. Either way the store is unavailable (503): a full
/// disk or a lost database must not look like the caller's mistake.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("attachment file: {0}")]
    Io(#[from] std::io::Error),
    #[error("attachment row: {0}")]
    Store(#[from] store::error::StoreError),
    #[error("attachment task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Where attachments' bytes live.
#[derive(Clone)]
pub enum Blobs {
    /// One file per attachment, named by its id, in this directory.
    Files(Arc<PathBuf>),
    /// The `attachment_blobs` table of the store's own database.
    Table(Backend),
}

impl Blobs {
    /// The files of the embedded store: `data_dir/attachments/`, created if missing.
    pub async fn in_data_dir(data_dir: &Path) -> Result<Self, BlobError> {
        let dir = data_dir.join("attachments");
        tokio::fs::create_dir_all(&dir).await?;
        Ok(Blobs::Files(Arc::new(dir)))
    }

    /// Keeps `bytes` as attachment `id`, durably, before anything refers to it.
    pub async fn put(&self, id: Uuid, bytes: Arc<Vec<u8>>) -> Result<(), BlobError> {
        match self {
            Blobs::Files(dir) => {
                let dir = Arc::clone(dir);
                tokio::task::spawn_blocking(move || write_durably(&dir, id, &bytes)).await??;
                Ok(())
            }
            Blobs::Table(backend) => {
                store::blob_table::put(backend, id, &bytes).await?;
                Ok(())
            }
        }
    }

    /// The bytes of attachment `id`, if they are here.
    pub async fn get(&self, id: Uuid) -> Result<Option<Vec<u8>>, BlobError> {
        match self {
            Blobs::Files(dir) => match tokio::fs::read(dir.join(id.to_string())).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error.into()),
            },
            Blobs::Table(backend) => Ok(store::blob_table::get(backend, id).await?),
        }
    }

    /// Forgets attachment `id` (its upload was refused); gone already is fine.
    pub async fn delete(&self, id: Uuid) -> Result<(), BlobError> {
        match self {
            Blobs::Files(dir) => match tokio::fs::remove_file(dir.join(id.to_string())).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
                _ => Ok(()),
            },
            Blobs::Table(backend) => {
                store::blob_table::delete(backend, id).await?;
                Ok(())
            }
        }
    }
}

/// Writes `id` in `dir` durably (see [`into_place`]).
fn write_durably(dir: &Path, id: Uuid, bytes: &[u8]) -> std::io::Result<()> {
    into_place(&dir.join(id.to_string()), |part| {
        std::fs::write(part, bytes)
    })
}

/// `fill` writes `path.part`; it is then fsynced, renamed to `path` and the folder fsynced, so
/// `path` is whole or absent whatever the machine does next. Attachments and `jono backup` both
/// write this way.
pub fn into_place(
    path: &Path,
    fill: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let part = path.with_extension("part");
    fill(&part)?;
    std::fs::File::open(&part)?.sync_all()?;
    std::fs::rename(&part, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            // Two hex digits exactly: `from_str_radix` alone would also take "+f".
            if pair.len() != 2 || !pair.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

// ---- what the bytes are ----

pub const PNG: &str = "image/png";
pub const JPEG: &str = "image/jpeg";
pub const GIF: &str = "image/gif";
pub const WEBP: &str = "image/webp";
pub const PDF: &str = "application/pdf";
pub const TEXT: &str = "text/plain";
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The content type of `bytes`, from their first bytes (magic numbers) or, failing those, from
/// whether they are UTF-8 text. SVG and HTML are text here: they are never an image, so never
/// rendered by a browser from our origin.
pub fn sniff(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        PNG
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        JPEG
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        GIF
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        WEBP
    } else if bytes.starts_with(b"%PDF-") {
        PDF
    } else if is_text(bytes) {
        TEXT
    } else {
        OCTET_STREAM
    }
}

/// UTF-8 without the control characters that no text file has (NUL and the like); tabs,
/// newlines, form feeds and escapes are text.
fn is_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c' | '\x1b'))
}

/// Whether a browser may show this type inline: raster images only.
pub fn is_raster_image(content_type: &str) -> bool {
    matches!(content_type, PNG | JPEG | GIF | WEBP)
}

/// The `Content-Type` a stored attachment is served with: raster images, PDF and plain text as
/// themselves, anything else (whatever the log says) as bytes to save.
pub fn served_type(content_type: &str) -> &'static str {
    match content_type {
        PNG => PNG,
        JPEG => JPEG,
        GIF => GIF,
        WEBP => WEBP,
        PDF => PDF,
        TEXT => "text/plain; charset=utf-8",
        _ => OCTET_STREAM,
    }
}

/// A file name as the uploader gave it, made safe to keep and to show: only its last path
/// component, no control characters, at most 255 characters; "attachment" when nothing is
/// left.
pub fn clean_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let short: String = trimmed.chars().take(255).collect();
    if short.trim().is_empty() {
        "attachment".to_owned()
    } else {
        short.trim().to_owned()
    }
}

/// `Content-Disposition` (RFC 6266): `inline` or `attachment`, an ASCII `filename` for old
/// clients and the exact name as `filename*` (RFC 8187).
pub fn content_disposition(inline: bool, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

// ---- signed URLs ----

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks attachments' URLs with the server's key (`secrets::url_signing_key`).
#[derive(Clone)]
pub struct UrlSigner {
    key: Arc<[u8; 32]>,
}

impl UrlSigner {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key: Arc::new(key) }
    }

    /// A key of this process alone: its URLs die with it. `jono serve` replaces it with the
    /// kept one; this is for states built without a server (tests).
    pub fn ephemeral() -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        Self::new(key)
    }

    fn mac(&self, id: Uuid, expires: i64) -> HmacSha256 {
        // HMAC takes a key of any length, so this cannot fail for 32 bytes.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(format!("{id}|{expires}").as_bytes());
        mac
    }

    /// The signature of `id` until `expires`, hex.
    pub fn sign(&self, id: Uuid, expires: i64) -> String {
        hex(&self.mac(id, expires).finalize().into_bytes())
    }

    /// A URL of attachment `id` that works for an hour from `now` (seconds since the epoch).
    /// It is a path: the client resolves it against the address it called.
    pub fn url(&self, id: Uuid, now: i64) -> String {
        let expires = now + URL_LIFETIME_SECONDS;
        format!(
            "/v1/attachments/{id}?expires={expires}&sig={}",
            self.sign(id, expires)
        )
    }

    /// Whether `sig` is this server's signature of `id` until `expires`, and `now` is not past
    /// it. The comparison takes the same time wherever the signatures differ.
    pub fn verify(&self, id: Uuid, expires: i64, sig: &str, now: i64) -> bool {
        if now > expires {
            return false;
        }
        let Some(sig) = unhex(sig) else {
            return false;
        };
        self.mac(id, expires).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raster_images_pdf_and_text_are_told_by_their_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), PNG);
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]), JPEG);
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), GIF);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), WEBP);
        assert_eq!(sniff(b"%PDF-1.7\n"), PDF);
        assert_eq!(sniff("plain words, naïve\r\n\tand more".as_bytes()), TEXT);
        assert_eq!(sniff(b"\0\x01\x02binary"), OCTET_STREAM);
        assert_eq!(sniff(&[0xC3, 0x28]), OCTET_STREAM, "not UTF-8");
        assert_eq!(
            sniff(b"RIFF\x24\0\0\0WAVEfmt "),
            OCTET_STREAM,
            "a WAV is no WebP"
        );
    }

    #[test]
    fn html_and_svg_are_never_images() {
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        let html = b"<!doctype html><html><script>alert(1)</script></html>";
        assert_eq!(sniff(svg), TEXT);
        assert_eq!(sniff(html), TEXT);
        assert!(!is_raster_image(sniff(svg)));
        assert!(!is_raster_image("image/svg+xml"));
        assert_eq!(served_type("image/svg+xml"), OCTET_STREAM);
        assert_eq!(served_type("text/html"), OCTET_STREAM);
        assert_eq!(served_type(TEXT), "text/plain; charset=utf-8");
    }

    #[test]
    fn a_url_verifies_until_it_expires_and_not_for_another_id_or_time() {
        let signer = UrlSigner::ephemeral();
        let id = Uuid::new_v4();
        let now = 1_700_000_000;
        let expires = now + URL_LIFETIME_SECONDS;
        let sig = signer.sign(id, expires);
        assert_eq!(
            signer.url(id, now),
            format!("/v1/attachments/{id}?expires={expires}&sig={sig}")
        );
        assert!(signer.verify(id, expires, &sig, now));
        assert!(signer.verify(id, expires, &sig, expires));
        assert!(!signer.verify(id, expires, &sig, expires + 1), "expired");
        assert!(
            !signer.verify(Uuid::new_v4(), expires, &sig, now),
            "another id"
        );
        assert!(
            !signer.verify(id, expires + 3600, &sig, now),
            "a later time"
        );
        assert!(!signer.verify(id, expires, "zz", now), "not hex");
        assert!(!signer.verify(id, expires, &sig[..10], now), "cut short");
        let signed = format!("+{}", &sig[1..]);
        assert!(
            !signer.verify(id, expires, &signed, now),
            "a sign is no digit"
        );
        let other = UrlSigner::ephemeral();
        assert!(
            !other.verify(id, expires, &sig, now),
            "another server's key"
        );
    }

    #[test]
    fn file_names_lose_their_paths_and_control_characters() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(clean_file_name("a\nb\u{0}c.txt"), "abc.txt");
        assert_eq!(clean_file_name(".."), "attachment");
        assert_eq!(clean_file_name(""), "attachment");
        assert_eq!(clean_file_name(&"x".repeat(400)).chars().count(), 255);
    }

    #[test]
    fn a_disposition_quotes_safely_and_keeps_the_exact_name() {
        assert_eq!(
            content_disposition(false, "résumé \"final\".pdf"),
            "attachment; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
        );
        assert_eq!(
            content_disposition(true, "cat.png"),
            "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
        );
    }

    #[tokio::test]
    async fn files_and_rows_keep_bytes_until_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        crate::secrets::migrate(store.backend()).await.unwrap();
        let files = Blobs::in_data_dir(dir.path()).await.unwrap();
        let rows = Blobs::Table(store.backend().clone());
        for blobs in [files, rows] {
            let id = Uuid::new_v4();
            let bytes = Arc::new(b"hello\0world".to_vec());
            blobs.put(id, bytes.clone()).await.unwrap();
            assert_eq!(blobs.get(id).await.unwrap().as_deref(), Some(&bytes[..]));
            assert_eq!(blobs.get(Uuid::new_v4()).await.unwrap(), None);
            blobs.delete(id).await.unwrap();
            assert_eq!(blobs.get(id).await.unwrap(), None);
            blobs.delete(id).await.unwrap();
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("attachments"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "no .part file is left behind");
    }
}
