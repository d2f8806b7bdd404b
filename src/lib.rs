//! callgate: one canonical call API in front of many voice/chat AI vendors, on Pingora.
//!
//! A request flows one way through rooms named for what they do:
//! [`gateway::auth`] → [`limits`] → [`gateway::route`] → plan the vendor request ([`adapter::plan`]) →
//! exchange with the vendor ([`gateway::exchange`]) → normalize ([`adapter::normalize`]) →
//! answer ([`gateway::answer`]). [`proxy`] is the only module that knows Pingora's proxy hooks.
//! Vendor knowledge lives in `adapters/*.toml`, compiled by [`adapter`]; no vendor is named here.

pub mod adapter;
pub mod admin;
pub mod cache;
pub mod canonical;
pub mod config;
pub mod explain;
pub mod gateway;
pub mod idempotency;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod server;
