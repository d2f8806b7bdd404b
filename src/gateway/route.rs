//! Routing: which provider serves a request (DESIGN.md, "Routing"), and whether the tenant may
//! use it. Lists: explicit `provider` → agent rule → the tenant's default.

use crate::canonical::list_query::ListQuery;
use crate::canonical::{ErrorCode, Problem};
use crate::config::{DefaultRoute, Provider, Runtime, Tenant};
use std::sync::Arc;

/// Refuses a provider the tenant may not use.
pub fn authorize(tenant: &Tenant, provider: &Provider) -> Result<(), Problem> {
    if tenant.may_use(&provider.name) {
        Ok(())
    } else {
        Err(Problem::new(
            ErrorCode::Forbidden,
            format!(
                "tenant {:?} may not use provider {:?}",
                tenant.name, provider.name
            ),
        )
        .with_provider(&provider.name))
    }
}

/// The provider a list goes to.
pub fn for_list(rt: &Runtime, tenant: &Tenant, q: &ListQuery) -> Result<Arc<Provider>, Problem> {
    let name: &str = if let Some(p) = &q.provider {
        p
    } else if let Some(p) = q
        .filters
        .agent_id
        .as_deref()
        .and_then(|a| tenant.agent_routes.iter().find(|(agent, _)| agent == a))
        .map(|(_, p)| p)
    {
        p
    } else {
        match &tenant.default {
            Some(DefaultRoute::One(p)) => p,
            Some(DefaultRoute::Split(split)) => {
                let names: Vec<&str> = split.keys().map(String::as_str).collect();
                return Err(Problem::field(
                    ErrorCode::InvalidRequest,
                    "provider",
                    format!(
                        "this tenant's default route splits traffic across {}; name one (merged lists are not available yet)",
                        names.join(", ")
                    ),
                ));
            }
            None => {
                return Err(Problem::field(
                    ErrorCode::InvalidRequest,
                    "provider",
                    format!(
                        "this tenant has no default route; name one of {}",
                        tenant.providers.join(", ")
                    ),
                ))
            }
        }
    };
    let provider = rt.provider(name).cloned().ok_or_else(|| {
        Problem::field(
            ErrorCode::InvalidRequest,
            "provider",
            format!("no provider named {name:?}"),
        )
    })?;
    authorize(tenant, &provider)?;
    Ok(provider)
}
