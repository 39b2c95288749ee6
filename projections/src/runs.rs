//! Runs of messages, written as sets on Postgres. A busy log is mostly `MessageSent`, and one
//! by one a message costs seven statements across the read models, each a round trip to the
//! database; on a loaded machine every round trip also waits for the scheduler, and the one
//! projector group of a deployment fell seconds behind sixteen writers (CI: the two-node
//! consistency test). Within a batch, the messages a projection receives in a row are applied
//! by it as one set: one statement over all of them (`json_to_recordset`), leaving the rows one
//! by one would. SQLite's statements run in the projector's thread and stay one by one.

use domain::conversation::{AttachmentRef, ConversationEvent};
use domain::values::Author;
use domain::Event;
use store::event::StoredEvent;
use uuid::Uuid;

use crate::database::Tx;
use crate::params;
use crate::runtime::ProjectionError;

/// One event of a batch, with its payload decoded.
pub type Applied<'a> = (&'a StoredEvent, &'a Event);

/// A message of a run: its event and the payload's fields.
pub struct Sent<'a> {
    pub event: &'a StoredEvent,
    pub decoded: &'a Event,
    pub conversation_id: Uuid,
    pub organization_id: Uuid,
    pub message_id: Uuid,
    pub seq: u64,
    pub author: &'a Author,
    pub text: &'a str,
    pub attachments: &'a [AttachmentRef],
}

impl<'a> Sent<'a> {
    fn of((event, decoded): Applied<'a>) -> Option<Sent<'a>> {
        let Event::Conversation(ConversationEvent::MessageSent {
            conversation_id,
            organization_id,
            message_id,
            seq,
            author,
            text,
            attachments,
        }) = decoded
        else {
            return None;
        };
        Some(Sent {
            event,
            decoded,
            conversation_id: *conversation_id,
            organization_id: *organization_id,
            message_id: *message_id,
            seq: *seq,
            author,
            text,
            attachments,
        })
    }
}

/// A stretch of a projection's events in a batch.
pub enum Part<'a> {
    /// Two or more messages in a row (on Postgres).
    Messages(Vec<Sent<'a>>),
    /// Any other event, or a message alone.
    One(Applied<'a>),
}

/// `events` cut into runs of messages and the events between them, in order. Only on
/// Postgres are messages gathered into runs.
pub fn parts<'a>(postgres: bool, events: &[Applied<'a>]) -> Vec<Part<'a>> {
    let mut parts = Vec::new();
    let mut run: Vec<Sent<'a>> = Vec::new();
    for &applied in events {
        match Sent::of(applied).filter(|_| postgres) {
            Some(sent) => run.push(sent),
            None => {
                close(&mut parts, &mut run);
                parts.push(Part::One(applied));
            }
        }
    }
    close(&mut parts, &mut run);
    parts
}

fn close<'a>(parts: &mut Vec<Part<'a>>, run: &mut Vec<Sent<'a>>) {
    match run.len() {
        0 => {}
        1 => {
            let sent = run.remove(0);
            parts.push(Part::One((sent.event, sent.decoded)));
        }
        _ => parts.push(Part::Messages(std::mem::take(run))),
    }
}

/// Runs `sql` once over `rows`, given to it as `$1`, a JSON array of objects (Postgres:
/// `json_to_recordset($1::json) AS v(column type, …)`).
pub async fn over(
    tx: &mut Tx,
    sql: &str,
    rows: &[serde_json::Value],
) -> Result<u64, ProjectionError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let rows = serde_json::to_string(rows).map_err(|e| ProjectionError::Invalid(e.to_string()))?;
    Ok(tx.execute_planned(sql, params![rows]).await?)
}
