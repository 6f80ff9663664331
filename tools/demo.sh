#!/usr/bin/env bash
# The demo (README): installs what it needs, builds, starts a local mesh (one
# node, one agent, a small HTTP service), sends real visitor traffic through
# it, prints what happened, and stops everything it started. Ctrl-C stops too.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh demo
echo "building..."
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-demo -j"$(nproc)" --target warren-node warren-agent warrenctl >/dev/null
node_bin=build-demo/node/warren-node
agent_bin=build-demo/agent/warren-agent
ctl=build-demo/tools/warrenctl
tmp=$(mktemp -d -t warren-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_file() { for _ in $(seq 1 100); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "timed out: $1" >&2; exit 1; }
wait_log() { for _ in $(seq 1 100); do grep -q "$2" "$1" && return 0; sleep 0.1; done; echo "timed out: $2 in $1" >&2; cat "$1" >&2; exit 1; }

# Identity: a cluster CA, a node certificate, a join token for tunnel "demo".
$ctl ca init --dir "$tmp/ca" --cluster demo-cluster >/dev/null
$ctl cert issue --ca-dir "$tmp/ca" --node-id node-1 --out-cert "$tmp/node.crt" --out-key "$tmp/node.key" >/dev/null
$ctl token create --ca-dir "$tmp/ca" --tunnel demo --ttl 1h --out "$tmp/token" >/dev/null

# The service behind NAT: a tiny HTTP server with a page and a 64 MB file.
mkdir "$tmp/www"
echo "hello from the service behind the tunnel" > "$tmp/www/index.html"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$tmp/www/big.bin"
svc_port=$(free_port)
python3 -m http.server "$svc_port" --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/service.log" 2>&1 &
pids+=($!)

$node_bin --listen 127.0.0.1:0 --cert "$tmp/node.crt" --key "$tmp/node.key" --ca "$tmp/ca/ca.crt" \
  --node-id node-1 --entry 127.0.0.1:0=demo/web --admin-addr 127.0.0.1:0 \
  --ready-file "$tmp/node.ready" 2>"$tmp/node.log" &
pids+=($!)
wait_file "$tmp/node.ready"
listen=$(awk '$1=="listen"{print $2}' "$tmp/node.ready")
entry=$(awk '$1=="entry"{print $2}' "$tmp/node.ready")
admin=$(awk '$1=="admin"{print $2}' "$tmp/node.ready")

$agent_bin --proxy "$listen" --tunnel demo --token "$tmp/token" --ca "$tmp/ca/ca.crt" \
  --agent-id agent-1 --service "web=127.0.0.1:$svc_port" 2>"$tmp/agent.log" &
pids+=($!)
wait_log "$tmp/node.log" "ev=agent_ready"
wait_log "$tmp/agent.log" "ev=tunnel_ready"
cipher=$(grep -o 'cipher=[^ ]*' "$tmp/agent.log" | head -1 | cut -d= -f2)

echo
echo "warren demo: visitor -> node-1 entry $entry -> TLS 1.3 tunnel ($cipher) -> agent-1 -> http://127.0.0.1:$svc_port"
echo "  node-1 listens for agents on $listen; agent-1 dialed out to it (it never listens)."
page=$(curl -sS --max-time 10 "http://$entry/")
echo "  GET /         -> \"$page\""
for i in 1 2 3; do
  t=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{time_total}' "http://$entry/")
  echo "  GET / #$i      -> HTTP ${t% *} in $(awk -v s="${t#* }" 'BEGIN{printf "%.2f", s*1000}') ms"
done
read -r code size secs < <(curl -sS --max-time 60 -o "$tmp/big.out" -w '%{http_code} %{size_download} %{time_total}\n' "http://$entry/big.bin")
same=$(cmp -s "$tmp/big.out" "$tmp/www/big.bin" && echo "identical" || echo "DIFFERENT")
echo "  GET /big.bin  -> HTTP $code, $((size / 1048576)) MiB in ${secs}s ($(awk -v b="$size" -v s="$secs" 'BEGIN{printf "%.0f", b*8/s/1e6}') Mbit/s through Python's http.server), $same to the original"
kill -USR1 "${pids[1]}"
wait_log "$tmp/node.log" "ev=stats"
echo "  node stats:   $(grep 'ev=stats' "$tmp/node.log" | tail -1 | grep -oE '(agents|streams|bytes_up|bytes_down|tls_dev_encrypt|tls_dev_decrypt)=[0-9]+' | tr '\n' ' ')"
echo "  warrenctl tunnels --node $admin (the node's admin API):"
$ctl tunnels --node "$admin" | sed 's/^/    /'
echo "stopping (SIGTERM: the node drains, the agent closes)..."
kill -TERM "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true
wait_log "$tmp/agent.log" "ev=link_closed"
echo "done. Logs were in $tmp (removed)."
