#!/usr/bin/env bash
# Time `RUNTIME --root STATE run --bundle B ID` (container process: `true`, no
# terminal) for hull-runtime and its peers, interleaved in one run, and print the
# median and p90 wall time of each and the median ratios hull/runc, hull/crun.
#
# Usage: bench/runtime-run.sh            (as root)
# Env:
#   N=200                   runs per runtime
#   BENCH_RUNTIMES="hull runc crun"   which to time (e.g. "runc crun" before
#                           hull-runtime works); hull is built first (release)
#   HULL_RUNTIME=PATH       hull-runtime binary (default: <target>/release/hull-runtime,
#                           <target> = CARGO_TARGET_DIR or target); no build if set
#   RUNC=/usr/sbin/runc CRUN=/usr/bin/crun
#   CGROUP_V1_VIEW=auto|1|0 run the whole benchmark in a private mount namespace
#                           where /sys/fs/cgroup/unified is hidden (the same view
#                           for every runtime). crun refuses hybrid hosts whose v2
#                           hierarchy has controllers; auto does it only then.
#   KEEP=1                  keep the timings (TSV) and print their path
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${N:-200}
runtimes=${BENCH_RUNTIMES:-hull runc crun}

if [ "$(id -u)" != 0 ]; then
  echo "runtime-run: needs root" >&2
  exit 2
fi

