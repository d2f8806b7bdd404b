//! The parsed query of `GET /v1/calls` (and `include` of `GET /v1/calls/{id}`).
//!
//! Parsing is strict: an unknown or repeated parameter, or a value out of range, is an
//! `invalid_request` naming the parameter, and all mistakes of one request are reported at once.

use super::problem::{FieldError, Problem};
use super::timestamp;
use super::{CallStatus, Channel, Direction};
use std::hash::Hasher;
use time::{Duration, OffsetDateTime, Time};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// The canonical list filters, by the names clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterName {
    AgentId,
    Status,
    Channel,
    Direction,
    From,
    To,
}

impl FilterName {
    pub const ALL: [FilterName; 6] = [
        FilterName::AgentId,
        FilterName::Status,
        FilterName::Channel,
        FilterName::Direction,
        FilterName::From,
        FilterName::To,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FilterName::AgentId => "agentId",
            FilterName::Status => "status",
            FilterName::Channel => "channel",
            FilterName::Direction => "direction",
            FilterName::From => "from",
            FilterName::To => "to",
        }
    }

    pub fn parse(s: &str) -> Option<FilterName> {
        FilterName::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// A `from`/`to` bound: what the client wrote and the instant it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeBound {
    pub raw: String,
    /// For `from`: the first included instant. For `to`: the first excluded instant (a date means
    /// the whole day is included).
    pub instant: OffsetDateTime,
    /// The client gave a calendar date, not a date-time.
    pub date_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub agent_id: Option<String>,
    pub status: Vec<CallStatus>,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub from: Option<TimeBound>,
    pub to: Option<TimeBound>,
}

impl Filters {
    /// The filters this request sets, in a fixed order.
    pub fn present(&self) -> Vec<FilterName> {
        let mut out = Vec::new();
        if self.agent_id.is_some() {
            out.push(FilterName::AgentId);
        }
        if !self.status.is_empty() {
            out.push(FilterName::Status);
        }
        if self.channel.is_some() {
            out.push(FilterName::Channel);
        }
        if self.direction.is_some() {
            out.push(FilterName::Direction);
        }
        if self.from.is_some() {
            out.push(FilterName::From);
        }
        if self.to.is_some() {
            out.push(FilterName::To);
        }
        out
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `provider=a,b`: the providers to list (none: every provider the tenant may use).
    pub providers: Vec<String>,
    /// `agent=NAME`: a canonical agent; each provider is filtered by its id there.
    pub agent: Option<String>,
    pub filters: Filters,
    /// `None`: the client gave no limit.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub include_raw: bool,
}

impl ListQuery {
    /// Parses a raw (still percent-encoded) query string.
    pub fn parse(query: Option<&str>) -> Result<ListQuery, Problem> {
        let mut q = ListQuery::default();
        let mut errors: Vec<FieldError> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut err = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_string(),
                message,
            })
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if seen.iter().any(|k| *k == key) {
                err(
                    &key,
                    "given more than once; use a comma list for several statuses".into(),
                );
                continue;
            }
            seen.push(key.to_string());
            let value = value.trim();
            match &*key {
                "provider" => {
                    for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        if !q.providers.iter().any(|x| x == p) {
                            q.providers.push(p.to_string());
                        }
                    }
                    q.providers.sort();
                }
                "agent" => q.agent = non_empty(value),
                "agentId" => q.filters.agent_id = non_empty(value),
                "status" => {
                    for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        match CallStatus::parse(s) {
                            Some(st) if !q.filters.status.contains(&st) => {
                                q.filters.status.push(st)
                            }
                            Some(_) => {}
                            None => err(
                                "status",
                                format!(
                                    "unknown status {s:?}; one of {}",
                                    names(CallStatus::ALL.iter().map(|s| s.name()))
                                ),
                            ),
                        }
                    }
                    q.filters.status.sort_by_key(|s| s.name());
                }
                "channel" => match Channel::parse(value) {
                    Some(c) => q.filters.channel = Some(c),
                    None => err(
                        "channel",
                        format!(
                            "unknown channel {value:?}; one of {}",
                            names(Channel::ALL.iter().map(|c| c.name()))
                        ),
                    ),
                },
                "direction" => match Direction::parse(value) {
                    Some(d) => q.filters.direction = Some(d),
                    None => err("direction", "must be inbound or outbound".into()),
                },
                "from" => match parse_bound(value, false) {
                    Some(b) => q.filters.from = Some(b),
                    None => err(
                        "from",
                        "must be an RFC 3339 date-time or a date YYYY-MM-DD".into(),
                    ),
                },
                "to" => match parse_bound(value, true) {
                    Some(b) => q.filters.to = Some(b),
                    None => err(
                        "to",
                        "must be an RFC 3339 date-time or a date YYYY-MM-DD".into(),
                    ),
                },
                "limit" => match value.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => q.limit = Some(n),
                    _ => err("limit", format!("must be an integer from 1 to {MAX_LIMIT}")),
                },
                "cursor" => q.cursor = non_empty(value),
                "include" => match value {
                    "raw" => q.include_raw = true,
                    "" => {}
                    _ => err("include", "the only value is \"raw\"".into()),
                },
                other => err(other, "unknown query parameter".into()),
            }
        }
        if let (Some(from), Some(to)) = (&q.filters.from, &q.filters.to) {
            if from.instant >= to.instant {
                err("to", "must be after from".into());
            }
        }
        if q.agent.is_some() && q.filters.agent_id.is_some() {
            err(
                "agentId",
                "give agent (a canonical agent) or agentId (a vendor's agent id), not both".into(),
            );
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(Problem::invalid(errors))
        }
    }

    /// The filters in one canonical spelling (sorted statuses, instants in UTC), without the
    /// provider: two spellings of one request give the same string, different requests do not.
    pub fn canonical_filters(&self) -> String {
        let f = &self.filters;
        let statuses: Vec<&str> = f.status.iter().map(|s| s.name()).collect();
        let instant = |b: &Option<TimeBound>| {
            b.as_ref()
                .map(|b| timestamp::format(b.instant))
                .unwrap_or_default()
        };
        format!(
            "agentId={}|status={}|channel={}|direction={}|from={}|to={}",
            f.agent_id.as_deref().unwrap_or(""),
            statuses.join(","),
            f.channel.map(|c| c.name()).unwrap_or(""),
            f.direction.map(|d| d.name()).unwrap_or(""),
            instant(&f.from),
            instant(&f.to),
        )
    }

    /// A stable fingerprint of the filters that select *which* calls a walk returns, in their
    /// canonical spelling ([`ListQuery::canonical_filters`]); a cursor carries it so it cannot
    /// be replayed with other filters. Two requests that normalize to one cached page have one
    /// fingerprint, so the page's next cursor continues either walk. The provider is not in it:
    /// the cursor names its provider, and a `provider` given with a cursor must be that one.
    pub fn fingerprint(&self) -> u64 {
        let canonical = self.canonical_filters();
        let mut h = fnv::FnvHasher::default();
        h.write(canonical.as_bytes());
        h.finish()
    }

    /// The fingerprint of a merged walk: the filters, the providers asked for and the canonical
    /// agent (a merged cursor's positions are only meaningful for that selection).
    pub fn merged_fingerprint(&self) -> u64 {
        let mut h = fnv::FnvHasher::default();
        h.write(self.canonical_filters().as_bytes());
        h.write(b"|providers=");
        h.write(self.providers.join(",").as_bytes());
        h.write(b"|agent=");
        h.write(self.agent.as_deref().unwrap_or("").as_bytes());
        h.finish()
    }
}

