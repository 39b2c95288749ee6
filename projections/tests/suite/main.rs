//! The read side's behaviour, written once and run on SQLite (always) and on Postgres (when
//! `JONO_TEST_DATABASE_URL` is set; with `CI` set and no URL, the Postgres runs fail).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

pub(crate) use store::on_both_backends;

mod erasure;
mod lease;

mod reads;
mod replay;
mod runs;
mod runtime;
