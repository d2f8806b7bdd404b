//! Canonical agents (`[agents.NAME]`) and create defaults (`defaults = { … }` of an agent at a
//! provider, or of a provider): validated here, against the adapters, so that a create routed to
//! any provider of an agent can be placed — a mapping that lacks what its vendor requires, or
//! fills in a field its vendor cannot take, is a config error (`check` and a live reload refuse
//! it), never a 400 to a share of the traffic at 3 a.m.

use super::file::{AgentSection, ConfigFile};
use super::runtime::{Errors, Provider};
use crate::adapter::plan::WriteKind;
use crate::adapter::Adapter;
use crate::canonical::write::CreateCall;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A canonical agent: one bot, known by a different id at each provider that runs it.
#[derive(Debug)]
pub struct Agent {
    pub name: String,
    pub description: Option<String>,
    /// Provider → how the agent runs there.
    pub at: BTreeMap<String, AgentAt>,
    /// The agent's own weighted split over its providers.
    pub split: Option<BTreeMap<String, u32>>,
}

/// An agent at one provider.
#[derive(Debug)]
pub struct AgentAt {
    /// The vendor's id of the agent.
    pub agent_id: String,
    pub defaults: Defaults,
}

/// Canonical create fields filled in when a request lacks them.
#[derive(Debug, Clone, Default)]
pub struct Defaults(Vec<(String, DefaultValue)>);

#[derive(Debug, Clone)]
pub enum DefaultValue {
    One(Value),
    /// One of these, drawn per call (by the `Idempotency-Key` when there is one).
    Pool(Vec<Value>),
}

/// Top-level create fields a default may fill (the rest come from the client or from routing).
const DEFAULTABLE: [&str; 5] = ["from", "skillId", "agentOverride", "metadata", "test"];

impl Defaults {
    /// Fills each field `json` lacks; `draw` picks from a pool.
    pub fn fill(&self, json: &mut Value, draw: u64) {
        let Some(obj) = json.as_object_mut() else {
            return;
        };
        for (field, value) in &self.0 {
            if obj.get(field).is_some_and(|v| !v.is_null()) {
                continue;
            }
            let value = match value {
                DefaultValue::One(v) => v.clone(),
                DefaultValue::Pool(pool) => pool[(draw % pool.len() as u64) as usize].clone(),
            };
            obj.insert(field.clone(), value);
        }
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f == field)
    }

    /// The defaults as JSON (a pool as its list), for `GET /v1/agents`.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(f, v)| {
                    let v = match v {
                        DefaultValue::One(v) => v.clone(),
                        DefaultValue::Pool(p) => Value::Array(p.clone()),
                    };
                    (f.clone(), v)
                })
                .collect(),
        )
    }
}

/// Reads and checks a `defaults` table at `key`: known fields, values a create accepts, and
/// fields the provider's vendor can take.
pub(super) fn defaults(
    errs: &mut Errors,
    key: &str,
    table: &serde_json::Map<String, Value>,
    adapter: Option<&Adapter>,
) -> Defaults {
    let mut out = Vec::new();
    for (field, value) in table {
        let at = format!("{key}.defaults.{field}");
        if !DEFAULTABLE.contains(&field.as_str()) {
            errs.add(
                at,
                format!(
                    "not a field a default can fill (known: {})",
                    DEFAULTABLE.join(", ")
                ),
            );
            continue;
        }
        if let Some((op, vendor)) =
            adapter.and_then(|a| Some((a.write_op(WriteKind::Create).ok()?, &a.vendor)))
        {
            if !op.takes(field) {
                errs.add(
                    &at,
                    format!(
                        "vendor {vendor:?} cannot take {field} (it takes {})",
                        op.accepts.join(", ")
                    ),
                );
            }
        }
        let values = match value {
            Value::Array(list) if list.iter().all(Value::is_string) && !list.is_empty() => {
                list.clone()
            }
            Value::Array(_) => {
                errs.add(&at, "a pool is a non-empty list of strings");
                continue;
            }
            one => vec![one.clone()],
        };
        for v in &values {
            // The same checks as a client's request: a default is never a worse value.
            let probe = serde_json::json!({"agentId": "probe", "to": "+14155550100", field: v});
            if let Err(problem) = CreateCall::parse(probe.to_string().as_bytes()) {
                let why = problem
                    .errors
                    .first()
                    .map_or(problem.detail.clone(), |e| e.message.clone());
                errs.add(&at, why);
            }
        }
        let value = match (value, values.len()) {
            (Value::Array(_), _) => DefaultValue::Pool(values),
            _ => DefaultValue::One(value.clone()),
        };
        out.push((field.clone(), value));
    }
    Defaults(out)
}

