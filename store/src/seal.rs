//! Crypto-shredding (ARCHITECTURE.md, "Personal data"): the personal fields of an event — names,
//! message text, metadata, file names, a rating's comment — are stored sealed under a key of
//! their data subject, the customer's conversation, kept in `subject_keys` beside the log and
//! never in it. Every read opens them again; once the key is destroyed
//! ([`EventStore::erase_subject`]) they read as what [`domain::values::ERASED`] says, and the
//! log's bytes hold nothing that could be opened. Statistics need none of these fields.
//!
//! A sealed field is the JSON object `{"$sealed": "<base64 of nonce ‖ ciphertext>", "$erased":
//! <what it reads as without its key>}`: ChaCha20-Poly1305 (RFC 8439) over the field's JSON
//! text, a random 96-bit nonce per field, the subject as associated data (a field moved to
//! another subject's event does not open). Opening needs no list of fields: it opens every
//! sealed object it finds, so a reader never depends on which version sealed what.
//!
//! Events written before sealing existed keep their fields in the clear; erasing their subject
//! rewrites those fields in place (the one exception to the log's append-only rule, confined to
//! the personal fields of one subject's events below the position where sealing began).
//!
//! [`EventStore::erase_subject`]: crate::log::EventStore::erase_subject

use std::collections::HashMap;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde_json::{json, Map, Value};

/// The member naming a sealed field's ciphertext.
pub const SEALED: &str = "$sealed";
/// The member holding what a sealed field reads as once its key is gone.
pub const ERASED_AS: &str = "$erased";

/// The aggregate types whose events carry a customer's personal data.
pub(crate) const CONVERSATION: &str = "conversation";
const QUEUE: &str = "queue";

/// How many subjects' keys the log's writer keeps at hand.
pub(crate) const KEYS_KEPT: usize = 4096;

/// One data subject's key: 32 random bytes.
#[derive(Clone)]
pub struct SubjectKey([u8; 32]);

impl SubjectKey {
    pub fn generate() -> SubjectKey {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
        SubjectKey(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<SubjectKey> {
        <[u8; 32]>::try_from(bytes).ok().map(SubjectKey)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKey(…)")
    }
}

/// The data subject whose personal data an event of `aggregate_type` carries, if any: the
/// conversation of a conversation's event, or of a queue's event about one customer.
pub fn subject_of(aggregate_type: &str, payload: &Value) -> Option<String> {
    if aggregate_type != CONVERSATION && aggregate_type != QUEUE {
        return None;
    }
    let subject = payload.get("conversation_id")?.as_str()?.to_owned();
    (!personal_fields(aggregate_type, payload).is_empty()).then_some(subject)
}

/// The personal fields of a payload present and not null, as JSON pointers, each with what it
/// reads as once erased. Read-only: finding them copies nothing of the payload.
fn personal_fields(aggregate_type: &str, payload: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    let Some(object) = payload.as_object() else {
        return found;
    };
    let erased_text = || Value::String(domain::values::ERASED.to_owned());
    let mut field = |at: &str, value: Option<&Value>, erased: Value| {
        if value.is_some_and(|value| !value.is_null()) {
            found.push((at.to_owned(), erased));
        }
    };
    match aggregate_type {
        CONVERSATION => {
            for (name, erased) in [
                ("text", erased_text()),
                ("metadata", json!({})),
                ("live", json!({})),
                ("comment", Value::Null),
            ] {
                field(&format!("/{name}"), object.get(name), erased);
            }
            if let Some(Value::Array(attachments)) = object.get("attachments") {
                for (at, attachment) in attachments.iter().enumerate() {
                    let name = attachment.get("name");
                    field(&format!("/attachments/{at}/name"), name, erased_text());
                }
            }
            let name = object.get("attachment").and_then(|a| a.get("name"));
            field("/attachment/name", name, erased_text());
        }
        QUEUE => {
            field("/metadata", object.get("metadata"), json!({}));
            field("/customer", object.get("customer"), Value::Null);
        }
        _ => return found,
    }
    // A customer's own name wherever it is named as the author of something.
    for role in ["author", "by"] {
        let Some(author) = object.get(role) else {
            continue;
        };
        if author.get("kind").and_then(Value::as_str) == Some("customer") {
            field(&format!("/{role}/name"), author.get("name"), erased_text());
        }
    }
    found
}

/// Calls `f` on each personal field of a payload present and not null, with what the field
/// reads as once erased.
fn visit_personal(aggregate_type: &str, payload: &mut Value, f: &mut dyn FnMut(&mut Value, Value)) {
    for (at, erased) in personal_fields(aggregate_type, payload) {
        if let Some(value) = payload.pointer_mut(&at) {
            f(value, erased);
        }
    }
}

/// Seals every personal field of `payload` under `key` (or, for a subject already erased,
/// stores what the field reads as erased instead).
pub fn seal(aggregate_type: &str, subject: &str, key: Option<&SubjectKey>, payload: &mut Value) {
    visit_personal(aggregate_type, payload, &mut |value, erased| {
        if value.get(SEALED).is_some() {
            return;
        }
        let Some(key) = key else {
            *value = erased;
            return;
        };
        let mut nonce = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        let plain = value.to_string();
        let sealed = key.cipher().encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain.as_bytes(),
                aad: subject.as_bytes(),
            },
        );
        *value = match sealed {
            Ok(ciphertext) => {
                let mut bytes = nonce.to_vec();
                bytes.extend_from_slice(&ciphertext);
                json!({
                    SEALED: base64::engine::general_purpose::STANDARD.encode(bytes),
                    ERASED_AS: erased,
                })
            }
            // ChaCha20-Poly1305 fails only on inputs past 256 GiB; keep nothing rather than
            // the clear text.
            Err(_) => erased,
        };
    });
}

