//! The in-memory harness of the core's tests: the use cases' services over the memory
//! adapters, wrapped in one [`Faults`] controller, with a clock the test moves.

use crate::faults::{Faults, FaultyQueue, FaultyTable};
use billing_core::app::Services;
use billing_core::domain::clock::ManualClock;
use billing_core::metrics::memory::MemoryMetrics;
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::memory::MemoryTable;
use chrono::{TimeZone, Utc};
use std::sync::Arc;

pub struct Harness {
    pub services: Services,
    pub table: Arc<FaultyTable<MemoryTable>>,
    pub queue: Arc<FaultyQueue<MemoryQueue>>,
    pub clock: ManualClock,
    pub faults: Arc<Faults>,
    /// What the use cases counted.
    pub metrics: Arc<MemoryMetrics>,
}

impl Harness {
    /// Services at Unix time `now` with the test config plus `extra` variables, no Stripe.
    pub fn new(extra: &[(&str, &str)], queue: MemoryQueue, now: i64) -> Self {
        let faults = Faults::new();
        let table = Arc::new(FaultyTable {
            inner: MemoryTable::new(),
            faults: faults.clone(),
        });
        let queue = Arc::new(FaultyQueue {
            inner: queue,
            faults: faults.clone(),
        });
        let clock = ManualClock::at(Utc.timestamp_opt(now, 0).unwrap());
        let metrics = Arc::new(MemoryMetrics::default());
        let services = Services {
            config: Arc::new(crate::config(extra)),
            table: table.clone(),
            queue: queue.clone(),
            clock: Arc::new(clock.clone()),
            stripe: None,
            metrics: metrics.clone(),
            secrets: None,
        };
        Self {
            services,
            table,
            queue,
            clock,
            faults,
            metrics,
        }
    }
}
