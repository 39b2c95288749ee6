//! Jono's machine-readable contract, generated from the Rust types (STYLE.md habit 11) and
//! committed in this folder:
//!
//! - `events/<EventType>.schema.json`: every stored event, one file per `type`, as the log
//!   holds it (and as the WebSocket's `event` frames carry it, plus `at`);
//! - `commands/<CommandType>.schema.json`: every command the aggregates take;
//! - `openapi.json`: the OpenAPI 3.1 document that `GET /v1/openapi.json` serves.
//!
//! [`generate`] gives every file's path and content; `cargo run -p schemas` writes them, and
//! `tests/drift.rs` fails when a committed file differs from what the code generates. The
//! output is deterministic: keys are sorted and files are listed by path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use domain::account::{AccountCommand, AccountEvent};
use domain::canned::{CannedCommand, CannedEvent};
use domain::conversation::{ConversationCommand, ConversationEvent};
use domain::organization::{OrganizationCommand, OrganizationEvent};
use domain::queue::{QueueCommand, QueueEvent};
use domain::workload::{WorkloadCommand, WorkloadEvent};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{Map, Value};

/// The command that rewrites the committed files.
pub const REGENERATE: &str = "cargo run -p schemas";

/// The folders whose `*.schema.json` files are all generated: a file there that the code no
/// longer generates is stale.
pub const GENERATED_DIRS: [&str; 2] = ["events", "commands"];

/// This folder, where the files are committed.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A generated file: its path relative to [`dir`] and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub content: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the schema of {0} is not a oneOf of tagged variants")]
    NotTagged(&'static str),
    #[error("two variants are called {0}")]
    Duplicate(String),
    #[error(
        "the events generated ({generated:?}) are not domain::event::EVENT_TYPES ({listed:?})"
    )]
    EventTypes {
        generated: Vec<String>,
        listed: Vec<String>,
    },
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
}

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every file of the contract, sorted by path.
pub fn generate() -> Result<Vec<File>, GenerateError> {
    let mut files = BTreeMap::new();

    // Events are described as they are serialized into the log; commands as they are taken.
    let mut events = Vec::new();
    events.extend(split::<AccountEvent>("AccountEvent", true)?);
    events.extend(split::<OrganizationEvent>("OrganizationEvent", true)?);
    events.extend(split::<QueueEvent>("QueueEvent", true)?);
    events.extend(split::<ConversationEvent>("ConversationEvent", true)?);
    events.extend(split::<CannedEvent>("CannedEvent", true)?);
    events.extend(split::<WorkloadEvent>("WorkloadEvent", true)?);
    let generated: BTreeSet<String> = events.iter().map(|(name, _)| name.clone()).collect();
    let listed: BTreeSet<String> = domain::event::EVENT_TYPES
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    if generated != listed || generated.len() != events.len() {
        return Err(GenerateError::EventTypes {
            generated: events.iter().map(|(name, _)| name.clone()).collect(),
            listed: listed.into_iter().collect(),
        });
    }
    for (name, schema) in events {
        files.insert(format!("events/{name}.schema.json"), schema);
    }

    let mut commands = Vec::new();
    commands.extend(split::<AccountCommand>("AccountCommand", false)?);
    commands.extend(split::<OrganizationCommand>("OrganizationCommand", false)?);
    commands.extend(split::<QueueCommand>("QueueCommand", false)?);
    commands.extend(split::<ConversationCommand>("ConversationCommand", false)?);
    commands.extend(split::<CannedCommand>("CannedCommand", false)?);
    commands.extend(split::<WorkloadCommand>("WorkloadCommand", false)?);
    for (name, schema) in commands {
        let path = format!("commands/{name}.schema.json");
        if files.insert(path, schema).is_some() {
            return Err(GenerateError::Duplicate(name));
        }
    }

    files.insert("openapi.json".to_owned(), gateway::openapi::document());

    files
        .into_iter()
        .map(|(path, value)| {
            let mut content = serde_json::to_string_pretty(&sorted(value))?;
            content.push('\n');
            Ok(File { path, content })
        })
        .collect()
}

/// Splits the schema of an enum tagged by `type` into one self-contained schema per variant,
/// each with the `$defs` it refers to, directly or not.
fn split<T: JsonSchema>(
    enum_name: &'static str,
    serialized: bool,
) -> Result<Vec<(String, Value)>, GenerateError> {
    let settings = SchemaSettings::draft2020_12().with(|settings| settings.meta_schema = None);
    let settings = if serialized {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    let root = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let variants = root
        .get("oneOf")
        .and_then(Value::as_array)
        .ok_or(GenerateError::NotTagged(enum_name))?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for variant in variants {
        let Some(Value::Object(schema)) = Some(variant.clone()) else {
            return Err(GenerateError::NotTagged(enum_name));
        };
        let name = variant
            .pointer("/properties/type/const")
            .or_else(|| variant.pointer("/properties/type/enum/0"))
            .and_then(Value::as_str)
            .ok_or(GenerateError::NotTagged(enum_name))?
            .to_owned();
        if !seen.insert(name.clone()) {
            return Err(GenerateError::Duplicate(name));
        }
        let mut file = Map::new();
        file.insert("$schema".into(), Value::from(DRAFT_2020_12));
        file.insert("title".into(), Value::from(name.clone()));
        file.insert("x-jono-enum".into(), Value::from(enum_name));
        file.extend(schema);
        let used = reachable(variant, &defs);
        if !used.is_empty() {
            file.insert("$defs".into(), Value::Object(used));
        }
        out.push((name, Value::Object(file)));
    }
    Ok(out)
}

/// The definitions `schema` refers to (`#/$defs/…`), and those they refer to.
fn reachable(schema: &Value, defs: &Map<String, Value>) -> Map<String, Value> {
    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|reference| reference.strip_prefix("#/$defs/"))
                {
                    found.push(name.to_owned());
                }
                map.values().for_each(|value| refs(value, found));
            }
            Value::Array(items) => items.iter().for_each(|value| refs(value, found)),
            _ => {}
        }
    }
    let mut used = Map::new();
    let mut pending = Vec::new();
    refs(schema, &mut pending);
    while let Some(name) = pending.pop() {
        if used.contains_key(&name) {
            continue;
        }
        if let Some(def) = defs.get(&name) {
            refs(def, &mut pending);
            used.insert(name, def.clone());
        }
    }
    used
}

/// The value with every object's keys in order, whatever order serde_json keeps them in.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let ordered: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The `*.schema.json` files in the generated folders under `root`, as relative paths.
pub fn existing_generated_files(root: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    for folder in GENERATED_DIRS {
        let path = root.join(folder);
        if !path.exists() {
            continue;
        }
        for entry in std::fs::read_dir(&path)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".schema.json") {
                found.insert(format!("{folder}/{name}"));
            }
        }
    }
    Ok(found)
}
