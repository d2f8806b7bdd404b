#!/usr/bin/env bash
# `make bench` (and `make bench-quick` with --smoke): builds callgate in release, finds or installs
# the load generator (oha, from crates.io, into $TARGET/bench-tools) and nginx (Debian), then runs
# benches/load/run.py. Loopback only; every run is bounded in time. Extra arguments go to run.py
# (--seconds N, --concurrency N, --rss-seconds N, --smoke, --markdown FILE, --compare OTHER_CALLGATE).
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}
TARGET=${CARGO_TARGET_DIR:-target}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

# The bare Pingora proxy (mode P) is an example of this package: same Pingora, same profile.
$CARGO build --release --bin callgate --example pingora_passthrough
CALLGATE="$TARGET/release/callgate"
PASSTHROUGH="$TARGET/release/examples/pingora_passthrough"

OHA=$(command -v oha || true)
if [ -z "$OHA" ]; then
  OHA="$TARGET/bench-tools/bin/oha"
  if [ ! -x "$OHA" ]; then
    echo "installing oha (load generator, crates.io) into $TARGET/bench-tools" >&2
    # oha needs one TLS stack to build: the system OpenSSL (Debian libssl-dev) builds in seconds
    # where the default (aws-lc) takes minutes. The bench itself is plain HTTP on loopback.
    if ! pkg-config --exists openssl 2>/dev/null; then
      $SUDO apt-get update -qq
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libssl-dev pkg-config >/dev/null
    fi
    $CARGO install oha --locked --no-default-features --features native-tls --root "$TARGET/bench-tools" >&2
  fi
fi

NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
if [ -z "$NGINX" ]; then
  echo "installing nginx (Debian) for the reverse-proxy baseline" >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
  NGINX=/usr/sbin/nginx
fi

exec python3 benches/load/run.py --callgate "$CALLGATE" --passthrough "$PASSTHROUGH" --oha "$OHA" --nginx "$NGINX" "$@"
