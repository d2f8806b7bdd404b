//! The gateway as ops run it: the real `callgate serve` process, reloaded 20 times (half of them
//! with a broken file) under steady load from a second process with zero failed requests, SIGHUP,
//! a SIGTERM that lets in-flight requests finish, and a binary upgrade with `-u` (Pingora's
//! listening-socket hand-over) that refuses no connection.

mod common;

use callgate_sim::{credentials, Fault, SimCluster, SimOptions, VendorKind};
use common::KEY;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
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
providers = ["zudu", "elemente"]
default = {default}
{extra_tenant_line}
"#,
            api = self.api,
            admin = self.admin,
            adapters = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("adapters")
                .display(),
            dir = self.dir.path().display(),
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

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.api)).is_err() {
            assert!(Instant::now() < deadline, "callgate serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
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

    fn reloads(&self, result: &str) -> f64 {
        let text = ureq::get(&format!("http://127.0.0.1:{}/metrics", self.admin))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let series = format!("callgate_config_reloads_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series)?.parse().ok())
            .unwrap_or(0.0)
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
    let _serve = s.serve(false);
    s.wait_ready();
    assert_eq!(s.default_provider(), "zudu");
    let (load, stop) = s.load("/v1/calls?limit=3", 3, false);
    std::thread::sleep(Duration::from_millis(300));
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
            let started = Instant::now();
            while s.default_provider() != expected {
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "reload {i}: new routing not in effect within 1 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            while s.reloads("success") <= before {
                assert!(started.elapsed() < Duration::from_secs(3));
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            let before = s.reloads("error");
            s.write(&broken[i / 2 % broken.len()]);
            let started = Instant::now();
            while s.reloads("error") <= before {
                assert!(
                    started.elapsed() < Duration::from_secs(3),
                    "reload {i}: the broken file was not refused"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(
                s.default_provider(),
                expected,
                "a refused file changes nothing"
            );
        }
    }
    // SIGHUP reloads the file as it is.
    s.write(&s.config(&format!("\"{expected}\""), ""));
    std::thread::sleep(Duration::from_millis(600));
    let before = s.reloads("success");
    signal(_serve.child.id(), "HUP");
    let started = Instant::now();
    while s.reloads("success") <= before {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
    s.wait_ready();
    s.sims.sim(VendorKind::Zudu).add_fault(Fault {
        latency_ms: Some(1_500),
        ..Default::default()
    });
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
    std::thread::sleep(Duration::from_millis(300));
    signal(serve.child.id(), "TERM");
    assert_eq!(
        slow.join().unwrap(),
        Ok(200),
        "the in-flight request finished"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            assert!(status.success() || status.code().is_none(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "callgate did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let old = s.serve(false);
    s.wait_ready();
    let (load, stop) = s.load("/v1/calls?limit=2", 2, true);
    std::thread::sleep(Duration::from_millis(500));
    // The new process waits on the upgrade socket; SIGQUIT makes the old one hand over and drain.
    let new = s.serve(true);
    std::thread::sleep(Duration::from_millis(500));
    signal(old.child.id(), "QUIT");
    let mut old = old;
    let deadline = Instant::now() + Duration::from_secs(20);
    while old.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the old process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
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
    let serve = s.serve_with(false, Stdio::piped());
    s.wait_ready();
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
