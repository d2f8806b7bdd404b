#!/usr/bin/env bash
# Validates deploy/ offline: Prometheus config, alert rules and their unit tests (promtool),
# Kubernetes manifests (kubernetes-validate, strict), the Grafana dashboard (JSON, metric names),
# and that deploy/k8s/configmap.yaml matches config/callgate.toml and adapters/*.toml.
# Installs what it needs when missing: promtool (Debian package `prometheus`) and
# kubernetes-validate (PyPI, into .venv). Run from anywhere: bash deploy/check.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
K8S_VERSION="1.30.0"   # oldest Kubernetes these manifests target
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"

step() { printf '\n== %s\n' "$*"; }

# --- tools -----------------------------------------------------------------------------------
if ! command -v promtool >/dev/null 2>&1; then
  step "installing promtool (Debian package prometheus)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package starts a Prometheus server where an init system runs; promtool is all we need.
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  step "installing python3-venv"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
[[ -x .venv/bin/python ]] || python3 -m venv .venv
if [[ ! -x .venv/bin/kubernetes-validate ]]; then
  step "installing kubernetes-validate (PyPI) into .venv"
  .venv/bin/pip install -q 'kubernetes-validate>=1.30'
fi
PY=.venv/bin/python

# --- Prometheus --------------------------------------------------------------------------------
step "promtool check config deploy/prometheus/prometheus.yml"
if out="$(promtool check config deploy/prometheus/prometheus.yml 2>&1)"; then
  echo "$out"
elif grep -q "kubernetes_sd_configs not found" <<<"$out"; then
  # Debian builds Prometheus without Kubernetes service discovery, so its promtool cannot parse
  # kubernetes_sd_configs. Check everything else with promtool (every job, the relabelling, the
  # rule files) on a copy where that block is a static target, and the block itself here.
  echo "this promtool has no Kubernetes service discovery (Debian's build):"
  echo "checking a copy with kubernetes_sd_configs swapped for a static target, and that block by its schema"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cp deploy/prometheus/alerts.yml "$tmp/"
  "$PY" - "$tmp/prometheus.yml" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open("deploy/prometheus/prometheus.yml"))
ROLES = {"pod", "node", "service", "endpoints", "endpointslice", "ingress"}
KEYS = {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata",
        "basic_auth", "authorization", "oauth2", "tls_config", "proxy_url", "follow_redirects",
        "enable_http2"}
META = {"pod": ("__meta_kubernetes_pod_", "__meta_kubernetes_namespace")}
for job in cfg["scrape_configs"]:
    sds = job.pop("kubernetes_sd_configs", None)
    if sds is None:
        continue
    for sd in sds:
        bad = set(sd) - KEYS
        if bad or sd.get("role") not in ROLES:
            sys.exit(f"prometheus.yml: job {job['job_name']}: kubernetes_sd_configs: bad keys {sorted(bad)} or role {sd.get('role')!r}")
        prefixes = META.get(sd["role"], ("__meta_kubernetes_",)) + ("__address__", "__metrics_path__")
        for r in job.get("relabel_configs", []):
            for label in r.get("source_labels", []):
                if not label.startswith(prefixes):
                    sys.exit(f"prometheus.yml: job {job['job_name']}: {label} is not a label of role {sd['role']}")
    job["static_configs"] = [{"targets": ["stand-in.invalid:9090"]}]
    print(f"job {job['job_name']}: kubernetes_sd_configs (role {', '.join(s['role'] for s in sds)}) and its relabel source labels are valid")
yaml.safe_dump(cfg, open(sys.argv[1], "w"), sort_keys=False)
PY
  promtool check config "$tmp/prometheus.yml"
else
  echo "$out" >&2
  exit 1
fi
step "promtool check rules deploy/prometheus/alerts.yml"
promtool check rules deploy/prometheus/alerts.yml
step "promtool test rules deploy/prometheus/alerts_test.yml (alerts fire on synthetic series)"
promtool test rules deploy/prometheus/alerts_test.yml

# --- Kubernetes --------------------------------------------------------------------------------
manifests=(deploy/k8s/configmap.yaml deploy/k8s/deployment.yaml deploy/k8s/service.yaml
  deploy/k8s/hpa.yaml deploy/k8s/pdb.yaml deploy/k8s/redis.yaml deploy/k8s/secret.example.yaml)
