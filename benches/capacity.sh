#!/usr/bin/env bash
# Records ticksync's figures on the standard workload (shared/WORKLOAD.md): lobbies of 10
# at 30 Hz, the server pinned to one core and the bots to the other, on 127.0.0.1.
#
#   benches/capacity.sh                 # 500, 1000 and 2000 bots, then the capacity
#   COUNTS="1000" CAPACITY=0 benches/capacity.sh
#   COUNTS="1000" CAPACITY=0 BOTS_FLAGS=--delta benches/capacity.sh
#
# Settings (environment): COUNTS (default "500 1000 2000"), DURATION (measured window,
# default 20 s), WARMUP (default 5 s), CAPACITY (1: run --find-capacity after the counts),
# CAP_START / CAP_STEP / CAP_RESOLUTION (default 1000 / 500 / 125), SERVER_CPU and
# BOTS_CPU (default 0 and 1), OUT (default target/capacity/<date>), BOTS_FLAGS (more
# flags for every bots run, e.g. --delta), BIN (default target/release, built first;
# target/debug builds and uses debug binaries, to check the script quickly), QUIET_WAIT
# (seconds to wait for an idle machine before each run, default 120; 0: do not wait),
# ATTEMPTS (runs of a count that other load disturbed, default 3), BARE (1, the default:
# at each count, also run the bots against `ticksync-bare`, the stack with no game, for
# the floor on this machine and day; 0: skip it), BASELINE_BIN (a `ticksync-server` built from an earlier commit,
# e.g. in a git worktree: at each count bots run against it right after this build's
# server, so that the two are compared minutes apart on the same machine), BASELINE_BOTS
# (the bots binary for the BASELINE_BIN runs, default this build's; a baseline that speaks
# an older protocol needs its own, e.g. /work/wt-base/target/release/ticksync-bots),
# GAME (arena, hill or shooter: this build's server runs `--game $GAME` and its bots get
# `--game $GAME`, shooter bots aiming and firing; the baseline and bare runs get no
# --game, so they play their own default, arena). ORDER (this-first, the default, or
# alternate: with BASELINE_BIN, every other count runs the baseline first).
#
#   GAME=shooter COUNTS=500 CAPACITY=0 BARE=0 benches/capacity.sh   # 50 lobbies of 10
#   COUNTS=1000 CAPACITY=0 BARE=0 BASELINE_BIN=/work/wt-base/target/release/ticksync-server \
#     BASELINE_BOTS=/work/wt-base/target/release/ticksync-bots benches/capacity.sh
#
# Every process started here is stopped by its PID on exit, and every run is bounded by
# `timeout`. Each run's table goes to stdout and its JSON to $OUT. A figure is worth
# keeping only when the report carries no warning (other load, saturated bots).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNTS=${COUNTS:-"500 1000 2000"}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
CAPACITY=${CAPACITY:-1}
BOTS_FLAGS=${BOTS_FLAGS:-}
BARE=${BARE:-1}
QUIET_WAIT=${QUIET_WAIT:-120}
ATTEMPTS=${ATTEMPTS:-3}
CAP_START=${CAP_START:-1000}
CAP_STEP=${CAP_STEP:-500}
CAP_RESOLUTION=${CAP_RESOLUTION:-125}
SERVER_CPU=${SERVER_CPU:-0}
BOTS_CPU=${BOTS_CPU:-1}
OUT=${OUT:-target/capacity/$(date -u +%Y%m%d-%H%M%S)}
GAME=${GAME:-}
BIN=${BIN:-target/release}
ORDER=${ORDER:-this-first}
BASELINE_BOTS=${BASELINE_BOTS:-$BIN/ticksync-bots}
mkdir -p "$OUT"
# This build's server and bots get the game; the baseline and the bare stack do not.
GAME_SERVER=()
GAME_BOTS=()
if [ -n "$GAME" ]; then
  GAME_SERVER=(--game "$GAME")
  GAME_BOTS=(--game "$GAME")
fi

if [ "$BIN" = target/release ]; then
  echo "== building release binaries"
  cargo build --release --quiet -p ticksync-server -p ticksync-bots
  [ "$BARE" = 1 ] && cargo build --release --quiet -p ticksync-benches --bin ticksync-bare
else
  # BIN=target/debug: a quick check of the script itself, no figures worth keeping.
  echo "== building debug binaries"
  cargo build --quiet -p ticksync-server -p ticksync-bots
  [ "$BARE" = 1 ] && cargo build --quiet -p ticksync-benches --bin ticksync-bare
fi

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
trap stop_server EXIT INT TERM

