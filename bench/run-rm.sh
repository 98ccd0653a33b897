#!/usr/bin/env bash
# `run --rm busybox true`, CLI start to CLI exit, for hull and its peers in one run:
#   hull-docker  Debian's docker CLI against hulld
#   hull         the hull CLI against hulld
#   docker       Debian's docker CLI against a private dockerd (own data-root, exec-root,
#                socket, inside `unshare -n`, cgroups below /hull/bench-*)
#   podman       podman with private --root/--runroot (runc: crun refuses hybrid cgroups
#                with v2 controllers; nofile/nproc 1024: podman's default rlimits for root
#                exceed this machine's hard limits and runc cannot raise them)
# NET=none (default): every container runs with `--network none` (hulld runs with
# --bridge none, dockerd with --bridge=none), so no engine spends time on networking.
# NET=bridge: each daemon runs in a network namespace of its own (`unshare -n`) with its
# default bridge, and `run --rm busybox true` uses it, as a plain `docker run` does
# (veth, address, NAT rules; dockerd with its iptables rules in that namespace). podman
# is left out there: rootful podman would set its bridge up in the caller's namespace. The same busybox image
# (scripts/mk-busybox-image.sh) is loaded into each engine. Each engine first runs
# `echo marker` and must print it, so a broken engine cannot post a fast time.
#
# Usage: sudo bench/run-rm.sh
# Env:
#   N=30                      runs per engine (hyperfine, after 3 warm-up runs)
#   BENCH_ENGINES="hull-docker hull docker podman"
#   HULL_BIN_DIR=DIR          hulld, hull-shim and hull (default: build --release)
#   KEEP=1                    keep the work directory (hyperfine JSON, daemon logs)
#   NET=none|bridge           the containers' network (see above)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${N:-30}
NET=${NET:-none}
case $NET in
none) engines=${BENCH_ENGINES:-hull-docker hull docker podman}; netflag="--network none" ;;
bridge) engines=${BENCH_ENGINES:-hull-docker hull docker}; netflag="" ;;
*) echo "run-rm: NET=$NET: use none or bridge" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "run-rm: needs root" >&2
  exit 2
fi
command -v hyperfine >/dev/null || { echo "run-rm: needs hyperfine (scripts/install-deps)" >&2; exit 2; }

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bindir=$(bench_hull_bins "$root" run-rm)

work=$(mktemp -d /tmp/hull-bench-run-rm.XXXXXX)
chmod 711 "$work"
cg="hull/bench-run-rm-$$"
bench_note_host_paths
hulld_pid= dockerd_pid=

cleanup() {
  set +e
  if [ -n "$hulld_pid" ]; then kill -TERM "$hulld_pid" 2>/dev/null; wait "$hulld_pid" 2>/dev/null; fi
  if [ -n "$dockerd_pid" ]; then
    local cpid
    cpid=$(cat "$work/docker/exec/containerd/containerd.pid" 2>/dev/null)
    kill -TERM "$dockerd_pid" 2>/dev/null
    wait "$dockerd_pid" 2>/dev/null
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
      sleep 1
      kill -KILL "$cpid" 2>/dev/null
    fi
  fi
  # Processes still holding our directories (shims): by pid.
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$work"; then
      kill -KILL "${p#/proc/}" 2>/dev/null
    fi
  done
  bench_undo_host_state "$work" "$cg"
  if [ -n "${KEEP:-}" ]; then echo "run-rm: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "run-rm: building the busybox image" >&2
bash "$root/scripts/mk-busybox-image.sh" "$work/busybox.tar" >/dev/null 2>&1

wait_sock() { # socket, name, log
  for _ in $(seq 200); do
    curl -sf --unix-socket "$1" http://x/_ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "run-rm: $2 did not start:" >&2
  tail -20 "$3" >&2
  exit 1
}

declare -A cmd
need_hulld=0
for e in $engines; do case "$e" in hull | hull-docker) need_hulld=1 ;; esac; done

