#!/usr/bin/env bash
# Run the OCI runtime-tools validation programs against one OCI runtime and
# print a per-program pass/fail summary.
#
# Usage: scripts/oci-validation.sh RUNTIME [RUNTIME_TOOLS_DIR]
#   RUNTIME            path (or name on PATH) of the runtime binary: runc, crun,
#                      target/release/hull-runtime, ...
#   RUNTIME_TOOLS_DIR  a checkout of opencontainers/runtime-tools in which
#                      `make runtimetest validation-executables` has been run
#                      (default: env RUNTIME_TOOLS_DIR, else /tmp/runtime-tools).
#                      This script fetches and builds nothing.
# Env:
#   TIMEOUT=60         seconds allowed to each program
#   ONLY=REGEX         run only the programs whose name matches (grep -E)
#   LOG_DIR=DIR        keep each program's TAP output there (default: a temp dir,
#                      removed at the end unless KEEP_LOGS=1)
#   SPEC_VERSION=X.Y.Z rewrite each bundle's ociVersion to X.Y.Z before `create`
#                      (through a wrapper), for runtimes that refuse the suite's
#                      newer spec version (crun 1.8 only takes 1.0.x)
#   CGROUP_V1_VIEW=auto|1|0  run in a private mount namespace where
#                      /sys/fs/cgroup/unified is hidden. crun refuses hybrid hosts
#                      whose v2 hierarchy has controllers; auto does it for crun only.
# Needs root. Exit status: 0 when every program ran (whatever passed), 2 on usage errors.
set -euo pipefail

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
rt_arg=$1
rt_tools=${2:-${RUNTIME_TOOLS_DIR:-/tmp/runtime-tools}}
timeout_s=${TIMEOUT:-60}
only=${ONLY:-}

if [ "$(id -u)" != 0 ]; then
  echo "oci-validation: must run as root" >&2
  exit 2
fi
rt=$(command -v "$rt_arg" || true)
if [ -z "$rt" ] || [ ! -x "$rt" ]; then
  echo "oci-validation: runtime '$rt_arg' not found or not executable" >&2
  exit 2
fi
rt=$(readlink -f "$rt")

