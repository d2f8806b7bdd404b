//! The Zudu simulator: two-header auth, the `{message, status, error, data}` envelope, 0-based
//! paging where an omitted `limit` means everything, both pagination shapes (even pages the long
//! one, odd pages the short one), the filtered list `POST /api/calls`, get/update/create of a
//! call, and a Retell-style data set with mixed casing, nulls, absent fields and `{}` latencies.

use crate::credentials::{ZUDU_API_KEY, ZUDU_API_SECRET};
use crate::data::{self, REFERENCE_UNIX};
use crate::server::{SimRequest, SimResponse};
use crate::zudu_data::generate_one;
use crate::SimOptions;
use fastrand::Rng;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// Canonical statuses; the data set also uses lower-case spellings.
pub const STATUSES: [&str; 5] = ["REGISTERED", "ONGOING", "ENDED", "ERROR", "SCHEDULED"];

/// Fields the list may be sorted by.
const SORT_FIELDS: [&str; 5] = [
    "start_timestamp",
    "end_timestamp",
    "created_at",
    "updated_at",
    "call_duration",
];

pub(crate) struct State {
    org_id: String,
    agents: Vec<String>,
    /// Generation order; lists sort on demand.
    calls: Vec<Value>,
    clock: i64,
    /// With `SimOptions::live_step`: created calls that are still playing their conversation.
    live: Option<crate::live::Live>,
}

/// The list request after validation.
struct ListQuery {
    page: u64,
    limit: Option<u64>,
    sort_by: String,
    descending: bool,
    filters: Value,
}

impl State {
    pub fn generate(opts: &SimOptions) -> State {
        let mut rng = Rng::with_seed(opts.seed ^ 0x2D0D_2D0D);
        let org_id = format!("org_{}", data::hex(&mut rng, 12));
        let agents: Vec<String> = (0..4)
            .map(|_| format!("agent_{}", data::hex(&mut rng, 24)))
            .collect();
        let calls = (0..opts.calls_per_vendor)
            .map(|i| generate_one(&mut rng, i, &org_id, &agents))
            .collect();
        State {
            org_id,
            agents,
            calls,
            clock: 0,
            live: crate::live::Live::new(opts.live_step, opts.seed ^ 0x11FE),
        }
    }

    pub fn records(&self) -> Vec<Value> {
        self.sorted("start_timestamp", true)
            .into_iter()
            .cloned()
            .collect()
    }

