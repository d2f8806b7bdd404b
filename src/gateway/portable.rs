//! Portable writes: one canonical body, whichever provider routing picks. Before the adapter
//! plans the vendor request, a create is made to fit its provider — the canonical agent becomes
//! the vendor's agent id there, and the fields the request lacks come from the agent's defaults
//! at that provider, then the provider's — and the handling of fields the vendor cannot take is
//! decided: the client's `Prefer: handling=…`, else the tenant's default for how the provider
//! was chosen (named by the request → `strict`; chosen by a rule or split → `lenient`).

use super::route::{self, Rule, Whom};
use crate::canonical::handling::Handling;
use crate::canonical::write::{AgentRef, CreateCall, UpdateCall};
use crate::canonical::{ErrorCode, Problem};
use crate::config::{Agent, Provider, Runtime, Tenant};
use serde_json::Value;
use std::sync::Arc;

/// The canonical agent a create names, if any.
pub fn agent_of(
    rt: &Runtime,
    tenant: &Tenant,
    create: &CreateCall,
) -> Result<Option<Arc<Agent>>, Problem> {
    match &create.agent {
        AgentRef::Canonical(name) => route::agent(rt, tenant, name).map(Some),
        AgentRef::Vendor(_) => Ok(None),
    }
}

/// Routing's view of whom a create is for.
pub fn whom<'a>(create: &'a CreateCall, agent: Option<&'a Agent>) -> Whom<'a> {
    match (agent, &create.agent) {
        (Some(a), _) => Whom::Agent(a),
        (None, AgentRef::Vendor(id) | AgentRef::Canonical(id)) => Whom::VendorId(id),
    }
}

/// The create as `provider` takes it: the agent's id there, and the defaults filled in (a pool
/// drawn from by `draw`).
pub fn create_for(
    create: &CreateCall,
    agent: Option<&Agent>,
    provider: &Provider,
    draw: u64,
) -> Result<CreateCall, Problem> {
    let mut json = create.json.clone();
    let mut vendor_id = match &create.agent {
        AgentRef::Vendor(id) => id.clone(),
        AgentRef::Canonical(name) => name.clone(),
    };
    if let Some(agent) = agent {
        let at = agent
            .at
            .get(&provider.name)
            .ok_or_else(|| not_there(&agent.name, &provider.name))?;
        vendor_id = at.agent_id.clone();
        if let Some(obj) = json.as_object_mut() {
            obj.remove("agent");
            obj.insert("agentId".into(), Value::from(vendor_id.as_str()));
        }
        at.defaults.fill(&mut json, draw);
    }
    provider.defaults.fill(&mut json, draw);
    Ok(CreateCall {
        provider: create.provider.clone(),
        agent: AgentRef::Vendor(vendor_id),
        channel: create.channel,
        json,
    })
}

/// An update as `provider` takes it: a canonical `agent` becomes the vendor's `agentId` there.
pub fn update_for(
    rt: &Runtime,
    tenant: &Tenant,
    update: &UpdateCall,
    provider: &Provider,
) -> Result<UpdateCall, Problem> {
    let Some(name) = &update.agent else {
        return Ok(update.clone());
    };
    let agent = route::agent(rt, tenant, name)?;
    let at = agent
        .at
        .get(&provider.name)
        .ok_or_else(|| not_there(name, &provider.name))?;
    let mut json = update.json.clone();
    if let Some(obj) = json.as_object_mut() {
        obj.remove("agent");
        obj.insert("agentId".into(), Value::from(at.agent_id.as_str()));
    }
    Ok(UpdateCall {
        status: update.status,
        agent: None,
        json,
    })
}

fn not_there(agent: &str, provider: &str) -> Problem {
    Problem::field(
        ErrorCode::InvalidRequest,
        "agent",
        format!("agent {agent:?} does not run at provider {provider:?}"),
    )
}

/// How a write treats fields its vendor cannot take: the client's preference, else the tenant's
/// default for a provider the request named (`named`) or one routing chose (`routed`; an update
/// goes where its create was routed).
pub fn handling(tenant: &Tenant, rule: &Rule, prefer: Option<Handling>) -> Handling {
    prefer.unwrap_or(match rule {
        Rule::Explicit => tenant.handling.named,
        _ => tenant.handling.routed,
    })
}
