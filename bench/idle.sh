#!/usr/bin/env bash
# Bar 1: memory per idle connection and CPU while holding them.
# usage: bench/idle.sh [N=19000]
source "$(dirname "$0")/common.sh"
N=${1:-19000}
# The CPU window spans two of the server's 30 s keepalive rounds.
WINDOW=${WINDOW:-60}
start_server 18080
SP=$LAST_PID
sleep 3
BASE=$(rss_kib $SP)
echo "load before: $(load)  baseline RSS ${BASE} KiB"
"$LT" connect -n "$N" --ping-secs 0 --duration $((WINDOW + 30)) --target http://127.0.0.1:18080 --quiet --json >"$WORK/lt.json" &
LTP=$!
for _ in $(seq 300); do c=$(metric 18080 ws_connections || echo 0); [ "${c%.*}" -ge "$N" ] 2>/dev/null && break; sleep 0.2; done
sleep 5
R0=$(rss_kib $SP); T0=$(cpu_ticks $SP)
sleep $WINDOW
R1=$(rss_kib $SP); T1=$(cpu_ticks $SP)
HZ=$(getconf CLK_TCK)
echo "connections: $(metric 18080 ws_connections)"
echo "RSS held: $R0 -> $R1 KiB; per connection: $(( (R1 - BASE) * 1024 / N )) B"
echo "CPU while holding: $(awk -v a=$T0 -v b=$T1 -v hz=$HZ -v w=$WINDOW 'BEGIN {printf "%.2f", (b-a)/hz/w*100}') % of one core"
echo "load after: $(load)"
wait $LTP; echo "loadtest exit $?"
