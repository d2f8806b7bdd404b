//! Field-by-field normalization per vendor, without a network: the shipped adapters applied to
//! the vendors' documented examples and to every quirk VENDORS.md lists.

use callgate::adapter::normalize::{AgentKeys, Context};
use callgate::adapter::rules::{Drift, DriftKind, Params};
use callgate::adapter::{load_dir, Adapter, Json};
use serde_json::{json, Value};
use std::path::Path;

fn adapter(vendor: &str) -> Adapter {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    load_dir(&dir)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .into_iter()
        .find(|a| a.vendor == vendor)
        .unwrap()
}

/// Normalizes one record; returns the canonical JSON and the drift.
fn norm(a: &Adapter, item: &Value, params: &[(String, String)]) -> (Value, Vec<Drift>) {
    let mut drift = Vec::new();
    let cx = Context {
        provider: a.vendor.as_str(),
        agents: AgentKeys::NONE,
        params: Params(params),
        include_raw: false,
    };
    let call = a.normalize_call(&Json::from(item), cx, &mut drift).unwrap();
    (serde_json::to_value(call).unwrap(), drift)
}

fn status_of(a: &Adapter, item: Value, params: &[(String, String)]) -> (String, String) {
    let (v, _) = norm(a, &item, params);
    (
        v["status"].as_str().unwrap().into(),
        v["providerStatus"].as_str().unwrap_or("").into(),
    )
}

const CALL_KEYS: &[&str] = &[
    "id",
    "provider",
    "vendor",
    "providerCallId",
    "status",
    "providerStatus",
    "channel",
    "direction",
    "agent",
    "customer",
    "from",
    "to",
    "createdAt",
    "ringingAt",
    "startedAt",
    "answeredAt",
    "endedAt",
    "durationSeconds",
    "endReason",
    "providerEndReason",
    "recordingUrl",
    "transcript",
    "messages",
    "analysis",
    "cost",
    "metadata",
    "isTest",
];

fn assert_every_field_present(v: &Value) {
    let obj = v.as_object().unwrap();
    for &k in CALL_KEYS {
        assert!(obj.contains_key(k), "missing {k}");
    }
    assert_eq!(
        obj.len(),
        CALL_KEYS.len(),
        "exactly the canonical fields: {:?}",
        obj.keys()
    );
}

#[test]
fn elemente_documented_example() {
    let a = adapter("elemente");
    let doc = json!({
        "id": "123e4567-e89b-12d3-a456-426614174000", "status": "in-progress",
        "agentPhone": "+1234567890", "agentEmail": "+1234567890",
        "customerPhone": "+1234567890", "customerEmail": "+1234567890",
        "agentId": "agent-uuid", "customerId": "customer-uuid", "skillId": "skill-uuid",
        "customerName": "John Doe", "transcription": "Hello, how can I help you?",
        "recordingUrl": "https://example.com/recording.wav",
        "messages": [{"sid": "SM1234567890abcdef", "timestamp": "2025-03-17T14:30:00Z", "sender": "agent",
                      "content": "Hello, how can I assist you today?", "mediaUrl": "https://example.com/image.jpg", "status": "delivered"}],
        "duration": "7200"
    });
    let (v, drift) = norm(&a, &doc, &[]);
    assert_every_field_present(&v);
    assert_eq!(v["id"], "elemente:123e4567-e89b-12d3-a456-426614174000");
    assert_eq!(v["status"], "in_progress");
    assert_eq!(v["providerStatus"], "in-progress");
    assert_eq!(
        v["channel"], "call",
        "a record without channel is a call (documented example)"
    );
    assert_eq!(v["direction"], Value::Null);
    assert_eq!(
        v["agent"],
        json!({"key": null, "id": "agent-uuid", "phone": "+1234567890", "email": null})
    );
    assert_eq!(
        v["customer"],
        json!({"id": "customer-uuid", "name": "John Doe", "phone": "+1234567890", "email": null})
    );
    assert_eq!(
        v["durationSeconds"], 7200.0,
        "duration as a string of seconds"
    );
    assert_eq!(v["transcript"], "Hello, how can I help you?");
    assert_eq!(v["recordingUrl"], "https://example.com/recording.wav");
    for k in [
        "createdAt",
        "ringingAt",
        "startedAt",
        "answeredAt",
        "endedAt",
        "endReason",
        "analysis",
        "cost",
        "isTest",
        "from",
        "to",
    ] {
        assert_eq!(
            v[k],
            Value::Null,
            "{k}: the vendor has nothing, callgate invents nothing"
        );
    }
    assert_eq!(v["metadata"], json!({}));
    assert_eq!(
        v["messages"],
        json!([{"id": "SM1234567890abcdef", "role": "agent", "content": "Hello, how can I assist you today?",
                "createdAt": "2025-03-17T14:30:00.000Z", "attachments": [{"type": null, "url": "https://example.com/image.jpg"}],
                "status": "delivered"}])
    );
    // The emails holding phone numbers are type drift, not data.
    assert_eq!(
        drift
            .iter()
            .filter(|d| d.kind == DriftKind::WrongType)
            .count(),
        2
    );
}

