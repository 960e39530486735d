//! The in-memory adapter of the event bus port: keeps what was published, in order.

use super::{BusError, EntitlementsChanged, EventBus};
use async_trait::async_trait;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryBus {
    published: Mutex<Vec<EntitlementsChanged>>,
}

impl MemoryBus {
    /// Every event accepted so far, oldest first.
    pub fn published(&self) -> Vec<EntitlementsChanged> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: &EntitlementsChanged) -> Result<(), BusError> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
        Ok(())
    }
}
