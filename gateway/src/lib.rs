//! Jono's gateway: the HTTP and WebSocket edge, configuration, and the `jono` binary's commands.
//!
//! - [`config`]: the command line and its environment variables (API.md, Running).
//! - [`cli`]: what each subcommand does (`serve`, `admin create-org`).
//! - [`app`]: `app(state) -> Router`, the whole HTTP surface as a function of its state.
//! - [`state`]: the state every route shares (the store, the command layer, metrics).
//! - [`auth`]: who is calling (agent or customer token), passwords (argon2id).
//! - [`totp`], [`second_factor`]: two-factor authentication's codes and the rules of its kept
//!   secrets.
//! - [`oidc`], [`sso_secrets`]: single sign-on through an organization's OpenID provider.
//! - [`identity`]: returning customers' signed identities and each queue's identity secret.
//! - [`outbound`]: requests to addresses users chose: public ones only, no redirects (SSRF).
//! - [`access`]: tenancy — what a caller may see and do; 404 for what it may not know of.
//! - [`workflow`]: running a command for a route (idempotency and follow-ups, answered durable)
//!   and the work that spans streams (join, transfer, end, reopen).
//! - [`consistency`]: where reads wait for the read models (API.md's Consistency rule).
//! - [`extract`]: JSON bodies and paging parameters with API.md's statuses.
//! - [`idempotency`]: the `Idempotency-Key` layer.
//! - [`limits`]: rate limits (joins, customer messages, logins), across every node.
//! - [`presence`]: who is online or away, on any node.
//! - [`live`]: the hub that feeds every WebSocket, relays, and the socket closer.
//! - [`peers`]: relays and close orders between nodes, over core NATS.
//! - [`nodes`]: this process among the nodes of a Postgres deployment: its heartbeat, its
//!   sockets in the shared tables, and which nodes may run together.
//! - [`openapi`]: each route declared once (`registry.rs`: method, path, handler, and its
//!   operation: summary, body, answers) makes both the router's route and the OpenAPI 3.1
//!   document of API.md (`document.rs`), served at `GET /v1/openapi.json`; the WebSocket's
//!   frames (`websocket.rs`).
//! - [`web`]: the console and the widget, served from the `web/dist` build.
//! - [`ws`]: `GET /v1/ws`, topics with gap-free resume, typing and signalling; a folder, a file
//!   per concern: the session's loop, the bounded way out, the client's frames, topics and their
//!   access checks, a subscription's replay and live following, `event` frames, the customer's
//!   allow-listed view.
//! - [`routes`]: one module per area of the contract, each with its routes (`routes()`, the
//!   declarations `openapi` builds from) and its wire types (the request bodies its handlers
//!   take, the answers they return, built from read-model rows).
//! - [`error`]: the one error type at the edge, written as `application/problem+json`.
//! - [`blobs`]: attachments' bytes (files or rows), their sniffed type and signed URLs.
//! - [`secrets`]: what must never enter the log — tokens (made and hashed here), passwords, kept
//!   answers, the server's keys — and how long each lasts.
//! - [`process_manager`]: runs the domain's follow-ups from the durable feed.
//! - [`mail`]: email over SMTP (invitations, address confirmations, password resets,
//!   transcripts): an outbox table beside the log and its sender.
//! - [`outbox`]: the leased relay that publishes the log to NATS JetStream.
//! - [`webhooks`]: the leased worker that delivers the organization's events, signed, to its
//!   endpoints, with retries, parking and redelivery (what each event owes, one delivery's try
//!   and its record, the signing key: a file each).
//! - [`router`]: auto routing's leased duty: offers waiting customers to agents, expires offers.
//! - [`sweeper`]: the clock's work, a file per kind: silent waiting customers time out, queues
//!   open on schedule, customers' personal data past its organization's retention is erased,
//!   expired kept answers are pruned; beside them the signs of life it reads and its fold of
//!   the log.
//! - [`erasure`]: erasing a customer's personal data (GDPR), for the route, the command line
//!   and the retention duty, and the clean-up outside the log after each erasure.
//! - [`metrics`]: Prometheus metrics of the HTTP side, the sockets, the lag of the background work.
//! - [`telemetry`]: logs to stderr, and traces over OTLP when the environment asks for them.
//! - [`server`]: binding, serving and graceful shutdown.
//! - [`edge`]: connection caps, header and body deadlines: what a stranger's connection may cost.
//! - [`client`]: the client's address, behind trusted proxies too.
//!
//! The gateway writes no SQL: the tables beside the log (tokens, kept answers, keys, blobs,
//! mail, webhook deliveries…) are `store`'s, behind typed functions (`store::beside_log`), and
//! the read models' are `projections`'.
//! The hub, the process manager, the relays, the router and the sweeper read the log through
//! `store::follow::Follower` (from a position, in batches, woken by commits, with back-off and
//! shutdown) and keep only their own work.

pub mod access;
pub mod app;
pub mod auth;
pub mod blobs;
pub mod cli;
pub mod client;
pub mod config;
pub mod consistency;
pub mod edge;
pub mod erasure;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod identity;
pub mod limits;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod nodes;
pub mod oidc;
pub mod openapi;
pub mod outbound;
pub mod outbox;
pub mod peers;
pub mod plain;
pub mod presence;
pub mod process_manager;
pub mod router;
pub mod routes;
pub mod second_factor;
pub mod secrets;
pub mod server;
pub mod sso_secrets;
pub mod state;
pub mod sweeper;
pub mod telemetry;
pub mod totp;
pub mod web;
pub mod webhooks;
pub mod workflow;
pub mod ws;
