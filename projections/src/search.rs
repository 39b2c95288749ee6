//! `search`: full-text search over an organization's messages, private notes and customer
//! metadata (`GET /v1/orgs/{org}/search?q=`). One document per message, note and metadata set:
//! an FTS5 table on SQLite, a GIN index over `to_tsvector('simple', body)` on Postgres (no
//! stemming: the texts are in any language). The user's words are one phrase, never query
//! syntax: FTS5 gets them as a quoted string, Postgres through `phraseto_tsquery`, so any
//! string — `ZX81-SPECTRUM`, quotes, `OR`, `*` — is a valid query and finds itself. A query with
//! no letter or digit (no word to look up) is matched as a substring instead.

use async_trait::async_trait;
use domain::conversation::{AttachmentRef, ConversationEvent};
use domain::Event;
use serde::Serialize;
use serde_json::{json, Value};
use store::event::StoredEvent;
use store::log::Backend;
use uuid::Uuid;

use crate::database::{fetch_all, micros, Tx};
use crate::params;
use crate::reading::QueryError;
use crate::runs::{self, Sent};
use crate::runtime::{Dialect, Projection, ProjectionError, Table};

pub struct Search;

const TABLES: &[Table] = &[Table {
    name: "rm_search",
    columns: "body TEXT NOT NULL, organization_id TEXT NOT NULL, conversation_id TEXT NOT NULL, \
              source TEXT NOT NULL, reference TEXT NOT NULL, at BIGINT NOT NULL, \
              position BIGINT NOT NULL",
    indexes: &[],
    full_text: Some("body"),
}];

#[async_trait]
impl Projection for Search {
    fn name(&self) -> &'static str {
        "search"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &domain::event_types![
            "MessageSent",
            "NoteAdded",
            "CustomerMetadataSet",
            "CustomerErased",
        ];
        Some(TYPES)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError> {
        let Event::Conversation(conversation_event) = decoded else {
            return Ok(());
        };
        let (organization_id, conversation_id, source, reference, body) = match conversation_event {
            ConversationEvent::MessageSent {
                organization_id,
                conversation_id,
                seq,
                text,
                attachments,
                ..
            } => (
                organization_id,
                conversation_id,
                "message",
                seq.to_string(),
                message_body(text, attachments),
            ),
            ConversationEvent::NoteAdded {
                organization_id,
                conversation_id,
                note_id,
                text,
                ..
            } => (
                organization_id,
                conversation_id,
                "note",
                note_id.to_string(),
                text.to_string(),
            ),
            ConversationEvent::CustomerMetadataSet {
                organization_id,
                conversation_id,
                metadata,
                ..
            } => {
                // The metadata replaces what the conversation had.
                tx.execute(
                    "DELETE FROM rm_search{s} WHERE conversation_id = $1 AND source = 'metadata'",
                    params![conversation_id],
                )
                .await?;
                let body = metadata
                    .as_map()
                    .iter()
                    .map(|(key, value)| format!("{key}: {}", plain(value)))
                    .collect::<Vec<_>>()
                    .join("\n");
                (
                    organization_id,
                    conversation_id,
                    "metadata",
                    String::new(),
                    body,
                )
            }
            // Nothing of an erased customer's conversation is found again (and nothing is
            // added to it after: the conversation refuses it).
            ConversationEvent::CustomerErased {
                conversation_id, ..
            } => {
                tx.execute(
                    "DELETE FROM rm_search{s} WHERE conversation_id = $1",
                    params![conversation_id],
                )
                .await?;
                return Ok(());
            }
            _ => return Ok(()),
        };
        if body.trim().is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO rm_search{s} (body, organization_id, conversation_id, source, reference,
             at, position) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            params![
                body,
                organization_id,
                conversation_id,
                source,
                reference,
                micros(event.recorded_at),
                event.position
            ],
        )
        .await?;
        Ok(())
    }

    async fn apply_messages(&self, tx: &mut Tx, run: &[Sent<'_>]) -> Result<(), ProjectionError> {
        let rows: Vec<Value> = run
            .iter()
            .filter_map(|sent| {
                let body = message_body(sent.text, sent.attachments);
                (!body.trim().is_empty()).then(|| {
                    json!({
                        "body": body,
                        "organization_id": sent.organization_id,
                        "conversation_id": sent.conversation_id,
                        "reference": sent.seq.to_string(),
                        "at": micros(sent.event.recorded_at),
                        "position": sent.event.position,
                    })
                })
            })
            .collect();
        runs::over(
            tx,
            "INSERT INTO rm_search{s} (body, organization_id, conversation_id, source, reference,
             at, position)
             SELECT body, organization_id, conversation_id, 'message', reference, at, position
             FROM json_to_recordset($1::json) AS v(body text, organization_id text,
             conversation_id text, reference text, at bigint, position bigint)",
            &rows,
        )
        .await?;
        Ok(())
    }
}

