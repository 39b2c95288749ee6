//! The state every route shares. Cheap to clone.

use std::sync::Arc;

use store::command::Commands;
use store::log::EventStore;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub store: EventStore,
    pub commands: Commands,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(store: EventStore) -> Self {
        Self {
            commands: Commands::new(store.clone()),
            store,
            metrics: Arc::default(),
        }
    }
}
