//! Routing: which provider serves a request (DESIGN.md, "Routing"), and whether the tenant may
//! use it. Lists: explicit `provider` → agent rule → the tenant's default.

use crate::canonical::cursor::{Cursor, Position};
use crate::canonical::id::CallId;
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

fn no_default(tenant: &Tenant) -> Problem {
    Problem::field(
        ErrorCode::InvalidRequest,
        "provider",
        format!(
            "this tenant has no default route; name one of {}",
            tenant.providers.join(", ")
        ),
    )
}

/// The provider named `name` (by a request parameter or body field), if the tenant may use it.
fn named(rt: &Runtime, tenant: &Tenant, name: &str) -> Result<Arc<Provider>, Problem> {
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

/// The provider named in a call id (as it appears in a URL path), if the tenant may use it.
pub fn for_call_id(
    rt: &Runtime,
    tenant: &Tenant,
    raw_id: &str,
) -> Result<(Arc<Provider>, CallId), Problem> {
    let id = CallId::parse_path_segment(raw_id)
        .map_err(|e| Problem::field(ErrorCode::InvalidRequest, "id", e.to_string()))?;
    let provider = rt.provider(&id.provider).cloned().ok_or_else(|| {
        Problem::new(
            ErrorCode::NotFound,
            format!("no provider named {:?} (from the call id)", id.provider),
        )
    })?;
    authorize(tenant, &provider)?;
    Ok((provider, id))
}

/// Where a list walk stands: the provider and position its cursor names (one provider per walk
/// until merged lists exist). A `limit` other than the walk's page size is refused.
pub fn for_cursor(
    rt: &Runtime,
    tenant: &Tenant,
    raw: &str,
    q: &ListQuery,
) -> Result<(Arc<Provider>, Position), Problem> {
    let bad = |message: String| Problem::field(ErrorCode::InvalidCursor, "cursor", message);
    let cursor = Cursor::decode(raw, q.fingerprint()).map_err(|e| bad(e.to_string()))?;
    let at = cursor
        .positions
        .into_iter()
        .next()
        .ok_or_else(|| bad("the cursor holds no position".into()))?;
    let provider = rt.provider(&at.provider).cloned().ok_or_else(|| {
        bad(format!(
            "provider {:?} is no longer configured",
            at.provider
        ))
    })?;
    if let Some(named) = q.provider.as_deref().filter(|p| *p != at.provider) {
        return Err(bad(format!(
            "the cursor walks provider {:?}, not {named:?}; repeat the first request's filters",
            at.provider
        )));
    }
    authorize(tenant, &provider)?;
    if let Some(limit) = q.limit {
        if provider.adapter.page_size(limit) != at.size {
            return Err(Problem::field(
                ErrorCode::InvalidRequest,
                "limit",
                format!(
                    "a cursor walk keeps the page size it started with ({}); omit limit or pass {}",
                    at.size, at.size
                ),
            ));
        }
    }
    Ok((provider, at))
}

/// The provider a list goes to, and the rule that chose it.
pub fn for_list(
    rt: &Runtime,
    tenant: &Tenant,
    q: &ListQuery,
) -> Result<(Arc<Provider>, Rule), Problem> {
    let (name, rule): (&str, Rule) = if let Some(p) = &q.provider {
        (p, Rule::Explicit)
    } else if let Some((agent, p)) = q
        .filters
        .agent_id
        .as_deref()
        .and_then(|a| tenant.agent_routes.iter().find(|(agent, _)| agent == a))
    {
        (p, Rule::Agent(agent.clone()))
    } else {
        match &tenant.default {
            Some(DefaultRoute::One(p)) => (p, Rule::Default),
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
            None => return Err(no_default(tenant)),
        }
    };
    Ok((named(rt, tenant, name)?, rule))
}

/// Why a provider was chosen (for `explain` and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The request named the provider.
    Explicit,
    /// A tenant rule for this agent id.
    Agent(String),
    /// The tenant's default provider.
    Default,
    /// The tenant's weighted split: the bucket (0–99) that fell to the provider, drawn from the
    /// `Idempotency-Key` (`keyed`) or at random.
    Split { bucket: u8, keyed: bool },
    /// The call id names its provider.
    CallId,
    /// A list cursor names the provider and the position of the walk.
    Cursor { offset: u64 },
    /// The split's next provider, after `from` refused the create with nothing sent.
    Failover { from: String },
}

