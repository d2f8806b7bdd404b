//! Reading a vendor's answer: a usable JSON body, or the canonical problem its failure maps to
//! (DESIGN.md's error table). Vendor bodies are never passed through; at most the vendor's own
//! short message reaches `detail`, with `providerStatus` and `providerCode` beside it.

use super::rules::scalar_text;
use super::Adapter;
use super::Json;
use crate::canonical::problem::ProviderFault;
use crate::canonical::{ErrorCode, Problem};

/// Longest vendor message quoted in a problem's `detail`.
const MAX_QUOTE: usize = 300;

impl Adapter {
    /// Classifies a complete vendor answer; a usable one is read into a tree borrowing `body`.
    pub fn read_answer<'j>(
        &self,
        provider: &str,
        status: u16,
        retry_after: Option<&str>,
        body: &'j [u8],
    ) -> Result<Json<'j>, Problem> {
        let json: Option<Json> = serde_json::from_slice(body).ok();
        self.judge_answer(provider, status, retry_after, json)
    }

    /// Classifies a vendor answer already parsed (`None`: the body is not JSON).
    pub(super) fn judge_answer<'j>(
        &self,
        provider: &str,
        status: u16,
        retry_after: Option<&str>,
        json: Option<Json<'j>>,
    ) -> Result<Json<'j>, Problem> {
        if (200..300).contains(&status) {
            let Some(json) = json else {
                return Err(self.problem(
                    provider,
                    ErrorCode::ProviderError,
                    status,
                    None,
                    "the provider answered with a body that is not JSON",
                ));
            };
            if self
                .errors
                .error_when
                .as_ref()
                .is_some_and(|c| c.holds(&json))
            {
                return Err(self.problem(
                    provider,
                    ErrorCode::ProviderError,
                    status,
                    Some(&json),
                    "the provider answered with an error envelope",
                ));
            }
            return Ok(json);
        }
        let (code, what) = match status {
            401 | 403 => (ErrorCode::ProviderAuthFailed, "the provider refused callgate's credentials; check the provider's credentials in config"),
            404 => (ErrorCode::NotFound, "the provider has no such call or resource"),
            408 => (ErrorCode::ProviderTimeout, "the provider timed out"),
            429 => (ErrorCode::ProviderRateLimited, "the provider is rate limiting callgate"),
            400 | 422 => (ErrorCode::InvalidRequest, "the provider refused the request"),
            500..=599 => (ErrorCode::ProviderError, "the provider failed"),
            _ => (ErrorCode::ProviderError, "the provider answered with an unexpected status"),
        };
        let mut p = self.problem(provider, code, status, json.as_ref(), what);
        if code == ErrorCode::ProviderRateLimited {
            p.retry_after = retry_after.map(str::to_string);
        }
        Err(p)
    }

    fn problem(
        &self,
        provider: &str,
        code: ErrorCode,
        status: u16,
        body: Option<&Json>,
        what: &str,
    ) -> Problem {
        let message = body.and_then(|b| {
            self.errors
                .message
                .iter()
                .find_map(|p| message_text(p.first(b)?))
        });
        let detail = match message {
            Some(m) => format!("{what} (provider {provider:?} said HTTP {status}: {m})"),
            None => format!("{what} (provider {provider:?} said HTTP {status})"),
        };
        let vendor_code = body.and_then(|b| {
            self.errors
                .code
                .iter()
                .find_map(|p| scalar_text(p.first(b)?).map(|s| s.into_owned()))
        });
        let mut p = Problem::new(code, detail);
        p.provider = Some(Box::new(ProviderFault {
            name: provider.to_string(),
            status: Some(status),
            code: vendor_code,
            outcome: None,
        }));
        p
    }
}

/// A vendor message: a string, or an array of strings joined with "; ", shortened.
fn message_text(v: &Json) -> Option<String> {
    let text = match v {
        Json::Str(s) => s.to_string(),
        Json::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        _ => return None,
    };
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(MAX_QUOTE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    })
}
