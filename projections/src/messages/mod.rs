//! `messages`: each conversation's messages by `seq`, its private notes, and its attachments
//! (what the file is; the bytes live outside the log). `CustomerErased` blanks every text, the
//! customer's name and every file name of the conversation (`values::ERASED`); the rows stay,
//! so a transcript keeps its shape and times.

pub mod read;

use async_trait::async_trait;
use domain::conversation::ConversationEvent;
use domain::values::ERASED;
use domain::Event;
use serde_json::json;
use store::event::StoredEvent;

use crate::database::{micros, Tx};
use crate::params;
use crate::runs::{self, Sent};
use crate::runtime::{Index, Projection, ProjectionError, Table};

pub struct Messages;

const TABLES: &[Table] = &[
    Table {
        name: "rm_messages",
        columns: "conversation_id TEXT NOT NULL, seq BIGINT NOT NULL, message_id TEXT NOT NULL, \
                  author_kind TEXT NOT NULL, author_id TEXT NOT NULL, author_name TEXT NOT NULL, \
                  text TEXT NOT NULL, attachments TEXT NOT NULL, sent_at BIGINT NOT NULL, \
                  position BIGINT NOT NULL, PRIMARY KEY (conversation_id, seq)",
        indexes: &[],
        full_text: None,
    },
    Table {
        name: "rm_notes",
        columns: "note_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, \
                  author_id TEXT NOT NULL, author_name TEXT NOT NULL, text TEXT NOT NULL, \
                  created_at BIGINT NOT NULL, position BIGINT NOT NULL",
        indexes: &[Index {
            name: "rm_notes_by_conversation",
            columns: "conversation_id, position",
            unique: false,
            lookup: true,
        }],
        full_text: None,
    },
    Table {
        name: "rm_attachments",
        columns: "attachment_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, \
                  organization_id TEXT NOT NULL, name TEXT NOT NULL, size BIGINT NOT NULL, \
                  content_type TEXT NOT NULL, sha256 TEXT NOT NULL, \
                  uploaded_by_kind TEXT NOT NULL, uploaded_by_id TEXT NOT NULL, \
                  uploaded_at BIGINT NOT NULL",
        indexes: &[Index {
            name: "rm_attachments_by_conversation",
            columns: "conversation_id",
            unique: false,
            lookup: true,
        }],
        full_text: None,
    },
];

fn kind(kind: &impl serde::Serialize) -> Result<String, ProjectionError> {
    let text = serde_json::to_string(kind).map_err(|e| ProjectionError::Invalid(e.to_string()))?;
    Ok(text.trim_matches('"').to_owned())
}

