# callgate — the two commands a new user needs: `make demo` and `make test`.
# Both install what the build needs (cmake for Pingora's zlib-ng) when it is missing.

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CARGO ?= cargo

.PHONY: demo test deps test-deps build lint openapi-check api-check deploy-check

## Build in release mode and run the demo: three vendor simulators and the gateway (key demo-key).
demo: deps build
	./target/release/callgate demo

## The whole test suite: formatting, lints, unit, integration and simulator tests, OpenAPI validity.
test: deps test-deps lint openapi-check deploy-check
	$(CARGO) test --workspace --all-targets
	$(MAKE) api-check
	$(MAKE) bench-quick

# The server against its OpenAPI document: schemathesis (every check but those
# openapi/schemathesis.toml excludes, with reasons) against `callgate demo` (debug build).
api-check: openapi-check
	$(CARGO) build --bin callgate
	bash openapi/schemathesis.sh

deps:
	@command -v cmake >/dev/null 2>&1 || { \
	  echo "installing cmake (needed to build Pingora)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq cmake >/dev/null; }
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "cargo is required (https://rustup.rs)"; exit 1; }

# Tests scrape callgate with a real Prometheus and run promtool (Debian package prometheus);
# the fleet tests run real redis-server and nginx (Debian packages redis-server, nginx); the
# tracing tests' OTLP receiver decodes with opentelemetry-proto (PyPI, into .venv).
test-deps:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing prometheus (for the scrape test and promtool)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@{ command -v redis-server || [ -x /usr/bin/redis-server ]; } >/dev/null 2>&1 || { \
	  echo "installing redis-server (for the fleet tests)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
	@command -v python3 >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3 python3-venv >/dev/null; }
	@[ -x .venv/bin/python ] || python3 -m venv .venv || { $(SUDO) apt-get install -y -qq python3-venv >/dev/null && python3 -m venv .venv; }
	@.venv/bin/python -c 'import opentelemetry.proto' 2>/dev/null || { \
	  echo "installing opentelemetry-proto (PyPI, into .venv) for the OTLP receiver of the tracing tests"; \
	  .venv/bin/pip install -q opentelemetry-proto; }
	@{ command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null 2>&1 || { \
	  echo "installing nginx (the fleet tests' round-robin proxy)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null; }

# Deployment files: promtool config/rules/rule tests, kubernetes-validate, dashboard, ConfigMap freshness.
deploy-check:
	bash deploy/check.sh

build:
	$(CARGO) build --release --bin callgate

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The OpenAPI document must be a valid OpenAPI 3.1 document (validator from PyPI, in a venv).
openapi-check:
	@command -v python3 >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3 python3-venv >/dev/null; }
	@[ -x .venv/bin/openapi-spec-validator ] || python3 -m venv .venv || { $(SUDO) apt-get install -y -qq python3-venv >/dev/null && python3 -m venv .venv; }
	@[ -x .venv/bin/openapi-spec-validator ] || .venv/bin/pip install -q openapi-spec-validator
	.venv/bin/openapi-spec-validator openapi/openapi.json

# Benchmarks (issue 6; results and targets in benches/README.md). Loopback only, bounded in time.
.PHONY: bench bench-quick

## Criterion normalization bench, then the load bench: simulator, nginx, callgate cache off/hit (~13 min).
bench: deps
	$(CARGO) bench --bench normalize
	bash benches/load/run.sh

## Every benchmark once in quick mode (seconds, no timing assertions), so none can rot.
bench-quick: deps
	CALLGATE_BENCH_QUICK=1 $(CARGO) bench --bench normalize
	bash benches/load/run.sh --smoke
	python3 benches/load/state.py --callgate target/release/callgate --smoke
	python3 benches/load/connections.py --callgate target/release/callgate --oha $$(command -v oha || echo target/bench-tools/bin/oha) --smoke
