#!/usr/bin/env bash
# Time `hull-image load` against `docker load` of one ~200 MB, 5-layer image in
# `docker save` format (random, incompressible data plus a layer of many small
# files), in one run, and print the median of each and the ratio docker/hull.
# Both unpack the layers (hull into its snapshots, docker into overlay2); hull is also
# timed with --no-unpack, and its unpack alone, to show where the time goes.
#
# Usage: bench/image-load.sh              (as root)
# Env:
#   N=5                  loads per tool (each into an empty store)
#   HULL_IMAGE=PATH      hull-image binary (default: <target>/release/hull-image,
#                        built here; <target> = CARGO_TARGET_DIR or target)
#   DOCKERD=/usr/sbin/dockerd DOCKER=/usr/bin/docker (Debian's)
#   KEEP=1               keep the work directory (archive, logs)
#   FS=loop              where both stores live: `loop` (default) a fresh ext4 made by
#                        mkfs.ext4 with its defaults (journaled, as on a Debian host), loop-
#                        mounted in the work directory; `host` the work directory's own
#                        filesystem (on this project's VM an ext4 without a journal, where
#                        creating files right after deleting thousands is slow for everyone:
#                        ext4 then skips each recently freed inode one by one)
# dockerd runs privately: in a new network namespace (`unshare -n`), with its own
# data-root (storage driver overlay2), exec-root, socket and pid file under the
# work directory; it is stopped by its pid and its mounts are undone on any exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${N:-5}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER=${DOCKER:-/usr/bin/docker}

if [ "$(id -u)" != 0 ]; then
  echo "image-load: needs root (dockerd)" >&2
  exit 2
fi
for b in "$DOCKERD" "$DOCKER" unshare sha256sum; do
  command -v "$b" >/dev/null || { echo "image-load: $b not found (scripts/install-deps)" >&2; exit 2; }
done

if [ -n "${HULL_IMAGE:-}" ]; then
  hull=$HULL_IMAGE
