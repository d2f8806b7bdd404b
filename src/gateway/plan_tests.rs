//! Planning is pure: these tests plan requests over the demo config, with no network.

use super::*;
use crate::adapter::plan::WriteKind;
use std::path::Path;

fn demo() -> Runtime {
    crate::config::load_offline(Path::new("config/demo.toml"), &|_| Some("secret".into()))
        .expect("demo config")
}

fn request<'a>(op: CallOp<'a>, query: Option<&'a str>, body: &'a str) -> CallRequest<'a> {
    let (method, path) = match op {
        CallOp::List => ("GET", "/v1/calls"),
        CallOp::Get(_) => ("GET", "/v1/calls/x"),
        CallOp::Create => ("POST", "/v1/calls"),
        CallOp::Update(_) => ("PATCH", "/v1/calls/x"),
        CallOp::Watch(_) => ("GET", "/v1/calls/x/events"),
    };
    CallRequest {
        op,
        method,
        path,
        query,
        body: body.as_bytes(),
        content_type: None,
        idempotency_key: None,
        prefer: None,
        request_id: "req-1",
    }
}

fn planned(rt: &Runtime, req: CallRequest<'_>) -> Planned {
    let tenant = rt.tenants["demo"].clone();
    match plan(rt, &tenant, &req) {
        Ok(Plan::One(p)) => p,
        Ok(Plan::Merged(m)) => panic!("a merged list over {} sources", m.walks.len()),
        Err(r) => panic!("{:?}", r.problem),
    }
}

fn refused(rt: &Runtime, req: CallRequest<'_>) -> Refused {
    let tenant = rt.tenants["demo"].clone();
    plan(rt, &tenant, &req).expect_err("refused")
}

#[test]
fn a_get_is_planned_with_its_cache_key_and_freshness() {
    let rt = demo();
    let p = planned(
        &rt,
        request(CallOp::Get("zudu:c1"), Some("include=raw"), ""),
    );
    assert_eq!(
        (p.operation, p.provider.name.as_str(), &p.rule, p.resend),
        (Operation::GetCall, "zudu", &Rule::CallId, Resend::Read)
    );
    let Work::Get(g) = &p.work else {
        panic!("{:?}", p.work)
    };
    assert_eq!(g.cache.key, CacheKey("get|zudu:c1|raw=true".into()));
    assert_eq!(g.call_id, "zudu:c1");
    assert!(g.include_raw);
    assert_eq!(g.request.method, "GET");
    assert!(g.request.path_and_query.ends_with("/c1"), "{:?}", g.request);
    let ttl = &rt.settings.cache;
    assert_eq!(g.cache.freshness.for_call(true), ttl.live_call_ttl);
    assert_eq!(g.cache.freshness.for_call(false), ttl.finished_call_ttl);
}

#[test]
fn lists_name_the_rule_that_chose_their_provider() {
    let rt = demo();
    let agent = "agentId=agt_nr6i4x4jnb95sz5b&limit=5";
    let cases = [
        (Some("provider=elemente"), "elemente", Rule::Explicit),
        (
            Some(agent),
            "bimpe",
            Rule::Agent("agt_nr6i4x4jnb95sz5b".into()),
        ),
    ];
    for (query, provider, rule) in cases {
        let p = planned(&rt, request(CallOp::List, query, ""));
        assert_eq!((p.provider.name.as_str(), &p.rule), (provider, &rule));
        let Work::List(page) = &p.work else {
            panic!("{:?}", p.work)
        };
        assert!(
            page.cache.key.0.starts_with(&format!("list|{provider}|")),
            "{:?}",
            page.cache.key
        );
        assert_eq!(page.at.offset, 0);
    }
}

