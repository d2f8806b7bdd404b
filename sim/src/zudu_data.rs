//! The Zudu data set generator: Retell-style call records with every quirk VENDORS.md lists —
//! mixed-case statuses, types and directions, upper-case disconnection reasons, timestamps null
//! or absent for calls that never connected, `call_analysis: null`, `latency: {}`, empty
//! transcripts, optional `id` — kept apart from the HTTP handlers in `zudu.rs`.

use crate::data::{self, chance, pick};
use crate::zudu::STATUSES;
use fastrand::Rng;
use serde_json::{json, Map, Value};

/// Disconnection reasons of calls that talked.
pub(crate) const CONNECTED_REASONS: [&str; 7] = [
    "USER_HANGUP",
    "AGENT_HANGUP",
    "CALL_TRANSFER",
    "VOICEMAIL_REACHED",
    "INACTIVITY",
    "MAX_DURATION_REACHED",
    "IVR_REACHED",
];
/// Disconnection reasons of calls that never connected.
pub(crate) const UNCONNECTED_REASONS: [&str; 7] = [
    "DIAL_BUSY",
    "DIAL_FAILED",
    "DIAL_NO_ANSWER",
    "INVALID_DESTINATION",
    "USER_DECLINED",
    "MARKED_AS_SPAM",
    "CONCURRENCY_LIMIT_REACHED",
];
pub(crate) const ERROR_REASONS: [&str; 3] = [
    "ERROR_LLM_WEBSOCKET_OPEN",
    "ERROR_NO_AUDIO_RECEIVED",
    "ERROR_UNKNOWN",
];

/// Every status spelling the data set must contain.
#[cfg(test)]
const STATUSES_ALL: [&str; 6] = [
    "REGISTERED",
    "ONGOING",
    "ongoing",
    "ENDED",
    "ERROR",
    "SCHEDULED",
];

/// Write a timestamp-like field: the value, or (for never-connected calls) null or absent.
fn put_maybe(v: &mut Map<String, Value>, key: &str, value: Option<i64>, absent: bool) {
    match value {
        Some(x) => {
            v.insert(key.into(), json!(x));
        }
        None if absent => {}
        None => {
            v.insert(key.into(), Value::Null);
        }
    }
}

