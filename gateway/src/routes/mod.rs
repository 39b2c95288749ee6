//! One module per area of the contract; each exposes `router()`.

pub mod health;