step "kubernetes-validate --strict -k $K8S_VERSION on ${#manifests[@]} manifests"
.venv/bin/kubernetes-validate --strict --kubernetes-version "$K8S_VERSION" "${manifests[@]}"

step "deploy/k8s/configmap.yaml is up to date with config/callgate.toml and adapters/*.toml"
bash deploy/k8s/render-configmaps.sh --check

step "manifests agree with each other and with config/callgate.toml"
"$PY" - <<'PY'
import glob, os, sys, tomllib, yaml

def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]

fail = []
# The ConfigMaps hold exactly the source files, byte for byte.
cms = {d["metadata"]["name"]: d["data"] for d in load_all("deploy/k8s/configmap.yaml")}
sources = {("callgate-config", "callgate.toml"): "config/callgate.toml"}
sources.update({("callgate-adapters", os.path.basename(p)): p for p in glob.glob("adapters/*.toml")})
for (cm, key), path in sorted(sources.items()):
    if cms.get(cm, {}).get(key) != open(path).read():
        fail.append(f"configmap.yaml: {cm}.{key} differs from {path}")
extra = {(cm, k) for cm, data in cms.items() for k in data} - set(sources)
fail += [f"configmap.yaml: {cm}.{k} has no source file" for cm, k in sorted(extra)]

# Every adapter is projected into /etc/callgate/adapters; every secret the config names is set.
dep = load_all("deploy/k8s/deployment.yaml")[0]
pod = dep["spec"]["template"]["spec"]
projected = {
    (s["configMap"]["name"], i["key"]): i["path"]
    for v in pod["volumes"] if "projected" in v
    for s in v["projected"]["sources"] if "configMap" in s
    for i in s["configMap"].get("items", [])
}
for (cm, key) in sources:
    want = key if cm == "callgate-config" else f"adapters/{key}"
    if projected.get((cm, key)) != want:
        fail.append(f"deployment.yaml: volume config does not project {cm}/{key} at {want}")
env = {e["name"]: e for e in pod["containers"][0]["env"]}
def env_refs(node):
    if isinstance(node, dict):
        if set(node) == {"env"}:
            yield node["env"]
        for v in node.values():
            yield from env_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from env_refs(v)
config = tomllib.load(open("config/callgate.toml", "rb"))
refs = sorted(set(env_refs(config)))
for var in refs:
    ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
    if not ref:
        fail.append(f"deployment.yaml: {var} (named in config/callgate.toml) is not set from a Secret")
# [state] overridden from the environment: the Redis URL (it may carry a password) is a Secret.
url_env = env.get("CALLGATE__STATE__URL_ENV", {}).get("value")
if url_env and not env.get(url_env, {}).get("valueFrom", {}).get("secretKeyRef"):
    fail.append(f"deployment.yaml: {url_env} (CALLGATE__STATE__URL_ENV) is not set from a Secret")
if "CALLGATE__STATE__URL" in env:
    fail.append("deployment.yaml: give the Redis URL as CALLGATE__STATE__URL_ENV (a Secret), not inline")
# redis.yaml's Redis must keep what callgate stores: no eviction, append-only persistence.
for d in load_all("deploy/k8s/redis.yaml"):
    if d["kind"] == "StatefulSet":
        args = " ".join(d["spec"]["template"]["spec"]["containers"][0].get("args", []))
        for want in ("--maxmemory-policy noeviction", "--appendonly yes"):
            if want not in args:
                fail.append(f"redis.yaml: Redis needs {want} (idempotency keys and limits must not vanish)")

