//! `jono backup TO` and `jono restore FROM`: the store copied while Jono serves, and brought
//! back into an empty one. The log is the only truth; the secrets (token and password hashes,
//! kept answers), checkpoints and attachments travel with it in the same snapshot, so a
//! restored Jono starts where the copy was taken. The read models travel too on Postgres; on
//! SQLite their file (`read-models.db`) is left out, and the restored Jono builds it from the
//! log at its first start.
//!
//! A backup folder holds `jono-backup.json` (what it is: backend, the log's head when the copy
//! began — every event acknowledged before then is in it — and when) and either `jono.db` plus
//! `attachments/` (SQLite) or `jono.pgdump` (`pg_dump`'s custom format of Jono's schema).

use std::path::{Path, PathBuf};
use std::process::Command;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use store::log::{Backend, EventStore};

use super::Failure;
use crate::blobs::into_place;
use crate::config::StoreConfig;

const MANIFEST: &str = "jono-backup.json";
const SQLITE_FILE: &str = "jono.db";
const PG_FILE: &str = "jono.pgdump";
const ATTACHMENTS: &str = "attachments";

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    backend: String,
    /// The log's head when the copy began: the backup holds at least every event up to it.
    head: i64,
    taken_at: chrono::DateTime<chrono::Utc>,
    /// Postgres: the schema dumped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema: Option<String>,
}

fn fail(what: &str, error: impl std::fmt::Display) -> Failure {
    Failure(format!("{what}: {error}"))
}

/// `jono backup TO`.
pub async fn backup(
    store: &EventStore,
    config: &StoreConfig,
    to: &Path,
) -> Result<String, Failure> {
    prepare_empty(to)?;
    let head = store.head().await?;
    let mut dumped_schema = None;
    let backend = match (config, store.backend()) {
        (StoreConfig::Embedded(data), Backend::Sqlite(pool, _)) => {
            store::backup::sqlite_snapshot(pool, &to.join(SQLITE_FILE)).await?;
            // Attachments are written before any event names them, and never changed, so
            // copying them after the snapshot finds every one it refers to.
            copy_files(&data.join(ATTACHMENTS), &to.join(ATTACHMENTS))?;
            "sqlite"
        }
        (StoreConfig::Postgres(url), Backend::Postgres(pool)) => {
            let schema = store::backup::postgres_schema(pool).await?;
            let file = to.join(PG_FILE);
            run_tool(
                Command::new("pg_dump")
                    .args(["--format=custom", "--no-owner", "--no-privileges"])
                    .arg(format!("--schema={schema}"))
                    .arg(format!("--file={}", file.display()))
                    .arg(format!("--dbname={url}")),
                "pg_dump",
            )
            .map(drop)?;
            dumped_schema = Some(schema);
            "postgres"
        }
        _ => return Err(Failure("the store and its configuration disagree".into())),
    };
    let manifest = Manifest {
        format: 1,
        backend: backend.to_owned(),
        head,
        taken_at: chrono::Utc::now(),
        schema: dumped_schema,
    };
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|error| fail("the manifest", error))?;
    write_durably(&to.join(MANIFEST), text.as_bytes())?;
    Ok(format!(
        "backed up the {backend} store into {} (every event up to position {head}, and all that came with it)",
        to.display()
    ))
}

