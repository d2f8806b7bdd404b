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

/// The range a vendor's `Retry-After` is clamped to, in seconds: a vendor asking for 0 or for a
/// day is passed on as something a client can act on.
const RETRY_AFTER_RANGE: std::ops::RangeInclusive<u64> = 1..=3600;

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
            p.retry_after = retry_after.and_then(clamp_retry_after);
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
    let text = redact_tokens(text.trim());
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(MAX_QUOTE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

/// A vendor message with every word that looks like a credential (16 or more characters of a
/// token alphabet, with letters and digits, not a UUID) replaced by `[redacted]`: a vendor may
/// echo the key it refused.
fn redact_tokens(text: &str) -> String {
    let separator = |c: char| c.is_whitespace() || "\"',;:()[]{}<>".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_like_secret(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if separator(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn looks_like_secret(word: &str) -> bool {
    let token = word.len() >= 16
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+/=~".contains(c));
    let mixed =
        word.chars().any(|c| c.is_ascii_digit()) && word.chars().any(|c| c.is_ascii_alphabetic());
    token && mixed && uuid::Uuid::try_parse(word).is_err()
}

/// A vendor's `Retry-After` (seconds or an HTTP date) as whole seconds within
/// [`RETRY_AFTER_RANGE`]; `None` when it is neither.
fn clamp_retry_after(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let seconds = match raw.parse::<u64>() {
        Ok(s) => s,
        Err(_) => {
            let at = httpdate::parse_http_date(raw).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .map_or(0, |d| d.as_secs())
        }
    };
    let (lo, hi) = (*RETRY_AFTER_RANGE.start(), *RETRY_AFTER_RANGE.end());
    Some(seconds.clamp(lo, hi).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_echoed_by_a_vendor_are_redacted() {
        let said = redact_tokens(
            "invalid api key 'zk_live_8f3a9c2e71b04d5f' for account 42; call 123e4567-e89b-12d3-a456-426614174000 (Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc123)",
        );
        assert!(!said.contains("zk_live_8f3a9c2e71b04d5f"), "{said}");
        assert!(!said.contains("eyJhbGciOiJIUzI1NiJ9"), "{said}");
        assert!(
            said.contains("invalid api key '[redacted]' for account 42"),
            "{said}"
        );
        assert!(
            said.contains("123e4567-e89b-12d3-a456-426614174000"),
            "ids stay: {said}"
        );
        assert_eq!(redact_tokens("agent not found"), "agent not found");
    }

    #[test]
    fn retry_after_is_clamped_to_a_sane_range() {
        assert_eq!(clamp_retry_after("30").as_deref(), Some("30"));
        assert_eq!(clamp_retry_after("0").as_deref(), Some("1"));
        assert_eq!(clamp_retry_after("86400").as_deref(), Some("3600"));
        assert_eq!(clamp_retry_after("soon"), None);
        // A date in the past: retry now (1 s); far in the future: the upper bound.
        assert_eq!(
            clamp_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").as_deref(),
            Some("1")
        );
        assert_eq!(
            clamp_retry_after("Fri, 01 Jan 2100 00:00:00 GMT").as_deref(),
            Some("3600")
        );
    }
}
