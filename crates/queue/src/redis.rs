//! The Redis transport and event bus (extracted mode), on the `redis` crate.
//!
//! Per queue, three sorted sets:
//! - `forklift:q:<queue>:ready` — due jobs, scored by priority, then by publish time;
//! - `forklift:q:<queue>:delayed` — future jobs, scored by `run_at`; the member is
//!   `<priority>:<job id>` so that promotion keeps the priority;
//! - `forklift:q:<queue>:wake` — one member, added with every delayed job: a consumer
//!   blocked on an empty `ready` set pops it too, so it learns of the new due time at
//!   once instead of after `MAX_BLOCK` (a retry with a 100 ms backoff would otherwise
//!   wait up to two seconds).
//!
//! `ZADD NX` keeps a job in a queue at most once, so republishing never duplicates. The
//! reconciler asks which queued jobs are missing (`ZMSCORE` of both sets, so Redis 6.2
//! or later) and publishes only those again. Promotion of due
//! delayed jobs moves at most [`PROMOTE_BATCH`] per call, so a backlog of any size
//! drains (an unbounded promotion in one Lua `unpack` fails past ~8,000 entries).
//!
//! The transport is only transport: the database is the record, a claim is a
//! conditional update, and anything Redis loses is republished by the reconciler.

use crate::{Delivery, EventBus, QueueError, Transport};
use async_trait::async_trait;
use forklift_domain::{Event, JobId, now_ms};
use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Most delayed jobs promoted to ready per fetch.
pub const PROMOTE_BATCH: usize = 100;

/// Longest a consumer blocks waiting for work before looking at delayed jobs again
/// (a delayed publish wakes it earlier).
const MAX_BLOCK: Duration = Duration::from_secs(2);

/// A `ready` score, in the one place both scripts take it from: priority first (higher
/// sorts first, -100 to 100), then the time the job became ready (Unix milliseconds,
/// well under 1e13), so that equal priorities keep their order.
macro_rules! ready_score_lua {
    () => {
        "local function ready_score(prio, at) return (100 - prio) * 1e13 + at end\n"
    };
}

/// Publishes a delivery: into `delayed` if in the future (waking a blocked consumer to
/// look at its due time), else into `ready`, unless it is already waiting in `ready`.
/// ARGV[2] is the job's member in `delayed` ([`delayed_member`]), ARGV[3] its priority.
const PUBLISH: &str = concat!(
    ready_score_lua!(),
    r"
local ready, delayed, wake = KEYS[1], KEYS[2], KEYS[3]
local id, member, prio, run_at, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZSCORE', ready, id) then return 0 end
if run_at > now then
  redis.call('ZADD', delayed, 'NX', run_at, member)
  redis.call('ZADD', wake, 0, 'wake')
else
  redis.call('ZREM', delayed, member)
  redis.call('ZADD', ready, 'NX', ready_score(prio, now), id)
end
return 1
"
);

/// Promotes up to ARGV[2] due delayed jobs, then pops the best ready one.
/// Returns {id or false, next delayed due time or false}.
const FETCH: &str = concat!(
    ready_score_lua!(),
    r"
local ready, delayed = KEYS[1], KEYS[2]
local now, batch = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, batch)
for _, m in ipairs(due) do
  local sep = string.find(m, ':', 1, true)
  local prio = tonumber(string.sub(m, 1, sep - 1))
  local id = string.sub(m, sep + 1)
  redis.call('ZREM', delayed, m)
  redis.call('ZADD', ready, 'NX', ready_score(prio, now), id)
end
local popped = redis.call('ZPOPMIN', ready)
local next_due = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
return {popped[1] or false, next_due[2] or false}
"
);

fn keys(queue: &str) -> (String, String) {
    (
        RedisTransport::ready_key(queue),
        RedisTransport::delayed_key(queue),
    )
}

fn wake_key(queue: &str) -> String {
    format!("forklift:q:{queue}:wake")
}

/// A job's member in a `delayed` set: `<priority>:<job id>`, so that promotion to
/// `ready` keeps the priority.
fn delayed_member(priority: i32, id: JobId) -> String {
    format!("{}:{id}", priority.clamp(-100, 100))
}

fn backend(e: redis::RedisError) -> QueueError {
    QueueError::Backend(e.to_string())
}

/// Deliveries through Redis, shared by every process of a deployment.
pub struct RedisTransport {
    client: redis::Client,
    conn: ConnectionManager,
    publish: redis::Script,
    fetch: redis::Script,
    /// One connection per consumed queue for the blocking pop, so it never holds up
    /// other commands.
    blocking: Mutex<HashMap<String, MultiplexedConnection>>,
}