if [ $need_hulld = 1 ]; then
  mkdir -p "$work/hull"
  echo '{}' >"$work/hull/daemon.json"
  if [ "$NET" = bridge ]; then hull_net=(unshare -n --); else hull_net=(env); fi
  if [ "$NET" = bridge ]; then bridge_flag=(); else bridge_flag=(--bridge none); fi
  "${hull_net[@]}" "$bindir/hulld" "${bridge_flag[@]}" -H "unix://$work/hull/hull.sock" \
    --data-root "$work/hull/data" --exec-root "$work/hull/exec" \
    --config-file "$work/hull/daemon.json" >"$work/hull/log" 2>&1 &
  hulld_pid=$!
  wait_sock "$work/hull/hull.sock" hulld "$work/hull/log"
  "$bindir/hull" -H "unix://$work/hull/hull.sock" load -i "$work/busybox.tar" >/dev/null
  cmd[hull-docker]="docker -H unix://$work/hull/hull.sock run --rm $netflag busybox"
  cmd[hull]="$bindir/hull -H unix://$work/hull/hull.sock run --rm $netflag busybox"
fi

if [[ " $engines " == *" docker "* ]]; then
  mkdir -p "$work/docker"
  echo '{}' >"$work/docker/daemon.json"
  if [ "$NET" = bridge ]; then
    docker_net=()
  else
    docker_net=(--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false)
  fi
  unshare --net -- dockerd --config-file "$work/docker/daemon.json" --data-root "$work/docker/data" \
    --exec-root "$work/docker/exec" --pidfile "$work/docker/dockerd.pid" \
    --host "unix://$work/docker/docker.sock" "${docker_net[@]}" --userland-proxy=false --storage-driver=overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent="/$cg/docker" \
    >"$work/docker/log" 2>&1 &
  dockerd_pid=$!
  wait_sock "$work/docker/docker.sock" dockerd "$work/docker/log"
  docker -H "unix://$work/docker/docker.sock" load -i "$work/busybox.tar" >/dev/null
  cmd[docker]="docker -H unix://$work/docker/docker.sock run --rm $netflag busybox"
fi

if [[ " $engines " == *" podman "* ]]; then
  mkdir -p "$work/podman"
  pm="podman --root $work/podman/root --runroot $work/podman/run --runtime runc --cgroup-manager cgroupfs --events-backend none --storage-driver overlay --tmpdir $work/podman/tmp"
  $pm load -i "$work/busybox.tar" >/dev/null 2>&1
  cmd[podman]="$pm run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --cgroup-parent=/$cg/podman busybox"
fi

args=()
for e in $engines; do
  [ -n "${cmd[$e]:-}" ] || { echo "run-rm: unknown engine $e" >&2; exit 2; }
  out=$(${cmd[$e]} echo bench-marker 2>&1) || true
  if [ "$out" != bench-marker ]; then
    echo "run-rm: $e does not run busybox (expected 'bench-marker'): $out" >&2
    exit 1
  fi
  args+=(-n "$e" "${cmd[$e]} true")
done

echo "run-rm: NET=$NET, N=$N, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
hyperfine -N --style basic --warmup 3 --runs "$N" --export-json "$work/hyperfine.json" "${args[@]}" >&2

echo
printf '%-12s %10s %10s %10s\n' engine "median ms" "mean ms" "min ms"
jq -r '.results[] | [.command, (.median*1000), (.mean*1000), (.min*1000)] | @tsv' "$work/hyperfine.json" |
  while IFS=$'\t' read -r name med mean min; do
    printf '%-12s %10.1f %10.1f %10.1f\n' "$name" "$med" "$mean" "$min"
  done
echo
for base in docker podman; do
  b=$(jq -r --arg b "$base" '.results[] | select(.command == $b) | .median' "$work/hyperfine.json")
  [ -n "$b" ] || continue
  for h in hull hull-docker; do
    x=$(jq -r --arg h "$h" '.results[] | select(.command == $h) | .median' "$work/hyperfine.json")
    [ -n "$x" ] && awk -v b="$b" -v x="$x" -v n="$base/$h" 'BEGIN { printf "%-20s %6.1fx faster\n", n, b / x }'
  done
done