else
  target=${CARGO_TARGET_DIR:-target}
  case "$target" in /*) ;; *) target=$root/$target ;; esac
  export PATH=$PATH:/root/.cargo/bin:${HOME:-/root}/.cargo/bin
  echo "image-load: cargo build --release -p hull-image-cli" >&2
  (cd "$root" && cargo build --quiet --release -p hull-image-cli)
  hull=$target/release/hull-image
fi

work=$(mktemp -d /tmp/hull-bench-image.XXXXXX)
FS=${FS:-loop}
dockerd_pid=
cleanup() {
  set +e
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    kill -TERM "$dockerd_pid"
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$dockerd_pid" 2>/dev/null && kill -KILL "$dockerd_pid"
    wait "$dockerd_pid" 2>/dev/null
  fi
  # containerd started by our dockerd, if it outlived it (its pid file is ours)
  local cpid
  cpid=$(cat "$work/exec/containerd/containerd.pid" 2>/dev/null)
  if [ -n "$cpid" ] && grep -qs "$work" "/proc/$cpid/cmdline"; then kill -KILL "$cpid"; fi
  grep " $work" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
  if [ "${KEEP:-0}" = 1 ]; then echo "image-load: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

case $FS in
loop)
  command -v mkfs.ext4 >/dev/null || { echo "image-load: mkfs.ext4 not found (e2fsprogs)" >&2; exit 2; }
  truncate -s 4G "$work/fs.img"
  mkfs.ext4 -q -F "$work/fs.img"
  mkdir -p "$work/mnt"
  mount -o loop "$work/fs.img" "$work/mnt"
  fsdir=$work/mnt
  ;;
host) fsdir=$work ;;
*) echo "image-load: FS=$FS: use loop or host" >&2; exit 2 ;;
esac

# --- the image: 5 layers, ~200 MB, docker save (classic) layout
echo "image-load: making the image" >&2
img=$work/img
mkdir -p "$img"
diff_ids=() layers=()
mklayer() { # dir -> layer.tar in $img/<sha>/
  local dir=$1 sha
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf "$work/layer.tar" .
  sha=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  mkdir -p "$img/$sha"
  mv "$work/layer.tar" "$img/$sha/layer.tar"
  diff_ids+=("\"sha256:$sha\"")
  layers+=("\"$sha/layer.tar\"")
  rm -rf "$dir"
}
for i in 1 2 3 4; do
  mb=$((i == 1 ? 70 : 40))
  mkdir -p "$work/l$i/data$i"
  head -c $((mb << 20)) /dev/urandom >"$work/l$i/data$i/blob"
  mklayer "$work/l$i"
done
mkdir -p "$work/l5"
for d in $(seq 0 19); do
  mkdir -p "$work/l5/small/$d"
  for f in $(seq 0 249); do head -c $((512 + (f * 37) % 4096)) /dev/urandom >"$work/l5/small/$d/$f"; done
done
mklayer "$work/l5"
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
ids=$(IFS=,; echo "${diff_ids[*]}")
printf '{"architecture":"%s","os":"linux","created":"2026-01-01T00:00:00Z","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$arch" "$ids" >"$work/config.json"
csha=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$img/$csha.json"
printf '[{"Config":"%s.json","RepoTags":["hull-bench/load:latest"],"Layers":[%s]}]' \
  "$csha" "$(IFS=,; echo "${layers[*]}")" >"$img/manifest.json"
archive=$work/image.tar
tar -C "$img" -cf "$archive" .
rm -rf "$img"
size_mb=$(($(stat -c %s "$archive") >> 20))
echo "image-load: $archive: ${size_mb} MB, 5 layers (4 random, 1 of 5000 small files), id sha256:$csha" >&2

# --- dockerd, private
mkdir -p "$fsdir/data" "$work/exec"
echo '{}' >"$work/daemon.json"
sock=$work/docker.sock
unshare --net -- "$DOCKERD" --config-file "$work/daemon.json" --data-root "$fsdir/data" \
  --exec-root "$work/exec" --pidfile "$work/dockerd.pid" --host "unix://$sock" \
  --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  --storage-driver=overlay2 --exec-opt native.cgroupdriver=cgroupfs >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
docker() { DOCKER_CONFIG=$work/cli "$DOCKER" --host "unix://$sock" "$@"; }
for _ in $(seq 300); do
  if [ -S "$sock" ] && docker version >/dev/null 2>&1; then break; fi
  kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$work/dockerd.log" >&2; exit 1; }
  sleep 0.2
done
docker info --format '{{.Driver}}' | grep -qx overlay2 || { echo "image-load: dockerd is not on overlay2" >&2; exit 1; }

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f\n", b - a}'; }
tools=(hull hull-nounpack docker)
for t in "${tools[@]}" unpack; do : >"$work/$t.t"; done
for r in $(seq "$N"); do
  # rotate which goes first, so load on the machine hits all alike
  for k in 0 1 2; do
    tool=${tools[$(((r + k) % 3))]}
    sync
    case $tool in
    hull)
      # the default: load, then unpack every layer into its snapshot (as docker load does)
      rm -rf "$fsdir/hull-root"
      t0=$(now)
      "$hull" --root "$fsdir/hull-root" load -q -i "$archive"
      t1=$(now)
      "$hull" --root "$fsdir/hull-root" images -q --no-trunc | grep -qx "sha256:$csha"
      snaps=$(find "$fsdir/hull-root/snapshotter/snapshots" -mindepth 1 -maxdepth 1 | wc -l)
      [ "$snaps" = 5 ] || { echo "image-load: hull made $snaps snapshots, want 5" >&2; exit 1; }
      ;;
    hull-nounpack)
      # blobs only; then the unpack alone, timed apart (where the difference goes)
      rm -rf "$fsdir/hull-root"
      t0=$(now)
      "$hull" --root "$fsdir/hull-root" load --no-unpack -q -i "$archive"
      t1=$(now)
      "$hull" --root "$fsdir/hull-root" images -q --no-trunc | grep -qx "sha256:$csha"
      sync
      u0=$(now)
      "$hull" --root "$fsdir/hull-root" unpack "$csha" >/dev/null 2>&1
      u1=$(now)
      elapsed "$u0" "$u1" >>"$work/unpack.t"
      ;;
    docker)
      docker rmi -f hull-bench/load:latest >/dev/null 2>&1 || true
      t0=$(now)
      docker load -q -i "$archive" >/dev/null
      t1=$(now)
      docker image inspect --format '{{.Id}}' hull-bench/load:latest | grep -qx "sha256:$csha"
      ;;
    esac
    elapsed "$t0" "$t1" >>"$work/$tool.t"
  done
  echo "image-load: round $r: hull $(tail -1 "$work/hull.t") s, hull --no-unpack $(tail -1 "$work/hull-nounpack.t") s (+ unpack $(tail -1 "$work/unpack.t") s), docker $(tail -1 "$work/docker.t") s" >&2
done
h=$(median <"$work/hull.t")
hn=$(median <"$work/hull-nounpack.t")
u=$(median <"$work/unpack.t")
d=$(median <"$work/docker.t")
echo "image-load: ${size_mb} MB, N=$N, stores on FS=$FS; median wall time (s)"
awk -v h="$h" -v hn="$hn" -v u="$u" -v d="$d" 'BEGIN {
  printf "  hull-image load (unpacks)     %.3f\n", h
  printf "  hull-image load --no-unpack   %.3f   (then hull-image unpack alone: %.3f)\n", hn, u
  printf "  docker load (unpacks)         %.3f\n", d
  printf "  docker/hull                   %.2fx   (no-unpack: %.2fx)\n", d / h, d / hn
}'
