#!/usr/bin/env bash
# Memory of the engines: hulld idle (after start, after a few API calls) and with C running
# containers, and what each running container costs (its shim, plus the daemon's growth per
# container), against dockerd + containerd + containerd-shim-runc-v2 (private instance in
# `unshare -n`, own data-root/exec-root/socket, cgroups below /hull/bench-*). Containers are
# `busybox sleep`, `--network none`; the container's own process is not counted.
#
# RSS is VmRSS (/proc/PID/status); PSS (/proc/PID/smaps_rollup) splits shared pages among
# the processes that map them, so C shims of one binary do not count its text C times; USS
# (Private_Clean + Private_Dirty) is what the process alone holds: freed when it ends.
# Under each hulld row, its RSS by mapping (/proc/PID/smaps): hulld's own file (code and
# read-only data: clean pages the kernel can drop and read again), shared libraries, and
# anonymous memory (heap, thread stacks, relocated data: what the daemon really holds).
# hulld's and the shim's files are evicted from the page cache before the daemon starts
# (`dd iflag=nocache`): the kernel maps whole large folios on a fault, so how much of the
# code a fault maps depends on how the file got into the cache (the linker's writes, cp,
# readahead); measured 1 MB of difference in hulld's text. Evicting makes it readahead's.
#
# Usage: sudo bench/daemon-memory.sh
# Env:
#   C=10                       containers
#   BENCH_ENGINES="hull docker"
#   HULL_BIN_DIR=DIR           hulld, hull-shim, hull (default: build --release)
#   KEEP=1                     keep the work directory
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
C=${C:-10}
engines=${BENCH_ENGINES:-hull docker}

if [ "$(id -u)" != 0 ]; then
  echo "daemon-memory: needs root" >&2
  exit 2
fi
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bindir=$(bench_hull_bins "$root" daemon-memory)

# short: the shim's io.sock lives in EXEC_ROOT/containers/<64 hex>/ and a UNIX socket's
# path must fit in 107 bytes
work=$(mktemp -d /tmp/hm.XXXXXX)
chmod 711 "$work"
cg="hull/bench-memory-$$"
bench_note_host_paths
hulld_pid= dockerd_pid=