impl Rule {
    /// The rule as `explain` prints it, for the provider it chose.
    pub fn describe(&self, provider: &str) -> String {
        match self {
            Rule::Explicit => "explicit provider".into(),
            Rule::Agent(agent) => format!("agent rule agentId={agent} → {provider}"),
            Rule::Default => "tenant default".into(),
            Rule::Split {
                bucket,
                keyed: true,
            } => format!(
                "tenant default (weighted split; the Idempotency-Key falls in bucket {bucket} → {provider})"
            ),
            Rule::Split { keyed: false, .. } => format!(
                "tenant default (weighted split; without an Idempotency-Key the draw is random — {provider} this time)"
            ),
            Rule::CallId => format!("call id names provider {provider}"),
            Rule::Cursor { offset } => {
                format!("cursor names provider {provider} (offset {offset})")
            }
            Rule::Failover { from } => {
                format!("tenant default (weighted split): {from} refused, failed over to {provider}")
            }
        }
    }
}

/// The provider a create goes to: explicit `provider` → an agent rule → the default, which may be
/// a weighted split — decided by the `Idempotency-Key` when there is one (a retried create goes
/// to the same provider), else at random.
pub fn for_create(
    rt: &Runtime,
    tenant: &Tenant,
    provider: Option<&str>,
    agent_id: &str,
    idempotency_key: Option<&str>,
) -> Result<(Arc<Provider>, Rule), Problem> {
    let (name, rule): (String, Rule) = if let Some(p) = provider {
        (p.to_string(), Rule::Explicit)
    } else if let Some((_, p)) = tenant.agent_routes.iter().find(|(a, _)| a == agent_id) {
        (p.clone(), Rule::Agent(agent_id.to_string()))
    } else {
        match &tenant.default {
            Some(DefaultRoute::One(p)) => (p.clone(), Rule::Default),
            Some(DefaultRoute::Split(split)) => {
                let bucket = match idempotency_key {
                    Some(k) => {
                        use std::hash::Hasher;
                        let mut h = fnv::FnvHasher::default();
                        h.write(tenant.name.as_bytes());
                        h.write(b"\0");
                        h.write(k.as_bytes());
                        (h.finish() % 100) as u8
                    }
                    None => fastrand::u8(0..100),
                };
                let keyed = idempotency_key.is_some();
                (pick(split, bucket), Rule::Split { bucket, keyed })
            }
            None => return Err(no_default(tenant)),
        }
    };
    Ok((named(rt, tenant, &name)?, rule))
}

/// Where a create that `rule` routed goes when the providers `tried` refused it with nothing
/// sent: the next provider of the tenant's weighted split, heaviest first (ties by name), not
/// tried yet. Only a split fails over: a named provider, an agent rule or a single default is
/// what was asked for. `None`: nowhere left to go.
pub fn failover_for_create(
    rt: &Runtime,
    tenant: &Tenant,
    rule: &Rule,
    tried: &[String],
) -> Option<Result<Arc<Provider>, Problem>> {
    if !matches!(rule, Rule::Split { .. } | Rule::Failover { .. }) {
        return None;
    }
    let Some(DefaultRoute::Split(split)) = &tenant.default else {
        return None;
    };
    let mut order: Vec<(&String, &u32)> = split.iter().filter(|(_, w)| **w > 0).collect();
    order.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let next = order
        .into_iter()
        .map(|(name, _)| name)
        .find(|name| !tried.contains(name))?;
    Some(named(rt, tenant, next))
}

/// The provider whose cumulative weight range holds `bucket` (weights sum to 100).
fn pick(split: &std::collections::BTreeMap<String, u32>, bucket: u8) -> String {
    let mut upto = 0u32;
    for (name, weight) in split {
        upto += weight;
        if u32::from(bucket) < upto {
            return name.clone();
        }
    }
    split.keys().last().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fall_to_providers_by_weight() {
        let split =
            std::collections::BTreeMap::from([("a".to_string(), 90), ("b".to_string(), 10)]);
        let picks: Vec<String> = (0..100).map(|b| pick(&split, b)).collect();
        assert_eq!(picks.iter().filter(|p| *p == "a").count(), 90);
        assert_eq!(pick(&split, 95), "b");
    }
}
