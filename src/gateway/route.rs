//! Routing: which provider serves a request (DESIGN.md, "Routing"), and whether the tenant may
//! use it. Lists: explicit `provider` → agent rule → the tenant's default. Creates: explicit
//! `provider` → agent rule → the canonical agent's own split → the tenant's default (narrowed to
//! the providers the agent runs at) → the one provider the agent runs at.

use crate::canonical::cursor::{Cursor, Position};
use crate::canonical::id::CallId;
use crate::canonical::list_query::ListQuery;
use crate::canonical::{ErrorCode, Problem};
use crate::config::{Agent, DefaultRoute, Provider, Runtime, Tenant};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whom a create is for, as routing sees it.
#[derive(Debug, Clone, Copy)]
pub enum Whom<'a> {
    /// A canonical agent: it runs where the config maps it.
    Agent(&'a Agent),
    /// One vendor's agent id: it runs wherever it is sent.
    VendorId(&'a str),
}

impl Whom<'_> {
    fn name(&self) -> &str {
        match self {
            Whom::Agent(a) => &a.name,
            Whom::VendorId(id) => id,
        }
    }

    fn runs_at(&self, provider: &str) -> bool {
        match self {
            Whom::Agent(a) => a.runs_at(provider),
            Whom::VendorId(_) => true,
        }
    }
}

