//! Jono's gateway: the HTTP and WebSocket edge, configuration, and the `jono` binary's commands.
//!
//! - [`config`]: the command line and its environment variables (API.md, Running).
//! - [`cli`]: what each subcommand does (`serve`, `admin create-org`).
//! - [`app`]: `app(state) -> Router`, the whole HTTP surface as a function of its state.
//! - [`state`]: the state every route shares (the store, the command layer, metrics).
//! - [`routes`]: one module per area of the contract.
//! - [`error`]: the one error type at the edge, written as `application/problem+json`.
//! - [`secrets`]: tables outside the log for what must never enter it (token hashes).
//! - [`process_manager`]: runs the domain's follow-ups from the durable feed.
//! - [`metrics`]: Prometheus counters of the HTTP side.
//! - [`server`]: binding, serving and graceful shutdown.

pub mod app;
pub mod cli;
pub mod config;
pub mod error;
pub mod metrics;
pub mod process_manager;
pub mod routes;
pub mod secrets;
pub mod server;
pub mod state;
