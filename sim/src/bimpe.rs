//! The Bimpe simulator: agent-scoped console API under `/api/v1/console` with bearer or
//! `X-Api-Key` auth and scopes, 1-based paging with a `meta` block, list items that omit
//! `started_at`/`answered_at`/`conversation_logs`, idempotent call creation, the
//! `{message, error, code, statusCode, request_id}` error envelope, and rate-limit headers.

use crate::credentials::{BIMPE_API_KEY, BIMPE_API_KEY_NO_SCOPE};
use crate::data::{self, chance, pick, REFERENCE_UNIX};
use crate::server::{SimRequest, SimResponse};
use crate::SimOptions;
use fastrand::Rng;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The seven call statuses.
pub const STATUSES: [&str; 7] = [
    "queued",
    "ringing",
    "answered",
    "ended",
    "busy",
    "failed",
    "cancelled",
];

const RATE_LIMIT: u64 = 1000;
const RATE_WINDOW_SECS: u64 = 60;

struct Agent {
    id: String,
    phone: String,
}

struct Call {
    agent_id: String,
    created_unix: i64,
    /// The full get-one object.
    value: Value,
}

impl Call {
    fn id(&self) -> &str {
        self.value.get("id").and_then(Value::as_str).unwrap_or("")
    }

    /// The list item: the get object without the fields the list leaves out.
    fn list_item(&self) -> Value {
        let mut v = self.value.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.shift_remove("started_at");
            obj.shift_remove("answered_at");
            obj.shift_remove("conversation_logs");
        }
        v
    }
}

pub(crate) struct State {
    agents: Vec<Agent>,
    /// Newest first across all agents.
    calls: Vec<Call>,
    /// Idempotency-Key → (status, body) of the first answer.
    idempotency: HashMap<String, (u16, Value)>,
    created_count: i64,
    rate_window: u64,
    rate_used: u64,
    /// With `SimOptions::live_step`: created calls playing their conversation.
    live: Option<crate::live::Live>,
}

fn ts(unix: Option<i64>) -> Value {
    unix.map(|t| json!(data::iso(t))).unwrap_or(Value::Null)
}

impl State {
    pub fn generate(opts: &SimOptions) -> State {
        let mut rng = Rng::with_seed(opts.seed ^ 0xB1_3BE);
        let agents: Vec<Agent> = (0..3)
            .map(|_| Agent {
                id: format!("agt_{}", data::alnum(&mut rng, 16)),
                phone: data::phone(&mut rng),
            })
            .collect();
        let mut calls: Vec<Call> = (0..opts.calls_per_vendor)
            .map(|i| generate_one(&mut rng, i, &agents))
            .collect();
        calls.sort_by(|a, b| {
            b.created_unix
                .cmp(&a.created_unix)
                .then_with(|| a.id().cmp(b.id()))
        });
        State {
            agents,
            calls,
            idempotency: HashMap::new(),
            created_count: 0,
            rate_window: 0,
            rate_used: 0,
            live: crate::live::Live::new(opts.live_step, opts.seed ^ 0xB11FE),
        }
    }

    /// Moves every playing call to where its time has come: answered at its first line, a
    /// conversation log entry per step, and ended a step after the last one.
    fn progress(&mut self) {
        crate::live::play(
            &mut self.live,
            &mut self.created_count,
            &mut self.calls,
            |c: &Call| c.value["id"].as_str().unwrap_or_default(),
            |call, step, tick| {
                let now = REFERENCE_UNIX + tick;
                let v = &mut call.value;
                if v["answered_at"].is_null() {
                    v["status"] = json!("answered");
                    for at in ["ringing_at", "started_at", "answered_at"] {
                        v[at] = json!(data::iso(now));
                    }
                }
                for (n, agent, line) in step.lines {
                    let entry = json!({
                        "id": format!("chat_{}_{n}", step.id.replace('-', "")),
                        "role": if agent { "assistant" } else { "user" },
                        "message": line,
                        "message_type": "text",
                        "created_at": data::iso(now),
                        "attachments": [],
                    });
                    if let Some(Value::Array(logs)) = v.get_mut("conversation_logs") {
                        logs.push(entry);
                    }
                }
                if step.ended {
                    v["status"] = json!("ended");
                    v["ended_at"] = json!(data::iso(now));
                    v["duration_seconds"] = json!(now - call.created_unix);
                    v["end_reason"] = json!("customer_hangup");
                }
            },
        );
    }

