//! The in-process transport: per queue, a priority heap of due deliveries and a timer
//! heap of future ones.

use crate::{Delivery, QueueError, Transport};
use async_trait::async_trait;
use forklift_domain::{JobId, Millis, now_ms};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Deliveries held in memory; lost with the process, which is fine because the
/// database is the record and queued jobs are dispatched again at start.
#[derive(Default)]
pub struct InProcessTransport {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
}

impl InProcessTransport {
    /// An empty transport.
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self, name: &str) -> Arc<Queue> {
        let mut queues = self.queues.lock().expect("transport lock");
        queues.entry(name.to_owned()).or_default().clone()
    }
}

#[derive(Default)]
struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    /// Ids waiting in either heap: a job is queued at most once.
    waiting: HashSet<JobId>,
    ready: BinaryHeap<Ready>,
    delayed: BinaryHeap<Reverse<Delayed>>,
}

/// Ordered by priority (high first), then publishing order (early first).
struct Ready {
    priority: i32,
    seq: u64,
    delivery: Delivery,
}

impl PartialEq for Ready {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ready {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

/// Ordered by due time, then publishing order.
struct Delayed {
    run_at: Millis,
    seq: u64,
    delivery: Delivery,
}

impl PartialEq for Delayed {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Delayed {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.run_at, self.seq).cmp(&(o.run_at, o.seq))
    }
}

impl Inner {
    /// Moves due deliveries to the ready heap; returns when the next one is due.
    fn promote(&mut self, now: Millis) -> Option<Millis> {
        while let Some(Reverse(d)) = self.delayed.peek() {
            if d.run_at > now {
                return Some(d.run_at);
            }
            let Reverse(d) = self.delayed.pop().expect("peeked");
            self.ready.push(Ready {
                priority: d.delivery.priority,
                seq: d.seq,
                delivery: d.delivery,
            });
        }
        None
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn publish(&self, delivery: Delivery) -> Result<(), QueueError> {
        let q = self.queue(&delivery.queue);
        {
            let mut inner = q.inner.lock().expect("queue lock");
            if !inner.waiting.insert(delivery.job_id) {
                return Ok(());
            }
            inner.seq += 1;
            let seq = inner.seq;
            if delivery.run_at > now_ms() {
                inner.delayed.push(Reverse(Delayed {
                    run_at: delivery.run_at,
                    seq,
                    delivery,
                }));
            } else {
                inner.ready.push(Ready {
                    priority: delivery.priority,
                    seq,
                    delivery,
                });
            }
        }
        q.notify.notify_one();
        Ok(())
    }

    async fn next(&self, queue: &str) -> Result<Delivery, QueueError> {
        let q = self.queue(queue);
        loop {
            let notified = q.notify.notified();
            tokio::pin!(notified);
            // Register interest before looking, so a publish in between is not missed.
            notified.as_mut().enable();
            let next_due = {
                let mut inner = q.inner.lock().expect("queue lock");
                let next_due = inner.promote(now_ms());
                if let Some(r) = inner.ready.pop() {
                    inner.waiting.remove(&r.delivery.job_id);
                    // Others may be ready too: pass the wake-up on.
                    if !inner.ready.is_empty() {
                        q.notify.notify_one();
                    }
                    return Ok(r.delivery);
                }
                next_due
            };
            match next_due {
                Some(due) => {
                    let wait = Duration::from_millis((due - now_ms()).max(1) as u64);
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        let q = self.queue(queue);
        let inner = q.inner.lock().expect("queue lock");
        Ok((inner.ready.len() + inner.delayed.len()) as u64)
    }

    async fn missing(&self, deliveries: Vec<Delivery>) -> Result<Vec<Delivery>, QueueError> {
        Ok(deliveries
            .into_iter()
            .filter(|d| {
                let q = self.queue(&d.queue);
                let inner = q.inner.lock().expect("queue lock");
                !inner.waiting.contains(&d.job_id)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forklift_domain::JobId;

    fn d(priority: i32, run_at: Millis) -> Delivery {
        Delivery {
            job_id: JobId::new(),
            queue: "q".into(),
            priority,
            run_at,
        }
    }

    #[tokio::test]
    async fn missing_names_the_deliveries_not_waiting() {
        let t = InProcessTransport::new();
        let (due, later, taken, unknown) = (d(0, 0), d(0, now_ms() + 60_000), d(0, 0), d(0, 0));
        t.publish(taken.clone()).await.unwrap();
        assert_eq!(t.next("q").await.unwrap(), taken);
        t.publish(due.clone()).await.unwrap();
        t.publish(later.clone()).await.unwrap();
        let all = vec![due, later, taken.clone(), unknown.clone()];
        assert_eq!(t.missing(all).await.unwrap(), [taken, unknown]);
    }

    #[tokio::test]
    async fn delivers_by_priority_then_fifo() {
        let t = InProcessTransport::new();
        let (a, b, c) = (d(0, 0), d(5, 0), d(0, 0));
        for x in [&a, &b, &c] {
            t.publish(x.clone()).await.unwrap();
        }
        assert_eq!(t.depth("q").await.unwrap(), 3);
        assert_eq!(t.next("q").await.unwrap(), b);
        assert_eq!(t.next("q").await.unwrap(), a);
        assert_eq!(t.next("q").await.unwrap(), c);
    }

    #[tokio::test]
    async fn a_job_waits_in_a_queue_at_most_once() {
        let t = InProcessTransport::new();
        let a = d(0, 0);
        t.publish(a.clone()).await.unwrap();
        t.publish(a.clone()).await.unwrap();
        assert_eq!(t.depth("q").await.unwrap(), 1);
        assert_eq!(t.next("q").await.unwrap(), a);
        t.publish(a.clone()).await.unwrap();
        assert_eq!(
            t.depth("q").await.unwrap(),
            1,
            "once taken, it may be queued again"
        );
    }

    #[tokio::test]
    async fn holds_future_deliveries_until_due() {
        let t = InProcessTransport::new();
        let later = d(9, now_ms() + 150);
        let now = d(0, 0);
        t.publish(later.clone()).await.unwrap();
        t.publish(now.clone()).await.unwrap();
        assert_eq!(t.next("q").await.unwrap(), now);
        let got = t.next("q").await.unwrap();
        assert_eq!(got, later);
        assert!(now_ms() >= later.run_at);
    }

    #[tokio::test]
    async fn wakes_a_waiting_consumer() {
        let t = Arc::new(InProcessTransport::new());
        let waiter = tokio::spawn({
            let t = t.clone();
            async move { t.next("q").await.unwrap() }
        });
        let x = d(0, 0);
        t.publish(x.clone()).await.unwrap();
        assert_eq!(waiter.await.unwrap(), x);
    }
}
