//! Authentication: `Authorization: Bearer <gateway key>` → the tenant that owns the key.

use crate::canonical::{ErrorCode, Problem};
use crate::config::{Runtime, Tenant};
use std::sync::Arc;

pub fn authenticate(rt: &Runtime, authorization: Option<&str>) -> Result<Arc<Tenant>, Problem> {
    let Some(header) = authorization else {
        return Err(Problem::new(
            ErrorCode::Unauthorized,
            "send the gateway key as Authorization: Bearer <key>",
        ));
    };
    let key = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() {
        return Err(Problem::new(
            ErrorCode::Unauthorized,
            "the Authorization header must be Bearer <gateway key>",
        ));
    }
    rt.tenant_for_key(key)
        .cloned()
        .ok_or_else(|| Problem::new(ErrorCode::Unauthorized, "unknown gateway key"))
}
