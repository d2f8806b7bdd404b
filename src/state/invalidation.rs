//! Cache coherence for a fleet: each replica keeps its own response cache (moka, in memory), and
//! a write that changed a call tells every replica to drop it, over Redis pub/sub.
//!
//! - [`CoherentCache`] serves reads from the local cache; its `invalidate_call` drops the call
//!   here, then publishes `{origin, provider, call}` on `{prefix}:invalidations`. For an update
//!   it waits for Redis to take it (bounded by the command timeout), so the write is answered
//!   after every subscribed replica's socket has the message; a create (a call no cache holds,
//!   only list pages may lack it) publishes without holding up its answer.
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

/// One invalidation as published.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Message {
    /// The replica that published it (it has already dropped the call).
    origin: String,
    provider: String,
    call: String,
}

/// The local cache, kept coherent with the fleet's writes.
pub struct CoherentCache {
    local: Arc<MemoryCache>,
    link: Arc<RedisLink>,
    /// This replica's id in messages.
    origin: String,
    channel: String,
}

impl CoherentCache {
    pub fn new(local: Arc<MemoryCache>, link: Arc<RedisLink>) -> CoherentCache {
        CoherentCache {
            channel: link.key("invalidations"),
            origin: uuid::Uuid::new_v4().to_string(),
            local,
            link,
        }
    }

    /// The background service that applies other replicas' invalidations here.
    pub fn listener(&self) -> InvalidationListener {
        InvalidationListener {
            local: self.local.clone(),
            link: self.link.clone(),
            origin: self.origin.clone(),
            channel: self.channel.clone(),
            listening: Arc::default(),
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
        let message = serde_json::to_string(&Message {
            origin: self.origin.clone(),
            provider: provider.to_string(),
            call: call_id.to_string(),
        })
        .unwrap_or_default();
        let publish = publish(self.link.clone(), self.channel.clone(), message);
        match change {
            // A changed call: answered once every replica's socket has the news, so a read
            // through any replica after this answer sees the change.
            Change::Updated => publish.await,
            // A new call is in no cache; other replicas' list pages of its provider learn of it
            // a moment later, without holding up the create's answer.
            Change::Created => {
                tokio::spawn(publish);
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

/// Publishes one invalidation (bounded like every Redis call).
async fn publish(link: Arc<RedisLink>, channel: String, message: String) {
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
    if let Err(e) = published {
        link.metrics.fell_back(Function::Invalidation);
        tracing::warn!(error = %e, "a write's cache invalidation could not be sent to the other replicas; they see the change when their entry expires");
    }
}

/// Applies other replicas' invalidations to this replica's cache.
#[derive(Clone)]
pub struct InvalidationListener {
    local: Arc<MemoryCache>,
    link: Arc<RedisLink>,
    origin: String,
    channel: String,
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
                Ok(m) if m.origin != self.origin => self.local.forget_call(&m.provider, &m.call),
                Ok(_) => {}
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
