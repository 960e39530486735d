//! The queue port: a FIFO queue with message groups (one account's events apply in
//! order), deduplication ids (a second send of one event within the window is dropped), a
//! visibility timeout and a dead-letter queue after too many receives.
//!
//! Adapters: [`sqs::SqsQueue`] (AWS, moto) and [`memory::MemoryQueue`]; the contract
//! suite in `tests/tests/contracts/queue.rs` runs against both.

pub mod memory;
pub mod sqs;

use async_trait::async_trait;
use std::time::Duration;

/// Receives after which SQS moves a message to the dead-letter queue: the template's
/// `maxReceiveCount` (a parity test holds them equal).
pub const MAX_RECEIVES: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Messages of one group are delivered in order, one batch at a time.
    pub group: String,
    /// A second message with the same id within the dedup window is accepted and dropped.
    pub dedup_id: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    pub group: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, message: &OutgoingMessage) -> Result<(), QueueError>;
    /// Up to `max` visible messages, waiting up to `wait` for the first one.
    async fn receive(&self, max: usize, wait: Duration)
    -> Result<Vec<ReceivedMessage>, QueueError>;
    /// Removes a received message for good (it was processed).
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;
}
