#!/usr/bin/env bash
# Bar 3: N concurrent duels on one node, each player answering about once every 1.5 s.
# usage: bench/duels.sh [N=5000] [extra loadtest args...]
source "$(dirname "$0")/common.sh"
N=${1:-5000}; shift || true
start_server 18090 ${NODE_ENV:-} JUNO_QUESTIONS=10 JUNO_QUESTION_MS=1500 JUNO_COUNTDOWN_MS=1000 JUNO_BETWEEN_MS=500
SP=$LAST_PID
echo "load before: $(load)"
T0=$(cpu_ticks $SP)
/usr/bin/time -f "loadtest: %e s wall, %U s user, %S s sys" "$LT" duels -n "$N" --think-ms 700 --duration 120 --target http://127.0.0.1:18090 --quiet "$@" || true
echo "server CPU: $(awk -v a=$T0 -v b=$(cpu_ticks $SP) -v hz=$(getconf CLK_TCK) 'BEGIN {printf "%.1f", (b-a)/hz}') s"
echo "load after: $(load)"