hybrid_v2_controllers() {
  [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
    [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}
view=${CGROUP_V1_VIEW:-auto}
if [ -z "${_HULL_OCIVAL_IN_MNTNS:-}" ]; then
  if [ "$view" = 1 ] || { [ "$view" = auto ] && [ "$(basename "$rt")" = crun ] && hybrid_v2_controllers; }; then
    echo "oci-validation: running in a private mount namespace without /sys/fs/cgroup/unified" \
      "(hybrid host with v2 controllers: $(cat /sys/fs/cgroup/unified/cgroup.controllers))" >&2
    exec unshare --mount --propagation private env _HULL_OCIVAL_IN_MNTNS=1 \
      bash -c 'umount -l /sys/fs/cgroup/unified && exec "$0" "$@"' "$0" "$@"
  fi
fi
command -v jq >/dev/null || { echo "oci-validation: needs jq" >&2; exit 2; }
if [ ! -x "$rt_tools/runtimetest" ] || [ ! -f "$rt_tools/rootfs-amd64.tar.gz" ]; then
  echo "oci-validation: $rt_tools is not a built runtime-tools checkout" >&2
  echo "  (it needs runtimetest and validation/*/*.t: run 'make runtimetest validation-executables' there)" >&2
  exit 2
fi

mapfile -t programs < <(cd "$rt_tools" && find validation -mindepth 2 -maxdepth 2 -name '*.t' -type f | sort)
if [ -n "$only" ]; then
  mapfile -t programs < <(printf '%s\n' "${programs[@]}" | grep -E -- "$only" || true)
fi
if [ ${#programs[@]} -eq 0 ]; then
  echo "oci-validation: no validation programs (*.t) under $rt_tools/validation" >&2
  exit 2
fi

own_log_dir=0
if [ -z "${LOG_DIR:-}" ]; then
  LOG_DIR=$(mktemp -d /tmp/hull-oci-validation.XXXXXX)
  own_log_dir=1
fi
mkdir -p "$LOG_DIR"

# Leftovers the programs may leave: bundles in /tmp/ocitest* (with mounts in
# them), containers of those bundles in the runtime's state, cgroups named
# cgrouptest / testdir. Only cgroups that appeared during this run are removed.
list_cgroup_leftovers() {
  find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d \( -name cgrouptest -o -name testdir \) 2>/dev/null | sort
}
cg_before=$(mktemp)
list_cgroup_leftovers >"$cg_before"

# Containers whose bundle is a validation bundle (needs the runtime's `list`).
cleanup_containers() {
  local id n=0
  while read -r id; do
    [ -n "$id" ] || continue
    "$rt" kill "$id" KILL >/dev/null 2>&1 || true
    "$rt" delete --force "$id" >/dev/null 2>&1 || true
    n=$((n + 1))
  done < <("$rt" list --format json 2>/dev/null |
    jq -r '.[]? | select(((.bundle // .bundlePath // "") | startswith("/tmp/ocitest"))) | .id' 2>/dev/null || true)
  echo "$n"
}
cleanup_ocitest() {
  local d m
  for d in /tmp/ocitest*; do
    [ -e "$d" ] || continue
    # innermost mounts first; lazy if busy
    while read -r m; do
      umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(awk -v p="$d" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    rm -rf --one-file-system "$d" 2>/dev/null || rm -rf "$d" 2>/dev/null || true
  done
}
cleanup_all() {
  local d
  cleanup_containers >/dev/null
  cleanup_ocitest
  while read -r d; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done < <(comm -13 "$cg_before" <(list_cgroup_leftovers))
  rm -f "$cg_before"
  if [ "$own_log_dir" = 1 ] && [ "${KEEP_LOGS:-0}" != 1 ]; then
    rm -rf "$LOG_DIR"
  fi
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

# What the programs run as RUNTIME: the runtime, or a wrapper that rewrites
# ociVersion in the bundle given to create/run.
rt_cmd=$rt
if [ -n "${SPEC_VERSION:-}" ]; then
  rt_cmd=$LOG_DIR/wrap/$(basename "$rt")
  mkdir -p "$LOG_DIR/wrap"
  cat >"$rt_cmd" <<WRAP
#!/bin/sh
bundle=. prev= cmd=
for a in "\$@"; do
  case "\$prev" in --bundle|-b) bundle=\$a ;; esac
  case "\$a" in --bundle=*) bundle=\${a#--bundle=} ;; create|run) [ -z "\$cmd" ] && cmd=\$a ;; esac
  prev=\$a
done
if [ -n "\$cmd" ] && [ -f "\$bundle/config.json" ]; then
  jq --arg v '$SPEC_VERSION' '.ociVersion = \$v' "\$bundle/config.json" >"\$bundle/.config.json.tmp" &&
    mv "\$bundle/.config.json.tmp" "\$bundle/config.json"
fi
exec '$rt' "\$@"
WRAP
  chmod +x "$rt_cmd"
fi

echo "oci-validation: runtime $rt${SPEC_VERSION:+ (ociVersion rewritten to $SPEC_VERSION)}"
echo "oci-validation: runtime-tools $rt_tools, ${#programs[@]} programs, timeout ${timeout_s}s each"
printf '%-44s %-7s %3s %5s %5s %5s %5s  %s\n' PROGRAM RESULT RC OK NOTOK SKIP TODO SECONDS

n_pass=0 n_fail=0 n_skip=0 n_timeout=0
t_ok=0 t_notok=0 t_skip=0 t_todo=0
failed=()
start_all=$(date +%s)
for prog in "${programs[@]}"; do
  name=$(basename "$prog" .t)
  log="$LOG_DIR/$name.tap"
  t0=$(date +%s%N)
  rc=0
  (cd "$rt_tools" && RUNTIME="$rt_cmd" timeout -k 5 "$timeout_s" "./$prog") >"$log" 2>&1 </dev/null || rc=$?
  t1=$(date +%s%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  # TAP: "ok N desc", "not ok N desc", directives "# SKIP" / "# TODO" (case-insensitive)
  read -r ok notok skip todo < <(awk '
    BEGIN { ok = 0; notok = 0; skip = 0; todo = 0 }
    /^not ok/ { if (tolower($0) ~ /# *todo/) todo++; else if (tolower($0) ~ /# *skip/) skip++; else notok++; next }
    /^ok/     { if (tolower($0) ~ /# *skip/) skip++; else if (tolower($0) ~ /# *todo/) todo++; else ok++; next }
    END { print ok, notok, skip, todo }' "$log")
  # A program passes when it exits 0 with no "not ok". Some programs (the *_fail
  # ones) print no assertion at all and pass by exiting 0; others report a
  # failure only as an "error" diagnostic under a "1..0" plan: that is a fail.
  error_diag=0
  if [ "$ok" = 0 ] && grep -qE '^[[:space:]]*"error":' "$log"; then error_diag=1; fi
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    result=TIMEOUT; n_timeout=$((n_timeout + 1)); failed+=("$name")
  elif [ "$rc" != 0 ] || [ "$notok" != 0 ] || [ "$error_diag" = 1 ]; then
    result=FAIL; n_fail=$((n_fail + 1)); failed+=("$name")
  elif [ "$ok" = 0 ] && [ "$skip" -gt 0 ]; then
    result=skip; n_skip=$((n_skip + 1))
  else
    result=pass; n_pass=$((n_pass + 1))
  fi
  t_ok=$((t_ok + ok)); t_notok=$((t_notok + notok)); t_skip=$((t_skip + skip)); t_todo=$((t_todo + todo))
  printf '%-44s %-7s %3s %5s %5s %5s %5s  %s\n' "$name" "$result" "$rc" "$ok" "$notok" "$skip" "$todo" "$secs"
  # bundles are per program: remove its containers, mounts and bundles now
  left=$(cleanup_containers)
  if [ "$left" != 0 ]; then echo "    ($name left $left container(s) in the runtime's state: deleted)"; fi
  cleanup_ocitest
done
end_all=$(date +%s)

echo
echo "oci-validation summary for $rt"
echo "  programs: ${#programs[@]}: $n_pass pass, $n_fail fail, $n_timeout timeout, $n_skip skipped entirely"
echo "  assertions: $t_ok ok, $t_notok not ok, $t_skip skip, $t_todo todo"
echo "  wall time: $((end_all - start_all)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "  failing programs: ${failed[*]}"
fi
if [ "$own_log_dir" = 1 ] && [ "${KEEP_LOGS:-0}" != 1 ]; then
  echo "  (set KEEP_LOGS=1 or LOG_DIR=DIR to keep each program's TAP output)"
else
  echo "  TAP output: $LOG_DIR"
fi
