//! An in-memory FIFO queue with SQS FIFO's semantics: ordered message groups, five-minute
//! deduplication, visibility timeout and a dead-letter list after `max_receives`.

use super::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const DEDUP_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    group: String,
    body: String,
    receives: u32,
    receipt: Option<String>,
    invisible_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Stored>,
    dedup: HashMap<String, Instant>,
    dead: Vec<String>,
    counter: u64,
    sends: usize,
}

#[derive(Debug)]
pub struct MemoryQueue {
    state: Mutex<State>,
    visibility: Duration,
    max_receives: u32,
}

impl MemoryQueue {
    pub fn new(visibility: Duration, max_receives: u32) -> Self {
        Self {
            state: Mutex::new(State::default()),
            visibility,
            max_receives,
        }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Bodies of messages moved to the dead-letter list.
    pub fn dead_letters(&self) -> Vec<String> {
        self.lock().dead.clone()
    }
    /// Messages held, visible or in flight.
    pub fn depth(&self) -> usize {
        self.lock().messages.len()
    }
    /// Send requests that reached the queue, duplicates included.
    pub fn send_requests(&self) -> usize {
        self.lock().sends
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(Duration::from_secs(30), 5)
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, m: &OutgoingMessage) -> Result<(), QueueError> {
        let mut s = self.lock();
        s.sends += 1;
        let now = Instant::now();
        s.dedup
            .retain(|_, at| now.duration_since(*at) < DEDUP_WINDOW);
        if s.dedup.contains_key(&m.dedup_id) {
            return Ok(());
        }
        s.dedup.insert(m.dedup_id.clone(), now);
        s.counter += 1;
        let id = format!("m-{}", s.counter);
        s.messages.push_back(Stored {
            id,
            group: m.group.clone(),
            body: m.body.clone(),
            receives: 0,
            receipt: None,
            invisible_until: None,
        });
        Ok(())
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let batch = self.receive_now(max);
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(batch);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.lock()
            .messages
            .retain(|m| m.receipt.as_deref() != Some(receipt));
        Ok(())
    }
}

impl MemoryQueue {
    fn receive_now(&self, max: usize) -> Vec<ReceivedMessage> {
        let mut s = self.lock();
        let now = Instant::now();
        // Expired visibility: the message is visible again; past max receives it is dead.
        let max_receives = self.max_receives;
        let mut dead = Vec::new();
        s.messages.retain_mut(|m| {
            if m.invisible_until.is_some_and(|t| t <= now) {
                m.invisible_until = None;
                m.receipt = None;
                if m.receives >= max_receives {
                    dead.push(m.body.clone());
                    return false;
                }
            }
            true
        });
        s.dead.extend(dead);
        let busy: HashSet<String> = s
            .messages
            .iter()
            .filter(|m| m.invisible_until.is_some())
            .map(|m| m.group.clone())
            .collect();
        let mut out = Vec::new();
        let mut counter = s.counter;
        for m in s.messages.iter_mut() {
            if out.len() >= max {
                break;
            }
            if busy.contains(&m.group) {
                continue;
            }
            counter += 1;
            m.receives += 1;
            m.receipt = Some(format!("r-{counter}"));
            m.invisible_until = Some(now + self.visibility);
            out.push(ReceivedMessage {
                message_id: m.id.clone(),
                receipt: format!("r-{counter}"),
                body: m.body.clone(),
                group: m.group.clone(),
                receive_count: m.receives,
            });
        }
        s.counter = counter;
        out
    }
}
