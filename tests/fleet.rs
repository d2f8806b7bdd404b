//! A fleet: three `callgate serve` processes sharing a real `redis-server` (Debian package,
//! installed by `make test`), behind nginx round robin where the test is about a client that
//! cannot choose its replica. The simulators run in this process, so their journals show every
//! vendor request the fleet made.

mod common;

use callgate_sim::{SimCluster, SimOptions, VendorKind};
use common::serve::{binary, Proc, Replica};
use common::{wait_until, Reply, KEY};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers `PING` with `+PONG` on `port`.
fn redis_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// A real redis-server on a free port, its data (append-only file) in a temporary directory,
/// so a restart keeps what a Redis deployed as deploy/ says keeps.
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
}

impl Redis {
    fn start() -> Redis {
        let [port] = common::free_ports();
        let mut r = Redis {
            port,
            dir: tempfile::tempdir().unwrap(),
            proc: None,
        };
        r.restart();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new(binary("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        let port = self.port;
        wait_until("redis-server to answer PING", || redis_answers(port));
    }

    /// SIGKILL: no goodbye to the clients.
    fn kill(&mut self) {
        self.proc = None;
        let port = self.port;
        wait_until("redis-server to be gone", || !redis_answers(port));
    }
}

/// Three replicas on one Redis and the simulators, optionally behind nginx.
struct Fleet {
    sims: SimCluster,
    redis: Redis,
    replicas: Vec<Replica>,
    nginx: Option<(Proc, u16)>,
    dir: tempfile::TempDir,
}

impl Fleet {
    fn start(sims: SimOptions, extra: &str, nginx: bool) -> Fleet {
        Fleet::start_with(sims, extra, "", nginx)
    }

    /// `state` is added to the `[state]` section.
    fn start_with(sims: SimOptions, extra: &str, state: &str, nginx: bool) -> Fleet {
        let sims = SimCluster::start(sims);
        let redis = Redis::start();
        let dir = tempfile::tempdir().unwrap();
        let [dead] = common::free_ports();
        let config = format!(
            "{}\n[state]\nbackend = \"redis\"\nurl = \"{}\"\n{state}\n",
            common::config_text(&sims, dead, extra),
            redis.url()
        );
        let path = dir.path().join("callgate.toml");
        std::fs::write(&path, config).unwrap();
        let mut fleet = Fleet {
            sims,
            redis,
            replicas: Vec::new(),
            nginx: None,
            dir,
        };
        for i in 0..3 {
            let replica = Replica::spawn(&path, fleet.dir.path(), i, &[("FLEET_KEY", FLEET_KEY)]);
            fleet.replicas.push(replica);
        }
        if nginx {
            fleet.nginx = Some(fleet.start_nginx());
        }
        fleet
    }

    fn start_nginx(&self) -> (Proc, u16) {
        let [port] = common::free_ports();
        let servers: String = self
            .replicas
            .iter()
            .map(|r| format!("    server 127.0.0.1:{};\n", r.api))
            .collect();
        let prefix = self.dir.path().join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
             fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
             upstream fleet {{\n{servers}    keepalive 64;\n  }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://fleet;\n\
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n    }}\n  }}\n}}\n",
            p = prefix.display(),
        );
        let path = prefix.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(binary("nginx"))
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proc = Proc(child);
        wait_until("nginx to proxy to the fleet", || {
            ureq::get(&format!("http://127.0.0.1:{port}/openapi.json"))
                .call()
                .is_ok()
        });
        (proc, port)
    }

    /// The URL of `path` through nginx.
    fn front(&self, path: &str) -> String {
        let port = self.nginx.as_ref().expect("started with nginx").1;
        format!("http://127.0.0.1:{port}{path}")
    }

    fn vendor_requests(&self, kind: VendorKind, method: &str) -> usize {
        self.sims
            .sim(kind)
            .requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }
}

fn send(url: &str, method: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = ureq::request(method, url)
        .set("Content-Type", "application/json")
        .set("Authorization", &format!("Bearer {KEY}"));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    Reply::from(if method == "GET" {
        req.call()
    } else {
        req.send_string(body)
    })
}

/// The gateway key of the tenant a test may add as `[tenants.X] keys = [{ env = "FLEET_KEY" }]`.
const FLEET_KEY: &str = "fleet-key-50";

const CREATE: &str =
    r#"{"provider": "zudu", "agentId": "agent-1", "to": "+14155550100", "from": "+14155550199"}"#;