# Processes whose command line names our work directory (shims, containerd).
ours() {
  for p in /proc/[0-9]*; do
    local pid=${p#/proc/}
    if [ "$pid" = $$ ] || [ "$pid" = "$BASHPID" ]; then continue; fi
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$work"; then echo "$pid"; fi
  done
}

cleanup() {
  set +e
  local h d
  h=unix://$work/hull/hull.sock
  d=unix://$work/docker/docker.sock
  [ -n "$hulld_pid" ] && "$bindir/hull" -H "$h" rm -f $("$bindir/hull" -H "$h" ps -aq) >/dev/null 2>&1
  [ -n "$dockerd_pid" ] && docker -H "$d" rm -f $(docker -H "$d" ps -aq) >/dev/null 2>&1
  if [ -n "$hulld_pid" ]; then kill -TERM "$hulld_pid" 2>/dev/null; wait "$hulld_pid" 2>/dev/null; fi
  if [ -n "$dockerd_pid" ]; then kill -TERM "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null; sleep 1; fi
  for pid in $(ours); do kill -KILL "$pid" 2>/dev/null; done
  bench_undo_host_state "$work" "$cg"
  if [ -n "${KEEP:-}" ]; then echo "daemon-memory: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

bash "$root/scripts/mk-busybox-image.sh" "$work/busybox.tar" >/dev/null 2>&1

wait_sock() {
  for _ in $(seq 200); do
    curl -sf --unix-socket "$1" http://x/_ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon-memory: $2 did not start:" >&2
  tail -20 "$3" >&2
  exit 1
}

# RSS of $1 by mapping: hulld's own file, shared libraries, anonymous (kB, "a b c")
split() {
  local exe
  exe=$(readlink "/proc/$1/exe")
  awk -v exe="$exe" '
    /^[0-9a-f]+-[0-9a-f]+ / { path = $6; next }
    /^Rss:/ { if (path == exe) e += $2; else if (path ~ /^\//) l += $2; else a += $2 }
    END { print e + 0, l + 0, a + 0 }' "/proc/$1/smaps" 2>/dev/null || echo 0 0 0
}
split_row() {
  local e l a
  read -r e l a < <(split "$1")
  printf '    of which: hulld file %s, libraries %s, anonymous %s\n' "$(mb "$e")" "$(mb "$l")" "$(mb "$a")"
}
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
uss() { awk '/^Private_(Clean|Dirty):/ {t += $2} END {print t + 0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
sum() { local t=0 x; for x in "$@"; do t=$((t + x)); done; echo $t; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
row() { printf '%-46s %9s %9s %9s\n' "$1" "$(mb "$2")" "$(mb "$3")" "${4:+$(mb "$4")}"; }
# pids of our processes whose comm is $1
named() {
  for pid in $(ours); do
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then echo "$pid"; fi
  done
}

printf '%-46s %9s %9s %9s\n' "" "RSS MB" "PSS MB" "USS MB"

if [[ " $engines " == *" hull "* ]]; then
  mkdir -p "$work/hull"
  echo '{}' >"$work/hull/daemon.json"
  for f in "$bindir/hulld" "$bindir/hull-shim"; do
    [ -f "$f" ] && dd if="$f" iflag=nocache count=0 status=none
  done
  "$bindir/hulld" --bridge none -H "unix://$work/hull/hull.sock" --data-root "$work/hull/data" \
    --exec-root "$work/x" --config-file "$work/hull/daemon.json" >"$work/hull/log" 2>&1 &
  hulld_pid=$!
  hc="$bindir/hull -H unix://$work/hull/hull.sock"
  wait_sock "$work/hull/hull.sock" hulld "$work/hull/log"
  sleep 0.5
  row "hulld, idle after start" "$(rss $hulld_pid)" "$(pss $hulld_pid)" "$(uss $hulld_pid)"
  split_row $hulld_pid
  $hc load -i "$work/busybox.tar" >/dev/null
  $hc images >/dev/null
  $hc ps -a >/dev/null
  $hc run --rm --network none busybox true
  sleep 0.5
  row "hulld, after load + run --rm" "$(rss $hulld_pid)" "$(pss $hulld_pid)" "$(uss $hulld_pid)"
  sleep 12 # tokio's idle blocking threads end after 10 s
  r0=$(rss $hulld_pid) p0=$(pss $hulld_pid) u0=$(uss $hulld_pid)
  row "hulld, idle 12 s later" "$r0" "$p0" "$u0"
  split_row $hulld_pid
  for i in $(seq "$C"); do $hc run -d --network none --name "m$i" busybox sleep 100000 >/dev/null; done
  sleep 1
  r1=$(rss $hulld_pid) p1=$(pss $hulld_pid) u1=$(uss $hulld_pid)
  row "hulld, $C containers running" "$r1" "$p1" "$u1"
  split_row $hulld_pid
  shims=$(named hull-shim)
  n=$(echo $shims | wc -w)
  sr=$(sum $(for s in $shims; do rss "$s"; done))
  sp=$(sum $(for s in $shims; do pss "$s"; done))
  su=$(sum $(for s in $shims; do uss "$s"; done))
  d=$((n > 0 ? n : 1))
  row "hull-shim, each (mean of $n)" "$((sr / d))" "$((sp / d))" "$((su / d))"
  row "hull per container (shim + hulld growth/$C)" "$(((sr + r1 - r0) / C))" "$(((sp + p1 - p0) / C))" "$(((su + u1 - u0) / C))"
fi

if [[ " $engines " == *" docker "* ]]; then
  mkdir -p "$work/docker"
  echo '{}' >"$work/docker/daemon.json"
  unshare --net -- dockerd --config-file "$work/docker/daemon.json" --data-root "$work/docker/data" \
    --exec-root "$work/docker/exec" --pidfile "$work/docker/dockerd.pid" \
    --host "unix://$work/docker/docker.sock" --bridge=none --iptables=false --ip6tables=false \
    --ip-forward=false --ip-masq=false --userland-proxy=false --storage-driver=overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent="/$cg/docker" \
    >"$work/docker/log" 2>&1 &
  dockerd_pid=$!
  dc="docker -H unix://$work/docker/docker.sock"
  wait_sock "$work/docker/docker.sock" dockerd "$work/docker/log"
  sleep 0.5
  dpid=$(cat "$work/docker/dockerd.pid")
  cpid=$(cat "$work/docker/exec/containerd/containerd.pid" 2>/dev/null || named containerd)
  row "dockerd + containerd, idle after start" "$(($(rss $dpid) + $(rss $cpid)))" "$(($(pss $dpid) + $(pss $cpid)))" "$(($(uss $dpid) + $(uss $cpid)))"
  $dc load -i "$work/busybox.tar" >/dev/null
  $dc images >/dev/null
  $dc ps -a >/dev/null
  $dc run --rm --network none busybox true
  sleep 0.5
  sleep 12
  r0=$(($(rss $dpid) + $(rss $cpid))) p0=$(($(pss $dpid) + $(pss $cpid))) u0=$(($(uss $dpid) + $(uss $cpid)))
  row "dockerd + containerd, after load + run, 12 s" "$r0" "$p0" "$u0"
  row "  dockerd alone" "$(rss $dpid)" "$(pss $dpid)" "$(uss $dpid)"
  for i in $(seq "$C"); do $dc run -d --network none --name "m$i" busybox sleep 100000 >/dev/null; done
  sleep 1
  r1=$(($(rss $dpid) + $(rss $cpid))) p1=$(($(pss $dpid) + $(pss $cpid))) u1=$(($(uss $dpid) + $(uss $cpid)))
  row "dockerd + containerd, $C containers" "$r1" "$p1" "$u1"
  shims=$(named containerd-shim)
  n=$(echo $shims | wc -w)
  sr=$(sum $(for s in $shims; do rss "$s"; done))
  sp=$(sum $(for s in $shims; do pss "$s"; done))
  su=$(sum $(for s in $shims; do uss "$s"; done))
  d=$((n > 0 ? n : 1))
  row "containerd-shim-runc-v2, each (mean of $n)" "$((sr / d))" "$((sp / d))" "$((su / d))"
  row "docker per container (shim + growth/$C)" "$(((sr + r1 - r0) / C))" "$(((sp + p1 - p0) / C))" "$(((su + u1 - u0) / C))"
fi
