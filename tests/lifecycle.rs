//! The gateway as ops run it: the real `callgate serve` process, reloaded 20 times (half of them
//! with a broken file) under steady load from a second process with zero failed requests, SIGHUP,
//! a SIGTERM that lets in-flight requests finish, and a binary upgrade with `-u` (Pingora's
//! listening-socket hand-over) that refuses no connection.

mod common;

use callgate_sim::{credentials, Fault, SimCluster, SimOptions, VendorKind};
use common::{wait_until, KEY};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;

struct Serve {
    child: Child,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

struct Setup {
    sims: SimCluster,
    /// The config file, the upgrade socket, logs; deleted when the test ends.
    dir: TempDir,
    api: u16,
    admin: u16,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = tempfile::Builder::new()
            .prefix(&format!("callgate-{name}-"))
            .tempdir()
            .unwrap();
        let [api, admin] = common::free_ports();
        Setup {
            sims: SimCluster::start(SimOptions::default()),
            dir,
            api,
            admin,
        }
    }

    fn config(&self, default: &str, extra_tenant_line: &str) -> String {
        format!(
            r#"
[server]
listen = "127.0.0.1:{api}"
admin_listen = "127.0.0.1:{admin}"
adapters = "{adapters}"
grace_period_seconds = 5
upgrade_sock = "{dir}/upgrade.sock"
[logging]
level = "warn"
[providers.zudu]
vendor = "zudu"
base_url = "http://{z}"
credentials = {{ api_key = {{ env = "Z_KEY" }}, api_secret = {{ env = "Z_SECRET" }} }}
[providers.elemente]
vendor = "elemente"
base_url = "http://{e}"
credentials = {{ username = {{ env = "E_USER" }}, password = {{ env = "E_PASS" }} }}
[tenants.main]
keys = [{{ env = "KEY" }}]
providers = {providers}
default = {default}
{extra_tenant_line}
"#,
            api = self.api,
            admin = self.admin,
            adapters = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("adapters")
                .display(),
            dir = self.dir.path().display(),
            // A list covers every provider the tenant may use: a single default gives the
            // tenant that provider only, so the list shows which one the config routes to.
            providers = if default.starts_with('"') {
                format!("[{default}]")
            } else {
                r#"["zudu", "elemente"]"#.to_string()
            },
            z = self.sims.addr(VendorKind::Zudu),
            e = self.sims.addr(VendorKind::Elemente),
        )
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("callgate.toml")
    }

    fn write(&self, text: &str) {
        std::fs::write(self.path(), text).unwrap();
    }

    fn serve(&self, upgrade: bool) -> Serve {
        self.serve_with(upgrade, Stdio::null())
    }

