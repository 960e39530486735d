//! The in-memory metrics adapter: keeps what was recorded, for tests to read.

use super::{Metric, Metrics};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryMetrics {
    recorded: Mutex<Vec<Metric>>,
}

impl MemoryMetrics {
    /// Everything recorded so far, in order.
    pub fn recorded(&self) -> Vec<Metric> {
        self.recorded.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Metrics for MemoryMetrics {
    fn record(&self, metric: Metric) {
        if let Ok(mut recorded) = self.recorded.lock() {
            recorded.push(metric);
        }
    }
}
