//! callgate: one canonical call API in front of many voice/chat AI vendors, on Pingora.
//!
//! A request flows one way through rooms named for what they do: [`gateway::endpoint`] →
//! [`gateway::auth`] → rate limit ([`layers::rate_limit`]) → plan everything once
//! ([`gateway::plan`], over [`gateway::route`] and the adapter's planners, [`adapter::plan`]) →
//! idempotency / cache ([`layers`]) → the vendor side ([`gateway::upstream`]: health, retry,
//! [`gateway::exchange`]) → normalize ([`adapter::normalize`]) → answer ([`gateway::answer`]).
//! [`connection`] is where Pingora hands over a client connection: each request's head is read
//! within bounds there and the answer written.
//! The stateful layers' shared (Redis) implementations, for a fleet, are in [`state`].
//! Vendor knowledge lives in `adapters/*.toml`, compiled by [`adapter`]; no vendor is named here.

pub mod adapter;
pub mod admin;
pub mod canonical;
pub mod config;
pub mod connection;
pub mod explain;
pub mod gateway;
pub mod layers;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod reload;
pub mod server;
pub mod state;
pub mod telemetry;
