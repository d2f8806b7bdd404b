//! What reads a watched call from its vendor, one per watched call (shared by all its clients):
//! a [`Reader`] reads the call through the vendor side (`get_call`: breaker, bulkhead, retries,
//! health, as for any read) and publishes views; [`poll`] is the whole loop for vendors without a
//! stream (the adapter's `[events] style = "poll"`), [`super::upstream`] the loop for vendors
//! that stream messages.

use super::{Hub, Published, View, Watched};
use crate::canonical::{Call, Operation, Problem};
use crate::config::Provider;
use crate::gateway::plan::GetPlan;
use crate::gateway::read::normalized_call;
use crate::gateway::upstream::{Exchange, VendorSide};
use crate::layers::retry::Resend;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// One watched call's reader: how to read it, and where its views go.
pub(super) struct Reader {
    pub hub: Arc<Hub>,
    pub key: String,
    pub watched: Weak<Watched>,
    pub views: watch::Sender<Option<View>>,
    pub vendor: Arc<VendorSide>,
    pub provider: Arc<Provider>,
    pub plan: GetPlan,
    pub max_body: usize,
    /// `[events] poll_ms`.
    pub fast: Duration,
    /// `[events] poll_quiet_max_ms`.
    pub slowest: Duration,
    /// `[events] stream_status_poll_ms`.
    pub status_poll: Duration,
}

impl Reader {
    /// Someone still watches the call.
    pub fn watched(&self) -> bool {
        self.watched.strong_count() > 0
    }

    /// Resolves when every client's receiver is gone.
    pub async fn abandoned(&self) {
        self.views.closed().await
    }

    /// Whether a first view was published (the opening client has its answer).
    pub fn started(&self) -> bool {
        self.views.borrow().is_some()
    }

    pub fn publish(&self, view: Result<Call, Problem>) {
        let at = tokio::time::Instant::now();
        self.views
            .send_replace(Some(Arc::new(Published { view, at })));
    }

    /// One read of the call, through the vendor side, counted.
    pub async fn read(&self) -> Result<Call, Problem> {
        let request_id = crate::gateway::answer::request_id(None);
        let cx = Exchange {
            request_id: &request_id,
            max_body: self.max_body,
            resend: Resend::Read,
            operation: Operation::GetCall,
            deadline: None,
        };
        let (answer, mut facts) = self
            .vendor
            .exchange(&self.provider, &self.plan.request, cx)
            .await;
        let view = answer.and_then(|a| normalized_call(&self.provider, &self.plan, &a, &mut facts));
        let result = if view.is_ok() { "ok" } else { "error" };
        self.hub
            .metrics
            .reads
            .with_label_values(&[&self.provider.name, result])
            .inc();
        view
    }

    /// The call is no longer read: the next client starts a new reader. Called before a last
    /// view that refuses, so no client arriving meanwhile joins a reader that is over.
    pub fn finish(&self) {
        let mut map = match self.hub.watched.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.get(&self.key).is_some_and(|w| w.ptr_eq(&self.watched)) {
            map.remove(&self.key);
        }
    }
}

/// Reads the call every `fast` while it changes, backing off (doubling, up to `slowest`) while
/// it does not, until it ends or nobody watches it.
pub(super) async fn poll(r: Reader) {
    let mut pause = r.fast;
    let mut last: Option<Call> = None;
    while r.watched() {
        // Boxed: the vendor exchange's future only while a read is under way, not in the
        // poller's task for its whole life (about 9 KiB per watched call).
        let view = Box::pin(r.read()).await;
        let (changed, over) = match &view {
            Ok(call) => (last.as_ref() != Some(call), !call.status.is_live()),
            Err(_) => (false, false),
        };
        if let Ok(call) = &view {
            last = Some(call.clone());
        }
        // A failed read is published only while there is no view yet (the opening client
        // answers it); later failures keep the last view and the poller tries again.
        if view.is_ok() || !r.started() {
            r.publish(view);
        }
        if over {
            break;
        }
        pause = if changed {
            r.fast
        } else {
            (pause * 2).min(r.slowest)
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = r.abandoned() => {}
        }
    }
    r.finish();
}
