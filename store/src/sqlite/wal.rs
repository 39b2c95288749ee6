//! The write-ahead logs of `jono.db` and `read-models.db` are copied back into their files
//! (checkpointed) by a thread of this process, not by the connection whose commit happened to
//! take a log past SQLite's threshold. By default that commit does it, inside its own call: so
//! the log's writer — its batch, and every request waiting on the batch — and the projector
//! group paid several times a second under load for copying some 4 MiB of pages and an fsync
//! of the database file, which is the tail of the answers' latency.
//!
//! The committing connections keep a checkpoint of their own at [`AUTOCHECKPOINT_BACKSTOP`]
//! pages, four times SQLite's default: under sustained load it is theirs that lets a log start
//! over, with little left to copy by then (see the constant). This thread's checkpoints are
//! `PASSIVE`: they copy what no reader still needs, never wait for a
//! reader or a writer, and never block one (SQLite, "Checkpoint a database", `PASSIVE`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

/// Pages of write-ahead log after which a committing connection checkpoints by itself
/// (SQLite's default is 1,000): about 16 MB. Under sustained load this is what starts the log over:
/// a log starts over only when a writer begins with every frame copied back, and the
/// checkpointer's copy always ends after another commit; the connection that checkpoints right
/// after its own commit finds them all copied — by then mostly by the checkpointer, so its
/// checkpoint has little left to do. At 20,000 pages (80 MiB) the log of `jono.db` went
/// 4 → 80 MB every 1.5 s under `jono-load`, and every read looked a page up in five segments
/// of its index; at 4,000 it stays at 16 MB, and SendMessage/s rose by about 6 %
/// (BENCHMARKS.md).
pub(crate) const AUTOCHECKPOINT_BACKSTOP: u32 = 4_000;

/// SQLite's page size here (its default; nothing sets another).
const PAGE_SIZE: u64 = 4_096;

/// The size a write-ahead log is cut back to when it starts over (`journal_size_limit`, set
/// on every connection that writes): the size [`AUTOCHECKPOINT_BACKSTOP`] keeps it at under
/// load, so a log in steady use is never cut. Without it a log kept the largest size it ever
/// reached: after a full disk, where no checkpoint could copy anything back and the logs grew
/// until nothing was left, or after a reader held its snapshot through a long burst, it held
/// that space for good. A lower limit cost: at 4 MiB, cut at every start-over and grown again,
/// SendMessage/s fell by about 7 % (BENCHMARKS.md).
pub const WAL_SIZE_LIMIT: u64 = AUTOCHECKPOINT_BACKSTOP as u64 * PAGE_SIZE;

/// How often the checkpointer copies what the logs gained: under load a few hundred pages
/// each time.
const EVERY: Duration = Duration::from_millis(100);

/// Starts the checkpointer of `files`; it stops within [`EVERY`] of `shutdown`'s sender being
/// dropped (the store's last clone).
pub(crate) fn spawn_checkpointer(files: Vec<PathBuf>, shutdown: watch::Receiver<()>) {
    let started = std::thread::Builder::new()
        .name("jono-checkpoints".into())
        .spawn(move || run(&files, &shutdown));
    if let Err(error) = started {
        tracing::warn!(
            %error,
            "no checkpointer thread: commits checkpoint the write-ahead logs themselves"
        );
    }
}

fn run(files: &[PathBuf], shutdown: &watch::Receiver<()>) {
    let mut connections: Vec<Option<rusqlite::Connection>> = files.iter().map(|_| None).collect();
    loop {
        std::thread::sleep(EVERY);
        if shutdown.has_changed().is_err() {
            return;
        }
        for (file, connection) in files.iter().zip(connections.iter_mut()) {
            if connection.is_none() {
                match open(file) {
                    Ok(opened) => *connection = Some(opened),
                    Err(error) => {
                        tracing::debug!(%error, file = %file.display(), "cannot open for a checkpoint");
                        continue;
                    }
                }
            }
            if let Some(opened) = connection {
                if let Err(error) = checkpoint(opened) {
                    tracing::debug!(%error, file = %file.display(), "a checkpoint failed");
                    *connection = None;
                }
            }
        }
    }
}

/// The checkpointer's connection: `synchronous=FULL`, so that a checkpoint syncs the
/// write-ahead log before it overwrites pages of the file and the file before it lets the log
/// start over.
fn open(file: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open_with_flags(
        file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.execute_batch("PRAGMA synchronous = FULL;")?;
    Ok(connection)
}

/// One `PASSIVE` checkpoint. Its answer (whether another checkpoint held the file, how many
/// pages it copied) needs no action: what is left is copied on the next turn.
fn checkpoint(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