/// Replaces every personal field of a payload written before sealing existed (or sealed) with
/// what it reads as erased: the rewrite of an erased subject's old events.
pub fn erase_in_place(aggregate_type: &str, payload: &mut Value) -> bool {
    let mut changed = false;
    visit_personal(aggregate_type, payload, &mut |value, erased| {
        let erased = match value.get(ERASED_AS) {
            Some(erased_as) if value.get(SEALED).is_some() => erased_as.clone(),
            _ => erased,
        };
        if *value != erased {
            *value = erased;
            changed = true;
        }
    });
    changed
}

/// Whether a payload has a sealed field anywhere.
pub fn is_sealed(payload: &Value) -> bool {
    match payload {
        Value::Object(object) => object.contains_key(SEALED) || object.values().any(is_sealed),
        Value::Array(items) => items.iter().any(is_sealed),
        _ => false,
    }
}

/// Opens every sealed field of `payload` with `key`; a field that does not open (no key: its
/// subject was erased) reads as its `$erased` value.
pub fn open(subject: &str, key: Option<&SubjectKey>, payload: &mut Value) {
    match payload {
        Value::Object(object) if object.contains_key(SEALED) => {
            let opened = key.and_then(|key| open_one(subject, key, object));
            *payload = opened.unwrap_or_else(|| object.get(ERASED_AS).cloned().unwrap_or_default());
        }
        Value::Object(object) => {
            for value in object.values_mut() {
                open(subject, key, value);
            }
        }
        Value::Array(items) => {
            for value in items {
                open(subject, key, value);
            }
        }
        _ => {}
    }
}

/// Reads every sealed field of `payload` as erased, without looking for keys: for readers
/// that need no personal data (statistics).
pub fn without_keys(payload: &mut Value) {
    open("", None, payload);
}

fn open_one(subject: &str, key: &SubjectKey, sealed: &Map<String, Value>) -> Option<Value> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed.get(SEALED)?.as_str()?)
        .ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(12);
    let plain = key
        .cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: subject.as_bytes(),
            },
        )
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

/// The subjects a list of payloads needs keys of to be opened.
pub fn subjects_to_open<'a>(events: impl IntoIterator<Item = (&'a str, &'a Value)>) -> Vec<String> {
    let mut subjects: Vec<String> = events
        .into_iter()
        .filter(|(_, payload)| is_sealed(payload))
        .filter_map(|(_, payload)| {
            payload
                .get("conversation_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    subjects
}

/// Opens one payload with the keys found for its subject.
pub fn open_with(keys: &HashMap<String, SubjectKey>, payload: &mut Value) {
    if !is_sealed(payload) {
        return;
    }
    let subject = payload
        .get("conversation_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_default();
    open(&subject, keys.get(&subject), payload);
}

/// The keys one batch of appends seals with, by subject (`None`: the subject is erased).
pub(crate) type BatchKeys = HashMap<String, Option<SubjectKey>>;

/// The subjects of a batch of appends whose keys are not kept yet: the writer reads (or makes)
/// them in the batch's transaction before any request's savepoint, so a request rolled back
/// alone never takes a key another request of the batch sealed with.
pub(crate) fn subjects_of_batch(
    requests: &[&crate::log::AppendRequest],
    kept: &KeyCache,
    keys: &mut BatchKeys,
) -> Vec<String> {
    let mut missing = Vec::new();
    for event in requests.iter().flat_map(|request| &request.events) {
        let Some(subject) = subject_of(&event.aggregate_type, &event.payload) else {
            continue;
        };
        if keys.contains_key(&subject) || missing.contains(&subject) {
            continue;
        }
        match kept.get(&subject) {
            Some(key) => {
                keys.insert(subject, key.clone());
            }
            None => missing.push(subject),
        }
    }
    missing
}

/// The payload an event is stored with: its personal fields sealed under its subject's key.
/// An event without personal fields is stored as it came (nothing copied).
pub(crate) fn stored_payload<'a>(
    event: &'a crate::event::NewEvent,
    keys: &BatchKeys,
) -> std::borrow::Cow<'a, Value> {
    let Some(subject) = subject_of(&event.aggregate_type, &event.payload) else {
        return std::borrow::Cow::Borrowed(&event.payload);
    };
    let mut payload = event.payload.clone();
    let key = keys.get(&subject).and_then(Option::as_ref);
    seal(&event.aggregate_type, &subject, key, &mut payload);
    std::borrow::Cow::Owned(payload)
}

/// The keys the log's writer has looked up, `None` for a subject erased: a key is read (or made)
/// once per subject, not once per event. Keys are never changed, only destroyed, so a kept key
/// can only be one destroyed since: what it seals then reads as erased, as it should.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: HashMap<String, Option<SubjectKey>>,
}

