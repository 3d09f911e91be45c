#!/usr/bin/env bash
# Bar 2: one raid of PLAYERS players and SPECTATORS spectators; broadcast skew.
# usage: bench/raid.sh [PLAYERS=2000] [SPECTATORS=8000] [extra loadtest args...]
source "$(dirname "$0")/common.sh"
P=${1:-2000}; S=${2:-8000}; shift 2 || true
start_server 18091
SP=$LAST_PID
echo "load before: $(load)"
T0=$(cpu_ticks $SP)
/usr/bin/time -f "loadtest: %e s wall, %U s user, %S s sys" \
  "$LT" raid --players "$P" --spectators "$S" --questions 5 --question-ms 3000 \
  --countdown-ms 2000 --between-ms 1000 --duration 120 --target http://127.0.0.1:18091 --quiet "$@" || true
T1=$(cpu_ticks $SP)
echo "server CPU: $(awk -v a=$T0 -v b=$T1 -v hz=$(getconf CLK_TCK) 'BEGIN {printf "%.1f", (b-a)/hz}') s"
echo "load after: $(load)"
