//! One module per area of the contract; each exposes `router()`.

pub mod accounts;
pub mod health;
pub mod organizations;
