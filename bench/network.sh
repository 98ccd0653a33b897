#!/usr/bin/env bash
# Published-port throughput and connection rate on loopback, and the time `run` spends
# on network setup: hull (hulld, kernel DNAT in its nftables table) against Docker
# (Debian's dockerd with its default docker-proxy on loopback), side by side in one run.
#
# Each daemon runs in a network namespace of its own (`unshare -n`), with private
# data-root, exec-root and socket: nothing touches the host's links or firewall. The
# clients (python3) run inside the daemon's namespace and talk to 127.0.0.1:<port>.
#
# Usage: sudo bench/network.sh
#   BYTES=1073741824   bytes per throughput run (default 1 GiB); ROUNDS=6 runs each,
#                      alternating between hull and docker
#   CONNS=500          connections per connection-rate run
#   RUNS=20            `docker run --rm busybox true` per mode for the setup time
#   HULLD=path         hulld binary (default target/release/hulld, else target/debug/hulld)
#   BENCH_DOCKER=0     hull only
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BYTES=${BYTES:-1073741824}
ROUNDS=${ROUNDS:-6}
CONNS=${CONNS:-500}
RUNS=${RUNS:-20}
BENCH_DOCKER=${BENCH_DOCKER:-1}
CLI=/usr/bin/docker
if [[ -z "${HULLD:-}" ]]; then
  HULLD=$here/target/release/hulld
  [[ -x $HULLD ]] || HULLD=$here/target/debug/hulld
fi
[[ $(id -u) == 0 ]] || { echo "needs root" >&2; exit 1; }
for t in "$HULLD" "$CLI" unshare nsenter python3 busybox; do
  command -v "$t" >/dev/null || [[ -x $t ]] || { echo "missing $t (scripts/install-deps)" >&2; exit 1; }
done
if [[ $BENCH_DOCKER == 1 ]]; then
  command -v dockerd >/dev/null || { echo "missing dockerd (apt-get install docker.io)" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/hull-bench-net.XXXXXX)
chmod 711 "$work"
pids=()
# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"
bench_note_host_paths
cleanup() {
  set +e
  for sock in "$work"/hull/s.sock "$work"/docker/s.sock; do
    [[ -S $sock ]] || continue
    ids=$(DOCKER_HOST=unix://$sock $CLI ps -aq 2>/dev/null)
    [[ -n $ids ]] && DOCKER_HOST=unix://$sock $CLI rm -f $ids >/dev/null 2>&1
  done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  bench_undo_host_state "$work" hull/bench-docker
  rm -rf "$work"
  true
}
trap cleanup EXIT

tar=$work/busybox.tar
"$here/scripts/mk-busybox-image.sh" "$tar" >/dev/null 2>&1

wait_sock() { # sock log
  for _ in $(seq 200); do
    DOCKER_HOST=unix://$1 $CLI version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon did not come up; log:" >&2; tail -30 "$2" >&2; exit 1
}

start_hull() {
  mkdir -p "$work/hull"; echo '{}' >"$work/hull/daemon.json"
  unshare -n "$HULLD" -H "unix://$work/hull/s.sock" --data-root "$work/hull/data" \
    --exec-root "$work/hull/exec" --config-file "$work/hull/daemon.json" --log-level info \
    >"$work/hull/log" 2>&1 &
  pids+=($!); hull_pid=$!
  wait_sock "$work/hull/s.sock" "$work/hull/log"
  nsenter -t "$hull_pid" -n ip link set lo up
}

start_docker() {
  mkdir -p "$work/docker"; echo '{}' >"$work/docker/daemon.json"
  unshare -n dockerd --config-file "$work/docker/daemon.json" --data-root "$work/docker/data" \
    --exec-root "$work/docker/exec" --pidfile "$work/docker/pid" -H "unix://$work/docker/s.sock" \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent=/hull/bench-docker \
    >"$work/docker/log" 2>&1 &
  pids+=($!); docker_pid=$!
  wait_sock "$work/docker/s.sock" "$work/docker/log"
  nsenter -t "$docker_pid" -n ip link set lo up
}

# Python clients, run inside a daemon's namespace.
THROUGHPUT='
import socket, sys, time
port, total = int(sys.argv[1]), int(sys.argv[2])
buf = b"\0" * (1 << 20)
s = socket.create_connection(("127.0.0.1", port))
t = time.monotonic(); sent = 0
while sent < total:
    s.sendall(buf); sent += len(buf)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print("%.1f" % (sent * 8 / (time.monotonic() - t) / 1e9))
'
CONNRATE='
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
t = time.monotonic()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    while s.recv(4096): pass
    s.close()
print("%.0f" % (n / (time.monotonic() - t)))
'

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Containers for the port benchmarks: a sink that reads to EOF and then closes, and a
# server that accepts and closes at once. The latter is a python3 loop run in the
# container's network namespace (its SandboxKey) rather than `nc -ll -e true` in the
# container: nc forks a process per connection, and that fork, not the path through the
# published port, was what the connection rate measured (about 1,100-1,400/s for both).
ACCEPTCLOSE='
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", int(sys.argv[1]))); l.listen(1024)
print("ready", flush=True)
while True:
    c, _ = l.accept(); c.close()
'
prepare_ports() { # SOCK
  export DOCKER_HOST=unix://$1
  $CLI load -i "$tar" >/dev/null
  $CLI run -d --name sink -p 127.0.0.1:15001:5001 busybox \
    nc -ll -p 5001 -e dd of=/dev/null bs=1M >/dev/null
  $CLI run -d --name conn -p 127.0.0.1:15002:5002 busybox sleep 100000 >/dev/null
  local key
  key=$($CLI inspect -f '{{.NetworkSettings.SandboxKey}}' conn)
  local ready=$work/acceptor.${#pids[@]}
  nsenter --net="$key" python3 -c "$ACCEPTCLOSE" 5002 >"$ready" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $ready ]] && break; sleep 0.05; done
}

