#!/usr/bin/env bash
# Cluster mode against a single node on the standard workload (shared/WORKLOAD.md):
# lobbies of 10 at 30 Hz, on 127.0.0.1 only.
#
#   benches/cluster.sh                          # 1000 bots, 20 s window
#   BOTS=2000 DURATION=30 benches/cluster.sh
#   BIN=target/debug BOTS=60 DURATION=3 WARMUP=1 benches/cluster.sh   # check the script
#
# 1. Cluster: its own `redis-server` on a free port (no persistence), three nodes with
#    `--redis-url`, distinct free ports and `--public-url`, all three pinned to SERVER_CPU;
#    the bots, pinned to BOTS_CPU, connect to node 1's URL only and quick-join
#    (`--join quick`): node 1 finds a lobby with room anywhere, or has one created on the
#    least-loaded node, and redirects the bot there, so the lobbies spread over the three
#    nodes. Figures: join latency p50/p99 of bots that joined on node 1 directly and of
#    bots that followed a redirect; Redis commands per second over the bots' measured
#    window (`total_commands_processed` of `redis-cli info stats`, sampled every second
#    and lined up with the window the bots report), per 1,000 players and per 100
#    lobbies; the server CPU per player-tick summed over the three nodes (the bots get
#    every node's pid, `--server-pid` repeated); how the lobbies and players spread over
#    the nodes (each node's /metrics, mid-window).
# 2. Single node: the same bots, the same quick-join, against one node without Redis, for
#    the CPU per player-tick of single-node mode minutes apart on the same machine.
#
# Settings (environment): BOTS (default 1000), LOBBY (players per lobby, the nodes'
# --quick-lobby-size, default 10), DURATION (measured window, default 20 s), WARMUP
# (default 5 s), SERVER_CPU and BOTS_CPU (default 0 and 1; Redis runs on SERVER_CPU too),
# GAME (the nodes' and the bots' --game; default the server's, arena), BOTS_FLAGS (more
# flags for the bots, e.g. --delta), SINGLE (1, the default: also the single-node run; 0:
# skip it), BIN (default target/release, built first; target/debug builds and uses debug
# binaries, to check the script), OUT (default target/cluster/<date>).
#
# Every process started here is stopped by its PID on exit (TERM, then KILL), every run
# is bounded by `timeout`. Each run's table goes to stdout, its JSON and the logs to $OUT,
# and a summary of the figures at the end. In the cluster run the report's "server ticks"
# lines are node 1's alone (the bots read the /metrics of the URL they connect to). Join
# options travel with a redirect (in the directory, beside the reservation), so shooter
# lobbies made on another node get the bots' rules too. A figure is worth keeping only when the report
# carries no warning (other load, saturated bots); the report's "other load" includes
# Redis, whose own CPU is printed in the summary.
set -euo pipefail
cd "$(dirname "$0")/.."

BOTS=${BOTS:-1000}
LOBBY=${LOBBY:-10}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
SERVER_CPU=${SERVER_CPU:-0}
BOTS_CPU=${BOTS_CPU:-1}
GAME=${GAME:-}
BOTS_FLAGS=${BOTS_FLAGS:-}
SINGLE=${SINGLE:-1}
BIN=${BIN:-target/release}
OUT=${OUT:-target/cluster/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

if [ "$BIN" = target/release ]; then
  echo "== building release binaries"
  cargo build --release --quiet -p ticksync-server -p ticksync-bots
else
  echo "== building debug binaries (figures not worth keeping)"
  cargo build --quiet -p ticksync-server -p ticksync-bots
fi
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "redis-server and redis-cli are needed (Debian: apt-get install redis-server)" >&2
  exit 1
}

GAME_ARGS=()
[ -n "$GAME" ] && GAME_ARGS=(--game "$GAME")

