//! Canonical timestamps: RFC 3339, UTC, millisecond precision (`2026-10-05T14:03:07.000Z`).
//! The one place that formats and parses instants, using the `time` crate.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Now, the canonical way.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// Formats an instant the canonical way. An instant whose UTC date would fall past year 9999
/// (e.g. `9999-12-31T23:59:59-01:00`) cannot be written in UTC; it keeps its own offset
/// (RFC 3339) instead of panicking.
pub fn format(instant: OffsetDateTime) -> String {
    format_utc(instant).unwrap_or_else(|| instant.format(&Rfc3339).unwrap_or_default())
}

/// The canonical form, or `None` when the instant is not representable in UTC (where `time`'s
/// `to_offset` would panic). Written digit by digit: `time`'s format-description interpreter was
/// the largest single cost of normalizing a record. Years outside 0000–9999 take `time`'s
/// formatter.
pub fn format_utc(instant: OffsetDateTime) -> Option<String> {
    let t = instant.checked_to_offset(UtcOffset::UTC)?;
    // Each of `month()`/`day()` recomputes the calendar date: ask once.
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second, milli) = t.to_hms_milli();
    if !(0..=9999).contains(&year) {
        let fmt = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        return t.format(fmt).ok();
    }
    // `YYYY-MM-DDTHH:MM:SS.mmmZ`: the separators are fixed, the digits go in their places.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let fields: [(u32, usize, usize); 7] = [
        (year as u32, 0, 4),
        (u8::from(month).into(), 5, 2),
        (day.into(), 8, 2),
        (hour.into(), 11, 2),
        (minute.into(), 14, 2),
        (second.into(), 17, 2),
        (milli.into(), 20, 3),
    ];
    for (mut n, at, width) in fields {
        for digit in out[at..at + width].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    // Only ASCII digits and separators were written.
    std::str::from_utf8(&out).ok().map(str::to_owned)
}

/// Parses an ISO-8601 / RFC 3339 date-time as vendors send them: with `Z` or an offset, with or
/// without fractional seconds, and (tolerantly) without any offset, read as UTC.
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let naive = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T] [ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(s, naive)
        .ok()
        .map(|p| p.assume_utc())
}

/// Parses a calendar date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

/// Formats a calendar date `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    d.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// An instant from epoch milliseconds, if representable.
pub fn from_epoch_millis(ms: i128) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(ms.checked_mul(1_000_000)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        let t = parse_datetime("2025-03-17T16:30:00.1234+02:00").unwrap();
        assert_eq!(format(t), "2025-03-17T14:30:00.123Z");
        assert_eq!(
            format(from_epoch_millis(1703097600000).unwrap()),
            "2023-12-20T18:40:00.000Z"
        );
    }

    #[test]
    fn the_digit_writer_matches_time_s_formatter() {
        let fmt = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let instants = [
            "2025-03-17T16:30:00.1234+02:00",
            "1999-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00Z",
            "0001-01-01T00:00:00.007Z",
            "9999-12-31T22:59:59.5-01:00",
        ]
        .map(|s| parse_datetime(s).unwrap());
        let epochs = [0i128, 1_703_097_600_123, -86_400_001, 253_402_300_799_999]
            .map(|ms| from_epoch_millis(ms).unwrap());
        for t in instants.into_iter().chain(epochs) {
            let by_time = t.to_offset(UtcOffset::UTC).format(fmt).unwrap();
            assert_eq!(format_utc(t), Some(by_time), "{t}");
        }
        let past_9999 = parse_datetime("9999-12-31T23:59:59-01:00").unwrap();
        assert_eq!(format_utc(past_9999), None, "no panic, no canonical form");
    }

    #[test]
    fn the_end_of_time_does_not_panic() {
        let t = parse_datetime("9999-12-31T23:59:59-01:00").unwrap();
        assert_eq!(format(t), "9999-12-31T23:59:59-01:00");
    }

    #[test]
    fn tolerates_missing_offset_and_refuses_garbage() {
        assert_eq!(
            format(parse_datetime("2019-08-24T14:15:22").unwrap()),
            "2019-08-24T14:15:22.000Z"
        );
        assert!(parse_datetime("yesterday").is_none());
        assert!(parse_date("2025-02-30").is_none());
        assert!(from_epoch_millis(i128::MAX).is_none());
    }
}