#[async_trait]
impl Projection for Messages {
    fn name(&self) -> &'static str {
        "messages"
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
            "AttachmentUploaded",
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
        let at = micros(event.recorded_at);
        match decoded {
            Event::Conversation(ConversationEvent::MessageSent {
                conversation_id,
                message_id,
                seq,
                author,
                text,
                attachments,
                ..
            }) => {
                let attachments = serde_json::to_string(attachments)
                    .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
                tx.execute(
                    "INSERT INTO rm_messages{s} (conversation_id, seq, message_id, author_kind,
                     author_id, author_name, text, attachments, sent_at, position)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    params![
                        conversation_id,
                        *seq,
                        message_id,
                        kind(&author.kind)?,
                        author.id,
                        author.name.as_str(),
                        text.as_str(),
                        attachments,
                        at,
                        event.position
                    ],
                )
                .await?;
            }
            Event::Conversation(ConversationEvent::NoteAdded {
                conversation_id,
                note_id,
                text,
                by,
                ..
            }) => {
                tx.execute(
                    "INSERT INTO rm_notes{s} (note_id, conversation_id, author_id, author_name,
                     text, created_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    params![
                        note_id,
                        conversation_id,
                        by.id,
                        by.name.as_str(),
                        text.as_str(),
                        at,
                        event.position
                    ],
                )
                .await?;
            }
            Event::Conversation(ConversationEvent::AttachmentUploaded {
                conversation_id,
                organization_id,
                attachment,
                by,
            }) => {
                tx.execute(
                    "INSERT INTO rm_attachments{s} (attachment_id, conversation_id,
                     organization_id, name, size, content_type, sha256, uploaded_by_kind,
                     uploaded_by_id, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    params![
                        attachment.attachment_id,
                        conversation_id,
                        organization_id,
                        attachment.name.as_str(),
                        attachment.size,
                        attachment.content_type.as_str(),
                        attachment.sha256.as_str(),
                        kind(&by.kind)?,
                        by.id,
                        at
                    ],
                )
                .await?;
            }
            Event::Conversation(ConversationEvent::CustomerErased {
                conversation_id, ..
            }) => erase(tx, *conversation_id).await?,
            _ => {}
        }
        Ok(())
    }

    async fn apply_messages(&self, tx: &mut Tx, run: &[Sent<'_>]) -> Result<(), ProjectionError> {
        let mut rows = Vec::with_capacity(run.len());
        for sent in run {
            rows.push(json!({
                "conversation_id": sent.conversation_id,
                "seq": sent.seq,
                "message_id": sent.message_id,
                "author_kind": kind(&sent.author.kind)?,
                "author_id": sent.author.id,
                "author_name": sent.author.name.as_str(),
                "text": sent.text,
                "attachments": serde_json::to_string(sent.attachments)
                    .map_err(|e| ProjectionError::Invalid(e.to_string()))?,
                "sent_at": micros(sent.event.recorded_at),
                "position": sent.event.position,
            }));
        }
        runs::over(
            tx,
            "INSERT INTO rm_messages{s} (conversation_id, seq, message_id, author_kind, author_id,
             author_name, text, attachments, sent_at, position)
             SELECT conversation_id, seq, message_id, author_kind, author_id, author_name, text,
             attachments, sent_at, position
             FROM json_to_recordset($1::json) AS v(conversation_id text, seq bigint,
             message_id text, author_kind text, author_id text, author_name text, text text,
             attachments text, sent_at bigint, position bigint)",
            &rows,
        )
        .await?;
        Ok(())
    }
}

/// Blanks the personal data of `conversation_id`: texts, the customer's name, file names.
async fn erase(tx: &mut Tx, conversation_id: uuid::Uuid) -> Result<(), ProjectionError> {
    tx.execute(
        "UPDATE rm_messages{s} SET text = $1,
         author_name = CASE WHEN author_kind = 'customer' THEN $1 ELSE author_name END
         WHERE conversation_id = $2",
        params![ERASED, conversation_id],
    )
    .await?;
    // The attachments a message carries are JSON: each name is replaced in it, one message
    // after another (no transaction-wide `fetch_all`; a conversation has few such messages).
    let mut after = 0_i64;
    while let Some((seq, attachments)) = tx
        .fetch_optional::<(i64, String)>(
            "SELECT seq, attachments FROM rm_messages{s}
             WHERE conversation_id = $1 AND seq > $2 AND attachments <> '[]'
             ORDER BY seq LIMIT 1",
            params![conversation_id, after],
        )
        .await?
    {
        after = seq;
        let mut attachments: Vec<serde_json::Value> = serde_json::from_str(&attachments)
            .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
        for attachment in &mut attachments {
            if let Some(name) = attachment.get_mut("name") {
                *name = serde_json::Value::from(ERASED);
            }
        }
        let attachments = serde_json::to_string(&attachments)
            .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
        tx.execute(
            "UPDATE rm_messages{s} SET attachments = $1 WHERE conversation_id = $2 AND seq = $3",
            params![attachments, conversation_id, seq],
        )
        .await?;
    }
    tx.execute(
        "UPDATE rm_notes{s} SET text = $1 WHERE conversation_id = $2",
        params![ERASED, conversation_id],
    )
    .await?;
    tx.execute(
        "UPDATE rm_attachments{s} SET name = $1 WHERE conversation_id = $2",
        params![ERASED, conversation_id],
    )
    .await?;
    Ok(())
}