#[test]
fn fifty_duplicates_over_three_replicas_are_one_vendor_request_and_fifty_equal_answers() {
    // The vendor is slow enough that the duplicates arrive while the first is in flight.
    let sims = SimOptions {
        latency: Duration::from_millis(200),
        ..SimOptions::default()
    };
    let fleet = Arc::new(Fleet::start(sims, "", true));
    fleet.sims.sim(VendorKind::Zudu).clear_requests();
    let go = Arc::new(std::sync::Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (fleet, go) = (fleet.clone(), go.clone());
            std::thread::spawn(move || {
                go.wait();
                send(
                    &fleet.front("/v1/calls"),
                    "POST",
                    CREATE,
                    &[("Idempotency-Key", "fleet-one-call")],
                )
            })
        })
        .collect();
    let replies: Vec<Reply> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        fleet.vendor_requests(VendorKind::Zudu, "POST"),
        1,
        "exactly one create reached the vendor"
    );
    let first = &replies[0];
    assert_eq!(first.status, 201, "{}", first.text);
    for r in &replies {
        assert_eq!((r.status, &r.text), (first.status, &first.text));
    }
    assert_eq!(replies.iter().filter(|r| !r.replayed).count(), 1);
    // Every replica answered some of them (round robin), so the key was shared.
    for (i, r) in fleet.replicas.iter().enumerate() {
        let served = r
            .metric("callgate_state_operations_total{function=\"idempotency\",result=\"ok\"}")
            .unwrap_or(0.0);
        assert!(served > 0.0, "replica {i} never asked Redis");
    }
    // The same key with another body, on any replica: a conflict.
    let other = CREATE.replace("+14155550100", "+14155550101");
    for r in &fleet.replicas {
        send(
            &r.url("/v1/calls"),
            "POST",
            &other,
            &[("Idempotency-Key", "fleet-one-call")],
        )
        .problem(409, "idempotency_conflict");
    }
    assert_eq!(fleet.vendor_requests(VendorKind::Zudu, "POST"), 1);
}

