//! `jono export events`: the log for analysts' own tools (issue 17, item 4) — one row per event
//! with its position, time, type, stream and flattened fields, as JSON Lines or Parquet.
//!
//! - **Rows.** `position`, `at` (the time it was recorded, UTC, microseconds), `type`, `stream`
//!   (the aggregate type: `queue`, `conversation`, …), `stream_id`, then the event's fields. A
//!   field that is an object is flattened into `parent.child` columns (`author.kind`,
//!   `settings.max_waiting`), except `metadata` and `live`, which are free-form (a site's
//!   pre-chat form) and stay one JSON text column each so that a visitor cannot add columns;
//!   arrays are JSON text.
//! - **Parquet's columns** are the union of the fields of the events exported, found in a first
//!   pass over the range: a column whose values are all whole numbers is INT64, all numbers
//!   DOUBLE, all booleans BOOLEAN, anything else UTF8 (a number or a boolean among texts is
//!   written as its JSON text); every field column is optional (null where an event lacks it).
//!   `at` is a TIMESTAMP(MICROS, UTC). Written uncompressed, in row groups of 10,000 events.
//! - **The range** is `--from ≤ at < --to` (RFC 3339 times or dates), the whole log by default.
//!   The log is read in batches in position order, never all at once; a progress bar on
//!   standard error follows the positions.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::{Map, Value};
use store::event::StoredEvent;
use store::log::EventStore;

use super::Failure;
use crate::config::{ExportArgs, ExportFormat};

/// Events read from the log at a time.
const BATCH: usize = 2_000;
/// Events per Parquet row group.
const ROW_GROUP: usize = 10_000;
/// Fields kept whole (as JSON text) rather than flattened: free-form, a visitor's to shape.
const WHOLE: [&str; 2] = ["metadata", "live"];

pub async fn run(store: &EventStore, args: &ExportArgs) -> Result<String, Failure> {
    let from = args
        .from
        .as_deref()
        .map(|t| super::stats::time("--from", t))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|t| super::stats::time("--to", t))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(Failure("--from must be before --to".into()));
        }
    }
    let range = Range { from, to };
    let head = store.head().await?;
    match args.format {
        ExportFormat::Jsonl => {
            let out: Box<dyn Write> = match &args.output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .map_err(|e| Failure(format!("cannot create {}: {e}", path.display())))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let count = jsonl(store, &range, head, out).await?;
            Ok(written(count, args))
        }
        ExportFormat::Parquet => {
            let path = args.output.as_ref().ok_or_else(|| {
                Failure("--format parquet writes a file: name it with --output".into())
            })?;
            let columns = columns(store, &range, head).await?;
            let file = std::fs::File::create(path)
                .map_err(|e| Failure(format!("cannot create {}: {e}", path.display())))?;
            let count = parquet(store, &range, head, &columns, file).await?;
            Ok(written(count, args))
        }
    }
}

fn written(count: u64, args: &ExportArgs) -> String {
    match &args.output {
        Some(path) => format!("exported {count} events to {}\n", path.display()),
        None => String::new(),
    }
}

struct Range {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Range {
    fn holds(&self, at: DateTime<Utc>) -> bool {
        self.from.is_none_or(|from| from <= at) && self.to.is_none_or(|to| at < to)
    }
}

fn bar(head: i64, what: &str) -> Result<ProgressBar, Failure> {
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:40}] {pos}/{len} positions ({per_sec}, {eta} left)",
    )
    .map_err(|error| Failure(format!("progress bar: {error}")))?
    .progress_chars("=> ");
    let bar = ProgressBar::new(u64::try_from(head).unwrap_or(0));
    bar.set_style(style);
    bar.set_prefix(what.to_owned());
    Ok(bar)
}

/// Calls `each` for every event of the range, in position order, up to the head seen at the
/// start (what is appended during the export is left for the next one).
async fn each_event(
    store: &EventStore,
    range: &Range,
    head: i64,
    bar: &ProgressBar,
    mut each: impl FnMut(&StoredEvent) -> Result<(), Failure>,
) -> Result<u64, Failure> {
    let mut position = 0;
    let mut count = 0;
    while position < head {
        // Personal fields stay sealed: the export is a copy of the log, not a way around erasure.
        let batch = store.read_after_sealed(position, BATCH).await?;
        let Some(last) = batch.last() else { break };
        position = last.position;
        for event in batch.iter().filter(|event| event.position <= head) {
            if range.holds(event.recorded_at) {
                each(event)?;
                count += 1;
            }
        }
        bar.set_position(u64::try_from(position.min(head)).unwrap_or(0));
    }
    bar.finish_and_clear();
    Ok(count)
}