impl RedisTransport {
    /// The key of `queue`'s sorted set of due jobs. Outside readers count it: KEDA's
    /// `redis` scaler (deploy/k8s/components/keda) scales workers on its `ZCARD`.
    pub fn ready_key(queue: &str) -> String {
        format!("forklift:q:{queue}:ready")
    }

    /// The key of `queue`'s sorted set of jobs not due yet (retries waiting out their
    /// backoff, jobs submitted with a start time), scored by run time.
    pub fn delayed_key(queue: &str) -> String {
        format!("forklift:q:{queue}:delayed")
    }

    /// Connects to Redis at `url` (e.g. `redis://127.0.0.1:6379/`).
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let conn = ConnectionManager::new(client.clone())
            .await
            .map_err(backend)?;
        Ok(Self {
            client,
            conn,
            publish: redis::Script::new(PUBLISH),
            fetch: redis::Script::new(FETCH),
            blocking: Mutex::default(),
        })
    }

    /// Answers when Redis answers (readiness).
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut c = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn blocking_conn(&self, queue: &str) -> Result<MultiplexedConnection, QueueError> {
        let mut map = self.blocking.lock().await;
        if let Some(c) = map.get(queue) {
            return Ok(c.clone());
        }
        // Responses to a blocking pop take up to MAX_BLOCK: the default response
        // timeout would cut them off.
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(MAX_BLOCK + Duration::from_secs(5)));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(backend)?;
        map.insert(queue.to_owned(), c.clone());
        Ok(c)
    }
}

#[async_trait]
impl Transport for RedisTransport {
    async fn publish(&self, d: Delivery) -> Result<(), QueueError> {
        let (ready, delayed) = keys(&d.queue);
        let now = now_ms();
        let mut c = self.conn.clone();
        let _: i64 = self
            .publish
            .key(ready)
            .key(delayed)
            .key(wake_key(&d.queue))
            .arg(d.job_id.to_string())
            .arg(delayed_member(d.priority, d.job_id))
            .arg(d.priority.clamp(-100, 100))
            .arg(d.run_at)
            .arg(now)
            .invoke_async(&mut c)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn next(&self, queue: &str) -> Result<Delivery, QueueError> {
        let (ready, delayed) = keys(queue);
        let wake = wake_key(queue);
        loop {
            let mut c = self.conn.clone();
            let (id, next_due): (Option<String>, Option<f64>) = self
                .fetch
                .key(&ready)
                .key(&delayed)
                .arg(now_ms())
                .arg(PROMOTE_BATCH)
                .invoke_async(&mut c)
                .await
                .map_err(backend)?;
            if let Some(id) = id {
                return delivery(queue, &id);
            }
            // Nothing ready: block until something is published (a delayed job pops
            // `wake`: look again, at its due time), or the next delayed job is due.
            let wait = match next_due {
                Some(due) => Duration::from_millis((due as i64 - now_ms()).clamp(10, 250) as u64),
                None => MAX_BLOCK,
            };
            let mut b = self.blocking_conn(queue).await?;
            let popped: Option<(String, String, f64)> =
                match b.bzpopmin(&[&ready, &wake], wait.as_secs_f64()).await {
                    Ok(p) => p,
                    Err(e) => {
                        // This connection does not reconnect by itself: open a new one next time.
                        self.blocking.lock().await.remove(queue);
                        return Err(backend(e));
                    }
                };
            match popped {
                Some((key, id, _)) if key == ready => return delivery(queue, &id),
                _ => {}
            }
        }
    }

    async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        let (ready, delayed) = keys(queue);
        let mut c = self.conn.clone();
        let (r, d): (u64, u64) = redis::pipe()
            .zcard(ready)
            .zcard(delayed)
            .query_async(&mut c)
            .await
            .map_err(backend)?;
        Ok(r + d)
    }