# setup SOCK: median ms of `run --rm busybox true` on the default bridge and with none
bench_run() {
  export DOCKER_HOST=unix://$1
  local mode out=()
  for mode in bridge none; do
    local ts=()
    for _ in $(seq "$RUNS"); do
      local t0 t1
      t0=$(date +%s%N)
      $CLI run --rm --network "$mode" busybox true
      t1=$(date +%s%N)
      ts+=("$(( (t1 - t0) / 1000 ))")
    done
    out+=("$(printf '%s\n' "${ts[@]}" | median)")
  done
  awk -v b="${out[0]}" -v n="${out[1]}" 'BEGIN { printf "%.1f %.1f\n", b/1000, n/1000 }'
}

start_hull
prepare_ports "$work/hull/s.sock"
if [[ $BENCH_DOCKER == 1 ]]; then
  start_docker
  prepare_ports "$work/docker/s.sock"
fi
sleep 1

# Rounds alternate between the daemons (the order flips every round), so load on the
# machine hits both alike.
declare -A gbit=() cps=()
for r in $(seq "$ROUNDS"); do
  order="hull docker"
  (( r % 2 == 0 )) && order="docker hull"
  for who in $order; do
    [[ $who == docker && $BENCH_DOCKER != 1 ]] && continue
    pid=$hull_pid; [[ $who == docker ]] && pid=$docker_pid
    gbit[$who]+="$(nsenter -t "$pid" -n python3 -c "$THROUGHPUT" 15001 "$BYTES") "
    cps[$who]+="$(nsenter -t "$pid" -n python3 -c "$CONNRATE" 15002 "$CONNS") "
  done
done
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
hull_gbit=$(med "${gbit[hull]}"); hull_cps=$(med "${cps[hull]}")
echo "hull Gbit/s: ${gbit[hull]}  conn/s: ${cps[hull]}"
if [[ $BENCH_DOCKER == 1 ]]; then
  docker_gbit=$(med "${gbit[docker]}"); docker_cps=$(med "${cps[docker]}")
  echo "docker Gbit/s: ${gbit[docker]}  conn/s: ${cps[docker]}"
fi
for s in "$work"/hull/s.sock "$work"/docker/s.sock; do
  [[ -S $s ]] && DOCKER_HOST=unix://$s $CLI rm -f sink conn >/dev/null
done

# hulld's own measure of network setup per container (namespace, pinning, veth, address,
# routes, files, record) at start, on `run -d`s spaced out: right after a `rm`, the
# kernel's unregister of the removed veth (tens of ms, asynchronous) holds the rtnl lock
# the next setup needs, and so does the kernel's cleanup of destroyed namespaces.
sleep 3
for _ in $(seq "$RUNS"); do
  DOCKER_HOST=unix://$work/hull/s.sock $CLI run -d busybox sleep 600 >/dev/null
  sleep 0.3
done
hull_setup=$( (grep -o 'network=bridge micros=[0-9]*' "$work/hull/log" || echo 0) | tail -n "$RUNS" | sed 's/.*micros=//' | median)
hull_setup_ms=$(awk -v m="$hull_setup" 'BEGIN { printf "%.2f", m/1000 }')
echo "hull setup (micros, total/netns/endpoint):" \
  $(grep 'network=bridge micros=' "$work/hull/log" | tail -n "$RUNS" |
    sed -E 's/.*micros=([0-9]+) netns_micros=([0-9]+) endpoint_micros=([0-9]+).*/\1\/\2\/\3/')

read -r hull_run_bridge hull_run_none < <(bench_run "$work/hull/s.sock")
if [[ $BENCH_DOCKER == 1 ]]; then
  read -r docker_run_bridge docker_run_none < <(bench_run "$work/docker/s.sock")
fi

echo
echo "hulld: $HULLD"
printf '%-34s %12s %12s %8s\n' "" hull docker hull/docker
ratio() { [[ -n ${2:-} ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a/b }' || echo -; }
printf '%-34s %12s %12s %8s\n' "published TCP port, Gbit/s" "$hull_gbit" "${docker_gbit:--}" "$(ratio "$hull_gbit" "${docker_gbit:-}")"
printf '%-34s %12s %12s %8s\n' "connections/s (connect, EOF)" "$hull_cps" "${docker_cps:--}" "$(ratio "$hull_cps" "${docker_cps:-}")"
printf '%-34s %12s %12s %8s\n' "run --rm true, bridge (ms)" "$hull_run_bridge" "${docker_run_bridge:--}" "$(ratio "$hull_run_bridge" "${docker_run_bridge:-}")"
printf '%-34s %12s %12s %8s\n' "run --rm true, none (ms)" "$hull_run_none" "${docker_run_none:--}" "$(ratio "$hull_run_none" "${docker_run_none:-}")"
printf '%-34s %12s\n' "hulld network setup, median (ms)" "$hull_setup_ms"