/// The vendor agent id → canonical name index of one provider (for `agent.key` on reads).
pub(super) fn keys_at(cfg: &ConfigFile, provider: &str) -> BTreeMap<String, String> {
    cfg.agents
        .iter()
        .filter_map(|(name, a)| {
            a.providers
                .get(provider)
                .map(|at| (at.agent_id.clone(), name.clone()))
        })
        .collect()
}

/// Builds and checks every `[agents.NAME]` over the providers built so far.
pub(super) fn build(
    errs: &mut Errors,
    cfg: &ConfigFile,
    providers: &BTreeMap<String, Arc<Provider>>,
) -> BTreeMap<String, Arc<Agent>> {
    let mut agents = BTreeMap::new();
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (name, a) in &cfg.agents {
        let key = format!("agents.{name}");
        if !super::runtime::valid_name(name) {
            errs.add(
                &key,
                "agent names are lowercase letters, digits, '-' or '_'",
            );
        }
        if a.providers.is_empty() {
            errs.add(
                format!("{key}.providers"),
                "an agent runs at one provider at least",
            );
        }
        let mut at = BTreeMap::new();
        for (pname, m) in &a.providers {
            let pkey = format!("{key}.providers.{pname}");
            if m.agent_id.trim().is_empty() || matches!(m.agent_id.as_str(), "." | "..") {
                errs.add(format!("{pkey}.agent_id"), "must be a vendor agent id");
            }
            if let Some(other) = seen.insert((pname, &m.agent_id), name) {
                errs.add(
                    format!("{pkey}.agent_id"),
                    format!("agent {other:?} already has this id at {pname:?}"),
                );
            }
            let provider = providers.get(pname);
            if provider.is_none() && !cfg.providers.contains_key(pname) {
                errs.add(&pkey, format!("no provider named {pname:?}"));
            }
            let defaults = defaults(errs, &pkey, &m.defaults, provider.map(|p| &*p.adapter));
            if let Some(p) = provider {
                complete(errs, &pkey, p, &defaults);
            }
            at.insert(
                pname.clone(),
                AgentAt {
                    agent_id: m.agent_id.clone(),
                    defaults,
                },
            );
        }
        check_split(errs, &key, a);
        agents.insert(
            name.clone(),
            Arc::new(Agent {
                name: name.clone(),
                description: a.description.clone(),
                at,
                split: a.split.clone(),
            }),
        );
    }
    agents
}

/// A mapping must be able to place a call: every field the vendor requires beyond the
/// canonical minimum comes from the agent's defaults there or the provider's.
fn complete(errs: &mut Errors, key: &str, provider: &Provider, own: &Defaults) {
    let Ok(op) = provider.adapter.write_op(WriteKind::Create) else {
        return;
    };
    for field in &op.require {
        if !own.has(field) && !provider.defaults.has(field) {
            errs.add(
                key,
                format!(
                    "vendor {:?} requires {field} to place a call: set defaults.{field} here or in providers.{}.defaults",
                    provider.adapter.vendor, provider.name
                ),
            );
        }
    }
}

fn check_split(errs: &mut Errors, key: &str, a: &AgentSection) {
    if let Some(split) = &a.split {
        errs.weights(
            &format!("{key}.split"),
            split,
            &|p| a.providers.contains_key(p),
            "the agent does not run there (no providers entry)",
        );
    }
}

impl Agent {
    /// Whether the agent runs at `provider`.
    pub fn runs_at(&self, provider: &str) -> bool {
        self.at.contains_key(provider)
    }
}
