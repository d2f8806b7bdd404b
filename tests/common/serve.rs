//! `callgate serve` as a child process (a real binary, its own global log and tracer set-up),
//! and the Debian-packaged programs tests run beside it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A child process stopped (SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: `make test-deps` installs it (Debian package)")
}

/// One `callgate serve`.
pub struct Replica {
    pub api: u16,
    pub admin: u16,
    pub proc: Proc,
}

impl Replica {
    /// `callgate serve --config CONFIG` on free ports, its output in `DIR/replica-I.log`, with
    /// the harness's secrets and `env` in its environment; returns once `/readyz` says ready.
    pub fn spawn(config: &Path, dir: &Path, i: usize, env: &[(&str, &str)]) -> Replica {
        // A port picked free may be taken by another test before this process binds it (its
        // API listener then fails while the admin one serves): try again on other ports.
        for _ in 0..3 {
            if let Some(r) = Replica::spawn_once(config, dir, i, env) {
                return r;
            }
        }
        panic!(
            "callgate serve did not come up on free ports three times; see {}",
            dir.display()
        )
    }

    fn spawn_once(config: &Path, dir: &Path, i: usize, env: &[(&str, &str)]) -> Option<Replica> {
        let [api, admin] = super::free_ports();
        let log_path = dir.join(format!("replica-{i}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callgate"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CALLGATE__SERVER__LISTEN", format!("127.0.0.1:{api}"))
            .env(
                "CALLGATE__SERVER__ADMIN_LISTEN",
                format!("127.0.0.1:{admin}"),
            )
            .env(
                "CALLGATE__SERVER__UPGRADE_SOCK",
                dir.join(format!("upgrade-{i}.sock")),
            )
            .env("CALLGATE__LOGGING__LEVEL", "warn")
            .env_remove("RUST_LOG")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for name in SECRETS {
            cmd.env(name, super::env(name).unwrap());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = Proc(cmd.spawn().unwrap());
        let deadline = std::time::Instant::now() + super::PATIENCE;
        loop {
            if let Some(status) = proc.0.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                if log.contains("in use") {
                    return None;
                }
                panic!("callgate serve exited: {status}\n{log}");
            }
            if std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("in use")) {
                return None;
            }
            let ready = ureq::get(&format!("http://127.0.0.1:{admin}/readyz"))
                .call()
                .is_ok();
            let serves = ureq::get(&format!("http://127.0.0.1:{api}/openapi.json"))
                .call()
                .is_ok();
            if ready && serves {
                return Some(Replica { api, admin, proc });
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api)
    }

    pub fn metric(&self, series: &str) -> Option<f64> {
        let text = ureq::get(&format!("http://127.0.0.1:{}/metrics", self.admin))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

const SECRETS: [&str; 11] = [
    "KEY",
    "OTHER_KEY",
    "LIMITED_KEY",
    "SPLIT_KEY",
    "E_USER",
    "E_PASS",
    "E_PASS_WRONG",
    "B_KEY",
    "B_KEY_NOSCOPE",
    "Z_KEY",
    "Z_SECRET",
];