/// The row of `event`: its place, time, type and stream, then its fields flattened.
pub fn row(event: &StoredEvent) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("position".into(), Value::from(event.position));
    row.insert(
        "at".into(),
        Value::String(
            event
                .recorded_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        ),
    );
    row.insert("type".into(), Value::String(event.event_type.clone()));
    row.insert("stream".into(), Value::String(event.aggregate_type.clone()));
    row.insert(
        "stream_id".into(),
        Value::String(event.aggregate_id.clone()),
    );
    if let Value::Object(fields) = &event.payload {
        for (key, value) in fields {
            // The payload's own tag is the row's `type`.
            if key != "type" && !row.contains_key(key) {
                flatten(&mut row, key, value);
            }
        }
    }
    row
}

fn flatten(row: &mut Map<String, Value>, name: &str, value: &Value) {
    match value {
        // A sealed personal field is one column: `sealed:` and its ciphertext.
        Value::Object(fields) if fields.contains_key(store::seal::SEALED) => {
            let sealed = fields.get(store::seal::SEALED).and_then(Value::as_str);
            row.insert(
                name.to_owned(),
                Value::String(format!("sealed:{}", sealed.unwrap_or_default())),
            );
        }
        Value::Object(fields) if !WHOLE.contains(&name) => {
            for (key, inner) in fields {
                flatten(row, &format!("{name}.{key}"), inner);
            }
        }
        Value::Object(_) | Value::Array(_) => {
            row.insert(name.to_owned(), Value::String(value.to_string()));
        }
        scalar => {
            row.insert(name.to_owned(), scalar.clone());
        }
    }
}

async fn jsonl(
    store: &EventStore,
    range: &Range,
    head: i64,
    mut out: Box<dyn Write>,
) -> Result<u64, Failure> {
    let bar = bar(head, "exporting")?;
    let failed = |e: std::io::Error| Failure(format!("cannot write the export: {e}"));
    let count = each_event(store, range, head, &bar, |event| {
        serde_json::to_writer(&mut out, &row(event))
            .map_err(|e| Failure(format!("cannot write the export: {e}")))?;
        out.write_all(b"\n").map_err(failed)
    })
    .await?;
    out.flush().map_err(failed)?;
    Ok(count)
}

/// A Parquet column's physical type, as its values decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Double,
    Bool,
    Text,
}

impl Kind {
    fn of(value: &Value) -> Option<Kind> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(Kind::Bool),
            Value::Number(n) if n.is_i64() => Some(Kind::Int),
            Value::Number(_) => Some(Kind::Double),
            _ => Some(Kind::Text),
        }
    }

    fn with(self, other: Kind) -> Kind {
        match (self, other) {
            (a, b) if a == b => a,
            (Kind::Int, Kind::Double) | (Kind::Double, Kind::Int) => Kind::Double,
            _ => Kind::Text,
        }
    }
}

/// The field columns of the range (after the five fixed ones), by name.
async fn columns(
    store: &EventStore,
    range: &Range,
    head: i64,
) -> Result<BTreeMap<String, Kind>, Failure> {
    let bar = bar(head, "reading the fields")?;
    let mut columns: BTreeMap<String, Kind> = BTreeMap::new();
    each_event(store, range, head, &bar, |event| {
        for (name, value) in row(event) {
            if FIXED.contains(&name.as_str()) {
                continue;
            }
            if let Some(kind) = Kind::of(&value) {
                columns
                    .entry(name)
                    .and_modify(|seen| *seen = seen.with(kind))
                    .or_insert(kind);
            }
        }
        Ok(())
    })
    .await?;
    Ok(columns)
}

/// The columns every row has, in this order.
const FIXED: [&str; 5] = ["position", "at", "type", "stream", "stream_id"];

/// Parquet's schema language quotes nothing: a column's name is kept to letters, digits, `_`
/// and `.` (a field named otherwise, from a newer event, is renamed with `_`).
fn column_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn message_type(columns: &BTreeMap<String, Kind>) -> String {
    let mut message = String::from(
        "message event {\n  REQUIRED INT64 position;\n  REQUIRED INT64 at (TIMESTAMP(MICROS,true));\n  \
         REQUIRED BYTE_ARRAY type (UTF8);\n  REQUIRED BYTE_ARRAY stream (UTF8);\n  \
         REQUIRED BYTE_ARRAY stream_id (UTF8);\n",
    );
    for (name, kind) in columns {
        let physical = match kind {
            Kind::Int => "INT64",
            Kind::Double => "DOUBLE",
            Kind::Bool => "BOOLEAN",
            Kind::Text => "BYTE_ARRAY",
        };
        let logical = if *kind == Kind::Text { " (UTF8)" } else { "" };
        message.push_str(&format!(
            "  OPTIONAL {physical} {}{logical};\n",
            column_name(name)
        ));
    }
    message.push('}');
    message
}

