//! What the HTTP layer asks of the messages read model's tables (messages, notes and attachments): each function
//! answers one question of API.md from the `rm_` tables alone (never the log), as plain
//! serializable structs. Authorization is the caller's: these functions say what is, not who
//! may see it.

use chrono::{DateTime, Utc};
use domain::values::AuthorKind;
use serde::Serialize;
use store::log::Backend;
use uuid::Uuid;

use crate::database::{fetch_all, fetch_optional};
use crate::params;
use crate::reading::{id, named, page, time, QueryError, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageAuthor {
    pub kind: AuthorKind,
    pub id: Uuid,
    pub name: String,
}

/// An attachment as a message carries it; the gateway adds the signed `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MessageAttachment {
    pub attachment_id: Uuid,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub seq: i64,
    pub id: Uuid,
    pub author: MessageAuthor,
    pub text: String,
    pub attachments: Vec<MessageAttachment>,
    pub sent_at: DateTime<Utc>,
}

/// A page of a conversation's messages with `seq` above `after_seq`, by `seq`.
pub async fn messages(
    backend: &Backend,
    conversation_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Message>> {
    type Row = (i64, String, String, String, String, String, String, i64);
    let rows: Vec<Row> = fetch_all(
        backend,
        "SELECT seq, message_id, author_kind, author_id, author_name, text, attachments, sent_at
         FROM rm_messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        params![conversation_id, after_seq, page(limit)],
    )
    .await?;
    rows.into_iter()
        .map(
            |(seq, message_id, kind, author_id, author_name, text, attachments, sent_at)| {
                Ok(Message {
                    seq,
                    id: id(&message_id)?,
                    author: MessageAuthor {
                        kind: named(&kind)?,
                        id: id(&author_id)?,
                        name: author_name,
                    },
                    text,
                    attachments: serde_json::from_str(&attachments)
                        .map_err(|e| QueryError::Corrupt(format!("attachments: {e}")))?,
                    sent_at: time(sent_at)?,
                })
            },
        )
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteAuthor {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub id: Uuid,
    pub author: NoteAuthor,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// A conversation's private notes, oldest first. Never for a customer.
pub async fn notes(backend: &Backend, conversation_id: Uuid) -> Result<Vec<Note>> {
    let rows: Vec<(String, String, String, String, i64)> = fetch_all(
        backend,
        "SELECT note_id, author_id, author_name, text, created_at FROM rm_notes
         WHERE conversation_id = $1 ORDER BY position",
        params![conversation_id],
    )
    .await?;
    rows.into_iter()
        .map(|(note, author, name, text, created_at)| {
            Ok(Note {
                id: id(&note)?,
                author: NoteAuthor {
                    id: id(&author)?,
                    name,
                },
                text,
                created_at: time(created_at)?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub attachment_id: Uuid,
    pub conversation_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub uploaded_at: DateTime<Utc>,
}

pub async fn attachment(backend: &Backend, attachment_id: Uuid) -> Result<Option<Attachment>> {
    type Row = (String, String, String, String, i64, String, String, i64);
    let row: Option<Row> = fetch_optional(
        backend,
        "SELECT attachment_id, conversation_id, organization_id, name, size, content_type,
         sha256, uploaded_at FROM rm_attachments WHERE attachment_id = $1",
        params![attachment_id],
    )
    .await?;
    row.map(|(att, conv, org, name, size, content_type, sha256, at)| {
        Ok(Attachment {
            attachment_id: id(&att)?,
            conversation_id: id(&conv)?,
            organization_id: id(&org)?,
            name,
            size,
            content_type,
            sha256,
            uploaded_at: time(at)?,
        })
    })
    .transpose()
}