/// Parses the query of `GET /v1/calls/{id}`: only `include` is allowed.
pub fn parse_include(query: Option<&str>) -> Result<bool, Problem> {
    let mut include_raw = false;
    let mut errors = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (&*key, &*value) {
            ("include", "raw") => include_raw = true,
            ("include", _) => errors.push(FieldError {
                field: "include".into(),
                message: "the only value is \"raw\"".into(),
            }),
            (other, _) => errors.push(FieldError {
                field: other.into(),
                message: "unknown query parameter".into(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(include_raw)
    } else {
        Err(Problem::invalid(errors))
    }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

fn parse_bound(raw: &str, is_upper: bool) -> Option<TimeBound> {
    if let Some(date) = timestamp::parse_date(raw) {
        let start = date.with_time(Time::MIDNIGHT).assume_utc();
        let instant = if is_upper {
            start.checked_add(Duration::DAY)?
        } else {
            start
        };
        return Some(TimeBound {
            raw: raw.to_string(),
            instant,
            date_only: true,
        });
    }
    let instant =
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()?;
    Some(TimeBound {
        raw: raw.to_string(),
        instant,
        date_only: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_parameter() {
        let q = ListQuery::parse(Some(
            "provider=zudu&agentId=a%201&status=completed,no_answer&channel=call&direction=outbound&from=2026-10-01&to=2026-10-02T00:00:00Z&limit=7&include=raw&cursor=abc",
        ))
        .unwrap();
        assert_eq!(q.providers, vec!["zudu"]);
        assert_eq!(q.filters.agent_id.as_deref(), Some("a 1"));
        assert_eq!(
            q.filters.status,
            vec![CallStatus::Completed, CallStatus::NoAnswer]
        );
        assert_eq!(q.filters.channel, Some(Channel::Call));
        assert_eq!(q.filters.direction, Some(Direction::Outbound));
        assert!(q.filters.from.as_ref().unwrap().date_only);
        assert_eq!(q.limit, Some(7));
        assert!(q.include_raw);
        assert_eq!(q.cursor.as_deref(), Some("abc"));
        let q = ListQuery::parse(Some("provider=zudu,%20bimpe,zudu&agent=bot")).unwrap();
        assert_eq!(q.providers, vec!["bimpe", "zudu"]);
        assert_eq!(q.agent.as_deref(), Some("bot"));
        assert!(ListQuery::parse(Some("agent=bot&agentId=x")).is_err());
    }

    #[test]
    fn a_date_upper_bound_includes_the_whole_day() {
        let q = ListQuery::parse(Some("to=2026-10-02")).unwrap();
        assert_eq!(
            timestamp::format(q.filters.to.unwrap().instant),
            "2026-10-03T00:00:00.000Z"
        );
    }

    #[test]
    fn reports_every_bad_parameter_by_name() {
        let p =
            ListQuery::parse(Some("limit=0&status=done&bogus=1&channel=fax&limit=5")).unwrap_err();
        assert_eq!(p.code, crate::canonical::ErrorCode::InvalidRequest);
        let fields: Vec<&str> = p.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["limit", "status", "bogus", "channel", "limit"]);
    }

    #[test]
    fn fingerprint_ignores_spelling_but_not_meaning() {
        let a = ListQuery::parse(Some("status=completed,busy&limit=5")).unwrap();
        let b = ListQuery::parse(Some("status=busy,completed")).unwrap();
        let c = ListQuery::parse(Some("status=busy")).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
