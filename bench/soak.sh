#!/usr/bin/env bash
# Soak (not in CI): MINUTES of mixed load on one node — back-to-back duels, a raid
# every few minutes, and churn of 500 clients connecting and dropping — sampling
# the node's RSS, open descriptors, alive tasks and rooms_active every SAMPLE
# seconds, then once more after the load has stopped (what must come back down).
# usage: bench/soak.sh [MINUTES=30] [SAMPLE=60]
source "$(dirname "$0")/common.sh"
MINUTES=${1:-30}; SAMPLE=${2:-60}
END=$((SECONDS + MINUTES * 60))
start_server 18095 JUNO_QUESTIONS=5 JUNO_QUESTION_MS=1500 JUNO_COUNTDOWN_MS=500 \
  JUNO_BETWEEN_MS=300 JUNO_FINISHED_ROOM_SECS=5 JUNO_RESUME_SECS=5
SP=$LAST_PID
T="--target http://127.0.0.1:18095 --quiet"
rooms_active() { curl -fs http://127.0.0.1:18095/metrics | awk '/^rooms_active\{/ {s += $2} END {print s + 0}'; }
sample() {
  printf '%s  rss_kib=%s fds=%s tasks=%s rooms_active=%s ws=%s cpu_s=%s load=%s\n' \
    "$(date +%T)" "$(rss_kib $SP)" "$(ls /proc/$SP/fd | wc -l)" "$(metric 18095 tokio_alive_tasks)" \
    "$(rooms_active)" "$(metric 18095 ws_connections)" \
    "$(awk -v t=$(cpu_ticks $SP) -v hz=$(getconf CLK_TCK) 'BEGIN {printf "%.0f", t/hz}')" "$(load)"
}
left() { echo $((END - SECONDS)); }
echo "soak: $MINUTES min on pid $SP"
sample
# 200 duels at a time, back to back, until the end.
# Each run has its own user ids: a run cut off at its deadline leaves seats that
# are kept for the reconnect window, and the next run must not inherit them.
( run=0; while [ "$(left)" -gt 30 ]; do
    run=$((run + 1))
    "$LT" --tag "soak$run" duels -n 200 --games 1000 --think-ms 400 --duration "$(( $(left) < 120 ? $(left) : 120 ))" $T >>"$WORK/duels.log" 2>&1 || true
  done ) &
LOAD=($!)
# A raid of 300 players and 700 spectators every four minutes.
( while [ "$(left)" -gt 90 ]; do
    "$LT" raid --players 300 --spectators 700 --questions 5 --question-ms 2000 --countdown-ms 500 \
      --between-ms 300 --duration 60 $T >>"$WORK/raid.log" 2>&1 || true
    sleep 180
  done ) &
LOAD+=($!)
# Churn: 500 clients connect, ping, and drop, again and again.
( while [ "$(left)" -gt 25 ]; do
    "$LT" connect -n 500 --ping-secs 2 --duration 20 $T >>"$WORK/connect.log" 2>&1 || true
  done ) &
LOAD+=($!)
while [ "$(left)" -gt 0 ]; do sleep "$SAMPLE"; sample; done
# The load's own loops only: a bare `wait` would wait for the server too.
wait "${LOAD[@]}"
echo "load stopped; after 20 s of quiet:"
sleep 20
sample
grep -h -E "errors|error" "$WORK"/*.log | sort | uniq -c | head -5 || true