pub(crate) fn generate_one(rng: &mut Rng, i: usize, org: &str, agents: &[String]) -> Value {
    let call_id = format!("call_{}", data::hex(rng, 32));
    let n_forced = 6 + CONNECTED_REASONS.len() + UNCONNECTED_REASONS.len();
    let (base, reason): (&str, Option<&str>) = if i < STATUSES.len() {
        (STATUSES[i], None)
    } else if i == STATUSES.len() {
        ("ONGOING", None)
    } else if i < 6 + CONNECTED_REASONS.len() {
        ("ENDED", Some(CONNECTED_REASONS[i - 6]))
    } else if i < n_forced {
        (
            "ENDED",
            Some(UNCONNECTED_REASONS[i - 6 - CONNECTED_REASONS.len()]),
        )
    } else {
        let base = match rng.u32(0..100) {
            0..=59 => "ENDED",
            60..=69 => "ERROR",
            70..=79 => "ONGOING",
            80..=89 => "REGISTERED",
            _ => "SCHEDULED",
        };
        (base, None)
    };
    let reason = match (base, reason) {
        (_, Some(r)) => Some(r),
        ("ENDED", None) if chance(rng, 70) => Some(*pick(rng, &CONNECTED_REASONS)),
        ("ENDED", None) => Some(*pick(rng, &UNCONNECTED_REASONS)),
        ("ERROR", None) => Some(*pick(rng, &ERROR_REASONS)),
        _ => None,
    };
    let status = if i == STATUSES.len() || (i >= n_forced && chance(rng, 20)) {
        base.to_lowercase()
    } else {
        base.to_string()
    };
    let call_type = match i {
        6 => "phone_call",
        7 => "WEB_CALL",
        _ => *pick(
            rng,
            &[
                "PHONE_CALL",
                "PHONE_CALL",
                "PHONE_CALL",
                "PHONE_CALL",
                "phone_call",
                "WEB_CALL",
                "WEB_CALL",
            ],
        ),
    };
    let phone_call = call_type != "WEB_CALL";
    let connected = match base {
        "ONGOING" => true,
        "ENDED" => reason.is_some_and(|r| CONNECTED_REASONS.contains(&r)),
        "ERROR" => chance(rng, 50),
        _ => false,
    };
    let finished = base != "ONGOING";
    let created_ms = data::created_in_window(rng) * 1000 + rng.i64(0..1000);
    let start = connected.then(|| created_ms + rng.i64(500..4000));
    let duration = (connected && finished).then(|| rng.i64(5_000..900_000));
    let end = start.zip(duration).map(|(s, d)| s + d);
    let absent = chance(rng, 50);
    let outbound = chance(rng, 60);
    let direction = if !phone_call {
        Value::Null
    } else {
        let d = if outbound { "OUTBOUND" } else { "INBOUND" };
        json!(if chance(rng, 25) {
            d.to_lowercase()
        } else {
            d.to_string()
        })
    };
    let agent_id = pick(rng, agents).clone();
    let mut v = Map::new();
    if i != 8 && !chance(rng, 10) {
        v.insert("id".into(), json!(data::uuid(rng)));
    }
    v.insert("call_id".into(), json!(call_id));
    v.insert("agent_id".into(), json!(agent_id));
    v.insert("organization_id".into(), json!(org));
    v.insert("call_status".into(), json!(status));
    v.insert("call_type".into(), json!(call_type));
    v.insert("direction".into(), direction);
    if phone_call {
        v.insert("from_number".into(), json!(data::phone(rng)));
        v.insert("to_number".into(), json!(data::phone(rng)));
    }
    put_maybe(&mut v, "start_timestamp", start, absent);
    put_maybe(&mut v, "end_timestamp", end, absent);
    put_maybe(&mut v, "call_duration", duration, absent);
    v.insert("disconnection_reason".into(), json!(reason));
    v.insert(
        "recording_url".into(),
        if connected && finished {
            json!(format!("https://recordings.example.com/zudu/{call_id}.mp4"))
        } else {
            Value::Null
        },
    );
    v.insert(
        "public_log_url".into(),
        json!(format!("https://logs.example.com/zudu/{call_id}")),
    );
    v.insert("opt_out_sensitive_data_storage".into(), json!(false));
    let mut metadata = Map::new();
    if chance(rng, 70) {
        metadata.insert(
            "customer_id".into(),
            json!(format!("cust-{:04}", rng.u32(0..10_000))),
        );
        metadata.insert(
            "priority".into(),
            json!(pick(rng, &["high", "normal", "low"])),
        );
    }
    if chance(rng, 40) {
        metadata.insert(
            "campaign".into(),
            json!(pick(rng, &["renewals-2026", "winback", "onboarding"])),
        );
    }
    if base == "SCHEDULED" {
        metadata.insert(
            "scheduled_for".into(),
            json!(data::iso(created_ms / 1000 + 86_400)),
        );
    }
    v.insert("metadata".into(), Value::Object(metadata));
    v.insert("events".into(), json!([]));
    let turns = data::conversation(rng);
    let talked = connected && chance(rng, 85);
    v.insert(
        "transcript".into(),
        json!(if talked {
            data::transcript_text(&turns, "Agent", "User")
        } else {
            String::new()
        }),
    );
    let transcript_object: Vec<Value> = if talked {
        turns
            .iter()
            .map(|(a, line)| json!({"role": if *a { "agent" } else { "user" }, "content": line}))
            .collect()
    } else {
        Vec::new()
    };
    v.insert("transcript_object".into(), json!(transcript_object));
    v.insert("transcript_with_tool_calls".into(), json!([]));
    let latency = if connected && chance(rng, 70) {
        let p50 = 120.0 + rng.f64() * 80.0;
        json!({"e2e": {"p50": round1(p50), "p90": round1(p50 * 1.6), "p95": round1(p50 * 1.9),
            "p99": round1(p50 * 2.2), "max": round1(p50 * 2.4), "min": round1(p50 * 0.7),
            "num": rng.u32(4..40)}})
    } else {
        json!({})
    };
    v.insert("latency".into(), latency);
    let analysis = if base == "ENDED" && connected {
        json!({
            "call_successful": reason != Some("VOICEMAIL_REACHED") && chance(rng, 80),
            "call_summary": pick(rng, &["Customer asked about an order; resolved.",
                "Appointment rescheduled.", "Caller requested a callback.", "Billing question escalated."]).to_string(),
            "user_sentiment": pick(rng, &["Positive", "Neutral", "Negative", "Unknown"]).to_string(),
            "in_voicemail": reason == Some("VOICEMAIL_REACHED"),
        })
    } else {
        Value::Null
    };
    v.insert("call_analysis".into(), analysis);
    let cost = duration.map_or(0.0, |d| (d as f64 / 60_000.0 * 7.0).round() / 100.0);
    v.insert("call_cost".into(), json!({ "combined_cost": cost }));
    if phone_call && connected {
        v.insert(
            "telephony_identifier".into(),
            json!({"call_sid": format!("CA{}", data::hex(rng, 32))}),
        );
    }
    let created_at = if base == "REGISTERED" && chance(rng, 30) {
        None
    } else {
        Some(created_ms)
    };
    put_maybe(&mut v, "created_at", created_at, false);
    put_maybe(
        &mut v,
        "updated_at",
        created_at.map(|c| end.or(start).unwrap_or(c) + rng.i64(1000..60_000)),
        false,
    );
    Value::Object(v)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use crate::SimOptions;
    use serde_json::{json, Value};

    #[test]
    fn data_set_has_every_quirk() {
        let recs = crate::zudu::State::generate(&SimOptions::default()).records();
        let has = |f: &dyn Fn(&Value) -> bool| recs.iter().any(f);
        for s in super::STATUSES_ALL {
            assert!(has(&|r| r["call_status"] == s), "{s}");
        }
        for reason in super::CONNECTED_REASONS
            .iter()
            .chain(&super::UNCONNECTED_REASONS)
        {
            assert!(has(&|r| r["disconnection_reason"] == *reason), "{reason}");
        }
        for t in ["PHONE_CALL", "phone_call", "WEB_CALL"] {
            assert!(has(&|r| r["call_type"] == t), "{t}");
        }
        for d in ["OUTBOUND", "INBOUND", "outbound", "inbound"] {
            assert!(has(&|r| r["direction"] == d), "{d}");
        }
        assert!(has(&|r| r.get("id").is_none()));
        assert!(has(&|r| r.get("start_timestamp").is_none()));
        assert!(has(&|r| r.get("start_timestamp") == Some(&Value::Null)));
        assert!(has(&|r| r["call_analysis"].is_null()));
        assert!(has(&|r| r["latency"] == json!({})));
        assert!(has(&|r| r["latency"].get("e2e").is_some()));
        assert!(has(
            &|r| r["transcript_object"] == json!([]) && r["call_status"] == "ENDED"
        ));
        assert!(has(&|r| r["transcript_object"]
            .as_array()
            .is_some_and(|t| !t.is_empty())));
        assert!(has(&|r| r["disconnection_reason"]
            .as_str()
            .is_some_and(|d| d.starts_with("ERROR_"))));
    }
}
