#!/usr/bin/env bash
# Failover (issue 12, WIRE.md §5): how long a room is gone when its host is SIGKILLed.
# Three nodes + Redis + Postgres (no nginx). Each round starts a fresh node 1, creates
# the room there (its creator watches; the players sit on nodes 2 and 3), waits until
# question 0 is open and half the players have their answer's ok, SIGKILLs node 1,
# and reads:
#   detection = kill → the adopter saw the death (the adopter's "adopted room is live
#               again" log line's time minus its ms; ≈ JUNO_NODE_TTL_MS, ± a beat),
#   adoption  = death seen → the adopted room's first frame out (that line's ms; the
#               adopters' adoption_seconds sum/count deltas are printed beside it),
#   clients   = kill → the first / last player's new room_state (juno-loadtest).
# The players then finish the match on the adopter. Needs Postgres and Redis on 127.0.0.1.
# usage: bench/failover.sh [duel|raid] [KILLS=20] [PLAYERS=1000 (raid)] [extra loadtest args...]
source "$(dirname "$0")/common.sh"
MODE=${1:-duel}; KILLS=${2:-20}; PLAYERS=${3:-1000}; shift $(( $# < 3 ? $# : 3 ))
[[ $MODE == duel ]] && PLAYERS=2
TTL=${JUNO_NODE_TTL_MS:-3000}
# The adoption's two log lines, and nothing else at info.
export RUST_LOG=warn,juno_server::game::adopt=info,juno_server::game::host=info
# A node's results spool (juno-outbox.jsonl, with Postgres in its working directory) stays out of the tree.
cd "$WORK"
DB=bench_$(date +%s)
psql -h 127.0.0.1 -U postgres -d test -qc "create database $DB" >/dev/null
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
ENVS=(REDIS_URL=redis://127.0.0.1:6379 JUNO_REDIS_PREFIX=$DB JUNO_NODE_TTL_MS=$TTL ${NODE_ENV:-})
start_server 18202 JUNO_NODE_ID=fo2 "${ENVS[@]}"
start_server 18203 JUNO_NODE_ID=fo3 "${ENVS[@]}"
adopt_sum() { echo "$(metric 18202 adoption_seconds_sum) $(metric 18203 adoption_seconds_sum)" | awk '{printf "%.6f", $1+$2}'; }
adopt_count() { echo "$(metric 18202 adoption_seconds_count) $(metric 18203 adoption_seconds_count)" | awk '{print $1+$2}'; }
# tracing's RFC 3339 time → epoch ms
epoch_ms() { date -d "$1" +%s%3N; }
echo "mode $MODE, $PLAYERS players, $KILLS kills, JUNO_NODE_TTL_MS=$TTL; load before: $(load)"
printf '%-4s %-16s %9s %9s %9s %12s %12s %8s %s\n' kill load detect_ms adopt_ms total_ms client_first client_last ms_left adopter
ROWS=$WORK/rows
for k in $(seq "$KILLS"); do
  start_server 18201 JUNO_NODE_ID=fo1-$k "${ENVS[@]}"; N1=$LAST_PID
  S0=$(adopt_sum); C0=$(adopt_count)
  OUT=$WORK/lt-$k.out
  "$LT" failover --mode "$MODE" --players "$PLAYERS" --questions 2 --question-ms 10000 \
    --countdown-ms 0 --between-ms 300 --think-ms 300 --source-ips 16 --duration 60 --setup 60 \
    --target http://127.0.0.1:18201 --target http://127.0.0.1:18202 --target http://127.0.0.1:18203 \
    --tag "fo${MODE:0:1}$k" --quiet "$@" >"$OUT" 2>&1 &
  LTP=$!
  for _ in $(seq 1200); do grep -q '^FAILOVER ready' "$OUT" && break; kill -0 $LTP 2>/dev/null || break; sleep 0.05; done
  if ! grep -q '^FAILOVER ready' "$OUT"; then echo "kill $k: the room never got ready" >&2; cat "$OUT" >&2; exit 1; fi
  L=$(load | cut -d' ' -f1-3 | tr ' ' /)
  KILL_MS=$(date +%s%3N); kill -9 "$N1"; wait "$N1" 2>/dev/null || true
  wait $LTP || echo "kill $k: juno-loadtest exit $? (see below)" >&2
  ROOM=$(sed -n 's/^FAILOVER ready room=\([^ ]*\).*/\1/p' "$OUT")
  # The adopter's line for this room (ANSI colours stripped).
  LINE=; ADOPTER=
  for port in 18202 18203; do
    l=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/server-$port.log" | grep "adopted room is live again" | grep "room=$ROOM" | head -1 || true)
    [[ -n $l ]] && { LINE=$l; ADOPTER=$port; }
  done
  if [[ -z $LINE ]]; then echo "kill $k: no adoption logged for $ROOM" >&2; grep -v '^$' "$OUT" >&2; continue; fi
  TS=$(awk '{print $1}' <<<"$LINE"); AMS=$(sed 's/.* ms=\([0-9]*\).*/\1/' <<<"$LINE")
  DETECT=$(( $(epoch_ms "$TS") - AMS - KILL_MS ))
  FIRST=- LAST=- LEFT=-
  read -r FIRST LAST LEFT < <(sed -n 's/^FAILOVER players=.* state_first_ms=\([0-9.]*\) .*state_max_ms=\([0-9.]*\) .*ms_left_min=\([0-9]*\).*/\1 \2 \3/p' "$OUT" \
    | awk -v k=$KILL_MS '{printf "%.0f %.0f %s", $1-k, $2-k, $3}') || true
  S1=$(adopt_sum); C1=$(adopt_count)
  METRIC=$(awk -v a=$S0 -v b=$S1 -v c=$C0 -v d=$C1 'BEGIN {if (d>c) printf "%.1f", (b-a)/(d-c)*1000; else print "-"}')
  printf '%-4s %-16s %9s %9s %9s %12s %12s %8s %s (metric %s ms)\n' "$k" "$L" "$DETECT" "$AMS" "$((DETECT+AMS))" \
    "$FIRST" "$LAST" "$LEFT" "$ADOPTER" "$METRIC"
  echo "$DETECT $AMS $((DETECT+AMS)) $FIRST $LAST $METRIC" >>"$ROWS"
  grep -E '^(errors|connections|matches)' "$OUT" | sed 's/^/      /' || true
  # The adopter has written the match before the next round (and before the database goes).
  for _ in $(seq 300); do
    P2=$(metric 18202 outbox_pending || true); P3=$(metric 18203 outbox_pending || true)
    [[ ${P2:-0} == 0 && ${P3:-0} == 0 ]] && break; sleep 0.1
  done
done
summary() { # column name
  sort -n -k"$1","$1" "$ROWS" | awk -v c="$1" -v n="$2" '{v[NR]=$c} END {if (NR) printf "%-22s p50 %6s  max %6s  (n=%d)\n", n, v[int((NR+1)/2)], v[NR], NR}'
}
echo "--- $MODE, $(wc -l <"$ROWS") kills (ms) ---"
summary 1 "detection (kill→seen)"
summary 2 "adoption (seen→frame)"
summary 3 "total (kill→frame)"
summary 4 "clients' first state"
summary 5 "clients' last state"
summary 6 "adoption_seconds (ms)"
echo "load after: $(load)"
psql -h 127.0.0.1 -U postgres -d test -qc "drop database $DB with (force)" >/dev/null || true
