//! The admin listener: `/healthz` (the process serves), `/readyz` (a config is loaded, the
//! gateway accepts requests, and the shared state store is reachable where it is required —
//! see [`crate::state::StateStatus::readiness`]), `/metrics` (Prometheus text format). Separate from the API port so probes and scrapes never need a key.

use crate::gateway::Gateway;
use crate::state::Readiness;
use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

pub struct AdminApp {
    pub gateway: Arc<Gateway>,
}

fn text(status: u16, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Content-Length", body.len())
        .body(body.as_bytes().to_vec())
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        match session.req_header().uri.path() {
            "/healthz" => text(200, "ok\n"),
            "/readyz" => {
                let rt = self.gateway.runtime();
                let state = self.gateway.state();
                if state.readiness() != Readiness::Ready {
                    state.probe().await;
                }
                match state.readiness() {
                    _ if rt.providers.is_empty() => text(503, "no providers configured\n"),
                    Readiness::NotReady(why) => text(503, &format!("not ready: {why}\n")),
                    Readiness::Degraded(why) => text(200, &format!("ready, degraded: {why}\n")),
                    Readiness::Ready => text(200, "ready\n"),
                }
            }
            "/metrics" => {
                let metrics = self.gateway.metrics();
                metrics.set_cache_bytes(self.gateway.cache().bytes().await);
                let rt = self.gateway.runtime();
                let providers: Vec<&str> = rt.providers.keys().map(String::as_str).collect();
                let circuits = self.gateway.circuits();
                let open: Vec<(&str, _)> = circuits
                    .iter()
                    .filter(|c| c.open)
                    .map(|c| (c.provider.as_str(), c.operation))
                    .collect();
                metrics.set_circuits(&providers, &open);
                let body = metrics.render();
                http::Response::builder()
                    .status(200)
                    .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    .header("Content-Length", body.len())
                    .body(body)
                    .unwrap_or_default()
            }
            _ => text(404, "not found; try /healthz, /readyz or /metrics\n"),
        }
    }
}
