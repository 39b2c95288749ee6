//! The store's behaviour, written once and run on SQLite (always) and on Postgres (when
//! `JONO_TEST_DATABASE_URL` is set; with `CI` set and no URL, the Postgres runs fail).

mod common;

pub(crate) use store::on_both_backends;

mod append;
mod beside_log;
mod checkpoints;
mod cluster;
mod commands;
mod feed;
mod follow;
mod gathered;
mod group_commit;
mod idempotency;
mod kept_fold;
mod open;
mod repository;
mod sealing;
