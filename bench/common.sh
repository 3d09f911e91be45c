# Shared helpers of the benchmark scripts (sourced). Release binaries, loopback only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVER=${SERVER:-$ROOT/target/release/juno-server}
LT=${LT:-$ROOT/target/release/juno-loadtest}
export JUNO_JWT_SECRET=${JUNO_JWT_SECRET:-bench-secret-0123456789abcdef-0123456789}
export RUST_LOG=${RUST_LOG:-warn}
# The load tester spreads its clients over a few loopback addresses only.
export JUNO_MAX_CONNS_PER_IP=${JUNO_MAX_CONNS_PER_IP:-100000}
WORK=$(mktemp -d /tmp/juno-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ulimit -n 20000

# start_server PORT [ENV=VALUE ...]: a node on 127.0.0.1:PORT with a fresh SQLite file.
start_server() {
  local port=$1; shift
  env JUNO_LISTEN=127.0.0.1:$port DATABASE_URL=${DATABASE_URL:-sqlite://$WORK/juno-$port.db} \
    "$@" "$SERVER" >"$WORK/server-$port.log" 2>&1 &
  PIDS+=($!); LAST_PID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && return 0; sleep 0.1; done
  echo "server on $port did not start" >&2; cat "$WORK/server-$port.log" >&2; exit 1
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# cpu_ticks PID: utime+stime in clock ticks.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1==m {print $2}'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
