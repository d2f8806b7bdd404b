//! The Elemente simulator: Basic auth, an unpaginated array list with `status`/`channel`/`hrs`/
//! `dateRange`/`sanitised` filters, get/create/update of one call, and a data set carrying every
//! quirk VENDORS.md lists (19 mixed statuses, string durations, phones in email fields, message-only
//! records of non-call channels, nulls, empty strings and missing fields).

use crate::credentials::{ELEMENTE_PASSWORD, ELEMENTE_USERNAME};
use crate::data::{self, chance, pick, REFERENCE_UNIX};
use crate::elemente_text::{render_template, sanitised};
use crate::server::{SimRequest, SimResponse};
use crate::SimOptions;
use base64::Engine;
use fastrand::Rng;
use serde_json::{json, Map, Value};

/// The 19 call statuses, in the vendor's documented order.
pub const STATUSES: [&str; 19] = [
    "failed",
    "voicemail",
    "ringing",
    "answer",
    "completed",
    "busy",
    "open",
    "close",
    "closed",
    "resolved",
    "no-answer",
    "canceled",
    "in-progress",
    "ongoing",
    "pending",
    "stalled",
    "expired",
    "processing",
    "queued",
];

/// The five channels.
pub const CHANNELS: [&str; 5] = ["call", "sms", "whatsapp", "email", "webchat"];

/// Statuses after which a voice call has a transcript and a recording.
const TALKED: [&str; 6] = [
    "answer",
    "completed",
    "closed",
    "resolved",
    "close",
    "ongoing",
];

struct Call {
    /// Hidden creation instant (Unix seconds): filtered on, never shown.
    created_unix: i64,
    /// Hidden note set by PUT.
    #[allow(dead_code)]
    note: Option<String>,
    value: Value,
}

impl Call {
    fn id(&self) -> &str {
        self.value.get("id").and_then(Value::as_str).unwrap_or("")
    }

    /// The channel filter's view: voice records without a `channel` field are calls.
    fn channel(&self) -> &str {
        self.value
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or("call")
    }
}

pub(crate) struct State {
    /// In list order: newest first.
    calls: Vec<Call>,
    agents: Vec<String>,
    agent_phones: Vec<String>,
    created_count: i64,
    rng: Rng,
    /// With `SimOptions::live_step`: created calls playing their conversation.
    live: Option<crate::live::Live>,
}

/// A contact field: a phone on some records, a real email on others, sometimes null or empty.
fn contact(rng: &mut Rng, phone: &str, email: &str) -> Value {
    match rng.u32(0..100) {
        0..=39 => json!(phone),
        40..=89 => json!(email),
        90..=94 => Value::Null,
        _ => json!(""),
    }
}

fn message(rng: &mut Rng, at: i64, agent: bool, content: String, call_id: &str) -> Value {
    let media = if chance(rng, 20) {
        json!(format!(
            "https://media.example.com/elemente/{call_id}/{}.jpg",
            data::hex(rng, 8)
        ))
    } else {
        Value::Null
    };
    json!({
        "sid": format!("SM{}", data::hex(rng, 32)),
        "timestamp": data::iso(at),
        "sender": if agent { "agent" } else { "customer" },
        "content": content,
        "mediaUrl": media,
        "status": pick(rng, &["delivered", "read", "sent", "delivered", "failed"]).to_string(),
    })
}

impl State {
    pub fn generate(opts: &SimOptions) -> State {
        let mut rng = Rng::with_seed(opts.seed ^ 0xE1E3_E47E);
        let agents: Vec<String> = (0..5).map(|_| data::uuid(&mut rng)).collect();
        let agent_phones: Vec<String> = (0..5).map(|_| data::phone(&mut rng)).collect();
        let skills: Vec<String> = (0..3).map(|_| data::uuid(&mut rng)).collect();
        let mut calls: Vec<Call> = (0..opts.calls_per_vendor)
            .map(|i| Self::generate_one(&mut rng, i, &agents, &agent_phones, &skills))
            .collect();
        calls.sort_by_key(|c| std::cmp::Reverse(c.created_unix));
        State {
            calls,
            agents,
            agent_phones,
            created_count: 0,
            rng,
            live: crate::live::Live::new(opts.live_step, opts.seed ^ 0xE11FE),
        }
    }