PIDS=()
SAMPLER_PID=
stop_all() {
  if [ -n "$SAMPLER_PID" ]; then
    kill -TERM "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
  fi
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_all EXIT INT TERM

# A free loopback TCP port (bound and released: another process could take it in
# between, which would make the start below fail loudly, not measure wrongly).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Every bot comes from 127.0.0.1 and quick-joins create lobbies on their behalf: lift
# the per-address caps.
export TICKSYNC_MAX_LOBBIES_PER_IP=100000 TICKSYNC_LOBBY_CREATES_PER_MINUTE=100000
NODE_FLAGS=(--max-connections-per-ip $((BOTS + 1000)) --max-connections $((BOTS + 1000))
  --quick-lobby-size "$LOBBY" "${GAME_ARGS[@]}")

# Starts a node on loopback port $2; extra arguments go to the server. Sets NODE_PID and
# NODE_URL.
start_node() {
  local name=$1 port=$2
  shift 2
  local log="$OUT/$name.log"
  taskset -c "$SERVER_CPU" "$BIN/ticksync-server" --bind "127.0.0.1:$port" \
    "${NODE_FLAGS[@]}" "$@" >"$log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  for _ in $(seq 100); do
    grep -q 'open http://' "$log" && break
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q 'open http://' "$log"; then
    echo "$name did not start; see $log" >&2
    tail -5 "$log" >&2
    exit 1
  fi
  NODE_URL="ws://127.0.0.1:$port/ws"
}

# CPU seconds (user + system) a process has used.
cpu_secs() {
  awk '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / 100 }' "/proc/$1/stat"
}

# Runs the bots against $1, with the server pids that follow; JSON to $OUT/$2.json.
run_bots() {
  local url=$1 name=$2
  shift 2
  local pid_args=() pid
  for pid in "$@"; do pid_args+=(--server-pid "$pid"); done
  local status=0
  timeout $((DURATION + WARMUP + 180)) taskset -c "$BOTS_CPU" "$BIN/ticksync-bots" \
    --url "$url" --bots "$BOTS" --players-per-lobby "$LOBBY" --join quick \
    --duration "$DURATION" --warmup "$WARMUP" --connect-rate 500 --no-progress \
    "${pid_args[@]}" "${GAME_ARGS[@]}" --json-out "$OUT/$name.json" $BOTS_FLAGS || status=$?
  [ "$status" = 0 ] || echo "(bots exit $status: 3 means the SLO was missed)"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server protocol bots client cluster || echo ' (with local changes)')"
echo "== load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. Cluster -----------------------------------------------------------------------
REDIS_PORT=$(free_port)
taskset -c "$SERVER_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
  --appendonly no >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 50); do
  redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping | grep -q PONG || { echo "redis did not start" >&2; exit 1; }

NODE_PIDS=()
NODE_PORTS=()
for i in 1 2 3; do
  port=$(free_port)
  NODE_PORTS+=("$port")
  start_node "node$i" "$port" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
    --node-id "node$i" --public-url "ws://127.0.0.1:$port/ws"
  NODE_PIDS+=("$NODE_PID")
  [ "$i" = 1 ] && NODE1_URL=$NODE_URL
done
# Wait until the directory lists all three nodes, so that the first lobbies spread.
for _ in $(seq 100); do
  live=$(redis-cli -p "$REDIS_PORT" zcount ticksync:nodes "($(date +%s%3N)" +inf)
  [ "$live" = 3 ] && break
  sleep 0.1
done
echo "== cluster: redis on :$REDIS_PORT, nodes ${NODE_PIDS[*]} on CPU $SERVER_CPU ($live live in the directory), bots to $NODE1_URL"

# Redis's command count every second, with the wall-clock time, for the window.
redis_ops() {
  redis-cli -p "$REDIS_PORT" info stats | awk -F: '/^total_commands_processed:/ { gsub(/\r/, "", $2); print $2 }'
}
# Each node's open lobbies and seated players (its /metrics gauges), as lobbies/players.
node_gauges() {
  curl -s --max-time 1 "http://127.0.0.1:$1/metrics" |
    awk '/^ticksync_lobbies /{l=$2} /^ticksync_players /{p=$2} END{printf "%s/%s", l, p}'
}
(
  while true; do
    echo "$(date +%s.%N) $(redis_ops) $(node_gauges "${NODE_PORTS[0]}") $(node_gauges "${NODE_PORTS[1]}") $(node_gauges "${NODE_PORTS[2]}")"
    sleep 1
  done
) >"$OUT/redis-samples.txt" 2>/dev/null &
SAMPLER_PID=$!
REDIS_CPU_0=$(cpu_secs "$REDIS_PID")
echo "== $BOTS bots quick-joining lobbies of $LOBBY through node 1, window ${DURATION} s after ${WARMUP} s of warm-up"
run_bots "$NODE1_URL" cluster "${NODE_PIDS[@]}"
REDIS_CPU_1=$(cpu_secs "$REDIS_PID")
for i in 1 2 3; do
  echo "   node$i: $(grep -c . "$OUT/node$i.log") log lines"