    fn sorted(&self, field: &str, descending: bool) -> Vec<&Value> {
        let mut calls: Vec<&Value> = self.calls.iter().collect();
        calls.sort_by(|a, b| {
            let ka = a.get(field).and_then(Value::as_f64);
            let kb = b.get(field).and_then(Value::as_f64);
            let primary = match (ka, kb) {
                (Some(x), Some(y)) => {
                    let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                    if descending {
                        o.reverse()
                    } else {
                        o
                    }
                }
                // Records without the field come last in either order.
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            primary.then_with(|| call_id(a).cmp(call_id(b)))
        });
        calls
    }

    /// The next run-time instant in epoch ms: after the reference instant, one second apart.
    fn tick(&mut self) -> i64 {
        self.clock += 1;
        (REFERENCE_UNIX + self.clock) * 1000
    }

    /// Moves every playing call to where its time has come: its transcript grows a line per
    /// step, and a step after the last line the call ends.
    fn progress(&mut self) {
        crate::live::play(
            &mut self.live,
            &mut self.clock,
            &mut self.calls,
            |c: &Value| c["call_id"].as_str().unwrap_or_default(),
            |call, step, tick| {
                let now = (REFERENCE_UNIX + tick) * 1000;
                if let Some(Value::Array(lines)) = call.get_mut("transcript_object") {
                    for (_, agent, line) in &step.lines {
                        lines.push(
                            json!({"role": if *agent { "agent" } else { "user" }, "content": line}),
                        );
                    }
                }
                let turns: Vec<(bool, String)> = call["transcript_object"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        (
                            l["role"] == "agent",
                            l["content"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                call["transcript"] = json!(data::transcript_text(&turns, "Agent", "User"));
                if step.ended {
                    let started = call["start_timestamp"].as_i64().unwrap_or(now);
                    call["call_status"] = json!("ENDED");
                    call["end_timestamp"] = json!(now);
                    call["call_duration"] = json!(now - started);
                    call["disconnection_reason"] = json!("user_hangup");
                    call["updated_at"] = json!(now);
                }
            },
        );
    }

    pub fn handle(&mut self, req: &SimRequest) -> SimResponse {
        self.progress();
        match (req.header("x-api-key"), req.header("x-api-secret")) {
            (Some(k), Some(s)) if k == ZUDU_API_KEY && s == ZUDU_API_SECRET => {}
            (Some(_), Some(_)) => return error(401, "Unauthorized", "Invalid API key or secret"),
            _ => {
                return error(
                    401,
                    "Unauthorized",
                    "Missing X-API-KEY or X-API-SECRET header",
                )
            }
        }
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("GET", ["api", "calls"]) => match list_query_from_params(req) {
                Ok(q) => self.list(q),
                Err(e) => error(400, "Invalid query parameters", &e),
            },
            ("POST", ["api", "calls"]) => match list_query_from_body(req) {
                Ok(q) => self.list(q),
                Err(e) => error(400, "Invalid request body", &e),
            },
            ("POST", ["api", "calls", "create-phone-call"]) => self.create(req),
            ("GET", ["api", "calls", id]) => match self.find(id) {
                Some(i) => envelope(200, "Call retrieved successfully", self.calls[i].clone()),
                None => not_found(id),
            },
            ("PUT", ["api", "calls", id]) => self.update(id, req),
            (_, ["api", "calls"]) | (_, ["api", "calls", _]) => error(
                405,
                "Method not allowed",
                &format!("{} is not supported here", req.method),
            ),
            _ => error(
                404,
                "Not found",
                &format!("Route {} {} not found", req.method, req.path),
            ),
        }
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.calls.iter().position(|c| {
            c.get("call_id").and_then(Value::as_str) == Some(id)
                || c.get("id").and_then(Value::as_str) == Some(id)
        })
    }

    fn list(&self, q: ListQuery) -> SimResponse {
        let matching: Vec<&Value> = self
            .sorted(&q.sort_by, q.descending)
            .into_iter()
            .filter(|c| matches_filters(c, &q.filters))
            .collect();
        let total = matching.len() as u64;
        let (calls, total_pages): (Vec<Value>, u64) = match q.limit {
            Some(limit) => {
                let start = q.page.saturating_mul(limit);
                let page: Vec<Value> = matching
                    .iter()
                    .skip(usize::try_from(start).unwrap_or(usize::MAX))
                    .take(limit as usize)
                    .map(|c| (*c).clone())
                    .collect();
                (page, total.div_ceil(limit))
            }
            None => {
                let all = if q.page == 0 {
                    matching.iter().map(|c| (*c).clone()).collect()
                } else {
                    Vec::new()
                };
                (all, u64::from(total > 0))
            }
        };
        let limit = q.limit.map(Value::from).unwrap_or(Value::Null);
        let pagination = if q.page.is_multiple_of(2) {
            json!({
                "page": q.page, "limit": limit, "total_count": total, "total_pages": total_pages,
                "has_next_page": q.page.saturating_add(1) < total_pages, "has_previous_page": q.page > 0,
            })
        } else {
            json!({"page": q.page, "limit": limit, "total": total, "total_pages": total_pages})
        };
        let returned = calls.len();
        envelope(
            200,
            "Calls retrieved successfully",
            json!({
                "organization_id": self.org_id,
                "calls": calls,
                "pagination": pagination,
                "returned_count": returned,
                "sort_order": if q.descending { "descending" } else { "ascending" },
                "sort_by": q.sort_by,
                "applied_filters": q.filters,
            }),
        )
    }

    fn create(&mut self, req: &SimRequest) -> SimResponse {
        let Some(Value::Object(body)) = req.json() else {
            return error(400, "Invalid request body", "Body must be a JSON object");
        };
        let number = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|n| is_e164(n))
                .map(str::to_string)
        };
        let Some(from) = number("from_number") else {
            return error(
                400,
                "Invalid request body",
                "from_number must be an E.164 number",
            );
        };
        let Some(to) = number("to_number") else {
            return error(
                400,
                "Invalid request body",
                "to_number must be an E.164 number",
            );
        };
        let agent_id = match body.get("override_agent_id") {
            None | Some(Value::Null) => self.agents[0].clone(),
            Some(Value::String(a)) => a.clone(),
            Some(_) => {
                return error(
                    400,
                    "Invalid request body",
                    "override_agent_id must be a string",
                )
            }
        };
        let metadata = match body.get("metadata") {
            None | Some(Value::Null) => json!({}),
            Some(m @ Value::Object(_)) => m.clone(),
            Some(_) => return error(400, "Invalid request body", "metadata must be an object"),
        };
        let now = self.tick();
        let call_id = format!("call_{}", uuid::Uuid::new_v4().simple());
        let call = json!({
            "id": uuid::Uuid::new_v4().to_string(), "call_id": call_id, "agent_id": agent_id,
            "organization_id": self.org_id, "call_status": "ONGOING", "call_type": "PHONE_CALL",
            "direction": "OUTBOUND", "from_number": from, "to_number": to,
            "start_timestamp": now, "end_timestamp": null, "call_duration": null,
            "disconnection_reason": null, "recording_url": null,
            "public_log_url": format!("https://logs.example.com/zudu/{call_id}"),
            "opt_out_sensitive_data_storage": false, "metadata": metadata, "events": [],
            "transcript": "", "transcript_object": [], "transcript_with_tool_calls": [],
            "latency": {}, "call_analysis": null, "call_cost": {"combined_cost": 0},
            "created_at": now, "updated_at": now,
        });
        self.calls.push(call.clone());
        if let Some(live) = self.live.as_mut() {
            live.start(&call_id);
        }
        envelope(
            201,
            "Phone call initiated successfully",
            json!({"status": "call_initiated", "call": call}),
        )
    }

    fn update(&mut self, id: &str, req: &SimRequest) -> SimResponse {
        let Some(Value::Object(body)) = req.json() else {
            return error(400, "Invalid request body", "Body must be a JSON object");
        };
        let text = |k: &str| -> Result<Option<String>, String> {
            match body.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{k} must be a string")),
            }
        };
        let checked = (|| {
            let status = text("call_status")?;
            if let Some(s) = &status {
                if !STATUSES.iter().any(|c| c.eq_ignore_ascii_case(s)) {
                    return Err(format!(
                        "call_status must be one of {}",
                        STATUSES.join(", ")
                    ));
                }
            }
            let direction = text("direction")?;
            if let Some(d) = &direction {
                if !d.eq_ignore_ascii_case("inbound") && !d.eq_ignore_ascii_case("outbound") {
                    return Err("direction must be INBOUND or OUTBOUND".to_string());
                }
            }
            let from = text("from_number")?;
            let metadata = match body.get("metadata") {
                None | Some(Value::Null) => None,
                Some(Value::Object(m)) => Some(m.clone()),
                Some(_) => return Err("metadata must be an object".to_string()),
            };
            Ok((status, direction, from, metadata))
        })();
        let (status, direction, from, metadata) = match checked {
            Ok(c) => c,
            Err(e) => return error(400, "Invalid request body", &e),
        };
        let Some(idx) = self.find(id) else {
            return not_found(id);
        };
        let now = self.tick();
        let call = &mut self.calls[idx];
        if let Some(obj) = call.as_object_mut() {
            if let Some(s) = status {
                obj.insert("call_status".into(), json!(s));
            }
            if let Some(d) = direction {
                obj.insert("direction".into(), json!(d));
            }
            if let Some(f) = from {
                obj.insert("from_number".into(), json!(f));
            }
            if let Some(m) = metadata {
                let merged = obj
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !merged.is_object() {
                    *merged = Value::Object(Map::new());
                }
                if let Some(target) = merged.as_object_mut() {
                    for (k, v) in m {
                        target.insert(k, v);
                    }
                }
            }
            obj.insert("updated_at".into(), json!(now));
        }
        envelope(200, "Call updated successfully", call.clone())
    }
}

