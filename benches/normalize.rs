//! Normalization cost per call record, against a floor that any JSON gateway pays.
//!
//! For each vendor, from the simulators' own data set (seed 42) in the vendor's real envelope:
//!
//! - `list100/<vendor>/callgate`: what callgate does with a 100-call list answer — parse the
//!   vendor bytes (`read_answer`), `ListPlan::assemble` (`extract_list` + `normalize_call` per
//!   record, slicing/paging), serialize the canonical page;
//! - `list100/<vendor>/floor`: `serde_json` parse of the same bytes to a `Value` plus serialize
//!   of the canonical output (the same page, precomputed);
//! - `list100/<vendor>/normalize_only`: `assemble` on an already parsed body (no parse, no
//!   serialize), to show where the time goes;
//! - `get/<vendor>/{callgate,floor}`: the same for one `get_call` answer.
//!
//! After criterion's own report, a real run (`cargo bench`) prints one table: ns per call record
//! for each and the ratio callgate / floor (issue 6's target: ≤ 1.5).
//!
//! Quick mode (seconds, for `make test`): `CALLGATE_BENCH_QUICK=1 cargo bench --bench normalize`.
//! `cargo test --all-targets` runs each benchmark once as a test (criterion's test mode).
//! Profiling: `CALLGATE_BENCH_PROFILE=20 valgrind --tool=callgrind <bench binary>` runs only the
//! callgate paths, 20 times per vendor, without criterion.

use callgate::adapter::listing::{ListBody, ListPage};
use callgate::adapter::normalize::{AgentKeys, Context};
use callgate::adapter::plan::ListPlan;
use callgate::adapter::rules::Params;
use callgate::adapter::spec::PaginationStyle;
use callgate::adapter::{load_dir, Adapter};
use callgate::canonical::call::{CallPage, Pagination};
use callgate::canonical::cursor::Position;
use callgate::canonical::id::CallId;
use callgate::canonical::list_query::ListQuery;
use callgate::canonical::Call;
use callgate_sim::{SimOptions, VendorKind, VendorSim};
use criterion::{Criterion, Throughput};
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const PAGE: usize = 100;

/// The allocator the `callgate` binary runs with (src/main.rs), for callgate and floor alike.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Case {
    vendor: &'static str,
    adapter: Adapter,
    query: ListQuery,
    plan: ListPlan,
    list_bytes: Vec<u8>,
    /// The canonical page callgate answers for `list_bytes` (for the floor's serialize).
    list_out: Option<CallPage>,
    get_bytes: Vec<u8>,
    get_params: Vec<(String, String)>,
    get_out: Option<Call>,
    /// For a vendor without paging: a 20-call page plan and the vendor's whole answer.
    unpaged: Option<(ListPlan, Vec<u8>)>,
}

fn adapters() -> Vec<Adapter> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    load_dir(&dir).unwrap_or_else(|e| panic!("adapters: {e:?}"))
}

/// The vendor's list envelope around `items`, as its simulator sends it.
fn list_envelope(kind: VendorKind, items: Vec<Value>, total: usize) -> Value {
    let n = items.len();
    match kind {
        // Elemente: a bare array, no paging (the simulator sends everything; the bench sends one
        // page worth so every vendor normalizes and parses exactly 100 records).
        VendorKind::Elemente => Value::Array(items),
        VendorKind::Bimpe => {
            let items: Vec<Value> = items
                .into_iter()
                .map(|mut v| {
                    // The list item is the get object without these (sim/src/bimpe.rs).
                    if let Some(o) = v.as_object_mut() {
                        o.shift_remove("started_at");
                        o.shift_remove("answered_at");
                        o.shift_remove("conversation_logs");
                    }
                    v
                })
                .collect();
            let pages = total.div_ceil(n.max(1));
            json!({
                "message": "Success",
                "data": items,
                "meta": {"total_count": total, "page_count": pages, "current_page": 1,
                         "limit": n, "has_next_page": pages > 1, "has_previous_page": false}
            })
        }
        VendorKind::Zudu => {
            let pages = total.div_ceil(n.max(1));
            json!({
                "message": "Calls retrieved successfully", "status": "success", "error": null,
                "data": {
                    "organization_id": "org_0123456789ab",
                    "calls": items,
                    "pagination": {"page": 0, "limit": n, "total_count": total, "total_pages": pages,
                                   "has_next_page": pages > 1, "has_previous_page": false},
                    "returned_count": n,
                    "sort_order": "descending",
                    "sort_by": "start_timestamp",
                    "applied_filters": {}
                }
            })
        }
    }
}

