#!/usr/bin/env bash
# Bar 4: record one ROOM_SIZE-player battle royale, then replay it K times at once.
# usage: bench/replay.sh [K=200] [ROOM_SIZE=50]
source "$(dirname "$0")/common.sh"
K=${1:-200}; SIZE=${2:-50}
start_server 18093
"$LT" royale --rooms 1 --size "$SIZE" --questions 5 --question-ms 3000 --countdown-ms 1000 \
  --between-ms 1000 --target http://127.0.0.1:18093 --quiet --json > "$WORK/royale.json"
sleep 2  # the match record lands asynchronously
MATCH=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select id from matches where mode = '"'"'battle_royale'"'"' order by rowid desc limit 1").fetchone()[0])' "$WORK/juno-18093.db")
echo "recorded match $MATCH; load before replay: $(load)"
"$LT" replay --match "$MATCH" -k "$K" --speed 1 --target http://127.0.0.1:18093 --quiet || true
echo "load after: $(load)"