#[test]
fn elemente_quirks() {
    let a = adapter("elemente");
    let (v, _) = norm(
        &a,
        &json!({"id": "x1", "status": "CLOSED", "duration": 42, "customerEmail": "ann@example.com",
        "channel": "WhatsApp", "messages": [], "agentPhone": "", "customerName": null}),
        &[],
    );
    assert_eq!(v["status"], "completed", "case-insensitive");
    assert_eq!(v["durationSeconds"], 42.0, "duration as a number too");
    assert_eq!(v["customer"]["email"], "ann@example.com");
    assert_eq!(v["channel"], "whatsapp");
    assert_eq!(v["messages"], json!([]));
    assert_eq!(v["agent"]["phone"], Value::Null, "empty strings are null");
    let (v, drift) = norm(
        &a,
        &json!({"id": "x2", "status": "teleported", "duration": "soon", "channel": "pigeon"}),
        &[],
    );
    assert_eq!(v["status"], "unknown");
    assert_eq!(v["providerStatus"], "teleported");
    assert_eq!(v["durationSeconds"], Value::Null);
    assert_eq!(v["channel"], Value::Null);
    let kinds: Vec<(&str, DriftKind)> = drift.iter().map(|d| (d.field, d.kind)).collect();
    assert!(kinds.contains(&("status", DriftKind::UnknownEnum)));
    assert!(kinds.contains(&("channel", DriftKind::UnknownEnum)));
    assert!(kinds.contains(&("durationSeconds", DriftKind::WrongType)));
    let expected = [
        ("failed", "failed"),
        ("voicemail", "voicemail"),
        ("ringing", "ringing"),
        ("answer", "in_progress"),
        ("completed", "completed"),
        ("busy", "busy"),
        ("open", "in_progress"),
        ("close", "completed"),
        ("closed", "completed"),
        ("resolved", "completed"),
        ("no-answer", "no_answer"),
        ("canceled", "canceled"),
        ("in-progress", "in_progress"),
        ("ongoing", "in_progress"),
        ("pending", "queued"),
        ("stalled", "in_progress"),
        ("expired", "canceled"),
        ("processing", "in_progress"),
        ("queued", "queued"),
    ];
    assert_eq!(expected.len(), 19);
    for (raw, canonical) in expected {
        assert_eq!(
            status_of(&a, json!({"id": "s", "status": raw}), &[]),
            (canonical.to_string(), raw.to_string())
        );
    }
}

#[test]
fn bimpe_documented_example() {
    let a = adapter("bimpe");
    let doc = json!({ "id": "string-id", "source": "+14155550100", "destination": "+2348012345678", "status": "queued",
        "direction": "outbound", "created_on": "2019-08-24T14:15:22Z", "duration_seconds": 42, "is_test_call": true,
        "error_reason": "string", "end_reason": "Customer Hung Up", "ringing_at": "2019-08-24T14:15:22Z",
        "ended_at": "2019-08-24T14:15:22Z", "started_at": "2019-08-24T14:15:22Z", "answered_at": "2019-08-24T14:15:22Z",
        "conversation_logs": [{"id": "m1", "role": "assistant", "message": "hi", "message_type": "text",
            "created_at": "2019-08-24T14:15:22Z", "attachments": [{"type": "image", "url": "http://example.com"}]}] });
    let params = vec![("agent_id".to_string(), "agt 1".to_string())];
    let (v, _) = norm(&a, &doc, &params);
    assert_every_field_present(&v);
    assert_eq!(
        v["id"], "bimpe:agt%201:string-id",
        "agent-scoped id, components encoded"
    );
    assert_eq!(v["agent"]["id"], "agt 1");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["channel"], "call");
    assert_eq!(v["direction"], "outbound");
    assert_eq!(v["from"], "+14155550100");
    assert_eq!(v["to"], "+2348012345678");
    assert_eq!(
        v["customer"]["phone"], "+2348012345678",
        "outbound: the customer is the destination"
    );
    for k in [
        "createdAt",
        "ringingAt",
        "startedAt",
        "answeredAt",
        "endedAt",
    ] {
        assert_eq!(v[k], "2019-08-24T14:15:22.000Z", "{k}");
    }
    assert_eq!(v["durationSeconds"], 42.0);
    assert_eq!(v["isTest"], true);
    assert_eq!(v["endReason"], "customer_hung_up");
    assert_eq!(v["providerEndReason"], "Customer Hung Up");
    assert_eq!(
        v["messages"][0],
        json!({"id": "m1", "role": "agent", "content": "hi", "createdAt": "2019-08-24T14:15:22.000Z",
        "attachments": [{"type": "image", "url": "http://example.com"}], "status": null})
    );
    // Inbound: the customer is the source; a null source is null.
    let (v, _) = norm(
        &a,
        &json!({"id": "c", "status": "ringing", "direction": "inbound", "source": null, "destination": "+15550001111"}),
        &params,
    );
    assert_eq!(v["customer"]["phone"], Value::Null);
    assert_eq!(v["from"], Value::Null);
}