fn call_id(v: &Value) -> &str {
    v.get("call_id").and_then(Value::as_str).unwrap_or("")
}

fn is_e164(n: &str) -> bool {
    n.len() > 4 && n.starts_with('+') && n[1..].bytes().all(|b| b.is_ascii_digit())
}

fn parse_sort(sort_by: Option<&str>, sort_order: Option<&str>) -> Result<(String, bool), String> {
    let sort_by = sort_by.unwrap_or("start_timestamp");
    if !SORT_FIELDS.contains(&sort_by) {
        return Err(format!("sort_by must be one of {}", SORT_FIELDS.join(", ")));
    }
    let descending = match sort_order.map(str::to_ascii_lowercase).as_deref() {
        None | Some("descending") | Some("desc") => true,
        Some("ascending") | Some("asc") => false,
        Some(_) => return Err("sort_order must be ascending or descending".to_string()),
    };
    Ok((sort_by.to_string(), descending))
}

fn check_limit(limit: i64) -> Result<u64, String> {
    if (1..=100).contains(&limit) {
        Ok(limit as u64)
    } else {
        Err("limit must be between 1 and 100".to_string())
    }
}

fn list_query_from_params(req: &SimRequest) -> Result<ListQuery, String> {
    let page = match req.query_param("page") {
        None => 0,
        Some(p) => p
            .parse::<u64>()
            .map_err(|_| "page must be a non-negative integer".to_string())?,
    };
    let limit = match req.query_param("limit") {
        None => None,
        Some(l) => Some(check_limit(
            l.parse::<i64>()
                .map_err(|_| "limit must be an integer".to_string())?,
        )?),
    };
    let (sort_by, descending) = parse_sort(
        req.query_param("sort_by").as_deref(),
        req.query_param("sort_order").as_deref(),
    )?;
    Ok(ListQuery {
        page,
        limit,
        sort_by,
        descending,
        filters: json!({}),
    })
}