impl KeyCache {
    pub(crate) fn get(&self, subject: &str) -> Option<&Option<SubjectKey>> {
        self.keys.get(subject)
    }

    pub(crate) fn keep(&mut self, subject: String, key: Option<SubjectKey>) {
        if self.keys.len() >= KEYS_KEPT {
            self.keys.clear();
        }
        self.keys.insert(subject, key);
    }

    pub(crate) fn forget(&mut self, subject: &str) {
        self.keys.remove(subject);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Value {
        json!({
            "type": "MessageSent",
            "conversation_id": "c1",
            "organization_id": "o1",
            "message_id": "m1",
            "seq": 1,
            "author": {"kind": "customer", "id": "c1", "name": "Maija"},
            "text": text,
            "attachments": [{"attachment_id": "a", "name": "passport.pdf", "size": 1,
                             "content_type": "application/pdf", "sha256": "00"}],
        })
    }

    #[test]
    fn sealed_fields_open_with_their_key_and_read_as_erased_without_it() {
        let key = SubjectKey::generate();
        let plain = message("my card is 4242");
        let mut sealed = plain.clone();
        seal(CONVERSATION, "c1", Some(&key), &mut sealed);
        let text = sealed.to_string();
        for secret in ["4242", "Maija", "passport"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(is_sealed(&sealed));
        assert_eq!(sealed["seq"], 1, "what is not personal stays in the clear");

        let mut opened = sealed.clone();
        open("c1", Some(&key), &mut opened);
        assert_eq!(opened, plain);

        let mut erased = sealed.clone();
        open("c1", None, &mut erased);
        assert_eq!(erased["text"], domain::values::ERASED);
        assert_eq!(erased["author"]["name"], domain::values::ERASED);
        assert_eq!(erased["attachments"][0]["name"], domain::values::ERASED);
        assert_eq!(erased["attachments"][0]["size"], 1);

        // Another key, or another subject, opens nothing.
        let mut wrong = sealed.clone();
        open("c1", Some(&SubjectKey::generate()), &mut wrong);
        assert_eq!(wrong, erased);
        let mut moved = sealed;
        open("c2", Some(&key), &mut moved);
        assert_eq!(moved, erased);
    }

    #[test]
    fn agents_names_and_events_without_personal_fields_stay_clear() {
        let mut note = json!({"type": "TagAdded", "conversation_id": "c1", "tag": "vip",
                              "by": {"kind": "agent", "id": "a1", "name": "Aino"}});
        assert_eq!(subject_of(CONVERSATION, &note), None);
        let before = note.clone();
        seal(CONVERSATION, "c1", Some(&SubjectKey::generate()), &mut note);
        assert_eq!(note, before);
        assert_eq!(subject_of("organization", &message("x")), None);
        assert_eq!(subject_of(CONVERSATION, &message("x")), Some("c1".into()));
    }

    #[test]
    fn old_clear_fields_are_erased_in_place() {
        let mut old = message("my card is 4242");
        assert!(erase_in_place(CONVERSATION, &mut old));
        assert!(!old.to_string().contains("4242"));
        assert!(!old.to_string().contains("Maija"));
        assert!(
            !erase_in_place(CONVERSATION, &mut old),
            "a second erasure changes nothing"
        );
        let mut joined = json!({"type": "CustomerJoinedQueue", "conversation_id": "c1",
                                "metadata": {"email": "maija@example.com"},
                                "customer": {"customer_ref": "r", "user_id": "u-1"}});
        assert!(erase_in_place(QUEUE, &mut joined));
        assert_eq!(joined["metadata"], json!({}));
        assert_eq!(joined["customer"], Value::Null);
    }

    #[test]
    fn an_erased_subjects_new_events_keep_nothing() {
        let mut sealed = message("too late");
        seal(CONVERSATION, "c1", None, &mut sealed);
        assert!(!is_sealed(&sealed));
        assert_eq!(sealed["text"], domain::values::ERASED);
    }
}