/// The canonical agent `name`, if the tenant may use it (it runs at one of its providers).
pub fn agent(rt: &Runtime, tenant: &Tenant, name: &str) -> Result<Arc<Agent>, Problem> {
    rt.agents_of(tenant)
        .find(|a| a.name == name)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = rt.agents_of(tenant).map(|a| a.name.as_str()).collect();
            Problem::field(
                ErrorCode::InvalidRequest,
                "agent",
                if known.is_empty() {
                    format!("no agent named {name:?}: this tenant has no canonical agents (GET /v1/agents); send agentId and provider instead")
                } else {
                    format!("no agent named {name:?} (this tenant's agents: {})", known.join(", "))
                },
            )
        })
}

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
pub fn named(rt: &Runtime, tenant: &Tenant, name: &str) -> Result<Arc<Provider>, Problem> {
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

/// Where a single-provider list walk stands: the provider and position its cursor names. A
/// `limit` other than the walk's page size is refused.
pub fn for_cursor(
    rt: &Runtime,
    tenant: &Tenant,
    raw: &str,
    q: &ListQuery,
) -> Result<(Arc<Provider>, Position), Problem> {
    let bad = |message: String| Problem::field(ErrorCode::InvalidCursor, "cursor", message);
    let cursor = Cursor::decode(raw, q.fingerprint()).map_err(|e| bad(e.to_string()))?;
    let [at]: [Position; 1] = cursor.positions.try_into().map_err(|_| {
        bad(
            "the cursor walks several providers; repeat the first request's provider and agent"
                .into(),
        )
    })?;
    let provider = rt.provider(&at.provider).cloned().ok_or_else(|| {
        bad(format!(
            "provider {:?} is no longer configured",
            at.provider
        ))
    })?;
    if let Some(named) = q.providers.iter().find(|p| **p != at.provider) {
        return Err(bad(format!(
            "the cursor walks provider {:?}, not {named:?}; repeat the first request's filters",
            at.provider
        )));
    }
    authorize(tenant, &provider)?;
    page_size_kept(&provider, q, &at)?;
    Ok((provider, at))
}

/// A cursor walk keeps the page size it started with.
pub fn page_size_kept(provider: &Provider, q: &ListQuery, at: &Position) -> Result<(), Problem> {
    match q.limit {
        Some(limit) if provider.adapter.page_size(limit) != at.size => Err(Problem::field(
            ErrorCode::InvalidRequest,
            "limit",
            format!(
                "a cursor walk keeps the page size it started with ({}); omit limit or pass {}",
                at.size, at.size
            ),
        )),
        _ => Ok(()),
    }
}

/// One list a walk reads: a provider and, for a vendor that lists per agent, the agent.
#[derive(Debug, Clone)]
pub struct Source {
    pub provider: Arc<Provider>,
    /// The vendor agent id this source's list is scoped to (its `agentId` filter).
    pub agent: Option<String>,
}

/// What a list covers: its sources in merge order, the providers it cannot cover and why,
/// and the rule that chose them.
#[derive(Debug)]
pub struct ListSources {
    pub sources: Vec<Source>,
    pub skipped: Vec<(String, Problem)>,
    pub rule: Rule,
}

/// The sources of a list: the `provider` parameter's (`a,b`) → an agent rule for its `agentId`
/// → every provider the tenant may use. A canonical `agent` narrows them to the providers it
/// runs at, each scoped to its id there; a vendor that lists per agent (Bimpe) without one
/// fans out over the agents the config knows there.
pub fn for_list(rt: &Runtime, tenant: &Tenant, q: &ListQuery) -> Result<ListSources, Problem> {
    let agent = q
        .agent
        .as_deref()
        .map(|name| agent(rt, tenant, name))
        .transpose()?;
    let routed = q
        .filters
        .agent_id
        .as_deref()
        .and_then(|a| tenant.agent_routes.iter().find(|(agent, _)| agent == a));
    let (names, rule): (Vec<String>, Rule) = if !q.providers.is_empty() {
        (q.providers.clone(), Rule::Explicit)
    } else if let Some((agent, p)) = routed {
        (vec![p.clone()], Rule::Agent(agent.clone()))
    } else {
        (tenant.providers.clone(), Rule::Every)
    };
    let explicit = rule == Rule::Explicit;
    let mut sources = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        let provider = named(rt, tenant, &name)?;
        if let Some(a) = &agent {
            match a.at.get(&name) {
                Some(at) => sources.push(Source {
                    provider,
                    agent: Some(at.agent_id.clone()),
                }),
                None if explicit => return Err(not_there(Whom::Agent(a), &name)),
                None => {}
            }
            continue;
        }
        if q.filters.agent_id.is_some() || !provider.adapter.lists_per_agent() {
            sources.push(Source {
                provider,
                agent: None,
            });
            continue;
        }
        let known = known_agents(rt, tenant, &provider);
        if known.is_empty() {
            let problem = Problem::field(
                ErrorCode::InvalidRequest,
                "agentId",
                format!(
                    "required by provider {name:?}: {} lists calls per agentId, and the config names no agent there (providers.{name}.agents or [agents])",
                    provider.adapter.vendor
                ),
            );
            skipped.push((name, problem));
        }
        for id in known {
            sources.push(Source {
                provider: provider.clone(),
                agent: Some(id),
            });
        }
    }
    if sources.is_empty() {
        return Err(match skipped.into_iter().next() {
            Some((_, problem)) => problem,
            None => Problem::field(
                ErrorCode::InvalidRequest,
                "agent",
                "the agent runs at none of the providers asked for",
            ),
        });
    }
    Ok(ListSources {
        sources,
        skipped,
        rule,
    })
}