# Starts a server (ticksync-server, or with a second argument that binary) on a free
# loopback port (it prints the address it bound); sets SERVER_PID and URL.
# Every bot comes from 127.0.0.1, and one bot of each group creates its lobby: lift the
# per-address lobby quota (by environment, which a baseline build that predates the
# quota ignores).
export TICKSYNC_MAX_LOBBIES_PER_IP=100000 TICKSYNC_LOBBY_CREATES_PER_MINUTE=100000
start_server() {
  local log="$OUT/server-$1${2:+-$(basename "$2")}.log"
  if [ -n "${2:-}" ] && [ "${2#/}" != "$2" ]; then
    taskset -c "$SERVER_CPU" "$2" --bind 127.0.0.1:0 \
      --max-connections-per-ip 20000 >"$log" 2>&1 &
  elif [ -n "${2:-}" ]; then
    taskset -c "$SERVER_CPU" "$BIN/$2" --bind 127.0.0.1:0 >"$log" 2>&1 &
  else
    taskset -c "$SERVER_CPU" "$BIN/ticksync-server" --bind 127.0.0.1:0 \
      --max-connections-per-ip 20000 "${GAME_SERVER[@]}" >"$log" 2>&1 &
  fi
  SERVER_PID=$!
  local addr=
  for _ in $(seq 100); do
    addr=$(grep -m1 -o 'open http://[^/]*' "$log" | sed 's#open http://##' || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "the server did not start; see $log" >&2
    exit 1
  fi
  URL="ws://$addr/ws"
}

# Waits (up to QUIET_WAIT s) until the machine is nearly idle: other processes' CPU use would
# be counted against nobody and would disturb both the server and the bots.
wait_quiet() {
  [ "$QUIET_WAIT" -gt 0 ] || return 0
  for _ in $(seq $(( (QUIET_WAIT + 1) / 2 ))); do
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
    [ $((b - a)) -lt 10 ] && return 0   # under 0.1 core (USER_HZ is 100)
    sleep 1
  done
  echo "(the machine did not become quiet; the report will say how disturbed it was)"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server protocol bots client || echo ' (with local changes)')"
echo "== load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

# Other processes' CPU during a run's window, in hundredths of a core (from its JSON).
other_load() {
  awk -F': ' '/"other_cpu_cores"/ { gsub(/,/, "", $2); printf "%d", $2 * 100 }' "$1"
}

run_this() {
  local n=$1
  # A run that other processes disturbed (over 0.1 core) is run again, ATTEMPTS times at most.
  for attempt in $(seq "$ATTEMPTS"); do
    echo "== $n bots, lobbies of 10${GAME:+, $GAME}, window ${DURATION} s after ${WARMUP} s of warm-up (attempt $attempt)"
    wait_quiet
    start_server "$n"
    status=0
    timeout $((DURATION + WARMUP + 120)) taskset -c "$BOTS_CPU" "$BIN/ticksync-bots" \
      --url "$URL" --bots "$n" --players-per-lobby 10 --duration "$DURATION" \
      --warmup "$WARMUP" --connect-rate 1000 --server-pid "$SERVER_PID" --no-progress \
      --json-out "$OUT/bots-$n.json" "${GAME_BOTS[@]}" $BOTS_FLAGS || status=$?
    [ "$status" = 0 ] || echo "(exit $status: 3 means the SLO was missed)"
    stop_server
    [ "$(other_load "$OUT/bots-$n.json")" -le 10 ] && break
    echo "(other processes were busy during the window: running $n again)"
  done
}

run_baseline() {
  local n=$1
  if [ -n "${BASELINE_BIN:-}" ]; then
    echo "== $n bots ($BASELINE_BOTS) against the baseline build ($BASELINE_BIN)"
    wait_quiet
    start_server "$n" "$BASELINE_BIN"
    timeout $((DURATION + WARMUP + 120)) taskset -c "$BOTS_CPU" "$BASELINE_BOTS" \
      --url "$URL" --bots "$n" --players-per-lobby 10 --duration "$DURATION" \
      --warmup "$WARMUP" --connect-rate 1000 --server-pid "$SERVER_PID" --no-progress \
      --json-out "$OUT/baseline-$n.json" $BOTS_FLAGS || echo "(exit $?)"
    stop_server
  fi
}

pair=0
for n in $COUNTS; do
  # ORDER=alternate: every other pair runs the baseline first, so that a drift of the
  # machine within a pair does not always favour the same build.
  if [ "$ORDER" = alternate ] && [ $((pair % 2)) = 1 ]; then
    run_baseline "$n"
    run_this "$n"
  else
    run_this "$n"
    run_baseline "$n"
  fi
  pair=$((pair + 1))
  if [ "$BARE" = 1 ]; then
    echo "== $n bots against ticksync-bare (the stack alone, no game)"
    wait_quiet
    start_server "$n" ticksync-bare
    timeout $((DURATION + WARMUP + 120)) taskset -c "$BOTS_CPU" "$BIN/ticksync-bots" \
      --url "$URL" --bots "$n" --players-per-lobby 10 --duration "$DURATION" \
      --warmup "$WARMUP" --connect-rate 1000 --server-pid "$SERVER_PID" --no-progress \
      --json-out "$OUT/bare-$n.json" $BOTS_FLAGS || echo "(exit $?)"
    stop_server
  fi
done

if [ "$CAPACITY" = 1 ]; then
  echo "== capacity: from $CAP_START bots, +$CAP_STEP, narrowed to $CAP_RESOLUTION"
  status=0
  timeout 1800 "$BIN/ticksync-bots" --find-capacity --server-bin "$BIN/ticksync-server" \
    --server-cpu "$SERVER_CPU" --bots-cpu "$BOTS_CPU" --bots "$CAP_START" \
    --step "$CAP_STEP" --resolution "$CAP_RESOLUTION" --players-per-lobby 10 \
    --duration 15 --warmup 5 --connect-rate 1000 --no-progress \
    --json-out "$OUT/capacity.json" "${GAME_BOTS[@]}" $BOTS_FLAGS || status=$?
  [ "$status" = 0 ] || echo "(exit $status)"
fi
echo "== results in $OUT"
