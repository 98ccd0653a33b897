# Shared by the bench scripts that run a private dockerd beside hull (sourced, not run).
#
# dockerd makes these host paths even with private roots: note which exist before it starts
# (bench_note_host_paths), and bench_undo_host_state removes the ones it made, with every
# mount under the work directory and the bench's own cgroups (below hull/).
bench_host_paths=(/etc/docker /run/docker /run/docker/plugins /run/containerd /run/containerd/s)
declare -A bench_existed

bench_note_host_paths() {
  local p
  for p in "${bench_host_paths[@]}"; do [ -e "$p" ] && bench_existed[$p]=1; done
  return 0
}

# bench_undo_host_state WORK CGROUP: unmounts what is mounted under WORK (deepest first),
# removes the cgroup directories named CGROUP (e.g. hull/bench-x-PID) in every hierarchy,
# and the host paths dockerd made.
bench_undo_host_state() {
  local work=$1 cg=$2 d i p
  awk -v w="$work" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  for d in $(find /sys/fs/cgroup -maxdepth 4 -type d -path "*/$cg" 2>/dev/null); do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  for ((i = ${#bench_host_paths[@]} - 1; i >= 0; i--)); do
    p=${bench_host_paths[$i]}
    [ -z "${bench_existed[$p]:-}" ] && [ -e "$p" ] && rm -rf "$p"
  done
  return 0
}

# bench_hull_bins ROOT NAME: prints the directory of hulld, hull-shim and hull:
# $HULL_BIN_DIR when set, else ROOT's release build, made now (NAME says who builds).
bench_hull_bins() {
  local root=$1 name=$2 target
  if [ -n "${HULL_BIN_DIR:-}" ]; then
    echo "$HULL_BIN_DIR"
    return 0
  fi
  target=${CARGO_TARGET_DIR:-target}
  case "$target" in /*) ;; *) target=$root/$target ;; esac
  export PATH=$PATH:/root/.cargo/bin:${HOME:-/root}/.cargo/bin
  echo "$name: cargo build --release -p hulld-bin -p hull-shim -p hull-cli" >&2
  (cd "$root" && cargo build --quiet --release -p hulld-bin -p hull-shim -p hull-cli) >&2 || return 1
  echo "$target/release"
}
