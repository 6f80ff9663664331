#!/usr/bin/env bash
# The demo (README): installs what it needs, builds, starts a local mesh
# (three gossiping nodes, one agent that learns all of them from the first,
# a small HTTP service), sends real visitor traffic through every node,
# stops a node gracefully, prints what happened, and stops everything it
# started. Ctrl-C stops too.
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

# Identity: a cluster CA, three node certificates, a gossip key, a join token for tunnel "demo".
$ctl ca init --dir "$tmp/ca" --cluster demo-cluster >/dev/null
for i in 1 2 3; do
  $ctl cert issue --ca-dir "$tmp/ca" --node-id "node-$i" --out-cert "$tmp/node-$i.crt" --out-key "$tmp/node-$i.key" >/dev/null
done
$ctl keyring generate --out "$tmp/cluster.key" >/dev/null
$ctl token create --ca-dir "$tmp/ca" --tunnel demo --ttl 1h --out "$tmp/token" >/dev/null 2>"$tmp/ctl.err" || { cat "$tmp/ctl.err"; exit 1; }

# The service behind NAT: a tiny HTTP server with a page and a 64 MB file.
mkdir "$tmp/www"
echo "hello from the service behind the tunnel" > "$tmp/www/index.html"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$tmp/www/big.bin"
svc_port=$(free_port)
python3 -m http.server "$svc_port" --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/service.log" 2>&1 &
pids+=($!)

# Three nodes gossiping with each other: node-2 and node-3 join through node-1.
declare -A listen entry admin gossip node_pid
for i in 1 2 3; do
  join=()
  [ "$i" -gt 1 ] && join=(--join "${gossip[1]}")
  port=$(free_port)
  $node_bin --listen "127.0.0.1:$port" --advertise-tunnel-addr "127.0.0.1:$port" \
    --cert "$tmp/node-$i.crt" --key "$tmp/node-$i.key" --ca "$tmp/ca/ca.crt" \
    --node-id "node-$i" --entry 127.0.0.1:0=demo/web --admin-addr 127.0.0.1:0 \
    --cluster-key "$tmp/cluster.key" --gossip-addr 127.0.0.1:0 --peer-addr 127.0.0.1:0 "${join[@]}" \
    --ready-file "$tmp/node-$i.ready" 2>"$tmp/node-$i.log" &
  pids+=($!); node_pid[$i]=$!
  wait_file "$tmp/node-$i.ready"
  listen[$i]=$(awk '$1=="listen"{print $2}' "$tmp/node-$i.ready")
  entry[$i]=$(awk '$1=="entry"{print $2}' "$tmp/node-$i.ready")
  admin[$i]=$(awk '$1=="admin"{print $2}' "$tmp/node-$i.ready")
  gossip[$i]=$(awk '$1=="gossip"{print $2}' "$tmp/node-$i.ready")
done
for _ in $(seq 1 100); do
  $ctl converge --node "${admin[1]}" --node "${admin[2]}" --node "${admin[3]}" >/dev/null 2>&1 && break
  sleep 0.1
done

# The agent is told about node-1 only; it learns the other two from node-1
# (each node advertises the address agents may dial it at).
$agent_bin --proxy "${listen[1]}" --tunnel demo --token "$tmp/token" --ca "$tmp/ca/ca.crt" \
  --agent-id agent-1 --service "web=127.0.0.1:$svc_port" 2>"$tmp/agent.log" &
pids+=($!)
wait_log "$tmp/agent.log" "ev=pool wants=3 holds=3"
cipher=$(grep -o 'cipher=[^ ]*' "$tmp/agent.log" | head -1 | cut -d= -f2)

echo
echo "warren demo: a mesh of 3 nodes (gossip, no registry) and one agent behind \"NAT\" (it only dials out)"
echo "  agent-1 was given node-1's address; node-1 told it about node-2 and node-3, and it dialed them:"
grep 'ev=tunnel_ready' "$tmp/agent.log" | grep -oE 'node=[^ ]+' | sed 's/^/    tunnel to /'
echo "  membership as node-1 sees it (warrenctl members):"
$ctl members --node "${admin[1]}" | sed 's/^/    /'
echo "  visitors -> each node's entry -> TLS 1.3 tunnel ($cipher) -> agent-1 -> http://127.0.0.1:$svc_port"
for i in 1 2 3; do
  t=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{time_total}' "http://${entry[$i]}/")
  echo "    GET http://${entry[$i]}/ (node-$i) -> HTTP ${t% *} in $(awk -v s="${t#* }" 'BEGIN{printf "%.2f", s*1000}') ms"
done
page=$(curl -sS --max-time 10 "http://${entry[2]}/")
echo "    body: \"$page\""
read -r code size secs < <(curl -sS --max-time 60 -o "$tmp/big.out" -w '%{http_code} %{size_download} %{time_total}\n' "http://${entry[3]}/big.bin")
same=$(cmp -s "$tmp/big.out" "$tmp/www/big.bin" && echo "identical" || echo "DIFFERENT")
echo "    GET /big.bin via node-3 -> HTTP $code, $((size / 1048576)) MiB in ${secs}s ($(awk -v b="$size" -v s="$secs" 'BEGIN{printf "%.0f", b*8/s/1e6}') Mbit/s through Python's http.server), $same to the original"
echo "  warrenctl tunnels --node ${admin[3]} (node-3's admin API):"
$ctl tunnels --node "${admin[3]}" | sed 's/^/    /'

echo "  node-2 stops (SIGTERM): it leaves gossip, sends GOAWAY, drains; the agent lets it go:"
kill -TERM "${node_pid[2]}"; wait "${node_pid[2]}" 2>/dev/null || true
wait_log "$tmp/agent.log" "ev=pool wants=2 holds=2"
echo "    $(grep 'ev=pool wants=2 holds=2' "$tmp/agent.log" | tail -1 | grep -oE 'wants=[0-9]+ holds=[0-9]+')"
t=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://${entry[1]}/")
echo "    GET via node-1 -> HTTP $t (the rest of the mesh keeps serving)"
kill -USR1 "${node_pid[1]}"
wait_log "$tmp/node-1.log" "ev=stats"
echo "  node-1 stats: $(grep 'ev=stats' "$tmp/node-1.log" | tail -1 | grep -oE '(agents|streams|bytes_up|bytes_down|tls_dev_encrypt|tls_dev_decrypt)=[0-9]+' | tr '\n' ' ')"
echo "stopping..."
echo "done. Logs were in $tmp (removed)."