fn list_query_from_body(req: &SimRequest) -> Result<ListQuery, String> {
    let body = if req.body.is_empty() {
        Map::new()
    } else {
        match req.json() {
            Some(Value::Object(b)) => b,
            _ => return Err("Body must be a JSON object".to_string()),
        }
    };
    let page = match body.get("page") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| "page must be a non-negative integer".to_string())?,
    };
    let limit = match body.get("limit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(check_limit(
            v.as_i64()
                .ok_or_else(|| "limit must be an integer".to_string())?,
        )?),
    };
    let text = |k: &str| -> Result<Option<&str>, String> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("{k} must be a string")),
        }
    };
    let (sort_by, descending) = parse_sort(text("sort_by")?, text("sort_order")?)?;
    let filters = match body.get("filter_criteria") {
        None | Some(Value::Null) => json!({}),
        Some(f @ Value::Object(_)) => {
            validate_filters(f)?;
            f.clone()
        }
        Some(_) => return Err("filter_criteria must be an object".to_string()),
    };
    Ok(ListQuery {
        page,
        limit,
        sort_by,
        descending,
        filters,
    })
}

fn validate_filters(f: &Value) -> Result<(), String> {
    for key in ["call_status", "call_type"] {
        match f.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
            Some(_) => return Err(format!("filter_criteria.{key} must be an array of strings")),
        }
    }
    for key in ["agent_id", "transcript_search"] {
        if !matches!(
            f.get(key),
            None | Some(Value::Null) | Some(Value::String(_))
        ) {
            return Err(format!("filter_criteria.{key} must be a string"));
        }
    }
    match f.get("duration_ms") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(d)) => {
            for key in ["lower_threshold", "upper_threshold"] {
                if !matches!(
                    d.get(key),
                    None | Some(Value::Null) | Some(Value::Number(_))
                ) {
                    return Err(format!(
                        "filter_criteria.duration_ms.{key} must be a number"
                    ));
                }
            }
            Ok(())
        }
        Some(_) => Err("filter_criteria.duration_ms must be an object".to_string()),
    }
}

fn matches_filters(call: &Value, f: &Value) -> bool {
    let field = |k: &str| call.get(k).and_then(Value::as_str).unwrap_or("");
    for key in ["call_status", "call_type"] {
        if let Some(wanted) = f.get(key).and_then(Value::as_array) {
            let have = field(key);
            if !wanted
                .iter()
                .filter_map(Value::as_str)
                .any(|w| w.eq_ignore_ascii_case(have))
            {
                return false;
            }
        }
    }
    if let Some(agent) = f.get("agent_id").and_then(Value::as_str) {
        if field("agent_id") != agent {
            return false;
        }
    }
    if let Some(d) = f.get("duration_ms") {
        let lower = d.get("lower_threshold").and_then(Value::as_f64);
        let upper = d.get("upper_threshold").and_then(Value::as_f64);
        if lower.is_some() || upper.is_some() {
            let Some(ms) = call.get("call_duration").and_then(Value::as_f64) else {
                return false;
            };
            if lower.is_some_and(|l| ms < l) || upper.is_some_and(|u| ms > u) {
                return false;
            }
        }
    }
    if let Some(q) = f.get("transcript_search").and_then(Value::as_str) {
        if !field("transcript")
            .to_lowercase()
            .contains(&q.to_lowercase())
        {
            return false;
        }
    }
    true
}

fn envelope(status: u16, message: &str, data: Value) -> SimResponse {
    SimResponse::json(
        status,
        &json!({"message": message, "status": "success", "error": null, "data": data}),
    )
}

fn error(status: u16, message: &str, detail: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({"message": message, "status": "error", "error": detail}),
    )
}

fn not_found(id: &str) -> SimResponse {
    error(
        404,
        "Call not found",
        &format!("Call with ID '{id}' does not exist"),
    )
}
