//! `GET /v1/providers`: the providers a tenant may use, what they can do, how they are doing.

use super::answer::Answer;
use crate::config::{Runtime, Tenant};
use crate::layers::health::{Health, HealthBoard};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderView<'a> {
    name: &'a str,
    vendor: &'a str,
    capabilities: Vec<&'static str>,
    health: Health,
    /// Vendor agent ids known for this provider (its `agents`, the canonical agents' ids there,
    /// the tenant's agent rules).
    agents: Vec<&'a str>,
    /// The canonical agents that run here: `{key, agentId}`.
    canonical_agents: Vec<CanonicalAgentView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CanonicalAgentView<'a> {
    key: &'a str,
    agent_id: &'a str,
}

#[derive(Serialize)]
struct ProviderList<'a> {
    data: Vec<ProviderView<'a>>,
}

pub fn list(rt: &Runtime, tenant: &Tenant, health: &HealthBoard) -> Answer {
    let data = tenant
        .providers
        .iter()
        .filter_map(|name| rt.provider(name))
        .map(|p| {
            let mut capabilities = Vec::new();
            if p.adapter.list.is_some() {
                capabilities.push("list_calls");
            }
            if p.adapter.get.is_some() {
                capabilities.push("get_call");
            }
            if p.adapter.create.is_some() {
                capabilities.push("create_call");
            }
            if p.adapter.update.is_some() {
                capabilities.push("update_call");
            }
            let canonical_agents: Vec<CanonicalAgentView> = rt
                .agents_of(tenant)
                .filter_map(|a| {
                    a.at.get(&p.name).map(|at| CanonicalAgentView {
                        key: &a.name,
                        agent_id: &at.agent_id,
                    })
                })
                .collect();
            // Vendor agent ids named anywhere in config for this provider: its own list, the
            // canonical agents' and the tenant's rules (a rule naming a canonical agent is not one).
            let mut agents: Vec<&str> = p.agents.iter().map(String::as_str).collect();
            let routed = tenant
                .agent_routes
                .iter()
                .filter(|(agent, provider)| *provider == p.name && !rt.agents.contains_key(agent))
                .map(|(agent, _)| agent.as_str());
            for agent in canonical_agents.iter().map(|c| c.agent_id).chain(routed) {
                if !agents.contains(&agent) {
                    agents.push(agent);
                }
            }
            ProviderView {
                name: &p.name,
                vendor: &p.adapter.vendor,
                capabilities,
                health: health.get(&p.name),
                agents,
                canonical_agents,
            }
        })
        .collect();
    Answer::json(200, &ProviderList { data })
}