#[test]
fn bimpe_ended_without_answer_is_no_answer_in_get_and_list() {
    let a = adapter("bimpe");
    let p = vec![("agent_id".to_string(), "a".to_string())];
    // get: answered_at present and null.
    assert_eq!(
        status_of(
            &a,
            json!({"id": "1", "status": "ended", "answered_at": null, "duration_seconds": null}),
            &p
        )
        .0,
        "no_answer"
    );
    assert_eq!(status_of(&a, json!({"id": "1", "status": "ended", "answered_at": "2026-01-01T00:00:00Z", "duration_seconds": 30}), &p).0, "completed");
    // list items carry no answered_at: no duration means never answered.
    assert_eq!(
        status_of(
            &a,
            json!({"id": "1", "status": "ended", "duration_seconds": 0}),
            &p
        )
        .0,
        "no_answer"
    );
    assert_eq!(
        status_of(
            &a,
            json!({"id": "1", "status": "ENDED", "duration_seconds": 12}),
            &p
        )
        .0,
        "completed"
    );
    for (raw, canonical) in [
        ("queued", "queued"),
        ("ringing", "ringing"),
        ("answered", "in_progress"),
        ("busy", "busy"),
        ("failed", "failed"),
        ("cancelled", "canceled"),
    ] {
        assert_eq!(
            status_of(&a, json!({"id": "1", "status": raw}), &p).0,
            canonical
        );
    }
}

#[test]
fn zudu_documented_example() {
    let a = adapter("zudu");
    let doc = json!({
        "id": "550e8400-e29b-41d4-a716-446655440000", "call_id": "call-456", "agent_id": "agent-123",
        "organization_id": "org-789", "call_status": "ENDED", "call_type": "PHONE_CALL", "direction": "OUTBOUND",
        "from_number": "+0987654321", "to_number": "+1234567890", "start_timestamp": 1703097600000_i64,
        "end_timestamp": 1703098200000_i64, "call_duration": 600000, "disconnection_reason": "USER_HANGUP",
        "recording_url": "https://storage.azure.com/recordings/call-456.mp4",
        "metadata": {"customer_id": "cust-001", "priority": "high"}, "events": [],
        "transcript": "Hello, I'm calling about my recent order.", "transcript_object": [], "latency": {"e2e": {"p50": 150.5}},
        "call_analysis": {"call_successful": true, "call_summary": "resolved", "user_sentiment": "Positive", "in_voicemail": false},
        "call_cost": {"combined_cost": 0.25}
    });
    let (v, _) = norm(&a, &doc, &[]);
    assert_every_field_present(&v);
    assert_eq!(
        v["id"], "zudu:call-456",
        "call_id is what the get endpoint takes"
    );
    assert_eq!(v["status"], "completed");
    assert_eq!(v["providerStatus"], "ENDED");
    assert_eq!(v["channel"], "call");
    assert_eq!(v["direction"], "outbound");
    assert_eq!(v["agent"]["id"], "agent-123");
    assert_eq!(
        v["from"],
        Value::Null,
        "+0987654321 is not E.164 (leading 0)"
    );
    assert_eq!(v["to"], "+1234567890");
    assert_eq!(v["customer"]["phone"], "+1234567890");
    assert_eq!(v["startedAt"], "2023-12-20T18:40:00.000Z", "epoch ms");
    assert_eq!(v["endedAt"], "2023-12-20T18:50:00.000Z");
    assert_eq!(v["durationSeconds"], 600.0, "ms → seconds");
    assert_eq!(v["endReason"], "user_hangup");
    assert_eq!(v["providerEndReason"], "USER_HANGUP");
    assert_eq!(
        v["analysis"],
        json!({"successful": true, "summary": "resolved", "sentiment": "positive", "inVoicemail": false})
    );
    assert_eq!(v["cost"], json!({"amount": 0.25, "currency": null}));
    assert_eq!(
        v["metadata"],
        json!({"customer_id": "cust-001", "priority": "high"})
    );
    assert_eq!(v["messages"], json!([]));
}