#[test]
fn a_patch_through_one_replica_is_read_through_another() {
    let fleet = Fleet::start(SimOptions::default(), "", false);
    let (one, two) = (&fleet.replicas[0], &fleet.replicas[1]);
    let listed = send(
        &two.url("/v1/calls?provider=elemente&status=in_progress&limit=1"),
        "GET",
        "",
        &[],
    )
    .json();
    let id = listed["data"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/calls/{id}");
    // Replica two has the call cached.
    assert_eq!(
        send(&two.url(&path), "GET", "", &[]).json()["status"],
        "in_progress"
    );
    let hit = send(&two.url(&path), "GET", "", &[]);
    assert_eq!(hit.cache_status.as_deref(), Some("callgate; hit"));
    // The update goes through replica one.
    let r = send(&one.url(&path), "PATCH", r#"{"status": "no_answer"}"#, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    // Replica two answers the updated call at once.
    let after = send(&two.url(&path), "GET", "", &[]);
    assert_eq!(
        after.json()["status"],
        "no_answer",
        "no stale read on another replica"
    );
    assert_ne!(after.cache_status.as_deref(), Some("callgate; hit"));
}

#[test]
fn a_tenant_limit_holds_for_the_fleet() {
    // 50 per second, burst 10, for the whole fleet; 300 requests a second for 10 s through
    // round robin. Admitted: the burst plus 50 per second of load (not three times that).
    let extra = "[tenants.fleet-limited]\nkeys = [{ env = \"FLEET_KEY\" }]\nproviders = [\"zudu\"]\ndefault = \"zudu\"\nrate_limit = { per_second = 50, burst = 10 }\n";
    let fleet = Arc::new(Fleet::start(SimOptions::default(), extra, true));
    let admitted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let length = Duration::from_secs(10);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (fleet, admitted, refused) = (fleet.clone(), admitted.clone(), refused.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                // 50 a second from each of 6 threads, paced by the clock.
                let mut n = 0u32;
                loop {
                    let due = started + Duration::from_millis(u64::from(n) * 20 + t * 3);
                    if due >= started + length {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    n += 1;
                    let r = agent
                        .get(&fleet.front("/v1/providers"))
                        .set("Authorization", &format!("Bearer {FLEET_KEY}"))
                        .call();
                    match r {
                        Ok(_) => admitted.fetch_add(1, Ordering::Relaxed),
                        Err(ureq::Error::Status(429, _)) => refused.fetch_add(1, Ordering::Relaxed),
                        Err(e) => panic!("unexpected answer: {e}"),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = admitted.load(Ordering::Relaxed) as f64;
    let refused = refused.load(Ordering::Relaxed) as f64;
    let expected = 10.0 + 50.0 * elapsed;
    println!(
        "fleet rate limit: {admitted} admitted, {refused} refused in {elapsed:.2} s; expected {expected:.0}"
    );
    assert!(
        (admitted - expected).abs() <= expected * 0.10,
        "{admitted} admitted against {expected:.0} expected (±10 %)"
    );
}

/// The final answer to one create: retried with its key while the fleet says nothing was sent.
fn create_until_answered(front: &str, n: usize, refused: &AtomicUsize) -> (String, u16) {
    let to = format!("+1415{n:07}");
    let key = format!("kill-{n}");
    let body = CREATE.replace("+14155550100", &to);
    loop {
        let r = send(
            front,
            "POST",
            &body,
            &[("Idempotency-Key", &key), ("X-Request-Timeout-Ms", "3000")],
        );
        let retry = match r.status {
            503 => {
                let code = r.json()["code"].as_str().unwrap_or_default().to_string();
                assert_eq!(code, "state_unavailable", "{}", r.text);
                true
            }
            // Still in progress elsewhere (a claim Redis took just before it died).
            409 => r.json()["detail"]
                .as_str()
                .is_some_and(|d| d.contains("still in progress")),
            _ => false,
        };
        if !retry {
            return (to, r.status);
        }
        refused.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_killed_under_load_then_back_refuses_no_duplicate_and_shares_state_again() {
    let mut fleet = Fleet::start_with(SimOptions::default(), "", "claim_ttl_ms = 21000", true);
    let front = fleet.front("/v1/calls");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (front, stop, refused, next) =
                (front.clone(), stop.clone(), refused.clone(), next.clone());
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    answered.push(create_until_answered(&front, n, &refused));
                }
                answered
            })
        })
        .collect();
    let zudu = fleet.sims.sim(VendorKind::Zudu);
    let created = || {
        zudu.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    };
    let before = created();
    wait_until("creates to flow", || created() >= before + 20);
    fleet.redis.kill();
    let refused_before = refused.load(Ordering::Relaxed);
    wait_until("keyed creates to be refused while Redis is down", || {
        refused.load(Ordering::Relaxed) >= refused_before + 20
    });
    // No replica went down with Redis.
    for r in &mut fleet.replicas {
        assert!(r.proc.0.try_wait().unwrap().is_none(), "a replica exited");
    }
    fleet.redis.restart();
    let back = Instant::now();
    // Shared state again: every replica's Redis calls succeed and its subscription is back.
    let mut shared = Duration::ZERO;
    for r in &fleet.replicas {
        wait_until("the replica to use Redis again", || {
            let ready = ureq::get(&format!("http://127.0.0.1:{}/readyz", r.admin))
                .call()
                .ok()
                .and_then(|a| a.into_string().ok())
                .is_some_and(|t| t == "ready\n");
            ready && r.metric("callgate_state_up") == Some(1.0)
        });
        shared = shared.max(back.elapsed());
    }
    let progressed = created();
    wait_until("creates to flow again", || created() >= progressed + 20);
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<(String, u16)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for (_, s) in &answers {
        *statuses.entry(*s).or_insert(0) += 1;
    }
    println!(
        "redis kill: answers by status {statuses:?}; {} creates, {} refusals while Redis was down, shared state again {:?} after Redis restarted",
        answers.len(),
        refused.load(Ordering::Relaxed),
        shared
    );
    // Not one create was sent twice, and every create that was answered 201 was sent once.
    let journal = zudu.requests();
    for (to, status) in &answers {
        let sent = journal
            .iter()
            .filter(|r| r.method == "POST" && r.body.contains(to.as_str()))
            .count();
        match status {
            201 => assert_eq!(sent, 1, "create to {to} was sent {sent} times"),
            _ => assert!(sent <= 1, "create to {to} ({status}) was sent {sent} times"),
        }
    }
    assert!(
        shared <= Duration::from_secs(5),
        "shared state came back {shared:?} after Redis did"
    );
}

#[test]
fn with_redis_unreachable_from_the_start_keyed_writes_are_refused_and_the_rest_is_served() {
    // Nothing listens on the Redis port.
    let [nothing] = common::free_ports();
    let h = common::Harness::start_configured(
        SimOptions::default(),
        &format!("[state]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:{nothing}\"\n"),
    );
    let readyz = ureq::get(&format!("http://{}/readyz", h.gateway.admin_addr)).call();
    match readyz {
        Err(ureq::Error::Status(503, r)) => {
            assert!(r
                .into_string()
                .unwrap()
                .contains("has not been reached yet"))
        }
        other => panic!("/readyz should be 503 before Redis was ever reached: {other:?}"),
    }
    let zudu = h.sim(VendorKind::Zudu);
    zudu.clear_requests();
    // fail_closed (the default): a keyed create is refused and nothing is sent.
    let r = h.send(
        "POST",
        "/v1/calls",
        CREATE,
        &[("Idempotency-Key", "no-redis-1")],
    );
    let p = r.problem(503, "state_unavailable");
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key", "{p}");
    assert!(zudu.requests().is_empty(), "nothing reached the vendor");
    // Without a key a create needs no shared state.
    assert_eq!(h.send("POST", "/v1/calls", CREATE, &[]).status, 201);
    // Rate limits fall back to this replica's bucket: `limited` (1/s, burst 3) still limits.
    let limited = |_| {
        h.get_with(
            "/v1/providers",
            &[("Authorization", &format!("Bearer {}", common::LIMITED_KEY))],
        )
        .status
    };
    let statuses: Vec<u16> = (0..5).map(limited).collect();
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert_eq!(statuses[4], 429, "{statuses:?}");
    assert!(
        h.metric("callgate_state_fallbacks_total{function=\"rate_limit\"}")
            .unwrap_or(0.0)
            >= 5.0
    );
    assert_eq!(h.metric("callgate_state_up"), Some(0.0));
}

/// A three-node Redis Cluster (no replicas) on free ports; its seed URLs.
fn redis_cluster(dir: &Path) -> (Vec<Proc>, String) {
    let ports = common::free_ports::<3>();
    let procs: Vec<Proc> = ports
        .iter()
        .map(|port| {
            let d = dir.join(port.to_string());
            std::fs::create_dir_all(&d).unwrap();
            let child = Command::new(binary("redis-server"))
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            Proc(child)
        })
        .collect();
    for port in ports {
        wait_until("a cluster node to answer PING", || redis_answers(port));
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let made = Command::new(binary("redis-cli"))
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "redis-cli --cluster create failed");
    let port = ports[0];
    wait_until("the cluster to be ok", || {
        let out = Command::new(binary("redis-cli"))
            .args(["-p", &port.to_string(), "cluster", "info"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")
    });
    let urls = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    (procs, urls)
}

#[test]
fn a_fleet_on_a_redis_cluster_shares_keys_limits_and_invalidations() {
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, urls) = redis_cluster(dir.path());
    let sims = SimCluster::start(SimOptions {
        latency: Duration::from_millis(100),
        ..SimOptions::default()
    });
    let [dead] = common::free_ports();
    let extra = "[tenants.fleet-limited]\nkeys = [{ env = \"FLEET_KEY\" }]\nproviders = [\"zudu\"]\ndefault = \"zudu\"\nrate_limit = { per_second = 1, burst = 5 }\n";
    let config = format!(
        "{}\n[state]\nbackend = \"redis\"\nmode = \"cluster\"\nurl = \"{urls}\"\n",
        common::config_text(&sims, dead, extra)
    );
    let path = dir.path().join("callgate.toml");
    std::fs::write(&path, config).unwrap();
    let replicas: Vec<Replica> = (0..2)
        .map(|i| Replica::spawn(&path, dir.path(), i, &[("FLEET_KEY", FLEET_KEY)]))
        .collect();
    let replicas = Arc::new(replicas);
    // Keys of several tenants' keys land on several nodes; each is claimed once for the fleet.
    let zudu = sims.sim(VendorKind::Zudu);
    zudu.clear_requests();
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let replicas = replicas.clone();
            std::thread::spawn(move || {
                let key = format!("cluster-{}", i % 4);
                let body = CREATE.replace("+14155550100", &format!("+1415666000{}", i % 4));
                send(
                    &replicas[i % 2].url("/v1/calls"),
                    "POST",
                    &body,
                    &[("Idempotency-Key", &key)],
                )
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().status, 201);
    }
    let creates = zudu
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(creates, 4, "one vendor request per key");
    // The limit (burst 5) holds across both replicas.
    let admitted = (0..10)
        .filter(|i| {
            ureq::get(&replicas[i % 2].url("/v1/providers"))
                .set("Authorization", &format!("Bearer {FLEET_KEY}"))
                .call()
                .is_ok()
        })
        .count();
    assert!(
        (5..=6).contains(&admitted),
        "{admitted} of 10 admitted, burst 5"
    );
    // An update through one replica is read through the other.
    let (one, two) = (&replicas[0], &replicas[1]);
    let listed = send(
        &two.url("/v1/calls?provider=elemente&status=in_progress&limit=1"),
        "GET",
        "",
        &[],
    )
    .json();
    let path = format!("/v1/calls/{}", listed["data"][0]["id"].as_str().unwrap());
    send(&two.url(&path), "GET", "", &[]);
    assert_eq!(
        send(&two.url(&path), "GET", "", &[])
            .cache_status
            .as_deref(),
        Some("callgate; hit")
    );
    let r = send(&one.url(&path), "PATCH", r#"{"status": "no_answer"}"#, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        send(&two.url(&path), "GET", "", &[]).json()["status"],
        "no_answer"
    );
}
