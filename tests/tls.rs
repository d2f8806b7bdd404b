//! TLS to vendors, over real sockets: the simulators serve HTTPS with certificates of a test
//! authority made here (rcgen). A provider trusts its `ca_file`; an untrusted, expired or
//! other-host certificate is refused before anything is sent, answered `503
//! provider_unavailable` naming the certificate, and counted as its own upstream error kind.

mod common;

use callgate::server::RunningGateway;
use callgate_sim::{SimCluster, SimOptions, TlsFiles, VendorKind};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};

/// A certificate authority made for one test.
struct Authority {
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Authority { key, cert }
    }

    fn write_ca(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.cert.pem()).unwrap();
        path
    }

    /// A server certificate for `hosts`, expired when `expired`.
    fn issue(&self, dir: &Path, name: &str, hosts: &[&str], expired: bool) -> TlsFiles {
        let key = KeyPair::generate().unwrap();
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(hosts).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let files = TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            client_ca: None,
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }
}

/// Simulators serving `files`, and a gateway whose provider `zudu` reaches them at `host`
/// over HTTPS, trusting `ca_file` (else the system's authorities).
fn setup(files: TlsFiles, host: &str, ca_file: Option<&Path>) -> (SimCluster, RunningGateway) {
    setup_with(files, host, ca_file, "")
}

/// [`setup`], with more keys for the provider (`extra`, TOML lines).
fn setup_with(
    files: TlsFiles,
    host: &str,
    ca_file: Option<&Path>,
    extra: &str,
) -> (SimCluster, RunningGateway) {
    let sims = SimCluster::start(SimOptions {
        tls: Some(files),
        ..SimOptions::default()
    });
    let port = sims.addr(VendorKind::Zudu).port();
    let ca = ca_file.map_or(String::new(), |p| {
        format!("ca_file = {:?}\n", p.display().to_string())
    });
    let text = format!(
        "[server]\nthreads = 2\nadapters = \"adapters\"\n\n\
         [providers.zudu]\nvendor = \"zudu\"\nbase_url = \"https://{host}:{port}\"\n{ca}{extra}\
         credentials = {{ api_key = {{ env = \"Z_KEY\" }}, api_secret = {{ env = \"Z_SECRET\" }} }}\n\n\
         [tenants.main]\nkeys = [{{ env = \"KEY\" }}]\nproviders = [\"zudu\"]\ndefault = \"zudu\"\n"
    );
    let gateway = RunningGateway::start(common::load(&text));
    (sims, gateway)
}

