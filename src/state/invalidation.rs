//! Cache coherence for a fleet: each replica keeps its own response cache (moka, in memory), and
//! a write that changed a call tells every replica to drop it, over Redis pub/sub.
//!
//! - [`CoherentCache`] serves reads from the local cache; its `invalidate_call` drops the call
//!   here, then publishes a `drop` `{id, origin, provider, call}` on `{prefix}:invalidations`.
//!   For an update it then waits (bounded by the command timeout) until every other subscribed
//!   replica has answered `applied` `{id}` on the same channel — PUBLISH says how many
//!   subscribers got the message — so a read through any replica after the write's answer
//!   sees the change (without the acknowledgements a replica's listener could still be about
//!   to apply it: seen in tests/fleet.rs). A create (a call no cache holds, only list pages may
//!   lack it) publishes without holding up its answer.
//! - [`InvalidationListener`] (a background service) subscribes and drops what other replicas
//!   announce. When its subscription breaks it cannot know what it missed: on every resubscribe
//!   it drops the whole local cache, so a replica is exact again as soon as Redis is back.
//! - While Redis is unreachable the cache is local only: another replica's write is seen here
//!   when the entry expires (live calls are cached briefly) or when Redis returns.

use super::link::{Function, RedisLink};
use crate::layers::cache::{
    CacheKey, CachePolicy, Change, Fetch, MemoryCache, ResponseCache, Served,
};
use crate::layers::BoxFuture;
use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What replicas tell each other on the invalidations channel.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Message {
    /// Drop this call (and its provider's list pages).
    Drop {
        id: String,
        /// The replica that published it (it has already dropped the call).
        origin: String,
        provider: String,
        call: String,
    },
    /// A replica applied the drop `id`.
    Applied { id: String },
}

/// Updates waiting for other replicas' `applied`: drop id → how many arrived.
type Acks = Arc<std::sync::Mutex<std::collections::HashMap<String, watch::Sender<usize>>>>;

/// The local cache, kept coherent with the fleet's writes.
pub struct CoherentCache {
    local: Arc<MemoryCache>,
    link: Arc<RedisLink>,
    /// This replica's id in messages.
    origin: String,
    channel: String,
    acks: Acks,
    /// This replica's listener is subscribed now (then PUBLISH counts it among the receivers).
    listening: Arc<AtomicBool>,
}

impl CoherentCache {
    pub fn new(local: Arc<MemoryCache>, link: Arc<RedisLink>) -> CoherentCache {
        CoherentCache {
            channel: link.key("invalidations"),
            origin: uuid::Uuid::new_v4().to_string(),
            local,
            link,
            acks: Arc::default(),
            listening: Arc::default(),
        }
    }

    /// Publishes the drop of an updated call and waits until every other replica applied it.
    async fn drop_everywhere(&self, message: String, id: String) {
        let (tx, mut applied) = watch::channel(0usize);
        lock(&self.acks).insert(id.clone(), tx);
        let receivers = publish(self.link.clone(), self.channel.clone(), message).await;
        if let Some(n) = receivers {
            let me = usize::from(self.listening.load(Ordering::Relaxed));
            let others = usize::try_from(n).unwrap_or(0).saturating_sub(me);
            let wait = self.link.settings().command_timeout;
            let all = applied.wait_for(|got| *got >= others);
            if tokio::time::timeout(wait, all).await.is_err() {
                self.link.metrics.fell_back(Function::Invalidation);
                tracing::warn!(
                    replicas = others,
                    "not every replica confirmed a cache invalidation in time; a read there may see the old call until its entry expires"
                );
            }
        }
        lock(&self.acks).remove(&id);
    }

    /// The background service that applies other replicas' invalidations here.
    pub fn listener(&self) -> InvalidationListener {
        InvalidationListener {
            local: self.local.clone(),
            link: self.link.clone(),
            origin: self.origin.clone(),
            channel: self.channel.clone(),
            acks: self.acks.clone(),
            listening: self.listening.clone(),
            listened: Arc::default(),
        }
    }
}

#[async_trait]
impl ResponseCache for CoherentCache {
    async fn serve(
        &self,
        policy: &CachePolicy,
        key: CacheKey,
        refresh: bool,
        fetch: BoxFuture<'_, Fetch>,
    ) -> Served {
        self.local.serve(policy, key, refresh, fetch).await
    }

