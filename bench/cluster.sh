#!/usr/bin/env bash
# Bar 5: three nodes + Redis + nginx (deploy/nginx/junosixteen.conf, addresses replaced)
# under bar 3's load through nginx. Needs Postgres and Redis on 127.0.0.1.
# usage: bench/cluster.sh [N=5000] [extra loadtest args...]
source "$(dirname "$0")/common.sh"
N=${1:-5000}; shift || true
DB=bench_$(date +%s)
psql -h 127.0.0.1 -U postgres -d test -qc "create database $DB" >/dev/null
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
PACE=(JUNO_QUESTIONS=10 JUNO_QUESTION_MS=1500 JUNO_COUNTDOWN_MS=1000 JUNO_BETWEEN_MS=500
      REDIS_URL=redis://127.0.0.1:6379 JUNO_REDIS_PREFIX=$DB ${NODE_ENV:-})
start_server 18101 JUNO_NODE_ID=bench1 "${PACE[@]}"; N1=$LAST_PID
start_server 18102 JUNO_NODE_ID=bench2 "${PACE[@]}"; N2=$LAST_PID
start_server 18103 JUNO_NODE_ID=bench3 "${PACE[@]}"; N3=$LAST_PID
mkdir -p "$WORK/nginx"
i=0
while IFS= read -r line; do
  if [[ $line == *@test-replace* && $line == *server\ 127.0.0.1:* ]]; then
    i=$((i+1)); echo "    server 127.0.0.1:1810$i max_fails=3 fail_timeout=30s;"
  elif [[ $line == *@test-replace* && $line == *listen* ]]; then
    echo "    listen 127.0.0.1:18100;"
  else echo "$line"; fi
done < "$ROOT/deploy/nginx/junosixteen.conf" > "$WORK/nginx/site.conf"
cat > "$WORK/nginx/nginx.conf" <<NGX
daemon off;
worker_processes ${NGINX_WORKERS:-2};
worker_rlimit_nofile 19000;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 12000; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  include $WORK/nginx/site.conf;
}
NGX
/usr/sbin/nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NG=$!; PIDS+=($NG)
sleep 1
echo "load before: $(load)"
RP=$(redis-cli -h 127.0.0.1 info server | tr -d '\r' | awk -F: '$1=="process_id" {print $2}')
R0=$(cpu_ticks $RP 2>/dev/null || echo 0)
T0=$(( $(cpu_ticks $N1) + $(cpu_ticks $N2) + $(cpu_ticks $N3) ))
"$LT" duels -n "$N" --think-ms 700 --duration 120 --source-ips 16 --target http://127.0.0.1:18100 --quiet "$@" || true
T1=$(( $(cpu_ticks $N1) + $(cpu_ticks $N2) + $(cpu_ticks $N3) ))
echo "nodes' CPU together: $(awk -v a=$T0 -v b=$T1 -v hz=$(getconf CLK_TCK) 'BEGIN {printf "%.1f", (b-a)/hz}') s"
echo "Redis CPU (shared with anything else using it): $(awk -v a=$R0 -v b=$(cpu_ticks $RP 2>/dev/null || echo 0) -v hz=$(getconf CLK_TCK) 'BEGIN {printf "%.1f", (b-a)/hz}') s"
echo "nginx workers' CPU: $(for p in $(pgrep -P $NG); do cpu_ticks $p; done | awk -v hz=$(getconf CLK_TCK) '{s+=$1} END {printf "%.1f", s/hz}') s"
# The room logs (issue 12; none before it): appends and bytes, the three nodes together.
echo "room log: $(for p in 18101 18102 18103; do echo "$(metric $p room_log_appends_total || true) $(metric $p room_log_bytes_total || true)"; done | awk '{a+=$1; b+=$2} END {printf "%d appends, %d bytes", a, b}')"
echo "load after: $(load)"
psql -h 127.0.0.1 -U postgres -d test -qc "drop database $DB with (force)" >/dev/null || true