    fn serve_with(&self, upgrade: bool, stdout: Stdio) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callgate"));
        cmd.arg("serve").arg("--config").arg(self.path());
        if upgrade {
            cmd.arg("-u");
        }
        cmd.env("Z_KEY", credentials::ZUDU_API_KEY)
            .env("Z_SECRET", credentials::ZUDU_API_SECRET)
            .env("E_USER", credentials::ELEMENTE_USERNAME)
            .env("E_PASS", credentials::ELEMENTE_PASSWORD)
            .env("KEY", KEY)
            .env_remove("RUST_LOG")
            .stdout(stdout)
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        Serve { child }
    }

    /// Waits until `serve` (still running) answers on the API port, as itself: a request with
    /// an id made for this probe reaches this test's own simulators (callgate passes the
    /// request id on to the vendor). Whatever else might listen on the port cannot do that.
    fn wait_ready(&self, serve: &mut Serve) {
        static PROBES: AtomicUsize = AtomicUsize::new(0);
        let probe = format!(
            "ready-{}-{}-{}",
            std::process::id(),
            self.api,
            PROBES.fetch_add(1, Ordering::Relaxed)
        );
        let reached_our_vendor = || {
            VendorKind::ALL.iter().any(|k| {
                self.sims.sim(*k).requests().iter().any(|r| {
                    r.headers
                        .iter()
                        .any(|(name, value)| name == "x-request-id" && *value == probe)
                })
            })
        };
        wait_until("callgate serve to answer as itself", || {
            if let Some(status) = serve.child.try_wait().unwrap() {
                panic!("callgate serve exited before it served: {status}");
            }
            let answered = ureq::get(&format!("http://127.0.0.1:{}/v1/calls?limit=1", self.api))
                .set("Authorization", &format!("Bearer {KEY}"))
                .set("Cache-Control", "no-cache")
                .set("X-Request-Id", &probe)
                .call()
                .is_ok_and(|r| r.header("x-request-id") == Some(probe.as_str()));
            answered && reached_our_vendor()
        });
    }

    fn get(&self, path: &str) -> Result<ureq::Response, Box<ureq::Error>> {
        ureq::get(&format!("http://127.0.0.1:{}{path}", self.api))
            .set("Authorization", &format!("Bearer {KEY}"))
            .set("Cache-Control", "no-cache")
            .call()
            .map_err(Box::new)
    }

    fn default_provider(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(
            &self
                .get("/v1/calls?limit=1")
                .unwrap()
                .into_string()
                .unwrap(),
        )
        .unwrap();
        v["data"][0]["provider"].as_str().unwrap().to_string()
    }

    fn metrics(&self) -> String {
        ureq::get(&format!("http://127.0.0.1:{}/metrics", self.admin))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    fn reloads(&self, result: &str) -> f64 {
        let series = format!("callgate_config_reloads_total{{result=\"{result}\"}} ");
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Requests the process on the admin port has answered (the sum of its request counts).
    fn answered(&self) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with("callgate_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the process on the admin port has answered `n` more requests than `since`.
    #[track_caller]
    fn wait_answered(&self, since: f64, n: f64, what: &str) {
        wait_until(what, || self.answered() >= since + n);
    }

    fn load(&self, path: &str, threads: u32, close: bool) -> (Child, PathBuf) {
        let stop = self
            .dir
            .path()
            .join(format!("stop-{}", common::free_port()));
        let mut cmd = Command::new("python3");
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/load.py"))
            .arg(format!("http://127.0.0.1:{}{path}", self.api))
            .arg(KEY)
            .arg(&stop)
            .arg(threads.to_string())
            .arg("120");
        if close {
            cmd.arg("--close");
        }
        (cmd.stdout(Stdio::piped()).spawn().expect("python3"), stop)
    }
}

fn finish_load(child: Child, stop: &Path) -> serde_json::Value {
    std::fs::write(stop, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "load output ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn twenty_reloads_under_load_fail_no_request() {
    let s = Setup::new("reload");
    s.write(&s.config("\"zudu\"", ""));
    let mut serve = s.serve(false);
    s.wait_ready(&mut serve);
    assert_eq!(s.default_provider(), "zudu");
    let before_load = s.answered();
    let (load, stop) = s.load("/v1/calls?limit=3", 3, false);
    s.wait_answered(before_load, 10.0, "the load to be under way");
    let broken = [
        s.config("\"zudu\"", "colour = \"blue\""),
        s.config("{ zudu = 60, elemente = 30 }", ""),
        s.config("\"ghost\"", ""),
        s.config("\"zudu\"", "")
            .replace("Z_SECRET", "NOT_SET_ANYWHERE"),
        "this is = = not toml".to_string(),
    ];
    let mut expected = "zudu";
    for i in 0..20 {
        if i % 2 == 0 {
            expected = if expected == "zudu" {
                "elemente"
            } else {
                "zudu"
            };
            let before = s.reloads("success");
            s.write(&s.config(&format!("\"{expected}\""), ""));
            wait_until(
                &format!("reload {i}: the new routing to take effect"),
                || s.default_provider() == expected,
            );
            wait_until(&format!("reload {i}: the reload to be counted"), || {
                s.reloads("success") > before
            });
        } else {
            let before = s.reloads("error");
            s.write(&broken[i / 2 % broken.len()]);
            wait_until(
                &format!("reload {i}: the broken file to be refused"),
                || s.reloads("error") > before,
            );
            assert_eq!(
                s.default_provider(),
                expected,
                "a refused file changes nothing"
            );
        }
    }
    // SIGHUP reloads the file as it is. The last file written above was broken: a good one
    // first, and its reload by the file watcher done, so that it cannot pass for the SIGHUP's.
    let before = s.reloads("success");
    s.write(&s.config(&format!("\"{expected}\""), ""));
    wait_until("the file watcher to reload the good file", || {
        s.reloads("success") > before
    });
    let before = s.reloads("success");
    signal(serve.child.id(), "HUP");
    wait_until("SIGHUP to reload", || s.reloads("success") > before);
    let stats = finish_load(load, &stop);
    assert!(stats["requests"].as_u64().unwrap() > 100, "{stats}");
    assert_eq!(stats["failures"], 0, "{stats}");
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let s = Setup::new("drain");
    let config = s.config("\"zudu\"", "");
    s.write(&config.replace("level = \"warn\"", "level = \"info\""));
    let log = s.dir.path().join("stdout.log");
    let mut serve = s.serve_with(false, Stdio::from(std::fs::File::create(&log).unwrap()));
    s.wait_ready(&mut serve);
    let zudu = s.sims.sim(VendorKind::Zudu);
    zudu.add_fault(Fault {
        latency_ms: Some(1_500),
        ..Default::default()
    });
    let sent = zudu.requests().len();
    let slow = {
        let url = format!("http://127.0.0.1:{}/v1/calls?limit=2", s.api);
        std::thread::spawn(move || {
            ureq::get(&url)
                .set("Authorization", &format!("Bearer {KEY}"))
                .call()
                .map(|r| r.status())
                .map_err(|e| e.to_string())
        })
    };
    // In flight: the vendor has it (and holds it 1.5 s from its arrival).
    wait_until("the request to reach the vendor", || {
        zudu.requests().len() > sent
    });
    signal(serve.child.id(), "TERM");
    assert_eq!(
        slow.join().unwrap(),
        Ok(200),
        "the in-flight request finished"
    );
    let mut exited = None;
    wait_until("callgate to exit after SIGTERM", || {
        exited = serve.child.try_wait().unwrap();
        exited.is_some()
    });
    let status = exited.unwrap();
    assert!(status.success() || status.code().is_none(), "{status:?}");
    // Log lines are written by a writer thread: the drained request's line must still reach
    // stdout before the process exits.
    let text = std::fs::read_to_string(&log).unwrap();
    let drained = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "request" && v["path"] == "/v1/calls");
    assert_eq!(
        drained.as_ref().map(|v| v["status"].clone()),
        Some(serde_json::json!(200)),
        "the drained request's log line: {text}"
    );
}

#[test]
fn a_binary_upgrade_refuses_no_connection() {
    let s = Setup::new("upgrade");
    s.write(&s.config("\"zudu\"", ""));
    let mut old = s.serve(false);
    s.wait_ready(&mut old);
    let before_load = s.answered();
    let (load, stop) = s.load("/v1/calls?limit=2", 2, true);
    s.wait_answered(before_load, 10.0, "the load to be under way");
    // The new process waits on the upgrade socket; SIGQUIT makes the old one hand over and drain.
    // (Pingora's new process binds the socket, then waits about 6 s for the old one's fds.)
    let mut new = s.serve(true);
    let upgrade_sock = s.dir.path().join("upgrade.sock");
    wait_until("the new process to wait on the upgrade socket", || {
        if let Some(status) = new.child.try_wait().unwrap() {
            panic!("the new process exited: {status}");
        }
        upgrade_sock.exists()
    });
    signal(old.child.id(), "QUIT");
    wait_until("the old process to exit", || {
        old.child.try_wait().unwrap().is_some()
    });
    // Only the new process is left on the ports: the load goes on against it alone.
    let since = s.answered();
    s.wait_answered(since, 10.0, "the new process alone to answer the load");
    let stats = finish_load(load, &stop);
    assert!(stats["requests"].as_u64().unwrap() > 20, "{stats}");
    assert_eq!(stats["refused"], 0, "no connection refused: {stats}");
    // A connection taken at the very instant of the hand-over may close before answering; the
    // client's one retry of an idempotent request (RFC 9110, 9.2.2) then succeeds.
    assert_eq!(stats["failures"], 0, "{stats}");
    assert!(stats["retried"].as_u64().unwrap() <= 5, "{stats}");
    eprintln!("upgrade under load: {stats}");
    assert_eq!(s.default_provider(), "zudu", "the new process serves");
    drop(new);
}

#[test]
fn a_log_reader_that_stops_reading_does_not_stall_requests() {
    // stdout is a pipe nobody reads: it fills after ~64 KB (a few hundred access lines). A
    // request must not wait for it: the log writer thread queues lines (up to 128k) instead.
    let s = Setup::new("stalled-log");
    let config = s.config("\"zudu\"", "");
    s.write(&config.replace("level = \"warn\"", "level = \"info\""));
    let mut serve = s.serve_with(false, Stdio::piped());
    s.wait_ready(&mut serve);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    for i in 0..3000 {
        let status = agent
            .get(&format!(
                "http://127.0.0.1:{}/v1/providers?request={i}",
                s.api
            ))
            .set("Authorization", &format!("Bearer {KEY}"))
            .call()
            .map(|r| r.status())
            .map_err(|e| e.to_string());
        assert_eq!(status, Ok(200), "request {i}");
    }
    drop(serve);
}

#[test]
fn the_binary_reports_what_its_allocator_holds() {
    // The allocator is the binary's (jemalloc): only `callgate serve` has these series.
    let s = Setup::new("allocator");
    s.write(&s.config("\"zudu\"", ""));
    let mut serve = s.serve(false);
    s.wait_ready(&mut serve);
    let text = s.metrics();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} on /metrics"))
    };
    let allocated = value("callgate_memory_allocated_bytes");
    let active = value("callgate_memory_active_bytes");
    let resident = value("callgate_memory_resident_bytes");
    value("callgate_memory_retained_bytes");
    assert!(allocated > 0.0, "{allocated}");
    assert!(
        allocated <= active && active <= resident,
        "{allocated} <= {active} <= {resident}"
    );
    assert!(resident <= value("process_resident_memory_bytes"));
}
