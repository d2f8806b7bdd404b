//! `GET /v1/providers`: the providers a tenant may use, what they can do, how they are doing.

use super::answer::Answer;
use crate::config::{Runtime, Tenant};
use crate::layers::health::{Health, HealthBoard};
use serde::Serialize;

#[derive(Serialize)]
struct ProviderView<'a> {
    name: &'a str,
    vendor: &'a str,
    capabilities: Vec<&'static str>,
    health: Health,
    agents: Vec<&'a str>,
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
            // Agents named anywhere in config for this provider: its own list and the tenant's rules.
            let mut agents: Vec<&str> = p.agents.iter().map(String::as_str).collect();
            for (agent, provider) in &tenant.agent_routes {
                if *provider == p.name && !agents.contains(&agent.as_str()) {
                    agents.push(agent);
                }
            }
            ProviderView {
                name: &p.name,
                vendor: &p.adapter.vendor,
                capabilities,
                health: health.get(&p.name),
                agents,
            }
        })
        .collect();
    Answer::json(200, &ProviderList { data })
}