/// The vendor agent ids the config knows at `provider`: its `agents`, the canonical agents'
/// ids there, and the tenant's agent rules to it; in that order, once each.
fn known_agents(rt: &Runtime, tenant: &Tenant, provider: &Provider) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let canonical = rt
        .agents_of(tenant)
        .filter_map(|a| a.at.get(&provider.name).map(|at| at.agent_id.clone()));
    let routed = tenant
        .agent_routes
        .iter()
        .filter(|(a, p)| *p == provider.name && !rt.agents.contains_key(a))
        .map(|(a, _)| a.clone());
    for id in provider
        .agents
        .iter()
        .cloned()
        .chain(canonical)
        .chain(routed)
    {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Why a provider was chosen (for `explain` and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The request named the provider.
    Explicit,
    /// A list over every provider the tenant may use.
    Every,
    /// A tenant rule for this agent id.
    Agent(String),
    /// The tenant's default provider.
    Default,
    /// A weighted split — the canonical `agent`'s own, else the tenant's default: the bucket
    /// (0–99) that fell to the provider, drawn from the `Idempotency-Key` (`keyed`) or at random.
    Split {
        bucket: u8,
        keyed: bool,
        agent: Option<String>,
    },
    /// The canonical agent runs at this provider only (of those the tenant may use).
    AgentOnly(String),
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
            Rule::Every => "every provider the tenant may use (a merged list)".into(),
            Rule::Agent(agent) => format!("agent rule {agent} → {provider}"),
            Rule::Default => "tenant default".into(),
            Rule::Split {
                bucket,
                keyed: true,
                agent,
            } => format!(
                "{} (weighted split; the Idempotency-Key falls in bucket {bucket} → {provider})",
                split_owner(agent)
            ),
            Rule::Split {
                keyed: false,
                agent,
                ..
            } => format!(
                "{} (weighted split; without an Idempotency-Key the draw is random — {provider} this time)",
                split_owner(agent)
            ),
            Rule::AgentOnly(agent) => format!("agent {agent} runs only at {provider}"),
            Rule::CallId => format!("call id names provider {provider}"),
            Rule::Cursor { offset } => {
                format!("cursor names provider {provider} (offset {offset})")
            }
            Rule::Failover { from } => {
                format!("weighted split: {from} refused, failed over to {provider}")
            }
        }
    }
}

fn split_owner(agent: &Option<String>) -> String {
    match agent {
        Some(a) => format!("agent {a}'s split"),
        None => "tenant default".into(),
    }
}

/// The provider a create goes to, and the rule that chose it. A weighted split is decided by the
/// `Idempotency-Key` when there is one (a retried create goes to the same provider), else at
/// random.
pub fn for_create(
    rt: &Runtime,
    tenant: &Tenant,
    provider: Option<&str>,
    whom: Whom<'_>,
    idempotency_key: Option<&str>,
) -> Result<(Arc<Provider>, Rule), Problem> {
    if let Some(p) = provider {
        let named = named(rt, tenant, p)?;
        if !whom.runs_at(p) {
            return Err(not_there(whom, p));
        }
        return Ok((named, Rule::Explicit));
    }
    if let Some((agent, p)) = tenant.agent_routes.iter().find(|(a, _)| a == whom.name()) {
        return Ok((named(rt, tenant, p)?, Rule::Agent(agent.clone())));
    }
    let (name, rule) = match placement(tenant, whom)? {
        Placement::One(p, rule) => (p, rule),
        Placement::Split(split, agent) => {
            let bucket = match idempotency_key {
                Some(k) => (draw(tenant, k, b"split") % 100) as u8,
                None => fastrand::u8(0..100),
            };
            let keyed = idempotency_key.is_some();
            (
                pick(&split, bucket),
                Rule::Split {
                    bucket,
                    keyed,
                    agent,
                },
            )
        }
    };
    Ok((named(rt, tenant, &name)?, rule))
}

/// The providers of the split a create for `whom` would be routed by (none without one).
pub fn split_of(tenant: &Tenant, whom: Whom<'_>) -> Vec<String> {
    match placement(tenant, whom) {
        Ok(Placement::Split(split, _)) => split.into_keys().collect(),
        _ => Vec::new(),
    }
}

/// A stable draw for one tenant's `Idempotency-Key` (salted by what it decides), so a retried
/// request decides alike.
pub fn draw(tenant: &Tenant, key: &str, what: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(tenant.name.as_bytes());
    h.write(b"\0");
    h.write(key.as_bytes());
    // The split's draw is unsalted, as before salts existed: a create retried across an upgrade
    // with the same key still goes to the same provider.
    if what != b"split" {
        h.write(b"\0");
        h.write(what);
    }
    h.finish()
}

fn not_there(whom: Whom<'_>, provider: &str) -> Problem {
    let at: Vec<&str> = match whom {
        Whom::Agent(a) => a.at.keys().map(String::as_str).collect(),
        Whom::VendorId(_) => Vec::new(),
    };
    Problem::field(
        ErrorCode::InvalidRequest,
        "provider",
        format!(
            "agent {:?} does not run at provider {provider:?} (it runs at {})",
            whom.name(),
            at.join(", ")
        ),
    )
}

