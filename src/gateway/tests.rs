//! The gateway without a network: requests that never reach a vendor.

use super::auth::Authorization;
use super::{Gateway, Incoming};
use crate::config::Runtime;
use std::path::Path;

/// A config with one provider and a tenant limited to `per_second`, burst `burst`.
fn limited(per_second: u32, burst: u32) -> Runtime {
    let text = format!(
        "[providers.z]\nvendor = \"zudu\"\nbase_url = \"http://127.0.0.1:9\"\n\
         credentials = {{ api_key = {{ env = \"K\" }}, api_secret = {{ env = \"S\" }} }}\n\
         [tenants.t]\nkeys = [{{ env = \"KEY\" }}]\nproviders = [\"z\"]\ndefault = \"z\"\n\
         rate_limit = {{ per_second = {per_second}, burst = {burst} }}\n"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::config::load_str(&text, "test.toml", root, &|_| Some("a-secret".into()))
        .unwrap_or_else(|e| panic!("config: {e:?}"))
}

fn providers() -> Incoming<'static> {
    Incoming {
        method: "GET",
        path: "/v1/providers",
        query: None,
        authorization: Authorization::Value(b"Bearer a-secret"),
        request_id: "r",
        no_cache: false,
        body: super::Body::None,
        content_type: None,
        idempotency_key: None,
        prefer: None,
        timeout: None,
        last_event_id: None,
    }
}

#[tokio::test]
async fn a_reload_that_keeps_a_limit_keeps_its_bucket() {
    let gateway = Gateway::new(limited(1, 2));
    for _ in 0..2 {
        assert_eq!(gateway.handle(providers()).await.status, 200);
    }
    let over = gateway.handle(providers()).await;
    assert_eq!(
        (over.status, over.outcome.tenant.as_deref()),
        (429, Some("t"))
    );
    // The same limit after a reload: the spent bucket stays spent.
    gateway.replace_runtime(limited(1, 2));
    assert_eq!(gateway.handle(providers()).await.status, 429);
    // Another limit starts a new bucket.
    gateway.replace_runtime(limited(1, 5));
    assert_eq!(gateway.handle(providers()).await.status, 200);
}

#[tokio::test]
async fn the_record_is_assembled_from_what_each_stage_saw() {
    let gateway = Gateway::new(limited(100, 100));
    let a = gateway.handle(providers()).await;
    assert_eq!(a.outcome.tenant.as_deref(), Some("t"));
    assert_eq!(
        a.outcome.operation,
        Some(crate::canonical::Operation::ListProviders)
    );
    assert_eq!((a.outcome.code, a.outcome.cache.is_none()), (None, true));
    // Refused while planning, after routing: the provider is in the record, not in the body.
    let bad_id = Incoming {
        path: "/v1/calls/z:a:b",
        ..providers()
    };
    let a = gateway.handle(bad_id).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.outcome.provider.as_deref(), Some("z"));
    assert_eq!(a.code, Some(crate::canonical::ErrorCode::InvalidRequest));
    // Refused before a key is looked at: no tenant.
    let a = gateway
        .handle(Incoming {
            path: "/elsewhere",
            authorization: Authorization::Absent,
            ..providers()
        })
        .await;
    assert_eq!((a.status, a.outcome.tenant.as_deref()), (404, None));
}

/// Pingora boxes each request's future, copying it whole: the gateway's future must stay
/// small (it was 24 KB, a third of a cache hit's user-space time in `memmove`, before the
/// vendor exchange was boxed where it is used).
#[test]
fn the_request_future_stays_small() {
    let rt = crate::config::load_offline(Path::new("config/demo.toml"), &|_| Some("secret".into()))
        .expect("demo config");
    let gateway = Gateway::new(rt);
    let incoming = Incoming {
        path: "/v1/calls/x",
        authorization: Authorization::Absent,
        ..providers()
    };
    let future = gateway.handle(incoming);
    assert!(
        std::mem::size_of_val(&future) <= 8 * 1024,
        "{} bytes",
        std::mem::size_of_val(&future)
    );
}