# kustomization lists every manifest except the Secret example.
kust = yaml.safe_load(open("deploy/k8s/kustomization.yaml"))
listed = set(kust["resources"])
want = {os.path.basename(p) for p in glob.glob("deploy/k8s/*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
if listed != want:
    fail.append(f"kustomization.yaml: resources {sorted(listed)} != manifests {sorted(want)}")
if "secret.example.yaml" in listed:
    fail.append("kustomization.yaml must not apply secret.example.yaml")
for d in load_all("deploy/k8s/secret.example.yaml"):
    for k, v in d.get("stringData", {}).items():
        if v != "REPLACE_ME":
            fail.append(f"secret.example.yaml: {k} must be the placeholder REPLACE_ME")
if fail:
    print("\n".join(fail), file=sys.stderr)
    sys.exit(1)
print(f"configmaps hold {len(sources)} source files; {len(projected)} files projected; "
      f"all {len(refs)} secrets config/callgate.toml names come from Secrets; kustomization lists {len(listed)} resources")
PY
if command -v kubectl >/dev/null 2>&1; then
  step "kubectl kustomize deploy/k8s renders"
  kubectl kustomize deploy/k8s >/dev/null && echo "ok"
fi

# --- Grafana and metric names ------------------------------------------------------------------
step "python3 -m json.tool deploy/grafana/callgate-dashboard.json"
python3 -m json.tool deploy/grafana/callgate-dashboard.json >/dev/null && echo "valid JSON"

step "dashboard and alerts name only metrics of DESIGN.md, [state] and [events]"
"$PY" - <<'PY'
import json, re, sys, yaml

# DESIGN.md, "Metrics" (plus callgate_circuit_open, which arrives with the circuit breaker), and
# the [state] series of src/state/link.rs (config/README.md, "[state]").
KNOWN = {
    "callgate_requests_total", "callgate_request_duration_seconds",
    "callgate_upstream_duration_seconds", "callgate_overhead_duration_seconds",
    "callgate_upstream_errors_total", "callgate_cache_requests_total", "callgate_cache_bytes",
    "callgate_inflight_requests", "callgate_config_reloads_total",
    "callgate_config_last_reload_timestamp_seconds", "callgate_vendor_drift_total",
    "callgate_state_up", "callgate_state_operations_total",
    "callgate_state_operation_duration_seconds", "callgate_state_fallbacks_total",
    "callgate_event_streams_open", "callgate_events_sent_total", "callgate_event_reads_total",
    "callgate_event_upstream_connects_total", "callgate_event_streams_ended_total",
    "callgate_event_delivery_seconds", "callgate_memory_allocated_bytes",
    "callgate_memory_active_bytes", "callgate_memory_resident_bytes",
    "callgate_memory_retained_bytes",
}
ALERTS_ONLY = {"callgate_circuit_open"}
HISTOGRAMS = {"callgate_request_duration_seconds", "callgate_upstream_duration_seconds",
              "callgate_overhead_duration_seconds", "callgate_state_operation_duration_seconds",
              "callgate_event_delivery_seconds"}

def names(expr):
    out = set()
    for m in re.findall(r"\bcallgate_[a-z0-9_]+", expr):
        base = re.sub(r"_(bucket|count|sum)$", "", m)
        out.add(base if base in HISTOGRAMS else m)
    return out

fail = []
dash = json.load(open("deploy/grafana/callgate-dashboard.json"))
if dash.get("schemaVersion", 0) < 36:
    fail.append("dashboard: schemaVersion must be >= 36")
if not any(v.get("type") == "datasource" and v.get("query") == "prometheus"
           for v in dash.get("templating", {}).get("list", [])):
    fail.append("dashboard: no Prometheus datasource variable")
used = set()
panels = dash["panels"]
for p in panels:
    exprs = [t["expr"] for t in p.get("targets", [])]
    if not exprs:
        fail.append(f"dashboard panel {p['title']!r}: no query")
    for e in exprs:
        n = names(e)
        if not n:
            fail.append(f"dashboard panel {p['title']!r}: {e!r} names no callgate metric")
        for bad in sorted(n - KNOWN):
            fail.append(f"dashboard panel {p['title']!r}: unknown metric {bad}")
        used |= n
rules = [r for g in yaml.safe_load(open("deploy/prometheus/alerts.yml"))["groups"] for r in g["rules"]]
for r in rules:
    for bad in sorted(names(r["expr"]) - KNOWN - ALERTS_ONLY):
        fail.append(f"alerts.yml {r['alert']}: unknown metric {bad}")
    for key in ("summary", "description", "runbook"):
        if not r.get("annotations", {}).get(key):
            fail.append(f"alerts.yml {r['alert']}: no {key} annotation")
    if "severity" not in r.get("labels", {}) or "for" not in r:
        fail.append(f"alerts.yml {r['alert']}: needs `for` and a severity label")
if fail:
    print("\n".join(fail), file=sys.stderr)
    sys.exit(1)
print(f"{len(panels)} panels use {len(used)} of the {len(KNOWN)} known metrics; "
      f"{len(rules)} alerts use known metrics and carry severity, summary, description, runbook")
PY

step "deploy/ checks passed"
