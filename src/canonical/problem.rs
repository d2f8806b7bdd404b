//! RFC 9457 problem details: the only shape an error ever takes on the way to a client.
//!
//! Every error path of the gateway ends in a [`Problem`] with one [`ErrorCode`] from DESIGN.md's
//! table. Vendor bodies are never passed through; what a client may learn of a vendor fault is
//! `provider`, `providerStatus` and `providerCode`.

use serde::Serialize;

/// The closed set of error codes; each has one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    InvalidRequest,
    UnsupportedFilter,
    InvalidCursor,
    UnsupportedOperation,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyConflict,
    RateLimited,
    ProviderRateLimited,
    ProviderAuthFailed,
    ProviderError,
    ProviderUnavailable,
    ProviderTimeout,
    StateUnavailable,
    RequestTimeout,
    UriTooLong,
    HeadersTooLarge,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::InvalidRequest,
        ErrorCode::UnsupportedFilter,
        ErrorCode::InvalidCursor,
        ErrorCode::UnsupportedOperation,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::IdempotencyConflict,
        ErrorCode::RateLimited,
        ErrorCode::ProviderRateLimited,
        ErrorCode::ProviderAuthFailed,
        ErrorCode::ProviderError,
        ErrorCode::ProviderUnavailable,
        ErrorCode::ProviderTimeout,
        ErrorCode::StateUnavailable,
        ErrorCode::RequestTimeout,
        ErrorCode::UriTooLong,
        ErrorCode::HeadersTooLarge,
    ];

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::InvalidRequest | ErrorCode::UnsupportedFilter | ErrorCode::InvalidCursor => {
                400
            }
            ErrorCode::UnsupportedOperation => 501,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::IdempotencyConflict => 409,
            ErrorCode::RateLimited | ErrorCode::ProviderRateLimited => 429,
            ErrorCode::ProviderAuthFailed | ErrorCode::ProviderError => 502,
            ErrorCode::ProviderUnavailable | ErrorCode::StateUnavailable => 503,
            ErrorCode::ProviderTimeout => 504,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::UriTooLong => 414,
            ErrorCode::HeadersTooLarge => 431,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedFilter => "unsupported_filter",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::UnsupportedOperation => "unsupported_operation",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ProviderRateLimited => "provider_rate_limited",
            ErrorCode::ProviderAuthFailed => "provider_auth_failed",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::ProviderTimeout => "provider_timeout",
            ErrorCode::StateUnavailable => "state_unavailable",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
        }
    }

    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "Missing or unknown gateway key",
            ErrorCode::Forbidden => "This tenant may not use that provider",
            ErrorCode::NotFound => "Not found",
            ErrorCode::MethodNotAllowed => "Method not allowed on this route",
            ErrorCode::InvalidRequest => "Invalid request",
            ErrorCode::UnsupportedFilter => "Filter not supported by this provider",
            ErrorCode::InvalidCursor => "Invalid cursor",
            ErrorCode::UnsupportedOperation => "Operation not supported by this provider",
            ErrorCode::PayloadTooLarge => "Request body too large",
            ErrorCode::UnsupportedMediaType => "The request body must be JSON",
            ErrorCode::IdempotencyConflict => "Idempotency-Key reused with another request",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::ProviderRateLimited => "The provider is rate limiting callgate",
            ErrorCode::ProviderAuthFailed => "The provider refused callgate's credentials",
            ErrorCode::ProviderError => "The provider failed",
            ErrorCode::ProviderUnavailable => "The provider is unavailable",
            ErrorCode::ProviderTimeout => "The provider did not answer in time",
            ErrorCode::StateUnavailable => "The shared state store is unreachable",
            ErrorCode::RequestTimeout => "The request was not sent in time",
            ErrorCode::UriTooLong => "Request line too long",
            ErrorCode::HeadersTooLarge => "Request headers too large",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// What a problem says about the vendor behind it. Boxed: most problems have none.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderFault {
    pub name: String,
    /// The vendor's HTTP status.
    pub status: Option<u16>,
    /// The vendor's own error code.
    pub code: Option<String>,
    /// For writes: `unknown` when the request may have reached the vendor and no answer says
    /// what happened (the caller must reconcile, not retry blindly).
    pub outcome: Option<&'static str>,
}