    fn generate_one(
        rng: &mut Rng,
        i: usize,
        agents: &[String],
        agent_phones: &[String],
        skills: &[String],
    ) -> Call {
        let created = data::created_in_window(rng);
        let id = data::uuid(rng);
        let status = if i < STATUSES.len() {
            STATUSES[i]
        } else {
            *pick(rng, &STATUSES)
        };
        // The first records cover every channel; afterwards voice dominates.
        let channel = if i < CHANNELS.len() {
            CHANNELS[i]
        } else if chance(rng, 60) {
            "call"
        } else {
            *pick(rng, &CHANNELS[1..])
        };
        let agent_idx = rng.usize(..agents.len());
        let (first, last) = data::person(rng);
        let customer_name = match rng.u32(0..100) {
            0..=4 => Value::Null,
            5..=9 => json!(""),
            _ => json!(format!("{first} {last}")),
        };
        let mut v = Map::new();
        v.insert("id".into(), json!(id));
        v.insert("status".into(), json!(status));
        let turns = data::conversation(rng);
        if channel == "call" {
            let agent_email = format!("agent{}@example.com", agent_idx + 1);
            let customer_phone = data::phone(rng);
            let agent_phone = agent_phones[agent_idx].clone();
            let talked = TALKED.contains(&status);
            v.insert("agentPhone".into(), json!(agent_phone));
            v.insert(
                "agentEmail".into(),
                contact(rng, &agent_phone, &agent_email),
            );
            v.insert(
                "customerPhone".into(),
                if chance(rng, 5) {
                    Value::Null
                } else {
                    json!(customer_phone)
                },
            );
            v.insert(
                "customerEmail".into(),
                contact(rng, &customer_phone, &data::email(&first, &last)),
            );
            v.insert("agentId".into(), json!(agents[agent_idx]));
            v.insert("customerId".into(), json!(data::uuid(rng)));
            if !chance(rng, 10) {
                v.insert("skillId".into(), json!(pick(rng, skills)));
            }
            v.insert("customerName".into(), customer_name);
            let transcript = if talked {
                json!(data::transcript_text(&turns, "Agent", "Customer"))
            } else if chance(rng, 50) {
                json!("")
            } else {
                Value::Null
            };
            v.insert("transcription".into(), transcript);
            if talked && chance(rng, 85) {
                v.insert(
                    "recordingUrl".into(),
                    json!(format!("https://recordings.example.com/elemente/{id}.wav")),
                );
            } else if !chance(rng, 15) {
                v.insert("recordingUrl".into(), Value::Null);
            }
            let messages: Vec<Value> = if chance(rng, 25) {
                turns
                    .iter()
                    .enumerate()
                    .map(|(n, (agent, line))| {
                        message(rng, created + 30 * n as i64, *agent, line.clone(), &id)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            v.insert("messages".into(), json!(messages));
            let secs = if talked { rng.u32(20..3600) } else { 0 };
            let duration = match rng.u32(0..100) {
                0..=69 => json!(secs.to_string()),
                70..=89 => json!(secs),
                _ => Value::Null,
            };
            v.insert("duration".into(), duration);
            // Some voice records carry no channel field at all.
            if !i.is_multiple_of(7) {
                v.insert("channel".into(), json!("call"));
            }
        } else {
            v.insert("agentId".into(), json!(agents[agent_idx]));
            v.insert("customerId".into(), json!(data::uuid(rng)));
            v.insert("skillId".into(), json!(pick(rng, skills)));
            v.insert("customerName".into(), customer_name);
            let messages: Vec<Value> = if i % 11 == 3 || chance(rng, 8) {
                Vec::new()
            } else {
                turns
                    .iter()
                    .enumerate()
                    .map(|(n, (agent, line))| {
                        message(rng, created + 90 * n as i64, *agent, line.clone(), &id)
                    })
                    .collect()
            };
            v.insert("messages".into(), json!(messages));
            if chance(rng, 50) {
                v.insert("duration".into(), Value::Null);
            }
            v.insert("channel".into(), json!(channel));
        }
        Call {
            created_unix: created,
            note: None,
            value: Value::Object(v),
        }
    }

    pub fn records(&self) -> Vec<Value> {
        self.calls.iter().map(|c| c.value.clone()).collect()
    }

    /// Moves every playing call to where its time has come: a message per step, and a step
    /// after the last one the call is completed.
    fn progress(&mut self) {
        let rng = &mut self.rng;
        crate::live::play(
            &mut self.live,
            &mut self.created_count,
            &mut self.calls,
            |c: &Call| c.value["id"].as_str().unwrap_or_default(),
            |call, step, tick| {
                let now = REFERENCE_UNIX + tick;
                for (_, agent, line) in step.lines {
                    let m = message(rng, now, agent, line, &step.id);
                    if let Some(Value::Array(messages)) = call.value.get_mut("messages") {
                        messages.push(m);
                    }
                }
                if step.ended {
                    call.value["status"] = json!("completed");
                    call.value["duration"] = json!((now - call.created_unix).to_string());
                }
            },
        );
    }

    pub fn handle(&mut self, req: &SimRequest) -> SimResponse {
        self.progress();
        if !authorized(req) {
            return error(401, "Unauthorized");
        }
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["api", "v1", "calls"]) => self.list(req),
            ("POST", ["api", "v1", "calls"]) => self.create(req),
            ("GET", ["api", "v1", "calls", id]) => match self.find(id) {
                Some(c) => SimResponse::json(200, &c.value),
                None => error(404, "Call not found"),
            },
            ("PUT", ["api", "v1", "calls", id]) => self.update(id, req),
            (_, ["api", "v1", "calls"]) | (_, ["api", "v1", "calls", _]) => {
                error(405, "Method Not Allowed")
            }
            _ => error(404, "Not Found"),
        }
    }

    fn find(&self, id: &str) -> Option<&Call> {
        self.calls.iter().find(|c| c.id() == id)
    }

    fn list(&self, req: &SimRequest) -> SimResponse {
        let mut status = None;
        let mut channel = None;
        let mut since = None;
        let mut from = None;
        let mut to = None;
        let mut sanitise = false;
        for (k, v) in req.query_pairs() {
            match k.as_str() {
                "status" => match STATUSES.iter().find(|s| **s == v) {
                    Some(s) => status = Some(*s),
                    None => return error(400, &format!("Invalid status '{v}'")),
                },
                "channel" => match CHANNELS.iter().find(|c| **c == v) {
                    Some(c) => channel = Some(*c),
                    None => return error(400, &format!("Invalid channel '{v}'")),
                },
                "hrs" => match v.trim().parse::<f64>() {
                    Ok(h) if h.is_finite() && h > 0.0 && h < 1.0e7 => {
                        since = Some(REFERENCE_UNIX - (h * 3600.0) as i64)
                    }
                    _ => return error(400, &format!("Invalid hrs '{v}'")),
                },
                "dateRange[from]" => match data::parse_day(&v) {
                    Some(d) => from = Some(d),
                    None => return error(400, &format!("Invalid dateRange[from] '{v}'")),
                },
                "dateRange[to]" => match data::parse_day(&v) {
                    Some(d) => to = Some(d + 86_400),
                    None => return error(400, &format!("Invalid dateRange[to] '{v}'")),
                },
                "sanitised" => sanitise = v == "yes",
                _ => {}
            }
        }
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return error(400, "Invalid dateRange: from is after to");
            }
        }
        let items: Vec<Value> = self
            .calls
            .iter()
            .filter(|c| status.is_none_or(|s| c.value.get("status") == Some(&json!(s))))
            .filter(|c| channel.is_none_or(|ch| c.channel() == ch))
            .filter(|c| since.is_none_or(|s| c.created_unix >= s))
            .filter(|c| from.is_none_or(|f| c.created_unix >= f))
            .filter(|c| to.is_none_or(|t| c.created_unix < t))
            .map(|c| {
                if sanitise {
                    sanitised(&c.value)
                } else {
                    c.value.clone()
                }
            })
            .collect();
        SimResponse::json(200, &Value::Array(items))
    }

    fn create(&mut self, req: &SimRequest) -> SimResponse {
        let Some(Value::Object(body)) = req.json() else {
            return error(400, "Body must be a JSON object");
        };
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let Some(agent_id) = text("agentId").filter(|s| !s.is_empty()) else {
            return error(400, "agentId is required");
        };
        let Some(skill_id) = text("skillId").filter(|s| !s.is_empty()) else {
            return error(400, "skillId is required");
        };
        let channel = match text("channel") {
            Some(c) if CHANNELS.contains(&c.as_str()) => c,
            _ => {
                return error(
                    400,
                    "channel must be one of call, sms, whatsapp, email, webchat",
                )
            }
        };
        let Some(Value::Object(cust)) = body.get("customerOverride") else {
            return error(400, "customerOverride is required");
        };
        let cust_text = |k: &str| cust.get(k).and_then(Value::as_str).map(str::to_string);
        let agent_override = body.get("agentOverride").and_then(Value::as_object);
        let first = cust_text("firstName").unwrap_or_default();
        let last = cust_text("lastName").unwrap_or_default();
        let customer_name =
            text("customerName").unwrap_or_else(|| format!("{first} {last}").trim().to_string());
        let customer_phone = text("customerPhone").or_else(|| cust_text("phoneNumber"));
        let customer_email = text("customerEmail").or_else(|| cust_text("email"));
        let agent_phone = agent_override
            .and_then(|a| a.get("phone"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                self.agents
                    .iter()
                    .position(|a| *a == agent_id)
                    .map(|i| self.agent_phones[i].clone())
            })
            .unwrap_or_else(|| self.agent_phones[0].clone());
        let initial = agent_override
            .and_then(|a| a.get("prompt"))
            .and_then(|p| p.get("initialMessage"))
            .and_then(Value::as_str)
            .map(|t| render_template(t, cust, agent_override));
        self.created_count += 1;
        let created = REFERENCE_UNIX + self.created_count;
        let id = uuid::Uuid::new_v4().to_string();
        let messages: Vec<Value> = initial
            .map(|m| vec![message(&mut self.rng, created, true, m, &id)])
            .unwrap_or_default();
        let value = json!({
            "id": id,
            "status": if channel == "call" { "in-progress" } else { "queued" },
            "agentPhone": agent_phone,
            "agentEmail": agent_phone,
            "customerPhone": customer_phone,
            "customerEmail": customer_email,
            "agentId": agent_id,
            "customerId": uuid::Uuid::new_v4().to_string(),
            "skillId": skill_id,
            "customerName": customer_name,
            "transcription": "",
            "recordingUrl": Value::Null,
            "messages": messages,
            "duration": "0",
            "channel": channel,
        });
        self.calls.insert(
            0,
            Call {
                created_unix: created,
                note: None,
                value: value.clone(),
            },
        );
        if let (Some(live), true) = (self.live.as_mut(), channel == "call") {
            live.start(&id);
        }
        SimResponse::json(200, &value)
    }

    fn update(&mut self, id: &str, req: &SimRequest) -> SimResponse {
        let Some(Value::Object(body)) = req.json() else {
            return error(400, "Body must be a JSON object");
        };
        let status = match body.get("status") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if STATUSES.contains(&s.as_str()) => Some(s.clone()),
            Some(_) => return error(400, "Invalid status"),
        };
        let agent_id = match body.get("agentId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return error(400, "Invalid agentId"),
        };
        let note = match body.get("note") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return error(400, "Invalid note"),
        };
        let Some(call) = self.calls.iter_mut().find(|c| c.id() == id) else {
            return error(404, "Call not found");
        };
        if let Some(obj) = call.value.as_object_mut() {
            if let Some(s) = status {
                obj.insert("status".into(), json!(s));
            }
            if let Some(a) = agent_id {
                obj.insert("agentId".into(), json!(a));
            }
        }
        if note.is_some() {
            call.note = note;
        }
        SimResponse::json(200, &call.value)
    }
}

