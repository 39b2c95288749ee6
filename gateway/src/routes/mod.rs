//! One module per area of the contract; each exposes `router()`.

pub mod accounts;
pub mod activity;
pub mod attachments;
pub mod audit;
pub mod blocks;
pub mod canned;
pub mod conversations;
pub mod email;
pub mod erasures;
pub mod handoff;
pub mod health;
pub mod left_messages;
pub mod offers;
pub mod organizations;
pub mod queues;
pub mod search;
pub mod sessions;
pub mod sso;
pub mod two_factor;
pub mod webhooks;
