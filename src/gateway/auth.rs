//! Authentication: `Authorization: Bearer <gateway key>` → the tenant that owns the key.

use crate::canonical::{ErrorCode, Problem};
use crate::config::{Runtime, Tenant};
use std::sync::Arc;

/// The request's `Authorization` header, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'a> {
    Absent,
    Value(&'a [u8]),
    /// More than one `Authorization` header: which one counts would be a guess.
    Repeated,
}

pub fn authenticate(
    rt: &Runtime,
    authorization: Authorization<'_>,
) -> Result<Arc<Tenant>, Problem> {
    let header = match authorization {
        Authorization::Absent => {
            return Err(Problem::new(
                ErrorCode::Unauthorized,
                "send the gateway key as Authorization: Bearer <key>",
            ))
        }
        Authorization::Repeated => {
            return Err(Problem::field(
                ErrorCode::InvalidRequest,
                "Authorization",
                "send the gateway key in one Authorization header, not several",
            ))
        }
        // A value that is not text cannot be a key.
        Authorization::Value(v) => std::str::from_utf8(v).unwrap_or_default(),
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