/// Elemente documents status codes only; the simulator sends a short JSON message with them.
fn error(status: u16, message: &str) -> SimResponse {
    SimResponse::json(status, &json!({ "message": message }))
}

fn authorized(req: &SimRequest) -> bool {
    let Some(value) = req.header("authorization") else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{ELEMENTE_USERNAME}:{ELEMENTE_PASSWORD}");
    decoded == expected.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_set_has_every_quirk() {
        let s = State::generate(&SimOptions::default());
        let recs = s.records();
        for st in STATUSES {
            assert!(recs.iter().any(|r| r["status"] == st), "status {st}");
        }
        assert!(recs.iter().any(|r| r.get("channel").is_none()));
        assert!(recs.iter().any(|r| r["duration"].is_string()));
        assert!(recs.iter().any(|r| r["duration"].is_number()));
        assert!(recs.iter().any(|r| r["duration"].is_null()));
        assert!(recs
            .iter()
            .any(|r| r["agentEmail"].as_str().is_some_and(|e| e.starts_with('+'))));
        assert!(recs
            .iter()
            .any(|r| r["agentEmail"].as_str().is_some_and(|e| e.contains('@'))));
        assert!(recs.iter().any(|r| r["messages"] == json!([])));
        assert!(recs
            .iter()
            .any(|r| r["channel"] == "sms" && r.get("agentPhone").is_none()));
        assert!(recs
            .iter()
            .flat_map(|r| r["messages"].as_array().cloned().unwrap_or_default())
            .any(|m| m["mediaUrl"].is_null()));
    }
}