    async fn invalidate_call(&self, provider: &str, call_id: &str, change: Change) {
        self.local.forget_call(provider, call_id);
        let id = uuid::Uuid::new_v4().to_string();
        let message = serde_json::to_string(&Message::Drop {
            id: id.clone(),
            origin: self.origin.clone(),
            provider: provider.to_string(),
            call: call_id.to_string(),
        })
        .unwrap_or_default();
        match change {
            // A changed call: answered once every replica has dropped it, so a read through
            // any replica after this answer sees the change.
            Change::Updated => self.drop_everywhere(message, id).await,
            // A new call is in no cache; other replicas' list pages of its provider learn of it
            // a moment later, without holding up the create's answer.
            Change::Created => {
                tokio::spawn(publish(self.link.clone(), self.channel.clone(), message));
            }
        }
    }

    async fn bytes(&self) -> u64 {
        self.local.bytes().await
    }

    fn max_bytes(&self) -> u64 {
        self.local.max_bytes()
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Publishes one message (bounded like every Redis call): how many subscribers got it.
async fn publish(link: Arc<RedisLink>, channel: String, message: String) -> Option<i64> {
    let (channel, message) = (&channel, &message);
    let published = link
        .exec(Function::Invalidation, |mut c| async move {
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(message)
                .query_async::<i64>(&mut c)
                .await
        })
        .await;
    match published {
        Ok(n) => Some(n),
        Err(e) => {
            link.metrics.fell_back(Function::Invalidation);
            tracing::warn!(error = %e, "a cache invalidation could not be sent to the other replicas; they see the change when their entry expires");
            None
        }
    }
}

/// Applies other replicas' invalidations to this replica's cache.
#[derive(Clone)]
pub struct InvalidationListener {
    local: Arc<MemoryCache>,
    link: Arc<RedisLink>,
    origin: String,
    channel: String,
    acks: Acks,
    /// Subscribed now (shared by the clones: the one running and the one readiness asks).
    listening: Arc<AtomicBool>,
    /// Subscribed at least once since the start.
    listened: Arc<AtomicBool>,
}

impl InvalidationListener {
    /// Whether it is subscribed now, and whether it ever was.
    pub fn listening(&self) -> (bool, bool) {
        (
            self.listening.load(Ordering::Relaxed),
            self.listened.load(Ordering::Relaxed),
        )
    }

    /// Subscribes, then applies messages until the subscription ends. `Ok` after it was up.
    async fn listen(&self, subscribed: &mut bool) -> redis::RedisResult<()> {
        let client = self.link.first_client()?;
        let timeout = self.link.settings().connect_timeout + self.link.settings().command_timeout;
        let mut pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
            })??;
        tokio::time::timeout(timeout, pubsub.subscribe(&self.channel))
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
            })??;
        // Whatever was announced while we were not listening is unknown: start clean.
        self.local.forget_all();
        if !*subscribed {
            tracing::info!("listening for other replicas' cache invalidations");
        }
        *subscribed = true;
        self.listening.store(true, Ordering::Relaxed);
        self.listened.store(true, Ordering::Relaxed);
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Ok(text) = msg.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Message>(&text) {
                Ok(Message::Drop {
                    id,
                    origin,
                    provider,
                    call,
                }) if origin != self.origin => {
                    self.local.forget_call(&provider, &call);
                    let applied =
                        serde_json::to_string(&Message::Applied { id }).unwrap_or_default();
                    tokio::spawn(publish(self.link.clone(), self.channel.clone(), applied));
                }
                Ok(Message::Applied { id }) => {
                    if let Some(tx) = lock(&self.acks).get(&id) {
                        tx.send_modify(|got| *got += 1);
                    }
                }
                Ok(Message::Drop { .. }) => {}
                Err(_) => tracing::debug!("ignored an unreadable invalidation message"),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BackgroundService for InvalidationListener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut pause = Duration::from_millis(50);
        loop {
            let mut subscribed = false;
            let ended = tokio::select! {
                r = self.listen(&mut subscribed) => r,
                _ = shutdown.changed() => return,
            };
            self.listening.store(false, Ordering::Relaxed);
            if subscribed {
                pause = Duration::from_millis(50);
                tracing::warn!("the cache invalidation subscription ended; resubscribing (the local cache is dropped then)");
            } else if let Err(e) = ended {
                tracing::debug!(error = ?e.kind(), "cannot subscribe to cache invalidations yet");
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}