#[test]
fn a_list_without_provider_merges_every_provider_and_fans_out_over_agents() {
    let rt = demo();
    let tenant = rt.tenants["demo"].clone();
    let req = request(CallOp::List, Some("limit=5"), "");
    let Ok(Plan::Merged(m)) = plan(&rt, &tenant, &req) else {
        panic!("a list without provider is merged")
    };
    assert_eq!(m.rule, Rule::Every);
    let sources: Vec<(&str, Option<&str>)> = m
        .walks
        .iter()
        .map(|w| (w.provider.name.as_str(), w.at.agent.as_deref()))
        .collect();
    // Bimpe lists per agent: one source for each agent the config knows there.
    assert_eq!(
        sources,
        [
            ("elemente", None),
            ("bimpe", Some("agt_nr6i4x4jnb95sz5b")),
            ("bimpe", Some("agt_52v9u1pu9o6vaygl")),
            ("bimpe", Some("agt_8lklb5lhqzn97z4o")),
            ("zudu", None),
        ]
    );
    assert!(m.skipped.is_empty());
    // A canonical agent narrows the list to where it runs, each scoped to its id there.
    let req = request(CallOp::List, Some("agent=billing-bot"), "");
    let Ok(Plan::Merged(m)) = plan(&rt, &tenant, &req) else {
        panic!("billing-bot runs at two providers")
    };
    let scoped: Vec<(&str, Option<&str>)> = m
        .walks
        .iter()
        .map(|w| {
            (
                w.provider.name.as_str(),
                w.query.filters.agent_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        scoped,
        [
            ("bimpe", Some("agt_52v9u1pu9o6vaygl")),
            ("zudu", Some("agent_79f80b0ed58f373c6e653dff"))
        ]
    );
    // A filter one provider cannot honour skips it (said in the answer), unless strict.
    let req = request(CallOp::List, Some("direction=inbound"), "");
    let Ok(Plan::Merged(m)) = plan(&rt, &tenant, &req) else {
        panic!("merged")
    };
    assert_eq!(m.skipped.len(), 1);
    assert_eq!(m.skipped[0].0, "elemente");
    assert_eq!(m.skipped[0].1.code, ErrorCode::UnsupportedFilter);
    let strict = CallRequest {
        prefer: Some(Handling::Strict),
        ..req
    };
    let refused = plan(&rt, &tenant, &strict).expect_err("strict");
    assert_eq!(refused.problem.code, ErrorCode::UnsupportedFilter);
}

#[test]
fn a_page_is_fresh_for_the_list_ttl_or_less_while_a_call_in_it_is_live() {
    let f = Freshness {
        live: Duration::from_secs(2),
        finished: Duration::from_secs(300),
        page: Duration::from_secs(10),
        finished_stale: Duration::from_secs(3600),
    };
    assert_eq!(f.for_page(false), Duration::from_secs(10));
    // A finished call earns a stale window of its own; a live one none.
    assert_eq!(f.stale_for_call(false), Duration::from_secs(3600));
    assert_eq!(f.stale_for_call(true), Duration::ZERO);
    assert_eq!(f.for_page(true), Duration::from_secs(2));
    let short = Freshness {
        page: Duration::from_secs(1),
        ..f
    };
    assert_eq!(short.for_page(true), Duration::from_secs(1));
}

#[test]
fn a_cursor_names_provider_and_position() {
    let rt = demo();
    let first = planned(
        &rt,
        request(CallOp::List, Some("provider=elemente&limit=2"), ""),
    );
    let Work::List(page) = &first.work else {
        panic!()
    };
    let next = crate::canonical::cursor::Cursor::new(
        page.query.fingerprint(),
        vec![Position {
            agent: None,
            skip: 0,
            snapshot: None,
            offset: 2,
            ..page.at.clone()
        }],
    )
    .encode();
    // A cursor is used with the filters of the walk it continues.
    let query = format!("provider=elemente&cursor={next}");
    let p = planned(&rt, request(CallOp::List, Some(&query), ""));
    assert_eq!(
        (p.provider.name.as_str(), &p.rule),
        ("elemente", &Rule::Cursor { offset: 2 })
    );
}

#[test]
fn a_write_carries_its_idempotency_scope_and_resend_policy() {
    let rt = demo();
    let body =
        r#"{"provider": "zudu", "agentId": "a1", "to": "+14155550123", "from": "+14155550100"}"#;
    let spelled = r#"{"from":"+14155550100","to":"+14155550123","agentId":"a1","provider":"zudu"}"#;
    let with_key = |body| CallRequest {
        idempotency_key: Some(b"k-1"),
        ..request(CallOp::Create, None, body)
    };
    let p = planned(&rt, with_key(body));
    assert_eq!(
        (p.operation, &p.rule, p.resend),
        (
            Operation::CreateCall,
            &Rule::Explicit,
            Resend::WriteNeverSent
        )
    );
    let Work::Write(w) = &p.work else {
        panic!("{:?}", p.work)
    };
    assert_eq!((w.kind, w.success), (WriteKind::Create, 201));
    let scope = w.idempotency.clone().expect("scoped");
    assert_eq!((scope.tenant.as_str(), scope.key.as_str()), ("demo", "k-1"));
    // The same request spelled otherwise has the same fingerprint: a replay, not a conflict.
    let Work::Write(again) = planned(&rt, with_key(spelled)).work else {
        panic!()
    };
    assert_eq!(again.idempotency.unwrap().fingerprint, scope.fingerprint);
    // The request id reaches normalization of the answer.
    assert!(w.params.contains(&("request_id".into(), "req-1".into())));

    let Work::Write(unkeyed) = planned(&rt, request(CallOp::Create, None, body)).work else {
        panic!()
    };
    assert_eq!(unkeyed.idempotency, None);
}

#[test]
fn an_unusable_idempotency_key_is_refused_naming_the_header() {
    let rt = demo();
    let long = "k".repeat(256);
    let create =
        r#"{"provider": "zudu", "agentId": "a1", "to": "+14155550123", "from": "+14155550100"}"#;
    let unusable: [&[u8]; 5] = [b"", long.as_bytes(), "clé".as_bytes(), b"\xff\xfe", b"a\tb"];
    for key in unusable {
        let update = request(
            CallOp::Update("zudu:c1"),
            None,
            r#"{"metadata": {"a": "b"}}"#,
        );
        for req in [update, request(CallOp::Create, None, create)] {
            let req = CallRequest {
                idempotency_key: Some(key),
                ..req
            };
            let r = refused(&rt, req);
            assert_eq!(r.problem.code, ErrorCode::InvalidRequest, "{key:?}");
            assert_eq!(r.problem.errors[0].field, "Idempotency-Key");
        }
    }
    let fine = CallRequest {
        idempotency_key: Some(b"order 42/attempt-1"),
        ..request(CallOp::Create, None, create)
    };
    assert!(matches!(planned(&rt, fine).work, Work::Write(w) if w.idempotency.is_some()));
}

#[test]
fn refusals_before_routing_name_no_provider_and_after_it_do() {
    let rt = demo();
    let r = refused(&rt, request(CallOp::List, Some("limit=nope"), ""));
    assert!(r.provider.is_none(), "{:?}", r.problem);
    // A Bimpe id has two parts: the shape is checked once the provider is known.
    let r = refused(&rt, request(CallOp::Get("bimpe:onlyone"), None, ""));
    assert_eq!(r.problem.errors[0].field, "id");
    assert_eq!(r.provider.map(|p| p.name.clone()).as_deref(), Some("bimpe"));
}

#[test]
fn dot_segments_never_reach_a_vendor_path() {
    let rt = demo();
    let create = r#"{"provider": "bimpe", "agentId": "..", "to": "+14155550123"}"#;
    let cases = [
        (request(CallOp::Get("bimpe:..:x"), None, ""), "id"),
        (request(CallOp::Get("bimpe:a:."), None, ""), "id"),
        (request(CallOp::Get("elemente:.."), None, ""), "id"),
        (
            request(CallOp::Update("elemente:.."), None, r#"{"note": "n"}"#),
            "id",
        ),
        (request(CallOp::Create, None, create), "agentId"),
        (
            request(CallOp::List, Some("provider=bimpe&agentId=.."), ""),
            "agentId",
        ),
    ];
    for (req, field) in cases {
        let r = refused(&rt, req);
        assert_eq!(r.problem.code, ErrorCode::InvalidRequest, "{req:?}");
        assert_eq!(r.problem.errors[0].field, field, "{req:?}");
    }
    // Dots inside a value are text, percent-encoded or not, never a step.
    let p = planned(&rt, request(CallOp::Get("elemente:..x"), None, ""));
    assert!(p.work.request().path_and_query.ends_with("/..x"));
}