    pub fn records(&self) -> Vec<Value> {
        self.calls.iter().map(|c| c.value.clone()).collect()
    }

    pub fn agent_ids(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.id.clone()).collect()
    }

    pub fn records_for_agent(&self, agent_id: &str) -> Vec<Value> {
        self.calls
            .iter()
            .filter(|c| c.agent_id == agent_id)
            .map(|c| c.value.clone())
            .collect()
    }

    pub fn handle(&mut self, req: &SimRequest) -> SimResponse {
        self.progress();
        let request_id = req
            .header("x-request-id")
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let resp = self.route(req, &request_id);
        let (remaining, reset) = self.rate_tick();
        resp.with_header("X-RateLimit-Limit", RATE_LIMIT.to_string())
            .with_header("X-RateLimit-Remaining", remaining.to_string())
            .with_header("X-RateLimit-Reset", reset.to_string())
            .with_header("X-Request-Id", request_id)
    }

    /// Count one request in the current fixed window; returns (remaining, reset Unix seconds).
    fn rate_tick(&mut self) -> (u64, u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let window = now - now % RATE_WINDOW_SECS;
        if window != self.rate_window {
            self.rate_window = window;
            self.rate_used = 0;
        }
        self.rate_used += 1;
        (
            RATE_LIMIT.saturating_sub(self.rate_used),
            window + RATE_WINDOW_SECS,
        )
    }

    fn route(&mut self, req: &SimRequest, rid: &str) -> SimResponse {
        let scopes: &[&str] = match api_key(req) {
            None => return error(401, "api_key_missing", json!("API key is missing."), rid),
            Some(k) if k == BIMPE_API_KEY => &["conversations:read", "calls:read", "calls:write"],
            Some(k) if k == BIMPE_API_KEY_NO_SCOPE => &[],
            Some(_) => return error(401, "api_key_invalid", json!("Invalid API key."), rid),
        };
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let not_found_route = || {
            let msg = format!("Cannot {} {}", req.method, req.path);
            error(404, "not_found", json!(msg), rid)
        };
        let (op, agent, call) = match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["api", "v1", "console", "agents", a, "calls"]) => ("list", *a, None),
            ("POST", ["api", "v1", "console", "agents", a, "calls"]) => ("create", *a, None),
            ("GET", ["api", "v1", "console", "agents", a, "calls", c]) => ("get", *a, Some(*c)),
            _ => return not_found_route(),
        };
        let needed = if op == "create" {
            "calls:write"
        } else {
            "conversations:read"
        };
        if !scopes.contains(&needed) {
            let msg = format!("This API key is missing the required scope: {needed}.");
            return error(403, "insufficient_scope", json!(msg), rid);
        }
        if !self.agents.iter().any(|a| a.id == agent) {
            return error(404, "not_found", json!("Agent not found"), rid);
        }
        match (op, call) {
            ("list", _) => self.list(req, agent, rid),
            ("create", _) => self.create(req, agent, rid),
            (_, Some(call_id)) => match self
                .calls
                .iter()
                .find(|c| c.agent_id == agent && c.id() == call_id)
            {
                Some(c) => SimResponse::json(200, &json!({"message": "Success", "data": c.value})),
                None => error(404, "not_found", json!("Call not found"), rid),
            },
            _ => not_found_route(),
        }
    }

    fn list(&self, req: &SimRequest, agent: &str, rid: &str) -> SimResponse {
        let mut problems = Vec::new();
        let mut page: u64 = 1;
        let mut limit: u64 = 20;
        let mut descending = true;
        let mut search = None;
        let mut is_test = None;
        let mut status = None;
        for (k, v) in req.query_pairs() {
            match k.as_str() {
                "page" => match v.parse::<u64>() {
                    Ok(p) if p >= 1 => page = p,
                    _ => problems.push("page must be a positive integer".to_string()),
                },
                "limit" => match v.parse::<i64>() {
                    Ok(l) if l > 100 => problems.push("limit must not be greater than 100".into()),
                    Ok(l) if l < 1 => problems.push("limit must not be less than 1".into()),
                    Ok(l) => limit = l as u64,
                    Err(_) => problems.push("limit must be an integer number".into()),
                },
                "sort" => match v.as_str() {
                    "created_on" | "created_at" => descending = false,
                    "-created_on" | "-created_at" => descending = true,
                    _ => problems.push("sort must be one of: created_on, -created_on".into()),
                },
                "search" => search = Some(v.to_lowercase()),
                "is_test_call" => match v.as_str() {
                    "true" => is_test = Some(true),
                    "false" => is_test = Some(false),
                    _ => problems.push("is_test_call must be a boolean value".into()),
                },
                "status" => match STATUSES.iter().find(|s| **s == v) {
                    Some(s) => status = Some(*s),
                    None => problems.push(format!(
                        "status must be one of the following values: {}",
                        STATUSES.join(", ")
                    )),
                },
                _ => {}
            }
        }
        if !problems.is_empty() {
            return error(400, "validation_error", json!(problems), rid);
        }
        let mut items: Vec<&Call> = self
            .calls
            .iter()
            .filter(|c| c.agent_id == agent)
            .filter(|c| status.is_none_or(|s| c.value["status"] == s))
            .filter(|c| is_test.is_none_or(|t| c.value["is_test_call"] == t))
            .filter(|c| search.as_ref().is_none_or(|q| matches_search(&c.value, q)))
            .collect();
        if !descending {
            items.sort_by(|a, b| {
                a.created_unix
                    .cmp(&b.created_unix)
                    .then_with(|| a.id().cmp(b.id()))
            });
        }
        let total = items.len() as u64;
        let page_count = total.div_ceil(limit);
        let start = (page - 1).saturating_mul(limit);
        let data: Vec<Value> = items
            .iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(limit as usize)
            .map(|c| c.list_item())
            .collect();
        SimResponse::json(
            200,
            &json!({
                "message": "Success",
                "data": data,
                "meta": {
                    "total_count": total,
                    "page_count": page_count,
                    "current_page": page,
                    "limit": limit,
                    "has_next_page": page < page_count,
                    "has_previous_page": page > 1,
                }
            }),
        )
    }

    fn create(&mut self, req: &SimRequest, agent: &str, rid: &str) -> SimResponse {
        let key = req
            .header("idempotency-key")
            .map(|k| format!("{agent}\u{0}{k}"));
        if let Some((status, body)) = key.as_ref().and_then(|k| self.idempotency.get(k)) {
            return SimResponse::json(*status, body).with_header("Idempotent-Replayed", "true");
        }
        let Some(Value::Object(body)) = req.json() else {
            return error(
                400,
                "validation_error",
                json!(["body must be a JSON object"]),
                rid,
            );
        };
        // The console API validates with a whitelist: an unknown property is a validation error.
        let mut problems: Vec<String> = body
            .keys()
            .filter(|k| !["destination", "is_test_call"].contains(&k.as_str()))
            .map(|k| format!("property {k} should not exist"))
            .collect();
        let destination = body.get("destination").and_then(Value::as_str);
        let valid_number = destination.is_some_and(|d| {
            d.len() > 4 && d.starts_with('+') && d[1..].bytes().all(|b| b.is_ascii_digit())
        });
        if !valid_number {
            problems.push("destination must be a valid phone number".to_string());
        }
        let is_test = match body.get("is_test_call") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                problems.push("is_test_call must be a boolean value".into());
                false
            }
        };
        if !problems.is_empty() {
            return error(400, "validation_error", json!(problems), rid);
        }
        let destination = destination.unwrap_or_default().to_string();
        // Deterministic outcomes so tests can reach each: …13 busy, …99 failed, else initiated.
        let (status, answer) = if destination.ends_with("13") {
            (
                201,
                json!({"message": "Call could not be placed", "data": {"status": "busy", "detail": "Destination is busy"}}),
            )
        } else if destination.ends_with("99") {
            (
                201,
                json!({"message": "Call could not be placed", "data": {"status": "failed", "detail": "Carrier rejected the call"}}),
            )
        } else {
            self.created_count += 1;
            let created = REFERENCE_UNIX + self.created_count;
            let id = uuid::Uuid::new_v4().to_string();
            let source = self
                .agents
                .iter()
                .find(|a| a.id == agent)
                .map(|a| a.phone.clone());
            let value = json!({
                "id": id, "source": source, "destination": destination, "status": "queued",
                "direction": "outbound", "created_on": data::iso(created), "duration_seconds": null,
                "is_test_call": is_test, "error_reason": null, "end_reason": null,
                "ringing_at": null, "ended_at": null, "started_at": null, "answered_at": null,
                "conversation_logs": [],
            });
            self.calls.insert(
                0,
                Call {
                    agent_id: agent.to_string(),
                    created_unix: created,
                    value,
                },
            );
            if let Some(live) = self.live.as_mut() {
                live.start(&id);
            }
            (
                201,
                json!({"message": "Call initiated", "data": {"status": "initiated", "call_id": id}}),
            )
        };
        if let Some(k) = key {
            self.idempotency.insert(k, (status, answer.clone()));
        }
        SimResponse::json(status, &answer)
    }
}