/// The vendor's `get_call` answer for one record.
fn get_envelope(kind: VendorKind, record: Value) -> Value {
    match kind {
        VendorKind::Elemente => record,
        VendorKind::Bimpe => json!({"message": "Success", "data": record}),
        VendorKind::Zudu => json!({"message": "Call retrieved successfully", "status": "success",
                                   "error": null, "data": record}),
    }
}

fn cases() -> Vec<Case> {
    let mut adapters = adapters();
    let opts = SimOptions::default();
    VendorKind::ALL
        .iter()
        .map(|&kind| {
            let sim = VendorSim::new(kind, &opts);
            let at = adapters
                .iter()
                .position(|a| a.vendor == kind.name())
                .expect("adapter");
            let adapter = adapters.swap_remove(at);
            let records = sim.records();
            let total = records.len();
            let page: Vec<Value> = records.iter().take(PAGE).cloned().collect();
            assert_eq!(
                page.len(),
                PAGE,
                "{} has fewer than {PAGE} calls",
                kind.name()
            );
            let query_text = match sim.agent_ids().first() {
                Some(agent) => format!("agentId={agent}&limit={PAGE}"),
                None => format!("limit={PAGE}"),
            };
            let query = ListQuery::parse(Some(&query_text)).expect("query");
            let at = Position {
                agent: None,
                skip: 0,
                snapshot: None,
                provider: kind.name().to_string(),
                offset: 0,
                size: adapter.page_size(PAGE as u32),
            };
            let plan = adapter.plan_list(&query, &at).expect("plan");
            let list_bytes = serde_json::to_vec(&list_envelope(kind, page, total)).unwrap();
            let mut case = Case {
                vendor: kind.name(),
                adapter,
                query,
                plan,
                list_bytes,
                list_out: None,
                get_bytes: serde_json::to_vec(&get_envelope(kind, records[0].clone())).unwrap(),
                get_params: Vec::new(),
                get_out: None,
                unpaged: None,
            };
            if case.plan.style == PaginationStyle::None {
                let q20 = ListQuery::parse(Some("limit=20")).expect("query");
                let at = Position {
                    agent: None,
                    skip: 0,
                    snapshot: None,
                    size: case.adapter.page_size(20),
                    ..at
                };
                let plan = case.adapter.plan_list(&q20, &at).expect("plan");
                let all = serde_json::to_vec(&list_envelope(kind, records.clone(), total)).unwrap();
                case.unpaged = Some((plan, all));
            }
            let page = list_page(&case);
            assert_eq!(page.data.len(), PAGE, "{}", case.vendor);
            // The get answer's params come from the canonical id, as in the gateway.
            let id = CallId::parse_path_segment(&page.data[0].id).expect("id");
            case.get_params = case.adapter.id_params(id.parts).expect("id params");
            case.list_out = Some(page);
            case.get_out = Some(get_call(&case));
            case
        })
        .collect()
}

fn list_page(c: &Case) -> CallPage {
    let body = c
        .adapter
        .read_list_answer(&c.plan, c.vendor, 200, None, &c.list_bytes)
        .expect("vendor body");
    assemble(c, &body)
}

/// `plan`'s page of `body`, as `gateway::calls` assembles it.
fn page_of(c: &Case, plan: &ListPlan, body: &ListBody) -> ListPage {
    let mut drift = Vec::new();
    let cx = Context {
        provider: c.vendor,
        agents: AgentKeys::NONE,
        params: Params(&plan.params),
        include_raw: false,
    };
    plan.assemble(&c.adapter, body, cx, &c.query.filters, &mut drift)
        .expect("normalize")
}