#[test]
fn zudu_quirks() {
    let a = adapter("zudu");
    // Lower-case values, fractional ms, no UUID id, nulls for a call that never connected.
    let (v, _) = norm(
        &a,
        &json!({"call_id": "c1", "call_status": "ongoing", "call_type": "web_call", "direction": "inbound",
        "from_number": "+15550001111", "to_number": "+15550002222", "call_duration": 1234, "start_timestamp": null,
        "call_analysis": null, "transcript_object": [{"role": "agent", "content": "hi"}, {"role": "user", "content": "yo"}]}),
        &[],
    );
    assert_eq!(v["status"], "in_progress");
    assert_eq!(v["channel"], "webchat");
    assert_eq!(v["direction"], "inbound");
    assert_eq!(
        v["customer"]["phone"], "+15550001111",
        "inbound: the customer called"
    );
    assert_eq!(v["agent"]["phone"], "+15550002222");
    assert_eq!(v["durationSeconds"], 1.234);
    assert_eq!(v["startedAt"], Value::Null);
    assert_eq!(v["analysis"], Value::Null);
    assert_eq!(v["cost"], Value::Null);
    assert_eq!(v["messages"][1]["role"], "customer");
    // Only the UUID.
    let (v, _) = norm(
        &a,
        &json!({"id": "uuid-only", "call_status": "REGISTERED"}),
        &[],
    );
    assert_eq!(v["id"], "zudu:uuid-only");
    assert_eq!(v["status"], "queued");
    // ENDED refined by how it ended.
    for (reason, status) in [
        ("DIAL_NO_ANSWER", "no_answer"),
        ("dial_busy", "busy"),
        ("DIAL_FAILED", "failed"),
        ("VOICEMAIL_REACHED", "voicemail"),
        ("ERROR_LLM_WEBSOCKET_OPEN", "failed"),
        ("USER_HANGUP", "completed"),
        ("SOMETHING_NEW", "completed"),
    ] {
        let (s, _) = status_of(
            &a,
            json!({"call_id": "c", "call_status": "Ended", "disconnection_reason": reason}),
            &[],
        );
        assert_eq!(s, status, "{reason}");
    }
    assert_eq!(
        status_of(&a, json!({"call_id": "c", "call_status": "error"}), &[]).0,
        "failed"
    );
    assert_eq!(
        status_of(&a, json!({"call_id": "c", "call_status": "SCHEDULED"}), &[]).0,
        "queued"
    );
    let (v, drift) = norm(
        &a,
        &json!({"call_id": "c", "call_status": "PAUSED", "start_timestamp": "noon", "metadata": [1]}),
        &[],
    );
    assert_eq!(
        (v["status"].as_str(), v["providerStatus"].as_str()),
        (Some("unknown"), Some("PAUSED"))
    );
    assert_eq!(v["metadata"], json!({}));
    assert!(drift
        .iter()
        .any(|d| d.field == "startedAt" && d.kind == DriftKind::WrongType));
    assert!(drift
        .iter()
        .any(|d| d.field == "metadata" && d.kind == DriftKind::WrongType));
}

#[test]
fn records_without_an_id_cannot_be_normalized() {
    for (vendor, item) in [
        ("zudu", json!({"call_status": "ENDED"})),
        ("elemente", json!({"status": "open"})),
    ] {
        let a = adapter(vendor);
        let mut drift = Vec::new();
        let cx = Context {
            provider: vendor,
            agents: AgentKeys::NONE,
            params: Params(&[]),
            include_raw: false,
        };
        assert!(
            a.normalize_call(&Json::from(&item), cx, &mut drift)
                .is_err(),
            "{vendor}"
        );
        assert!(a
            .normalize_call(&Json::from("a string"), cx, &mut drift)
            .is_err());
    }
}

#[test]
fn include_raw_keeps_the_vendor_object() {
    let a = adapter("zudu");
    let item = json!({"call_id": "c", "call_status": "ENDED", "unmapped": {"x": 1}});
    let mut drift = Vec::new();
    let cx = Context {
        provider: "z",
        agents: AgentKeys::NONE,
        params: Params(&[]),
        include_raw: true,
    };
    let call = a
        .normalize_call(&Json::from(&item), cx, &mut drift)
        .unwrap();
    let v = serde_json::to_value(call).unwrap();
    assert_eq!(v["raw"], item);
}