# --- a private cgroup view, decided before anything is built or made
hybrid_v2_controllers() {
  [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
    [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}
view=${CGROUP_V1_VIEW:-auto}
if [ -z "${_HULL_BENCH_IN_MNTNS:-}" ]; then
  if [ "$view" = 1 ] || { [ "$view" = auto ] && [[ " $runtimes " == *" crun "* ]] && hybrid_v2_controllers; }; then
    echo "runtime-run: hybrid cgroups with v2 controllers ($(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)):" \
      "running in a private mount namespace without /sys/fs/cgroup/unified (crun refuses that layout)" >&2
    exec unshare --mount --propagation private env _HULL_BENCH_IN_MNTNS=1 \
      bash -c 'umount -l /sys/fs/cgroup/unified && exec "$0" "$@"' "$0" "$@"
  fi
fi

# --- the runtimes
declare -A bin
for rt in $runtimes; do
  case "$rt" in
    hull)
      if [ -n "${HULL_RUNTIME:-}" ]; then
        bin[hull]=$HULL_RUNTIME
      else
        target=${CARGO_TARGET_DIR:-target}
        case "$target" in /*) ;; *) target=$root/$target ;; esac
        export PATH=$PATH:/root/.cargo/bin:${HOME:-/root}/.cargo/bin
        echo "runtime-run: cargo build --release -p hull-runtime-cli" >&2
        (cd "$root" && cargo build --quiet --release -p hull-runtime-cli)
        bin[hull]=$target/release/hull-runtime
      fi
      ;;
    runc) bin[runc]=${RUNC:-$(command -v runc || echo /usr/sbin/runc)} ;;
    crun) bin[crun]=${CRUN:-$(command -v crun || echo /usr/bin/crun)} ;;
    *) echo "runtime-run: unknown runtime '$rt' (hull, runc, crun)" >&2; exit 2 ;;
  esac
  if [ ! -x "${bin[$rt]}" ]; then
    echo "runtime-run: $rt: ${bin[$rt]} is not an executable" >&2
    exit 2
  fi
done

# --- one bundle, one state dir per runtime, cleanup on any exit
work=$(mktemp -d /tmp/hull-bench.XXXXXX)
cg=hull/bench-$$
new_hull_parents=$(for d in /sys/fs/cgroup/*/; do [ -e "${d}hull" ] || echo "${d}hull"; done)
cleanup() {
  local rt d m
  for rt in $runtimes; do
    for d in "$work/state-$rt"/*; do
      [ -e "$d" ] || continue
      "${bin[$rt]}" --root "$work/state-$rt" delete --force "$(basename "$d")" >/dev/null 2>&1 || true
    done
  done
  awk -v p="$work/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  for d in /sys/fs/cgroup/*/"$cg"; do
    if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
  done
  for d in $new_hull_parents; do rmdir "$d" 2>/dev/null || true; done
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/scripts/mk-bundle.sh" -c "/$cg" "$work/bundle" -- true
for rt in $runtimes; do mkdir -p "$work/state-$rt"; done

# --- check that each runtime really runs a container before timing it (a
# failing or no-op run is fast): same rootfs, a process that prints a marker
mkdir "$work/check"
jq --arg r "$work/bundle/rootfs" '.process.args = ["echo", "hull-bench-check"] | .root.path = $r' \
  "$work/bundle/config.json" >"$work/check/config.json"
for rt in $runtimes; do
  if ! "${bin[$rt]}" --root "$work/state-$rt" run --bundle "$work/check" "check-$rt" </dev/null >"$work/check-$rt.log" 2>&1 ||
    ! grep -qx hull-bench-check "$work/check-$rt.log"; then
    echo "runtime-run: $rt (${bin[$rt]}) cannot run the bundle:" >&2
    cat "$work/check-$rt.log" >&2
    exit 1
  fi
done

echo "runtime-run: $N runs each of: $(for rt in $runtimes; do printf '%s=%s ' "$rt" "${bin[$rt]}"; done)"
echo "runtime-run: $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); bundle: busybox 'true', read-only root, 5 namespaces"
read -r -a order <<<"$runtimes"
k=${#order[@]}
: >"$work/times.tsv"
for ((i = 1; i <= N; i++)); do
  # rotate the order each round so that no runtime always goes first
  for ((j = 0; j < k; j++)); do
    rt=${order[$(((i + j) % k))]}
    t0=$EPOCHREALTIME
    if ! "${bin[$rt]}" --root "$work/state-$rt" run --bundle "$work/bundle" "id-$i" </dev/null >/dev/null 2>"$work/err"; then
      echo "runtime-run: $rt run id-$i failed:" >&2
      cat "$work/err" >&2
      exit 1
    fi
    t1=$EPOCHREALTIME
    echo -e "$rt\t$((10#${t1/[.,]/} - 10#${t0/[.,]/}))" >>"$work/times.tsv"
    # `run` deletes the container on exit; make sure, outside the timing
    if [ -e "$work/state-$rt/id-$i" ]; then
      "${bin[$rt]}" --root "$work/state-$rt" delete --force "id-$i" >/dev/null 2>&1 || true
    fi
  done
done

# --- statistics (microseconds in, milliseconds out)
stat_of() { # RUNTIME -> "median p90 mean min"
  awk -F'\t' -v r="$1" '$1 == r { print $2 }' "$work/times.tsv" | sort -n | awk '
    { v[NR] = $1; s += $1 }
    END {
      if (NR == 0) { print "nan nan nan nan"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      p = v[int(0.9 * NR + 0.999999)]
      printf "%.2f %.2f %.2f %.2f\n", m / 1000, p / 1000, s / NR / 1000, v[1] / 1000
    }'
}
declare -A median
echo
printf '%-6s %10s %10s %10s %10s  %s\n' runtime 'median ms' 'p90 ms' 'mean ms' 'min ms' binary
for rt in $runtimes; do
  read -r med p90 mean min < <(stat_of "$rt")
  median[$rt]=$med
  printf '%-6s %10s %10s %10s %10s  %s\n' "$rt" "$med" "$p90" "$mean" "$min" "${bin[$rt]}"
done
echo
ratio() { awk -v a="${median[$1]}" -v b="${median[$2]}" 'BEGIN { printf "%.2f", a / b }'; }
for pair in hull/runc hull/crun crun/runc; do
  a=${pair%/*} b=${pair#*/}
  if [ -n "${median[$a]:-}" ] && [ -n "${median[$b]:-}" ]; then
    echo "median ratio $pair: $(ratio "$a" "$b")"
  fi
done
if [ -n "${KEEP:-}" ]; then echo "timings (runtime, microseconds): $work/times.tsv"; fi