fn assemble(c: &Case, body: &ListBody) -> CallPage {
    let page = page_of(c, &c.plan, body);
    CallPage {
        data: page.calls,
        pagination: Pagination {
            limit: PAGE as u32,
            next_cursor: None,
            total_count: page.total,
        },
    }
}

/// callgate's list path: parse, normalize, serialize.
fn list_callgate(c: &Case) -> Vec<u8> {
    serde_json::to_vec(&list_page(c)).unwrap()
}

/// The floor: parse the same bytes to a `Value`, serialize the canonical output.
fn list_floor(c: &Case) -> Vec<u8> {
    let v: Value = serde_json::from_slice(&c.list_bytes).unwrap();
    black_box(&v);
    serde_json::to_vec(c.list_out.as_ref().unwrap()).unwrap()
}

fn get_call(c: &Case) -> Call {
    let body = c
        .adapter
        .read_answer(c.vendor, 200, None, &c.get_bytes)
        .expect("vendor body");
    let cx = Context {
        provider: c.vendor,
        agents: AgentKeys::NONE,
        params: Params(&c.get_params),
        include_raw: false,
    };
    let mut drift = Vec::new();
    c.adapter
        .extract_item(&body)
        .and_then(|item| c.adapter.normalize_call(item, cx, &mut drift))
        .expect("normalize")
}

fn get_callgate(c: &Case) -> Vec<u8> {
    serde_json::to_vec(&get_call(c)).unwrap()
}

fn get_floor(c: &Case) -> Vec<u8> {
    let v: Value = serde_json::from_slice(&c.get_bytes).unwrap();
    black_box(&v);
    serde_json::to_vec(c.get_out.as_ref().unwrap()).unwrap()
}