done
stop_all

# --- 2. Single node -------------------------------------------------------------------
if [ "$SINGLE" = 1 ]; then
  start_node single "$(free_port)"
  echo "== single node (no Redis), pid $NODE_PID: the same $BOTS bots"
  run_bots "$NODE_URL" single "$NODE_PID"
  stop_all
fi

# --- Summary --------------------------------------------------------------------------
summary() {
  python3 - "$OUT" "$SINGLE" "$REDIS_CPU_0" "$REDIS_CPU_1" <<'EOF'
import json, sys
out, single, rc0, rc1 = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3]), float(sys.argv[4])

def load(name):
    try:
        with open(f"{out}/{name}.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def q(x):
    return f"p50 {x['p50']:.1f} ms, p99 {x['p99']:.1f} ms ({x['samples']} bots)" if x else "none"

def cpu(r):
    s = r.get("server") or {}
    v = s.get("cpu_us_per_player_tick")
    return f"{v:.2f} us" if v is not None else "-"

c = load("cluster")
if c is None:
    sys.exit(f"no {out}/cluster.json: the cluster run failed")
t0, t1 = c["window_unix"]
samples = []
with open(f"{out}/redis-samples.txt") as f:
    for line in f:
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            samples.append((float(parts[0]), int(parts[1]), parts[2:]))
inside = [s[:2] for s in samples if t0 <= s[0] <= t1]
middle = [s[2] for s in samples if t0 <= s[0] <= t1]
print(f"cluster ({c['connected']} of {c['bots']} bots in {c['lobbies']} lobbies, game {c.get('game')}):")
if middle:
    spread = middle[len(middle) // 2]
    print("  spread          " + ", ".join(
        f"node{i + 1} {g.split('/')[0]} lobbies / {g.split('/')[-1]} players"
        for i, g in enumerate(spread)) + " (mid-window, from each node's /metrics)")
print(f"  join latency    direct (node 1): {q(c['join_latency_ms']['direct'])}")
print(f"                  redirected:      {q(c['join_latency_ms']['redirected'])}")
if len(inside) >= 2:
    (a_t, a_n), (b_t, b_n) = inside[0], inside[-1]
    ops = (b_n - a_n) / (b_t - a_t)
    players, lobbies = max(c["connected"], 1), max(c["lobbies"], 1)
    print(f"  redis           {ops:.0f} commands/s over {b_t - a_t:.1f} s of the window = "
          f"{ops * 1000 / players:.0f} per 1,000 players, {ops * 100 / lobbies:.0f} per 100 lobbies "
          f"(commands during the window; redis CPU {rc1 - rc0:.2f} s over the whole run)")
else:
    print("  redis           too few samples inside the window (make DURATION longer)")
print(f"  server CPU      {cpu(c)} per player-tick, summed over the three nodes")
full = -(-c["bots"] // c["players_per_lobby"])
if c["lobbies"] > full * 1.1:
    print(f"  WARNING: {c['lobbies']} lobbies where {full} would do: quick-joins made lobbies "
          "of their own before the others were listed; per player-tick figures are not "
          "comparable with the single node's (fewer players per lobby)")
print(f"  SLO met         {c['slo']['met']}; warnings: {len(c['warnings'])}")
if single:
    s = load("single")
    if s is None:
        print("single node: no report (the run failed)")
    else:
        print(f"single node ({s['connected']} of {s['bots']} bots in {s['lobbies']} lobbies):")
        print(f"  join latency    {q(s['join_latency_ms']['direct'])}")
        print(f"  server CPU      {cpu(s)} per player-tick")
        print(f"  SLO met         {s['slo']['met']}; warnings: {len(s['warnings'])}")
EOF
}
echo "== summary"
summary | tee "$OUT/summary.txt"
echo "== results in $OUT"
