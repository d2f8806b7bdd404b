//! The dispatch table: which canonical endpoint a method and path name. The gateway and
//! `callgate explain` both read requests through [`Endpoint::parse`].

use crate::canonical::problem::Allow;
use crate::canonical::{ErrorCode, Operation, Problem};

/// A route of callgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `GET /openapi.json`.
    OpenApi,
    /// `GET /v1/providers`.
    Providers,
    /// `GET /v1/agents`.
    Agents,
    /// An operation on calls, answered through a vendor.
    Call(CallOp<'a>),
}

/// An operation on calls; ids as they appear in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOp<'a> {
    List,
    Get(&'a str),
    Create,
    Update(&'a str),
    /// `GET /v1/calls/{id}/events`.
    Watch(&'a str),
}

impl CallOp<'_> {
    pub fn operation(self) -> Operation {
        match self {
            CallOp::List => Operation::ListCalls,
            CallOp::Get(_) => Operation::GetCall,
            CallOp::Create => Operation::CreateCall,
            CallOp::Update(_) => Operation::UpdateCall,
            CallOp::Watch(_) => Operation::WatchCall,
        }
    }
}

impl<'a> Endpoint<'a> {
    /// The endpoint `method` (upper case) and `path` name, or `404 not_found`.
    pub fn parse(method: &str, path: &'a str) -> Result<Endpoint<'a>, Problem> {
        if method == "GET" && path == "/openapi.json" {
            return Ok(Endpoint::OpenApi);
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let op = match (method, segments.as_slice()) {
            ("GET", ["v1", "providers"]) => return Ok(Endpoint::Providers),
            ("GET", ["v1", "agents"]) => return Ok(Endpoint::Agents),
            ("GET", ["v1", "calls"]) => CallOp::List,
            ("GET", ["v1", "calls", id]) if !id.is_empty() => CallOp::Get(id),
            ("POST", ["v1", "calls"]) => CallOp::Create,
            ("PATCH" | "PUT", ["v1", "calls", id]) if !id.is_empty() => CallOp::Update(id),
            ("GET", ["v1", "calls", id, "events"]) if !id.is_empty() => CallOp::Watch(id),
            (_, ["v1", "calls", id, "events"]) if !id.is_empty() => {
                return Err(not_allowed(method, path, Allow::Get))
            }
            (_, ["v1", "providers" | "agents"]) => {
                return Err(not_allowed(method, path, Allow::Get))
            }
            (_, ["v1", "calls"]) => return Err(not_allowed(method, path, Allow::GetPost)),
            (_, ["v1", "calls", id]) if !id.is_empty() => {
                return Err(not_allowed(method, path, Allow::GetPatchPut))
            }
            _ if path == "/openapi.json" => return Err(not_allowed(method, path, Allow::Get)),
            _ => return Err(not_found(method, path)),
        };
        Ok(Endpoint::Call(op))
    }

    /// A path under `/v1`: refusing it waits for authentication (an unknown route there is
    /// answered only to a client with a key).
    pub fn is_api_path(path: &str) -> bool {
        path.trim_start_matches('/').split('/').next() == Some("v1")
    }
}

/// A route that exists, asked with a method it does not take: 405 with `Allow`.
fn not_allowed(method: &str, path: &str, allow: Allow) -> Problem {
    let mut p = Problem::new(
        ErrorCode::MethodNotAllowed,
        format!("{path} takes {}, not {method}", allow.header()),
    );
    p.allow = Some(allow);
    p
}

fn not_found(method: &str, path: &str) -> Problem {
    Problem::new(
        ErrorCode::NotFound,
        format!("{method} {path} is not a route of callgate (see /openapi.json)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_refusals() {
        assert_eq!(
            Endpoint::parse("GET", "/openapi.json"),
            Ok(Endpoint::OpenApi)
        );
        assert_eq!(
            Endpoint::parse("GET", "/v1/providers"),
            Ok(Endpoint::Providers)
        );
        assert_eq!(Endpoint::parse("GET", "/v1/agents"), Ok(Endpoint::Agents));
        assert_eq!(
            Endpoint::parse("PUT", "/v1/calls/zudu:1"),
            Ok(Endpoint::Call(CallOp::Update("zudu:1")))
        );
        assert_eq!(
            Endpoint::parse("GET", "/v1/calls"),
            Ok(Endpoint::Call(CallOp::List))
        );
        for (method, path) in [("GET", "/v1/calls/"), ("GET", "/v2/calls")] {
            let p = Endpoint::parse(method, path).unwrap_err();
            assert_eq!(p.code, ErrorCode::NotFound, "{method} {path}");
        }
        for (method, path, allow) in [
            ("DELETE", "/v1/calls/zudu:1", "GET, PATCH, PUT"),
            ("HEAD", "/v1/calls", "GET, POST"),
            ("TRACE", "/v1/agents", "GET"),
            ("POST", "/v1/providers", "GET"),
            ("PUT", "/openapi.json", "GET"),
        ] {
            let p = Endpoint::parse(method, path).unwrap_err();
            assert_eq!(p.code, ErrorCode::MethodNotAllowed, "{method} {path}");
            assert_eq!(p.allow.map(Allow::header), Some(allow));
        }
        assert!(Endpoint::is_api_path("/v1/nope"));
        assert!(!Endpoint::is_api_path("/v2/calls"));
    }
}
