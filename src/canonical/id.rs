//! Canonical call ids: `"<provider>:<part>[:<part>…]"`, each component percent-encoded, so an id
//! is reversible to the provider and the vendor's own keys without any database.
//!
//! Most vendors need one part (the vendor call id); a vendor whose calls live under an agent
//! (declared in its adapter's `id.parts`) needs two.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but unreserved characters is encoded, so `:` never appears inside a component.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The bytes [`COMPONENT`] leaves as they are (RFC 3986 unreserved).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Appends one percent-encoded component. Vendor ids are almost always unreserved already
/// (UUIDs, `call_…`); checking that first is several times cheaper than the general encoder.
fn push_component(out: &mut String, component: &str) {
    if component.bytes().all(is_unreserved) {
        out.push_str(component);
    } else {
        out.extend(utf8_percent_encode(component, COMPONENT));
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallId {
    pub provider: String,
    pub parts: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallIdError {
    #[error("a call id looks like \"<provider>:<call id>\"; this one has no ':'")]
    NoSeparator,
    #[error("a call id component is empty")]
    EmptyComponent,
    #[error("a call id component is not valid percent-encoded UTF-8")]
    BadEncoding,
}

impl CallId {
    pub fn encode(provider: &str, parts: &[&str]) -> String {
        let len = provider.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut out = String::with_capacity(len);
        push_component(&mut out, provider);
        for part in parts {
            out.push(':');
            push_component(&mut out, part);
        }
        out
    }

    pub fn parse(raw: &str) -> Result<CallId, CallIdError> {
        let mut pieces = raw.split(':');
        let provider = decode(pieces.next().unwrap_or_default())?;
        let parts = pieces.map(decode).collect::<Result<Vec<_>, _>>()?;
        if parts.is_empty() {
            return Err(CallIdError::NoSeparator);
        }
        Ok(CallId { provider, parts })
    }
}

impl CallId {
    /// Parses an id as it appears in a URL path: as written, or — for a client that
    /// percent-encoded the whole id (`zudu%3Acall-1`) — decoded once first.
    pub fn parse_path_segment(raw: &str) -> Result<CallId, CallIdError> {
        match CallId::parse(raw) {
            Err(CallIdError::NoSeparator) if raw.contains('%') => {
                let decoded = percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| CallIdError::BadEncoding)?;
                CallId::parse(&decoded)
            }
            other => other,
        }
    }
}

fn decode(component: &str) -> Result<String, CallIdError> {
    if component.is_empty() {
        return Err(CallIdError::EmptyComponent);
    }
    percent_decode_str(component)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| CallIdError::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_and_the_encoder_agree_on_every_byte() {
        for b in 0u8..=127 {
            let one = char::from(b).to_string();
            let encoded: String = utf8_percent_encode(&one, COMPONENT).collect();
            assert_eq!(is_unreserved(b), encoded == one, "byte {b:#04x}");
        }
    }

    #[test]
    fn round_trips_components_with_separators_and_unicode() {
        let id = CallId::encode("bimpe-eu", &["agt:1/2", "call 7%é"]);
        assert_eq!(id.matches(':').count(), 2);
        let back = CallId::parse(&id).unwrap();
        assert_eq!(back.provider, "bimpe-eu");
        assert_eq!(back.parts, vec!["agt:1/2", "call 7%é"]);
    }

    #[test]
    fn refuses_ids_without_parts_or_with_empty_parts() {
        assert_eq!(CallId::parse("zudu"), Err(CallIdError::NoSeparator));
        assert_eq!(CallId::parse("zudu:"), Err(CallIdError::EmptyComponent));
        assert_eq!(CallId::parse(":x"), Err(CallIdError::EmptyComponent));
        assert_eq!(CallId::parse("zudu:%FF"), Err(CallIdError::BadEncoding));
    }
}
