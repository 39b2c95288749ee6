//! Jono's read side.
//!
//! - [`stats`]: queue statistics folded from the log alone (API.md, Statistics), and a queue as
//!   it stood at an instant.

pub mod stats;