/// An RFC 9457 problem. `type`, `title` and `status` follow from the code; `request_id` is filled
/// in by the answer stage, not by whoever raises the problem.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub code: ErrorCode,
    pub detail: String,
    pub request_id: String,
    pub errors: Vec<FieldError>,
    pub provider: Option<Box<ProviderFault>>,
    /// `Retry-After` seconds, sent as a header (429s), not in the body.
    pub retry_after: Option<String>,
    /// The methods a route takes, sent as `Allow` (405s), not in the body.
    pub allow: Option<Allow>,
}

/// The method sets of callgate's routes: the `Allow` header of a 405 (one byte, so a problem
/// stays small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allow {
    Get,
    GetPost,
    GetPatchPut,
}

impl Allow {
    pub fn header(self) -> &'static str {
        match self {
            Allow::Get => "GET",
            Allow::GetPost => "GET, POST",
            Allow::GetPatchPut => "GET, PATCH, PUT",
        }
    }
}

/// The wire form.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    request_id: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pf = self.provider.as_deref();
        Wire {
            type_uri: format!("https://callgate.dev/problems/{}", self.code.name()),
            title: self.code.title(),
            status: self.status(),
            detail: &self.detail,
            code: self.code,
            provider: pf.map(|p| p.name.as_str()),
            provider_status: pf.and_then(|p| p.status),
            provider_code: pf.and_then(|p| p.code.as_deref()),
            outcome: pf.and_then(|p| p.outcome),
            request_id: &self.request_id,
            errors: &self.errors,
        }
        .serialize(s)
    }
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Problem {
        Problem {
            code,
            detail: detail.into(),
            request_id: String::new(),
            errors: Vec::new(),
            provider: None,
            retry_after: None,
            allow: None,
        }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// A problem about one named request field; the field is also listed in `errors[]`.
    pub fn field(code: ErrorCode, field: &str, message: impl Into<String>) -> Problem {
        let message = message.into();
        let mut p = Problem::new(code, format!("{field}: {message}"));
        p.errors.push(FieldError {
            field: field.to_string(),
            message,
        });
        p
    }

    /// `invalid_request` listing several field mistakes at once.
    pub fn invalid(errors: Vec<FieldError>) -> Problem {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut p = Problem::new(ErrorCode::InvalidRequest, detail);
        p.errors = errors;
        p
    }

    pub fn with_provider(mut self, provider: &str) -> Problem {
        self.provider = Some(Box::new(ProviderFault {
            name: provider.to_string(),
            status: None,
            code: None,
            outcome: None,
        }));
        self
    }

    /// Marks a write whose fate at the vendor is not known.
    pub fn outcome_unknown(mut self) -> Problem {
        if let Some(pf) = self
            .provider
            .as_deref_mut()
            .filter(|pf| pf.outcome.is_none())
        {
            pf.outcome = Some("unknown");
            self.detail.push_str(
                "; the call may or may not have been placed: look it up before trying again",
            );
        }
        self
    }

    /// The provider named in this problem, if any.
    pub fn provider_name(&self) -> Option<&str> {
        self.provider.as_deref().map(|p| p.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_problem_names_the_field_and_serializes_per_rfc9457() {
        let mut p = Problem::field(ErrorCode::InvalidRequest, "limit", "must be 1 to 100");
        p.request_id = "r1".into();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["status"], 400);
        assert_eq!(v["code"], "invalid_request");
        assert_eq!(v["errors"][0]["field"], "limit");
        assert_eq!(v["requestId"], "r1");
        assert!(v["type"].as_str().unwrap().ends_with("/invalid_request"));
        assert!(
            v.get("provider").is_none(),
            "absent optional members are omitted"
        );
    }
}
