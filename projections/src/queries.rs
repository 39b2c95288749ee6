//! Where the read models' questions used to live, kept while callers move to each read
//! model's own `read` module.

pub use crate::activity::read::*;
pub use crate::canned::read::*;
pub use crate::conversations::read::*;
pub use crate::directory::read::*;
pub use crate::messages::read::*;
pub use crate::queues::read::*;
pub use crate::reading::{QueryError, MAX_PAGE};
