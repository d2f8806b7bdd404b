//! Opaque list cursors: base64url of a small JSON document that carries, per provider, where the
//! walk stands (an item offset and the page size it started with) and a fingerprint of the filters
//! it was made for. A list over several providers (merged lists, later) carries several positions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

const VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Provider name.
    #[serde(rename = "n")]
    pub provider: String,
    /// The agent whose calls this position walks, for a vendor that lists per agent (a merged
    /// list fans out over the agents it knows there).
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Index of the first item of the next page, counted in the provider's own list order.
    #[serde(rename = "o")]
    pub offset: u64,
    /// Page size the walk uses; fixed for the whole walk so vendor pages stay aligned.
    #[serde(rename = "s")]
    pub size: u32,
    /// Items of the page at `offset` already given out (a merged page may end inside a
    /// provider's page).
    #[serde(rename = "k", default, skip_serializing_if = "is_zero")]
    pub skip: u32,
    /// The list snapshot the walk reads from (a vendor without paging is fetched once per walk).
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Position {
    /// The start of a walk over `provider` (and `agent`) with pages of `size`.
    pub fn start(provider: &str, agent: Option<&str>, size: u32) -> Position {
        Position {
            provider: provider.to_string(),
            agent: agent.map(str::to_string),
            offset: 0,
            size,
            skip: 0,
            snapshot: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "v")]
    version: u8,
    /// Fingerprint of the filters (see `ListQuery::fingerprint`), hex.
    #[serde(rename = "f")]
    fingerprint: String,
    #[serde(rename = "p")]
    pub positions: Vec<Position>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is not one callgate issued (not base64url JSON of a known version)")]
    Malformed,
    #[error("the cursor was issued for other filters; repeat the first request's filters or start a new walk without a cursor")]
    FiltersChanged,
}

impl Cursor {
    pub fn new(fingerprint: u64, positions: Vec<Position>) -> Cursor {
        Cursor {
            version: VERSION,
            fingerprint: format!("{fingerprint:016x}"),
            positions,
        }
    }

    pub fn encode(&self) -> String {
        // Serializing a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a cursor and checks that it belongs to a request with this filter fingerprint.
    pub fn decode(raw: &str, fingerprint: u64) -> Result<Cursor, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.trim_end_matches('='))
            .map_err(|_| CursorError::Malformed)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
        if cursor.version != VERSION
            || cursor.positions.is_empty()
            || cursor.positions.iter().any(|p| p.size == 0 || p.size > 100)
        {
            return Err(CursorError::Malformed);
        }
        if cursor.fingerprint != format!("{fingerprint:016x}") {
            return Err(CursorError::FiltersChanged);
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(offset: u64) -> Position {
        Position {
            offset,
            ..Position::start("zudu", None, 7)
        }
    }

    #[test]
    fn round_trips_and_is_url_safe() {
        let c = Cursor::new(42, vec![pos(14)]);
        let s = c.encode();
        assert!(s
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_eq!(Cursor::decode(&s, 42).unwrap().positions, vec![pos(14)]);
    }

    #[test]
    fn refuses_other_filters_and_garbage() {
        let s = Cursor::new(42, vec![pos(14)]).encode();
        assert_eq!(Cursor::decode(&s, 43), Err(CursorError::FiltersChanged));
        assert_eq!(
            Cursor::decode("not a cursor!", 42),
            Err(CursorError::Malformed)
        );
        let no_positions = URL_SAFE_NO_PAD.encode(br#"{"v":1,"f":"000000000000002a","p":[]}"#);
        assert_eq!(
            Cursor::decode(&no_positions, 42),
            Err(CursorError::Malformed)
        );
    }
}