    async fn missing(&self, deliveries: Vec<Delivery>) -> Result<Vec<Delivery>, QueueError> {
        // Per queue, one ZMSCORE of each sorted set (Redis 6.2 or later); all in one
        // MULTI, so that no job moves from `delayed` to `ready` between the two.
        let mut queues: BTreeMap<&str, Vec<&Delivery>> = BTreeMap::new();
        for d in &deliveries {
            queues.entry(d.queue.as_str()).or_default().push(d);
        }
        if queues.is_empty() {
            return Ok(deliveries);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (queue, ds) in &queues {
            let (ready, delayed) = keys(queue);
            let ids: Vec<String> = ds.iter().map(|d| d.job_id.to_string()).collect();
            let members: Vec<String> = ds
                .iter()
                .map(|d| delayed_member(d.priority, d.job_id))
                .collect();
            pipe.cmd("ZMSCORE").arg(ready).arg(ids);
            pipe.cmd("ZMSCORE").arg(delayed).arg(members);
        }
        let mut c = self.conn.clone();
        let scores: Vec<Vec<Option<f64>>> = pipe.query_async(&mut c).await.map_err(backend)?;
        let mut waiting = HashSet::new();
        for ((_, ds), sets) in queues.iter().zip(scores.chunks(2)) {
            for (i, d) in ds.iter().enumerate() {
                if sets.iter().any(|s| s.get(i).is_some_and(Option::is_some)) {
                    waiting.insert(d.job_id);
                }
            }
        }
        Ok(deliveries
            .into_iter()
            .filter(|d| !waiting.contains(&d.job_id))
            .collect())
    }
}

fn delivery(queue: &str, id: &str) -> Result<Delivery, QueueError> {
    let job_id: JobId = id.parse().map_err(|_| {
        QueueError::Backend(format!("queue {queue} holds a malformed job id {id:?}"))
    })?;
    // Priority and run_at are the database's to know; the claim checks them.
    Ok(Delivery {
        job_id,
        queue: queue.to_owned(),
        priority: 0,
        run_at: 0,
    })
}

/// Events through Redis pub/sub: every process sees every event, so any web or API
/// replica can stream any job, and any worker hears any cancel request.
pub struct RedisBus {
    local: broadcast::Sender<Event>,
    outgoing: mpsc::UnboundedSender<Event>,
    /// Stops the subscription when the bus is dropped.
    _stop: DropGuard,
}

impl RedisBus {
    /// The pub/sub channel every event goes through; each connected bus holds one
    /// subscription to it.
    pub const CHANNEL: &str = "forklift:events";

    /// Connects to Redis at `url` and starts relaying in both directions.
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let conn = ConnectionManager::new(client.clone())
            .await
            .map_err(backend)?;
        let (local, _) = broadcast::channel(4096);
        let (outgoing, rx) = mpsc::unbounded_channel();
        tokio::spawn(publish_loop(conn, rx));
        // Subscribe before returning, so nothing published after connect is missed.
        let pubsub = subscribe(&client).await?;
        let stop = CancellationToken::new();
        tokio::spawn(subscribe_loop(client, pubsub, local.clone(), stop.clone()));
        Ok(Self {
            local,
            outgoing,
            _stop: stop.drop_guard(),
        })
    }
}

impl EventBus for RedisBus {
    fn publish(&self, event: Event) {
        let _ = self.outgoing.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }
}

/// Sends events in order. A failed publish is retried a few times (the connection
/// manager reconnects meanwhile, e.g. after Redis restarted); an event still lost is
/// made up for by watchers re-reading the record.
async fn publish_loop(mut conn: ConnectionManager, mut rx: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = rx.recv().await {
        let Ok(payload) = serde_json::to_string(&event) else {
            continue;
        };
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=5 {
            match conn.publish::<_, _, i64>(RedisBus::CHANNEL, &payload).await {
                Ok(_) => break,
                Err(e) if attempt == 5 => {
                    tracing::warn!(error = %e, "publishing an event to Redis failed: {e}");
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}

async fn subscribe(client: &redis::Client) -> Result<redis::aio::PubSub, QueueError> {
    let mut pubsub = client.get_async_pubsub().await.map_err(backend)?;
    pubsub.subscribe(RedisBus::CHANNEL).await.map_err(backend)?;
    Ok(pubsub)
}

/// Relays Redis messages to local subscribers; reconnects when Redis goes away and
/// tells subscribers to resync, since events may have been missed meanwhile.
async fn subscribe_loop(
    client: redis::Client,
    mut pubsub: redis::aio::PubSub,
    local: broadcast::Sender<Event>,
    stop: CancellationToken,
) {
    loop {
        {
            let mut messages = pubsub.on_message();
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = messages.next() => m,
                };
                let Some(msg) = msg else { break };
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<Event>(&payload) {
                    Ok(ev) => {
                        let _ = local.send(ev);
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed event: {e}"),
                }
            }
        }
        tracing::warn!("lost the Redis event subscription; reconnecting");
        let mut delay = Duration::from_millis(100);
        pubsub = loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            match subscribe(&client).await {
                Ok(p) => break p,
                Err(e) => {
                    tracing::warn!(error = %e, "resubscribing to Redis failed: {e}");
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        let _ = local.send(Event::Resync);
    }
}