/// A message's document: its text, and its files' names (a file's name finds its message).
fn message_body(text: &str, attachments: &[AttachmentRef]) -> String {
    let mut body = text.to_owned();
    for attachment in attachments {
        body.push('\n');
        body.push_str(attachment.name.as_str());
    }
    body
}

/// A metadata value as words: strings as they are, anything else as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One place a query was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub conversation_id: Uuid,
    /// `message`, `note` or `metadata`.
    pub source: String,
    /// The message's `seq` (to open the conversation at it), or the note's id.
    pub reference: String,
    /// The found text, shortened around the words.
    pub snippet: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The page cursor: results come newest first, and `after` gives those older than it.
    pub position: i64,
}

#[derive(sqlx::FromRow)]
struct HitRow {
    conversation_id: String,
    source: String,
    reference: String,
    body: String,
    at: i64,
    position: i64,
}

store::from_direct_row!(HitRow {
    conversation_id,
    source,
    reference,
    body,
    at,
    position,
});

/// Whether `query` has a word a full-text index can look up.
fn has_words(query: &str) -> bool {
    query.chars().any(char::is_alphanumeric)
}

/// The organization's documents that hold `query`, newest first, older than the position
/// `before` when given; `viewer` sees only its own direct chats (as in the conversation list).
pub async fn search(
    backend: &Backend,
    organization_id: Uuid,
    viewer: Uuid,
    query: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Hit>, QueryError> {
    let query = query.trim();
    if query.is_empty() {
        return Ok(Vec::new());
    }
    let matches = match (Dialect::of(backend), has_words(query)) {
        // One FTS5 string: a phrase of the query's words, whatever characters it holds.
        (Dialect::Sqlite, true) => "s.body MATCH $1",
        (Dialect::Postgres, true) => {
            "to_tsvector('simple', s.body) @@ phraseto_tsquery('simple', $1)"
        }
        (Dialect::Sqlite, false) => "instr(lower(s.body), lower($1)) > 0",
        (Dialect::Postgres, false) => "strpos(lower(s.body), lower($1)) > 0",
    };
    let needle = if Dialect::of(backend) == Dialect::Sqlite && has_words(query) {
        format!("\"{}\"", query.replace('"', "\"\""))
    } else {
        query.to_owned()
    };
    let rows: Vec<HitRow> = fetch_all(
        backend,
        &format!(
            "SELECT s.conversation_id, s.source, s.reference, s.body, s.at, s.position
             FROM rm_search s JOIN rm_conversations c ON c.conversation_id = s.conversation_id
             WHERE {matches} AND s.organization_id = $2
             AND (c.kind <> 'direct' OR c.participants LIKE $3)
             AND ($4 IS NULL OR s.position < $4)
             ORDER BY s.position DESC LIMIT $5"
        ),
        params![
            needle,
            organization_id,
            format!("%{viewer}%"),
            before,
            limit
        ],
    )
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Hit {
                conversation_id: row
                    .conversation_id
                    .parse()
                    .map_err(|e| QueryError::Corrupt(format!("conversation_id: {e}")))?,
                snippet: snippet(&row.body, query),
                source: row.source,
                reference: row.reference,
                at: chrono::DateTime::from_timestamp_micros(row.at)
                    .ok_or_else(|| QueryError::Corrupt(format!("at: {}", row.at)))?,
                position: row.position,
            })
        })
        .collect()
}

/// About 160 characters of `body` around the first place it holds `query`'s first word.
fn snippet(body: &str, query: &str) -> String {
    const AROUND: usize = 60;
    let lower = body.to_lowercase();
    let word = query
        .split(|c: char| !c.is_alphanumeric())
        .find(|word| !word.is_empty())
        .unwrap_or(query)
        .to_lowercase();
    let chars: Vec<char> = body.chars().collect();
    // The match's place in characters (lower-casing may change byte lengths, not this count
    // for the scripts a support team writes in).
    let at = lower
        .find(&word)
        .map_or(0, |byte| lower[..byte].chars().count());
    let start = at.saturating_sub(AROUND);
    let end = (at + word.chars().count() + AROUND * 2).min(chars.len());
    let mut text: String = chars[start.min(chars.len())..end].iter().collect();
    if start > 0 {
        text.insert(0, '…');
    }
    if end < chars.len() {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_is_the_text_around_the_words() {
        let body = format!("{}ZX81-SPECTRUM{}", "a".repeat(100), "b".repeat(200));
        let found = snippet(&body, "zx81-spectrum");
        assert!(found.starts_with('…') && found.ends_with('…'), "{found}");
        assert!(found.contains("ZX81-SPECTRUM"), "{found}");
        assert_eq!(snippet("short", "nothing"), "short");
        assert_eq!(snippet("äö ÅÄÖ tästä", "åäö"), "äö ÅÄÖ tästä");
    }

    #[test]
    fn only_words_go_to_the_index() {
        assert!(has_words("ZX81-SPECTRUM"));
        assert!(has_words("\"quoted\" OR *"));
        assert!(!has_words("?!"));
        assert!(!has_words("-- ''"));
    }
}
