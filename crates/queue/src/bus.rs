//! The event bus: every job change and cancel request, fanned out to all subscribers.

use forklift_domain::Event;
use tokio::sync::broadcast;

/// Publishes events to every subscriber in this process (and, for networked buses,
/// in every other process).
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event; never blocks. Subscribers that lag lose the oldest events
    /// and are told so, and then re-read the record.
    fn publish(&self, event: Event);

    /// A receiver of every event published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}

/// The bus within one process: a broadcast channel.
pub struct InProcessBus {
    tx: broadcast::Sender<Event>,
}

impl InProcessBus {
    /// A bus whose subscribers may fall `capacity` events behind before lagging.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity).0,
        }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Event) {
        // No subscriber is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