/// `jono restore FROM`: into an empty store only, never over one.
pub async fn restore(config: &StoreConfig, from: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(from.join(MANIFEST)).map_err(|error| {
        fail(
            &format!("{} is not a backup of jono ({MANIFEST})", from.display()),
            error,
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|error| fail(&format!("{MANIFEST} is unreadable"), error))?;
    match (config, manifest.backend.as_str()) {
        (StoreConfig::Embedded(data), "sqlite") => {
            let target = data.join(SQLITE_FILE);
            if target.exists() {
                return Err(Failure(format!(
                    "{} already holds a store: restore into an empty data directory",
                    data.display()
                )));
            }
            std::fs::create_dir_all(data).map_err(|error| fail("the data directory", error))?;
            copy_durably(&from.join(SQLITE_FILE), &target)?;
            copy_files(&from.join(ATTACHMENTS), &data.join(ATTACHMENTS))?;
        }
        (StoreConfig::Postgres(url), "postgres") => {
            if store::backup::postgres_has_log(url).await? {
                return Err(Failure(
                    "the database already has Jono's tables: restore into an empty database".into(),
                ));
            }
            let dump = from.join(PG_FILE);
            // The dump creates its schema; where the target has it already (`public` always
            // does), that step and the schema's comment are left out, and the rest must apply
            // without an error.
            let mut list = run_tool(Command::new("pg_restore").arg("--list").arg(&dump), "pg_restore")?;
            if let Some(schema) = &manifest.schema {
                if store::backup::postgres_schema_exists(url, schema).await? {
                    list = list
                        .lines()
                        .filter(|line| {
                            !line.contains(&format!("SCHEMA - {schema} "))
                                && !line.contains(&format!("COMMENT - SCHEMA {schema} "))
                        })
                        .map(|line| format!("{line}\n"))
                        .collect();
                }
            }
            let list_file = std::env::temp_dir().join(format!("jono-restore-{}.list", uuid::Uuid::new_v4()));
            std::fs::write(&list_file, list).map_err(|error| fail("the restore list", error))?;
            let restored = run_tool(
                Command::new("pg_restore")
                    .args(["--no-owner", "--no-privileges", "--exit-on-error"])
                    .arg(format!("--use-list={}", list_file.display()))
                    .arg(format!("--dbname={url}"))
                    .arg(&dump),
                "pg_restore",
            );
            let _ = std::fs::remove_file(&list_file);
            restored?;
        }
        (_, backend) => {
            return Err(Failure(format!(
                "this backup is of a {backend} store; point --data or --database-url at one of that kind"
            )))
        }
    }
    // Open what was restored, as `jono serve` will, and check it holds what the backup promised.
    let store = super::open_store(config).await?;
    let head = store.head().await?;
    if head < manifest.head {
        return Err(Failure(format!(
            "the restored log ends at position {head}, before the backup's {}",
            manifest.head
        )));
    }
    Ok(format!(
        "restored the backup of {} (log up to position {head})",
        manifest.taken_at.to_rfc3339()
    ))
}

fn prepare_empty(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|error| fail(&format!("cannot create {}", dir.display()), error))?;
    let mut entries = std::fs::read_dir(dir)
        .map_err(|error| fail(&format!("cannot read {}", dir.display()), error))?;
    if entries.next().is_some() {
        return Err(Failure(format!(
            "{} is not empty: back up into a new folder",
            dir.display()
        )));
    }
    Ok(())
}

/// Copies every whole file of `from` (not the `.part` files of uploads in progress) to `to`,
/// durably, with a progress bar.
fn copy_files(from: &Path, to: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(to)
        .map_err(|error| fail(&format!("cannot create {}", to.display()), error))?;
    let files: Vec<PathBuf> = match std::fs::read_dir(from) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.is_file() && path.extension().is_none_or(|extension| extension != "part")
            })
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(fail(&format!("cannot read {}", from.display()), error)),
    };
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} files")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("attachments");
    for file in &files {
        let Some(name) = file.file_name() else {
            continue;
        };
        copy_durably(file, &to.join(name))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Writes `bytes` to `path`, durably (see [`into_place`]).
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    into_place(path, |part| std::fs::write(part, bytes))
        .map_err(|error| fail(&format!("cannot write {}", path.display()), error))
}

/// Copies `from` to `to`, durably (see [`into_place`]).
fn copy_durably(from: &Path, to: &Path) -> Result<(), Failure> {
    into_place(to, |part| std::fs::copy(from, part).map(drop)).map_err(|error| {
        fail(
            &format!("cannot copy {} to {}", from.display(), to.display()),
            error,
        )
    })
}

/// Runs a tool; its standard output.
fn run_tool(command: &mut Command, name: &str) -> Result<String, Failure> {
    let output = command.output().map_err(|error| {
        fail(
            &format!(
                "cannot run {name} (Debian's postgresql-client, of the server's major version)"
            ),
            error,
        )
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Failure(format!("{name} failed: {}", stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
