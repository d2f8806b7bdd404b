//! The Bimpe simulator's seeded data set: one generated call record in Bimpe's native shape
//! (statuses, the answered/ended consistency rule, nullable `source`, conversation logs with
//! chat ids and the odd attachment). Kept apart from `bimpe.rs`, which serves the API.

use crate::data::{self, chance, pick};
use fastrand::Rng;
use serde_json::{json, Map, Value};

use crate::bimpe::STATUSES;

fn ts(unix: Option<i64>) -> Value {
    unix.map(|t| json!(data::iso(t))).unwrap_or(Value::Null)
}

/// The `i`-th call record of an agent whose number is `agent_phone`: (creation Unix second, the
/// get-one object).
pub(crate) fn generate_one(rng: &mut Rng, i: usize, agent_phone: &str) -> (i64, Value) {
    let created = data::created_in_window(rng);
    let id = data::uuid(rng);
    let status = if i < STATUSES.len() {
        STATUSES[i]
    } else {
        match rng.u32(0..100) {
            0..=54 => "ended",
            55..=62 => "busy",
            63..=70 => "failed",
            71..=78 => "cancelled",
            79..=85 => "queued",
            86..=92 => "ringing",
            _ => "answered",
        }
    };
    let outbound = chance(rng, 65);
    let customer = data::phone(rng);
    let (mut source, destination) = if outbound {
        (Some(agent_phone.to_string()), customer)
    } else {
        (Some(customer), agent_phone.to_string())
    };
    if chance(rng, 12) {
        source = None;
    }
    // The ended-call consistency rule: answered ⇔ answered_at set ⇔ duration_seconds > 0.
    let answered = match status {
        "answered" => true,
        "ended" => i % 2 == 1 || chance(rng, 40),
        _ => false,
    };
    let started = match status {
        "queued" => None,
        _ => Some(created + rng.i64(0..3)),
    };
    let ringing = match status {
        "queued" => None,
        "failed" if chance(rng, 70) => None,
        _ => started.map(|s| s + rng.i64(1..6)),
    };
    let answered_at = if answered {
        ringing.map(|r| r + rng.i64(2..25))
    } else {
        None
    };
    let talk = rng.i64(8..1800);
    let ended = match status {
        "ended" => Some(answered_at.map_or_else(|| ringing.unwrap_or(created) + 30, |a| a + talk)),
        "busy" | "failed" | "cancelled" => Some(ringing.unwrap_or(created) + rng.i64(1..20)),
        _ => None,
    };
    let duration = match (status, answered) {
        ("ended", true) => json!(talk),
        ("ended", false) => {
            if chance(rng, 50) {
                json!(0)
            } else {
                Value::Null
            }
        }
        _ => Value::Null,
    };
    let end_reason = match (status, answered) {
        ("ended", true) => json!(pick(
            rng,
            &[
                "customer_hangup",
                "agent_hangup",
                "completed",
                "transferred"
            ]
        )),
        ("ended", false) => {
            if chance(rng, 25) {
                Value::Null
            } else {
                json!(pick(rng, &["no_answer", "voicemail", "ring_timeout"]))
            }
        }
        ("busy", _) => json!("busy"),
        ("cancelled", _) => json!("cancelled_by_user"),
        _ => Value::Null,
    };
    let error_reason = if status == "failed" {
        json!(pick(
            rng,
            &[
                "sip_503_service_unavailable",
                "invalid_number",
                "carrier_error: route not found"
            ]
        ))
    } else {
        Value::Null
    };
    let logs: Vec<Value> = match answered_at {
        Some(a) => data::conversation(rng)
            .into_iter()
            .enumerate()
            .map(|(n, (is_agent, line))| {
                let attachments = if chance(rng, 10) {
                    json!([{"type": "image", "url": format!("https://media.example.com/bimpe/{}.png", data::hex(rng, 10))}])
                } else {
                    json!([])
                };
                json!({
                    "id": format!("chat_{}", data::alnum(rng, 20)),
                    "role": if is_agent { "assistant" } else { "user" },
                    "message": line,
                    "message_type": "text",
                    "created_at": data::iso(a + 5 + 12 * n as i64),
                    "attachments": attachments,
                })
            })
            .collect(),
        None => Vec::new(),
    };
    let mut v = Map::new();
    v.insert("id".into(), json!(id));
    v.insert("source".into(), json!(source));
    v.insert("destination".into(), json!(destination));
    v.insert("status".into(), json!(status));
    v.insert(
        "direction".into(),
        json!(if outbound { "outbound" } else { "inbound" }),
    );
    v.insert("created_on".into(), json!(data::iso(created)));
    v.insert("duration_seconds".into(), duration);
    v.insert("is_test_call".into(), json!(chance(rng, 10)));
    v.insert("error_reason".into(), error_reason);
    v.insert("end_reason".into(), end_reason);
    v.insert("ringing_at".into(), ts(ringing));
    v.insert("ended_at".into(), ts(ended));
    v.insert("started_at".into(), ts(started));
    v.insert("answered_at".into(), ts(answered_at));
    v.insert("conversation_logs".into(), json!(logs));
    (created, Value::Object(v))
}