/// GET a zudu list through `gateway`: status and body.
fn list(gateway: &RunningGateway) -> (u16, serde_json::Value) {
    let url = format!("http://{}/v1/calls?provider=zudu&limit=2", gateway.addr);
    let answer = ureq::get(&url)
        .set("Authorization", &format!("Bearer {}", common::KEY))
        .call();
    let resp = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

fn tls_errors(gateway: &RunningGateway) -> f64 {
    let text = ureq::get(&format!("http://{}/metrics", gateway.admin_addr))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(r#"callgate_upstream_errors_total{kind="tls",provider="zudu"} "#)
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Asserts a refused certificate: 503 naming TLS, nothing sent, counted as kind `tls`.
#[track_caller]
fn assert_refused(sims: &SimCluster, gateway: &RunningGateway, why: &str) {
    let (status, problem) = list(gateway);
    assert_eq!(status, 503, "{why}: {problem}");
    assert_eq!(problem["code"], "provider_unavailable", "{why}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("TLS handshake"), "{why}: {detail}");
    assert!(
        sims.sim(VendorKind::Zudu).requests().is_empty(),
        "{why}: sent"
    );
    common::wait_until("the failure to be counted", || tls_errors(gateway) >= 1.0);
}

#[test]
fn a_vendor_certificate_from_the_providers_ca_file_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("callgate test CA");
    let files = ca.issue(dir.path(), "good", &["localhost"], false);
    let ca_file = ca.write_ca(dir.path(), "ca.pem");
    let (sims, gateway) = setup(files, "localhost", Some(&ca_file));
    let (status, page) = list(&gateway);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    // The vendor saw the request, with its Host (and so SNI) as configured.
    let seen = sims.sim(VendorKind::Zudu).requests();
    assert!(seen.iter().any(|r| r
        .headers
        .iter()
        .any(|(k, v)| k == "host" && v.starts_with("localhost:"))));
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("callgate test CA");
    let files = ca.issue(dir.path(), "good", &["localhost"], false);
    // The system's authorities (no ca_file), and another authority's file.
    let other = Authority::new("some other CA").write_ca(dir.path(), "other.pem");
    for ca_file in [None, Some(other.as_path())] {
        let (sims, gateway) = setup(files.clone(), "localhost", ca_file);
        assert_refused(&sims, &gateway, &format!("untrusted, ca_file {ca_file:?}"));
    }
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("callgate test CA");
    let files = ca.issue(dir.path(), "other-host", &["vendor.example"], false);
    let ca_file = ca.write_ca(dir.path(), "ca.pem");
    let (sims, gateway) = setup(files, "localhost", Some(&ca_file));
    assert_refused(&sims, &gateway, "another host");
}

#[test]
fn an_expired_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("callgate test CA");
    let files = ca.issue(dir.path(), "expired", &["localhost"], true);
    let ca_file = ca.write_ca(dir.path(), "ca.pem");
    let (sims, gateway) = setup(files, "localhost", Some(&ca_file));
    assert_refused(&sims, &gateway, "expired");
}

#[test]
fn a_ca_file_that_is_not_certificates_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let text = format!(
        "[server]\nadapters = \"adapters\"\n[providers.zudu]\nvendor = \"zudu\"\n\
         base_url = \"https://localhost:1\"\nca_file = {:?}\n\
         credentials = {{ api_key = {{ env = \"Z_KEY\" }}, api_secret = {{ env = \"Z_SECRET\" }} }}\n\
         [tenants.main]\nkeys = [{{ env = \"KEY\" }}]\nproviders = [\"zudu\"]\ndefault = \"zudu\"\n",
        junk.display().to_string()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let errors =
        callgate::config::load_str(&text, "t.toml", root, &common::env).expect_err("refused");
    assert!(
        errors
            .iter()
            .any(|e| e.key == "providers.zudu.ca_file" && e.reason.contains("no CERTIFICATE")),
        "{errors:?}"
    );
}

#[test]
fn a_vendor_requiring_mutual_tls_is_shown_the_providers_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("callgate test CA");
    let ca_file = ca.write_ca(dir.path(), "ca.pem");
    // The vendor asks for a client certificate of its own authority.
    let clients = Authority::new("vendor client CA");
    let mut files = ca.issue(dir.path(), "good", &["localhost"], false);
    files.client_ca = Some(clients.write_ca(dir.path(), "clients.pem"));
    let client = |who: &Authority, name: &str| {
        let f = who.issue(dir.path(), name, &["callgate"], false);
        format!(
            "client_cert_file = {:?}\nclient_key_file = {:?}\n",
            f.cert.display().to_string(),
            f.key.display().to_string()
        )
    };
    let good = client(&clients, "callgate-client");
    let (sims, gateway) = setup_with(files.clone(), "localhost", Some(&ca_file), &good);
    let (status, page) = list(&gateway);
    assert_eq!(status, 200, "{page}");
    assert!(!sims.sim(VendorKind::Zudu).requests().is_empty());
    // Without a client certificate, or with one of another authority: refused, nothing sent.
    let stranger = client(&Authority::new("stranger CA"), "stranger-client");
    for extra in [String::new(), stranger] {
        let (sims, gateway) = setup_with(files.clone(), "localhost", Some(&ca_file), &extra);
        let (status, problem) = list(&gateway);
        assert!(
            matches!(status, 502 | 503),
            "refused client certificate: {status} {problem}"
        );
        assert!(sims.sim(VendorKind::Zudu).requests().is_empty(), "sent");
    }
}

#[test]
fn a_client_certificate_without_its_key_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("callgate test CA");
    let f = ca.issue(dir.path(), "client", &["callgate"], false);
    let text = |extra: &str| {
        format!(
            "[server]\nadapters = \"adapters\"\n\
             [providers.zudu]\nvendor = \"zudu\"\nbase_url = \"https://127.0.0.1:9\"\n{extra}\
             credentials = {{ api_key = {{ env = \"Z_KEY\" }}, api_secret = {{ env = \"Z_SECRET\" }} }}\n\
             [tenants.main]\nkeys = [{{ env = \"KEY\" }}]\nproviders = [\"zudu\"]\n"
        )
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let load = |t: &str| callgate::config::load_str(t, "t.toml", root, &common::env);
    let cert = f.cert.display().to_string();
    let key = f.key.display().to_string();
    for (extra, want) in [
        (format!("client_cert_file = {cert:?}\n"), "go together"),
        (
            format!("client_cert_file = {key:?}\nclient_key_file = {key:?}\n"),
            "no CERTIFICATE block",
        ),
        (
            format!("client_cert_file = {cert:?}\nclient_key_file = {cert:?}\n"),
            "no PRIVATE KEY block",
        ),
    ] {
        let errs = load(&text(&extra)).expect_err("refused");
        let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            all.iter()
                .any(|e| e.contains("providers.zudu.client_cert_file") && e.contains(want)),
            "{extra}: {all:?}"
        );
    }
    assert!(load(&text(&format!(
        "client_cert_file = {cert:?}\nclient_key_file = {key:?}\n"
    )))
    .is_ok());
}
