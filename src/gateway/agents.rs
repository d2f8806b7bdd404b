//! `GET /v1/agents`: the canonical agents a tenant may use — for each, the providers it runs at
//! (of those the tenant may use), its id there, the defaults its creates get there, and the
//! canonical create fields that vendor can take (the rest are refused or dropped, per
//! `Prefer: handling`).

use super::answer::Answer;
use crate::adapter::plan::WriteKind;
use crate::config::{Runtime, Tenant};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct AgentView<'a> {
    key: &'a str,
    description: Option<&'a str>,
    /// The agent's own weighted split (over the providers listed), if it has one.
    split: Option<BTreeMap<&'a str, u32>>,
    providers: Vec<AgentAtView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AgentAtView<'a> {
    provider: &'a str,
    vendor: &'a str,
    agent_id: &'a str,
    /// Fields filled in when a create lacks them (the agent's, then the provider's).
    defaults: serde_json::Value,
    /// Canonical create fields this vendor can take (empty: it cannot place calls).
    takes: Vec<&'a str>,
}

#[derive(Serialize)]
struct AgentList<'a> {
    data: Vec<AgentView<'a>>,
}

pub fn list(rt: &Runtime, tenant: &Tenant) -> Answer {
    let data = rt
        .agents_of(tenant)
        .map(|a| {
            let providers =
                a.at.iter()
                    .filter(|(p, _)| tenant.may_use(p))
                    .filter_map(|(p, at)| Some((rt.provider(p)?, at)))
                    .map(|(p, at)| {
                        let mut defaults = p.defaults.to_json();
                        if let (Some(all), serde_json::Value::Object(own)) =
                            (defaults.as_object_mut(), at.defaults.to_json())
                        {
                            all.extend(own);
                        }
                        AgentAtView {
                            provider: &p.name,
                            vendor: &p.adapter.vendor,
                            agent_id: &at.agent_id,
                            defaults,
                            takes: p
                                .adapter
                                .write_op(WriteKind::Create)
                                .map(|op| op.accepts.iter().map(String::as_str).collect())
                                .unwrap_or_default(),
                        }
                    })
                    .collect();
            AgentView {
                key: &a.name,
                description: a.description.as_deref(),
                split: a.split.as_ref().map(|s| {
                    s.iter()
                        .filter(|(p, _)| tenant.may_use(p))
                        .map(|(p, w)| (p.as_str(), *w))
                        .collect()
                }),
                providers,
            }
        })
        .collect();
    Answer::json(200, &AgentList { data })
}