async fn parquet(
    store: &EventStore,
    range: &Range,
    head: i64,
    columns: &BTreeMap<String, Kind>,
    file: std::fs::File,
) -> Result<u64, Failure> {
    let failed = |e: parquet::errors::ParquetError| Failure(format!("cannot write Parquet: {e}"));
    let schema = Arc::new(parse_message_type(&message_type(columns)).map_err(failed)?);
    let properties = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(file, schema, properties).map_err(failed)?;
    let bar = bar(head, "exporting")?;
    let mut rows: Vec<(i64, i64, Map<String, Value>)> = Vec::with_capacity(ROW_GROUP);
    let mut write_error = None;
    let count = each_event(store, range, head, &bar, |event| {
        rows.push((
            event.position,
            event.recorded_at.timestamp_micros(),
            row(event),
        ));
        if rows.len() == ROW_GROUP {
            if let Err(error) = row_group(&mut writer, columns, &rows) {
                write_error = Some(error);
                return Err(Failure("cannot write Parquet".into()));
            }
            rows.clear();
        }
        Ok(())
    })
    .await
    .map_err(|stopped| write_error.take().map(failed).unwrap_or(stopped))?;
    if !rows.is_empty() || count == 0 {
        row_group(&mut writer, columns, &rows).map_err(failed)?;
    }
    writer.close().map_err(failed)?;
    Ok(count)
}

type Rows = [(i64, i64, Map<String, Value>)];

/// One row group of `rows`: the fixed columns, then each field column in the schema's order.
fn row_group(
    writer: &mut SerializedFileWriter<std::fs::File>,
    columns: &BTreeMap<String, Kind>,
    rows: &Rows,
) -> Result<(), parquet::errors::ParquetError> {
    let mut group = writer.next_row_group()?;
    let text = |name: &str| -> Vec<ByteArray> {
        rows.iter()
            .map(|(_, _, row)| ByteArray::from(row.get(name).and_then(Value::as_str).unwrap_or("")))
            .collect()
    };
    let mut index = 0;
    while let Some(mut column) = group.next_column()? {
        match index {
            0 => {
                let values: Vec<i64> = rows.iter().map(|(position, _, _)| *position).collect();
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, None, None)?;
            }
            1 => {
                let values: Vec<i64> = rows.iter().map(|(_, at, _)| *at).collect();
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, None, None)?;
            }
            2..=4 => {
                let values = text(FIXED[index]);
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, None, None)?;
            }
            _ => {
                let Some((name, kind)) = columns.iter().nth(index - FIXED.len()) else {
                    return Err(parquet::errors::ParquetError::General(
                        "more columns than the schema names".into(),
                    ));
                };
                let present: Vec<Option<&Value>> = rows
                    .iter()
                    .map(|(_, _, row)| row.get(name).filter(|value| !value.is_null()))
                    .collect();
                let levels: Vec<i16> = present.iter().map(|v| i16::from(v.is_some())).collect();
                let values = present.iter().flatten();
                match kind {
                    Kind::Int => {
                        let values: Vec<i64> = values.filter_map(|v| v.as_i64()).collect();
                        column
                            .typed::<Int64Type>()
                            .write_batch(&values, Some(&levels), None)?;
                    }
                    Kind::Double => {
                        let values: Vec<f64> = values.filter_map(|v| v.as_f64()).collect();
                        column
                            .typed::<DoubleType>()
                            .write_batch(&values, Some(&levels), None)?;
                    }
                    Kind::Bool => {
                        let values: Vec<bool> = values.filter_map(|v| v.as_bool()).collect();
                        column
                            .typed::<BoolType>()
                            .write_batch(&values, Some(&levels), None)?;
                    }
                    Kind::Text => {
                        let values: Vec<ByteArray> = values
                            .map(|v| match v {
                                Value::String(text) => ByteArray::from(text.as_str()),
                                other => ByteArray::from(other.to_string().as_str()),
                            })
                            .collect();
                        column.typed::<ByteArrayType>().write_batch(
                            &values,
                            Some(&levels),
                            None,
                        )?;
                    }
                }
            }
        }
        column.close()?;
        index += 1;
    }
    group.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_widen_to_what_holds_every_value() {
        assert_eq!(Kind::Int.with(Kind::Int), Kind::Int);
        assert_eq!(Kind::Int.with(Kind::Double), Kind::Double);
        assert_eq!(Kind::Int.with(Kind::Bool), Kind::Text);
        assert_eq!(Kind::Bool.with(Kind::Text), Kind::Text);
    }

    #[test]
    fn objects_flatten_but_free_form_metadata_stays_whole() {
        let mut row = Map::new();
        flatten(
            &mut row,
            "author",
            &serde_json::json!({"kind": "agent", "id": "a"}),
        );
        flatten(
            &mut row,
            "metadata",
            &serde_json::json!({"a": {"b": 1}, "c": 2}),
        );
        flatten(&mut row, "participants", &serde_json::json!(["x", "y"]));
        assert_eq!(row["author.kind"], "agent");
        assert_eq!(row["author.id"], "a");
        assert_eq!(row["metadata"], r#"{"a":{"b":1},"c":2}"#);
        assert_eq!(row["participants"], r#"["x","y"]"#);
        assert_eq!(column_name("a b-c.d"), "a_b_c.d");
    }
}