fn quick() -> bool {
    std::env::var_os("CALLGATE_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

fn criterion_benches(c: &mut Criterion, cases: &[Case]) {
    for case in cases {
        let parsed = ListBody::whole(serde_json::from_slice(&case.list_bytes).unwrap());
        let mut g = c.benchmark_group(format!("list100/{}", case.vendor));
        g.throughput(Throughput::Elements(PAGE as u64));
        g.bench_function("callgate", |b| b.iter(|| list_callgate(black_box(case))));
        g.bench_function("floor", |b| b.iter(|| list_floor(black_box(case))));
        g.bench_function("normalize_only", |b| {
            b.iter(|| assemble(black_box(case), black_box(&parsed)))
        });
        g.finish();
        let mut g = c.benchmark_group(format!("get/{}", case.vendor));
        g.throughput(Throughput::Elements(1));
        g.bench_function("callgate", |b| b.iter(|| get_callgate(black_box(case))));
        g.bench_function("floor", |b| b.iter(|| get_floor(black_box(case))));
        g.finish();
    }
}

/// Calls of `f` that take about `target`.
fn batch_for<R>(target: Duration, f: &mut impl FnMut() -> R) -> u64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < target / 2 || n == 0 {
        black_box(f());
        n += 1;
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    ((target.as_nanos() as f64 / per) as u64).max(1)
}

fn timed_batch<R>(batch: u64, f: &mut impl FnMut() -> R) -> f64 {
    let t = Instant::now();
    for _ in 0..batch {
        black_box(f());
    }
    t.elapsed().as_nanos() as f64 / batch as f64
}

/// Median ns per call of `f`, over 11 timed batches.
fn time_ns<R>(budget: Duration, mut f: impl FnMut() -> R) -> f64 {
    let batch = batch_for(budget / 15, &mut f);
    let mut samples: Vec<f64> = (0..11).map(|_| timed_batch(batch, &mut f)).collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// `f` against `floor`, timed in alternating batches so that a noisy machine slows both alike:
/// median ns per call of each, and the median of the 21 per-round ratios `f / floor`.
fn time_against_floor<R, S>(
    budget: Duration,
    mut f: impl FnMut() -> R,
    mut floor: impl FnMut() -> S,
) -> (f64, f64, f64) {
    let (bf, bg) = (
        batch_for(budget / 45, &mut f),
        batch_for(budget / 45, &mut floor),
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rounds: Vec<(f64, f64)> = (0..21)
        .map(|_| (timed_batch(bf, &mut f), timed_batch(bg, &mut floor)))
        .collect();
    (
        median(rounds.iter().map(|r| r.0).collect()),
        median(rounds.iter().map(|r| r.1).collect()),
        median(rounds.iter().map(|r| r.0 / r.1).collect()),
    )
}

fn summary(cases: &[Case]) {
    let budget = if quick() {
        Duration::from_millis(60)
    } else {
        Duration::from_millis(1500)
    };
    println!();
    println!("normalization per call record (medians; ratio = median of callgate / floor over alternating rounds, target ≤ 1.5)");
    println!(
        "{:<10} {:>8} {:>14} {:>11} {:>7} {:>15} {:>12} {:>11} {:>7}",
        "vendor",
        "bytes/rec",
        "list ns/rec",
        "floor ns",
        "ratio",
        "norm-only ns",
        "get ns/call",
        "floor ns",
        "ratio"
    );
    for c in cases {
        let parsed = ListBody::whole(serde_json::from_slice(&c.list_bytes).unwrap());
        let (list, floor, list_ratio) =
            time_against_floor(budget, || list_callgate(c), || list_floor(c));
        let norm = time_ns(budget, || assemble(c, &parsed)) / PAGE as f64;
        let (get, get_floor_ns, get_ratio) =
            time_against_floor(budget, || get_callgate(c), || get_floor(c));
        println!(
            "{:<10} {:>8} {:>14.0} {:>11.0} {:>7.2} {:>15.0} {:>12.0} {:>11.0} {:>7.2}",
            c.vendor,
            c.list_bytes.len() / PAGE,
            list / PAGE as f64,
            floor / PAGE as f64,
            list_ratio,
            norm,
            get,
            get_floor_ns,
            get_ratio
        );
    }
    unpaged_summary(cases, budget);
}

/// An unpaged vendor's 20-call page cut from its whole answer: every record built (the whole
/// parse) against only the page's records built (`read_list_answer`'s windowed parse).
fn unpaged_summary(cases: &[Case], budget: Duration) {
    for c in cases {
        let Some((plan, all)) = &c.unpaged else {
            continue;
        };
        let page = |body: ListBody| {
            let p = page_of(c, plan, &body);
            assert_eq!(p.calls.len(), 20);
            p
        };
        let whole = time_ns(budget, || {
            page(ListBody::whole(
                c.adapter.read_answer(c.vendor, 200, None, all).unwrap(),
            ))
        });
        let windowed = time_ns(budget, || {
            page(
                c.adapter
                    .read_list_answer(plan, c.vendor, 200, None, all)
                    .unwrap(),
            )
        });
        println!(
            "{}: 20-call page of a {}-byte unpaged answer: whole parse {:.0} µs, windowed {:.0} µs ({:.1}× less)",
            c.vendor,
            all.len(),
            whole / 1e3,
            windowed / 1e3,
            whole / windowed
        );
    }
}

fn main() {
    let cases = cases();
    // For a profiler (callgrind, perf): `CALLGATE_BENCH_PROFILE=<iterations>` runs only the list
    // and get paths of every vendor that many times, without criterion.
    if let Some(n) = std::env::var("CALLGATE_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        // `CALLGATE_BENCH_VENDOR=<name>` narrows the run to one vendor.
        let only = std::env::var("CALLGATE_BENCH_VENDOR").ok();
        let cases: Vec<&Case> = cases
            .iter()
            .filter(|c| only.as_deref().is_none_or(|v| v == c.vendor))
            .collect();
        for _ in 0..n {
            for c in &cases {
                black_box(list_callgate(c));
                black_box(get_callgate(c));
            }
        }
        return;
    }
    let mut c = Criterion::default();
    if quick() {
        c = c
            .warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(200))
            .sample_size(10)
            .without_plots();
    }
    let mut c = c.configure_from_args();
    criterion_benches(&mut c, &cases);
    c.final_summary();
    // `cargo bench` passes --bench; `cargo test` (criterion's test mode) does not.
    if std::env::args().any(|a| a == "--bench") {
        summary(&cases);
    }
}
