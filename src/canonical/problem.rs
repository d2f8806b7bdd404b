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
    InvalidRequest,
    UnsupportedFilter,
    InvalidCursor,
    UnsupportedOperation,
    PayloadTooLarge,
    RateLimited,
    ProviderRateLimited,
    ProviderAuthFailed,
    ProviderError,
    ProviderUnavailable,
    ProviderTimeout,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::InvalidRequest | ErrorCode::UnsupportedFilter | ErrorCode::InvalidCursor => {
                400
            }
            ErrorCode::UnsupportedOperation => 501,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited | ErrorCode::ProviderRateLimited => 429,
            ErrorCode::ProviderAuthFailed | ErrorCode::ProviderError => 502,
            ErrorCode::ProviderUnavailable => 503,
            ErrorCode::ProviderTimeout => 504,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedFilter => "unsupported_filter",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::UnsupportedOperation => "unsupported_operation",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ProviderRateLimited => "provider_rate_limited",
            ErrorCode::ProviderAuthFailed => "provider_auth_failed",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::ProviderTimeout => "provider_timeout",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "Missing or unknown gateway key",
            ErrorCode::Forbidden => "This tenant may not use that provider",
            ErrorCode::NotFound => "Not found",
            ErrorCode::InvalidRequest => "Invalid request",
            ErrorCode::UnsupportedFilter => "Filter not supported by this provider",
            ErrorCode::InvalidCursor => "Invalid cursor",
            ErrorCode::UnsupportedOperation => "Operation not supported by this provider",
            ErrorCode::PayloadTooLarge => "Request body too large",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::ProviderRateLimited => "The provider is rate limiting callgate",
            ErrorCode::ProviderAuthFailed => "The provider refused callgate's credentials",
            ErrorCode::ProviderError => "The provider failed",
            ErrorCode::ProviderUnavailable => "The provider is unavailable",
            ErrorCode::ProviderTimeout => "The provider did not answer in time",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem. `request_id` is filled in by the answer stage, not by whoever raises it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
    pub request_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// `Retry-After` seconds to send as a header (429s); not part of the body.
    #[serde(skip)]
    pub retry_after: Option<String>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Problem {
        Problem {
            type_uri: format!("https://callgate.dev/problems/{}", code.name()),
            title: code.title(),
            status: code.status(),
            detail: detail.into(),
            code,
            provider: None,
            provider_status: None,
            provider_code: None,
            request_id: String::new(),
            errors: Vec::new(),
            retry_after: None,
        }
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

    pub fn with_provider(mut self, provider: &str) -> Problem {
        self.provider = Some(provider.to_string());
        self
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