fn matches_search(v: &Value, q: &str) -> bool {
    ["id", "source", "destination", "end_reason", "error_reason"]
        .iter()
        .any(|k| {
            v.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().contains(q))
        })
}

fn api_key(req: &SimRequest) -> Option<String> {
    if let Some(auth) = req.header("authorization") {
        if let Some((scheme, token)) = auth.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some(token.trim().to_string());
            }
        }
    }
    req.header("x-api-key")
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
}

/// The Bimpe error envelope; `message` is a string or, for validation errors, an array of strings.
fn error(status: u16, code: &str, message: Value, request_id: &str) -> SimResponse {
    let error = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    SimResponse::json(
        status,
        &json!({"message": message, "error": error, "code": code, "statusCode": status, "request_id": request_id}),
    )
}

fn generate_one(rng: &mut Rng, i: usize, agents: &[Agent]) -> Call {
    let agent = &agents[i % agents.len()];
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
        (Some(agent.phone.clone()), customer)
    } else {
        (Some(customer), agent.phone.clone())
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
    Call {
        agent_id: agent.id.clone(),
        created_unix: created,
        value: Value::Object(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_calls_follow_the_answered_rule() {
        let s = State::generate(&SimOptions::default());
        let recs = s.records();
        for st in STATUSES {
            assert!(recs.iter().any(|r| r["status"] == st), "status {st}");
        }
        let ended: Vec<&Value> = recs.iter().filter(|r| r["status"] == "ended").collect();
        let answered = ended.iter().filter(|r| !r["answered_at"].is_null()).count();
        assert!(answered > 20 && ended.len() - answered > 20);
        for r in ended {
            let d = r["duration_seconds"].as_i64().unwrap_or(0);
            assert_eq!(!r["answered_at"].is_null(), d > 0, "{r}");
        }
        assert!(recs.iter().any(|r| r["source"].is_null()));
        assert_eq!(s.agent_ids().len(), 3);
    }
}
