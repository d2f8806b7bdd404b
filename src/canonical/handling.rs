//! `Prefer: handling=strict|lenient` (RFC 7240 §4.4): what to do with a request field the
//! picked vendor cannot express. `strict` refuses the request, naming the field; `lenient` sends
//! the rest and reports each dropped field as a [`Warning`] in the answer.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Handling {
    Strict,
    Lenient,
}

impl Handling {
    pub fn name(self) -> &'static str {
        match self {
            Handling::Strict => "strict",
            Handling::Lenient => "lenient",
        }
    }

    /// The `handling` preference among `Prefer` header values, as RFC 7240 reads them: a
    /// comma-separated list of `token[=value]` preferences, each with optional `;` parameters;
    /// names are case-insensitive, values may be quoted. The first `handling` wins; one whose
    /// value is neither `strict` nor `lenient` is ignored, as the RFC asks of preferences a
    /// server does not understand.
    pub fn from_prefer<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Handling> {
        for value in values {
            let Ok(text) = std::str::from_utf8(value) else {
                continue;
            };
            for preference in text.split(',') {
                let head = preference.split(';').next().unwrap_or_default();
                let (name, value) = head.split_once('=').unwrap_or((head, ""));
                if !name.trim().eq_ignore_ascii_case("handling") {
                    continue;
                }
                let value = value.trim().trim_matches('"');
                return if value.eq_ignore_ascii_case("strict") {
                    Some(Handling::Strict)
                } else if value.eq_ignore_ascii_case("lenient") {
                    Some(Handling::Lenient)
                } else {
                    None
                };
            }
        }
        None
    }
}

/// A request field that was not sent to the vendor (lenient handling), and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub field: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pref(values: &[&str]) -> Option<Handling> {
        Handling::from_prefer(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn reads_the_handling_preference_as_rfc_7240_writes_it() {
        assert_eq!(pref(&["handling=strict"]), Some(Handling::Strict));
        assert_eq!(pref(&["HANDLING=Lenient"]), Some(Handling::Lenient));
        assert_eq!(
            pref(&["respond-async, wait=10, handling=\"lenient\"; x=1"]),
            Some(Handling::Lenient)
        );
        assert_eq!(
            pref(&["return=minimal", "handling = strict"]),
            Some(Handling::Strict)
        );
        assert_eq!(pref(&["handling=forgiving"]), None);
        assert_eq!(pref(&["return=minimal"]), None);
        assert_eq!(pref(&[]), None);
        // The first handling preference wins.
        assert_eq!(
            pref(&["handling=lenient, handling=strict"]),
            Some(Handling::Lenient)
        );
    }
}
