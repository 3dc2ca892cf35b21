#!/usr/bin/env bash
# Runs every ticksync test on a fresh machine, installing what it needs when missing:
# formatting and lints, the Rust suites (unit, property, end-to-end against the real
# server on 127.0.0.1; the cluster directory's against redis-server processes of their
# own), and the demo client's Node and headless-Chromium tests.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

command -v chromium >/dev/null || { echo "== installing Debian's chromium"; apt_install chromium; }
command -v node >/dev/null || { echo "== installing node and npm"; apt_install nodejs npm; }
command -v redis-server >/dev/null || { echo "== installing Debian's redis-server"; apt_install redis-server; }
if [ ! -d demo-client/node_modules ] || [ demo-client/package-lock.json -nt demo-client/node_modules ]; then
  echo "== npm ci (demo-client)"
  (cd demo-client && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
fi

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
# The browser tests run the server binary and the coins example (an outside crate's game).
cargo build --quiet -p ticksync-server --bin ticksync-server --example coins
cargo test --workspace --quiet
echo "== demo client and monitor tests (node, headless chromium)"
export TICKSYNC_SERVER_BIN="$PWD/target/debug/ticksync-server"
export TICKSYNC_COINS_BIN="$PWD/target/debug/examples/coins"
(cd demo-client && npm test)
node --test monitor/test/
echo "== all tests passed"