/// Where a create without a named provider or an agent rule may go.
enum Placement {
    One(String, Rule),
    /// Weighted providers (weights need not sum to 100), and the agent whose split it is.
    Split(BTreeMap<String, u32>, Option<String>),
}

/// The agent's own split over the providers the tenant may use; else the tenant's default,
/// narrowed to the providers the agent runs at; else the agent's one provider.
fn placement(tenant: &Tenant, whom: Whom<'_>) -> Result<Placement, Problem> {
    let usable = |p: &String| tenant.may_use(p) && whom.runs_at(p);
    let narrowed = |split: &BTreeMap<String, u32>| -> BTreeMap<String, u32> {
        split
            .iter()
            .filter(|(p, w)| **w > 0 && usable(p))
            .map(|(p, w)| (p.clone(), *w))
            .collect()
    };
    if let Whom::Agent(a) = whom {
        if let Some(split) = a.split.as_ref().map(narrowed).filter(|s| !s.is_empty()) {
            return Ok(Placement::Split(split, Some(a.name.clone())));
        }
    }
    match &tenant.default {
        Some(DefaultRoute::One(p)) if whom.runs_at(p) => {
            return Ok(Placement::One(p.clone(), Rule::Default))
        }
        Some(DefaultRoute::Split(split)) => {
            let split = narrowed(split);
            if !split.is_empty() {
                return Ok(Placement::Split(split, None));
            }
        }
        _ => {}
    }
    let Whom::Agent(a) = whom else {
        return Err(no_default(tenant));
    };
    let homes: Vec<&String> = a.at.keys().filter(|p| tenant.may_use(p)).collect();
    match homes.as_slice() {
        [only] => Ok(Placement::One((*only).clone(), Rule::AgentOnly(a.name.clone()))),
        _ => Err(Problem::field(
            ErrorCode::InvalidRequest,
            "provider",
            format!(
                "agent {:?} runs at {}, and this tenant's default route goes to none of them: name one, or give the agent a split",
                a.name,
                homes.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// Where a create that `rule` routed goes when the providers `tried` refused it with nothing
/// sent: the next provider of the split that chose it, heaviest first (ties by name), not tried
/// yet. Only a split fails over: a named provider, an agent rule or a single default is what
/// was asked for. `None`: nowhere left to go.
pub fn failover_for_create(
    rt: &Runtime,
    tenant: &Tenant,
    rule: &Rule,
    whom: Whom<'_>,
    tried: &[String],
) -> Option<Result<Arc<Provider>, Problem>> {
    if !matches!(rule, Rule::Split { .. } | Rule::Failover { .. }) {
        return None;
    }
    let Ok(Placement::Split(split, _)) = placement(tenant, whom) else {
        return None;
    };
    let mut order: Vec<(&String, &u32)> = split.iter().collect();
    order.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let next = order
        .into_iter()
        .map(|(name, _)| name)
        .find(|name| !tried.contains(name))?;
    Some(named(rt, tenant, next))
}

/// The provider whose cumulative weight range holds `bucket` (0–99), the weights scaled to
/// their sum (a split narrowed to some of its providers keeps their proportions).
fn pick(split: &BTreeMap<String, u32>, bucket: u8) -> String {
    let total: u32 = split.values().sum();
    let target = u32::from(bucket) * total / 100;
    let mut upto = 0u32;
    for (name, weight) in split {
        upto += weight;
        if target < upto {
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
        let split = BTreeMap::from([("a".to_string(), 90), ("b".to_string(), 10)]);
        let picks: Vec<String> = (0..100).map(|b| pick(&split, b)).collect();
        assert_eq!(picks.iter().filter(|p| *p == "a").count(), 90);
        assert_eq!(pick(&split, 95), "b");
        // A narrowed split keeps the proportions of what is left.
        let narrowed = BTreeMap::from([("a".to_string(), 30), ("b".to_string(), 10)]);
        let picks: Vec<String> = (0..100).map(|b| pick(&narrowed, b)).collect();
        assert_eq!(picks.iter().filter(|p| *p == "a").count(), 75);
    }
}
