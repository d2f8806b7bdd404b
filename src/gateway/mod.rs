//! The gateway: one canonical request in, one answer out, over the config snapshot the request
//! started with. Pingora-free: [`crate::proxy`] feeds it requests and writes its answers.

pub mod answer;
pub mod auth;
mod calls;
pub mod exchange;
pub mod health;
mod providers;
pub mod route;
mod vendor_pool;
mod writes;

use crate::cache::ResponseCache;
use crate::canonical::{ErrorCode, Problem};
use crate::config::Runtime;
use crate::idempotency::IdempotencyStore;
use crate::metrics::Metrics;
use answer::{Answer, Outcome};
use arc_swap::ArcSwap;
use bytes::Bytes;
use exchange::VendorClient;
use std::sync::Arc;

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi/openapi.json");

/// A client request, as the gateway needs it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub request_id: &'a str,
    /// The client sent `Cache-Control: no-cache`: answer fresh (and refresh the cache).
    pub no_cache: bool,
    /// The request body, when there is one and it is within `server.max_body_bytes`.
    pub body: Option<&'a [u8]>,
    /// The body was over `server.max_body_bytes` (and was not read).
    pub body_too_large: bool,
    pub idempotency_key: Option<&'a str>,
}

pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    client: VendorClient,
    health: health::HealthBoard,
    cache: ResponseCache,
    idempotency: IdempotencyStore,
    metrics: Metrics,
}

impl Gateway {
    pub fn new(runtime: Runtime) -> Gateway {
        let metrics = Metrics::new();
        metrics.config_loaded_now();
        Gateway {
            cache: ResponseCache::new(runtime.settings.cache.max_bytes),
            idempotency: IdempotencyStore::new(
                runtime.settings.idempotency_ttl,
                runtime.settings.idempotency_max_entries,
            ),
            runtime: ArcSwap::from_pointee(runtime),
            client: VendorClient::default(),
            health: health::HealthBoard::default(),
            metrics,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn cache(&self) -> &ResponseCache {
        &self.cache
    }

    /// The current config snapshot.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new, already validated snapshot; requests in flight keep theirs.
    pub fn replace_runtime(&self, rt: Runtime) {
        self.runtime.store(Arc::new(rt));
    }

    pub async fn handle(&self, req: Incoming<'_>) -> Answer {
        let rt = self.runtime();
        let mut outcome = Outcome::default();
        match self.dispatch(&rt, req, &mut outcome).await {
            Ok(answer) => answer,
            Err(problem) => Answer::problem(problem, req.request_id, outcome),
        }
    }

    async fn dispatch(
        &self,
        rt: &Runtime,
        req: Incoming<'_>,
        outcome: &mut Outcome,
    ) -> Result<Answer, Problem> {
        let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        if req.method == "GET" && req.path == "/openapi.json" {
            return Ok(Answer::raw_json(
                Bytes::from_static(OPENAPI.as_bytes()),
                std::mem::take(outcome),
            ));
        }
        if segments.first() != Some(&"v1") {
            return Err(not_found(req));
        }
        if req.body_too_large {
            return Err(Problem::field(
                ErrorCode::PayloadTooLarge,
                "body",
                format!(
                    "the body is over the limit of {} bytes",
                    rt.settings.max_body_bytes
                ),
            ));
        }
        let tenant = auth::authenticate(rt, req.authorization)?;
        outcome.tenant = Some(tenant.name.clone());
        if let Some(limiter) = &tenant.limiter {
            limiter.check(&tenant.name)?;
        }
        let cx = calls::CallCx {
            gateway: self,
            rt,
            tenant: &tenant,
            req,
        };
        match (req.method, &segments[1..]) {
            ("GET", ["providers"]) => {
                outcome.operation = Some(crate::canonical::Operation::ListProviders);
                Ok(providers::list(
                    rt,
                    &tenant,
                    &self.health,
                    std::mem::take(outcome),
                ))
            }
            ("GET", ["calls"]) => cx.list(outcome).await,
            ("GET", ["calls", id]) if !id.is_empty() => cx.get(id, outcome).await,
            ("POST", ["calls"]) => cx.create(outcome).await,
            ("PATCH" | "PUT", ["calls", id]) if !id.is_empty() => cx.update(id, outcome).await,
            _ => Err(not_found(req)),
        }
    }
}

fn not_found(req: Incoming<'_>) -> Problem {
    Problem::new(
        ErrorCode::NotFound,
        format!(
            "{} {} is not a route of callgate (see /openapi.json)",
            req.method, req.path
        ),
    )
}
#[cfg(test)]
mod tests {
    /// Pingora boxes each request's future, copying it whole: the gateway's future must stay
    /// small (it was 24 KB, a third of a cache hit's user-space time in `memmove`, before the
    /// vendor exchange was boxed where it is used).
    #[test]
    fn the_request_future_stays_small() {
        let rt = crate::config::load_offline(std::path::Path::new("config/demo.toml"), &|_| {
            Some("secret".into())
        })
        .expect("demo config");
        let gateway = super::Gateway::new(rt);
        let incoming = super::Incoming {
            method: "GET",
            path: "/v1/calls/x",
            query: None,
            authorization: None,
            request_id: "r",
            no_cache: false,
            body: None,
            body_too_large: false,
            idempotency_key: None,
        };
        let future = gateway.handle(incoming);
        assert!(
            std::mem::size_of_val(&future) <= 8 * 1024,
            "{} bytes",
            std::mem::size_of_val(&future)
        );
    }
}
