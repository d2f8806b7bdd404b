//! Building blocks of the seeded data sets: the fixed reference instant, fake but realistic
//! names, fiction-range phone numbers, example.com emails, transcripts, ids and time formatting.
//! Everything here is driven by a caller-supplied `fastrand::Rng`, never by the wall clock.

use fastrand::Rng;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The fixed "now" of every data set: 2026-11-01T00:00:00Z (Unix seconds). Records are spread
/// over the 30 days before it; calls created at run time get `REFERENCE_UNIX + n` seconds.
pub const REFERENCE_UNIX: i64 = 1_793_491_200;

/// Thirty days in seconds.
pub const SPREAD_SECS: i64 = 30 * 86_400;

/// A random creation instant within the 30 days before the reference instant.
pub fn created_in_window(rng: &mut Rng) -> i64 {
    REFERENCE_UNIX - rng.i64(60..SPREAD_SECS)
}

/// RFC 3339 UTC with a `Z`, second precision (`2026-10-05T12:34:56Z`).
pub fn iso(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// A UUID (v4 layout) from the seeded generator.
pub fn uuid(rng: &mut Rng) -> String {
    let mut bytes = [0u8; 16];
    for b in bytes.iter_mut() {
        *b = rng.u8(..);
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `n` lowercase hex digits.
pub fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
        .collect()
}

/// `n` lowercase letters and digits.
pub fn alnum(rng: &mut Rng, n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| CHARS[rng.usize(..CHARS.len())] as char)
        .collect()
}

/// Pick one element.
pub fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// True with probability `percent`/100.
pub fn chance(rng: &mut Rng, percent: u32) -> bool {
    rng.u32(0..100) < percent
}

/// An E.164 number in a fiction range: `+1555…` or the UK drama range `+447700900…`.
pub fn phone(rng: &mut Rng) -> String {
    if chance(rng, 75) {
        format!("+1555{:07}", rng.u32(0..10_000_000))
    } else {
        format!("+447700900{:03}", rng.u32(0..1000))
    }
}

const FIRST: &[&str] = &[
    "Ada", "Bola", "Chen", "Dara", "Emeka", "Farah", "Gus", "Hana", "Ines", "Jonas", "Kemi",
    "Luca", "Mira", "Noor", "Oskar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vera",
    "Wole", "Yara", "Zane",
];
const LAST: &[&str] = &[
    "Adeyemi",
    "Brandt",
    "Castillo",
    "Dubois",
    "Eze",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ibsen",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quist",
    "Rossi",
    "Silva",
    "Tanaka",
];

/// A fake person: (first, last).
pub fn person(rng: &mut Rng) -> (String, String) {
    (pick(rng, FIRST).to_string(), pick(rng, LAST).to_string())
}

/// `first.last@example.com`, lower case.
pub fn email(first: &str, last: &str) -> String {
    format!(
        "{}.{}@example.com",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase()
    )
}

const AGENT_LINES: &[&str] = &[
    "Hello, thanks for calling. How can I help you today?",
    "I can see your order here; it left our warehouse yesterday.",
    "Let me check the delivery date for you.",
    "I have rescheduled the appointment to Thursday at ten.",
    "Is there anything else I can help you with?",
    "I'm sorry about the delay; I have applied a refund to your card.",
    "Your reference number is on its way by text message.",
    "I'll transfer you to a colleague who can help with billing.",
];
const CUSTOMER_LINES: &[&str] = &[
    "Hi, I'm calling about my recent order.",
    "When will it arrive?",
    "I'd like to change my appointment, please.",
    "The invoice looks wrong to me.",
    "That's great, thank you.",
    "No, that's all. Bye!",
    "Can you send me a confirmation?",
    "I never received the parcel.",
];

/// A short alternating conversation: (speaker is agent, line), 2–6 turns.
pub fn conversation(rng: &mut Rng) -> Vec<(bool, String)> {
    let turns = rng.usize(2..7);
    (0..turns)
        .map(|i| {
            let agent = i % 2 == 0;
            let line = if agent {
                pick(rng, AGENT_LINES)
            } else {
                pick(rng, CUSTOMER_LINES)
            };
            (agent, line.to_string())
        })
        .collect()
}

/// A conversation flattened to one transcript string.
pub fn transcript_text(turns: &[(bool, String)], agent: &str, user: &str) -> String {
    turns
        .iter()
        .map(|(is_agent, line)| format!("{}: {}", if *is_agent { agent } else { user }, line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parse a strict `YYYY-MM-DD` date into the Unix second of its midnight UTC.
pub fn parse_day(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, &fmt).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_instant_is_2026_11_01() {
        assert_eq!(iso(REFERENCE_UNIX), "2026-11-01T00:00:00Z");
        assert_eq!(parse_day("2026-11-01"), Some(REFERENCE_UNIX));
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("yesterday"), None);
    }

    #[test]
    fn ids_are_deterministic() {
        let a = uuid(&mut Rng::with_seed(7));
        let b = uuid(&mut Rng::with_seed(7));
        assert_eq!(a, b);
        assert_eq!(a.len(), 36);
    }
}
