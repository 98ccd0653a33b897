#!/usr/bin/env bash
# Time `hull-image pull` against `docker pull` of one ~200 MB multi-layer image from a
# private docker-registry, in one run, and print the medians and the ratio docker/hull.
# Both unpack the layers (hull into its snapshots, overlapping the downloads; docker into
# overlay2); hull is also timed with --no-unpack.
#
# Usage: bench/image-pull.sh            (as root)
# Env:
#   SIZE_MB=200 LAYERS=4    image size (random data, uncompressed tar layers) and layer count
#   N=3                     pulls per side (alternating), each into an empty store
#   HULL_IMAGE=PATH         hull-image binary (default: <target>/release/hull-image, built here)
#   KEEP=1                  keep the work directory and print its path
#
# Everything runs inside a fresh network namespace (`unshare -n`): the registry listens on
# that namespace's own 127.0.0.1, dockerd (Debian's, private data-root, no bridge, no
# iptables) pulls from it there, and nothing reaches the host's network. dockerd treats
# 127.0.0.0/8 as insecure anyway; --insecure-registry is given as well.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
SIZE_MB=${SIZE_MB:-200}
LAYERS=${LAYERS:-4}
N=${N:-3}

if [ "$(id -u)" != 0 ]; then
  echo "image-pull: needs root" >&2
  exit 2
fi
for b in /usr/bin/docker-registry /usr/sbin/dockerd /usr/bin/docker unshare; do
  command -v "$b" >/dev/null || { echo "image-pull: $b missing (scripts/install-deps)" >&2; exit 2; }
done

if [ -z "${_HULL_BENCH_IN_NETNS:-}" ]; then
  if [ -z "${HULL_IMAGE:-}" ]; then
    target=${CARGO_TARGET_DIR:-target}
    case "$target" in /*) ;; *) target=$root/$target ;; esac
    export PATH=$PATH:/root/.cargo/bin:${HOME:-/root}/.cargo/bin
    echo "image-pull: cargo build --release -p hull-image-cli" >&2
    (cd "$root" && cargo build --quiet --release -p hull-image-cli)
    export HULL_IMAGE=$target/release/hull-image
  fi
  exec unshare --net -- env _HULL_BENCH_IN_NETNS=1 HULL_IMAGE="$HULL_IMAGE" "$0" "$@"
fi

ip link set lo up
work=$(mktemp -d /tmp/hull-bench-pull.XXXXXX)
reg_pid='' dockerd_pid=''
cleanup() {
  # no set -e here: a grep that finds no mount must not stop the cleanup before its rm
  set +e
  local p
  for p in $dockerd_pid $reg_pid; do
    kill "$p" 2>/dev/null || true
  done
  for p in $dockerd_pid $reg_pid; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  # dockerd's overlay2 mounts, should any outlive it
  grep -o " $work/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m" || true; done
  if [ "${KEEP:-}" = 1 ]; then echo "image-pull: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the registry
port=5000
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 200); do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
  sleep 0.05
done
host=127.0.0.1:$port

# --- the image, written straight into a hull content store, then pushed by hull-image
src=$work/src/content/blobs/sha256
mkdir -p "$src"
put() { # FILE -> prints its digest hex, moves it into the store
  local h
  h=$(sha256sum "$1" | cut -d' ' -f1)
  mv "$1" "$src/$h"
  echo "$h"
}
per=$((SIZE_MB / LAYERS))
diff_ids='' layers=''
for i in $(seq "$LAYERS"); do
  mkdir -p "$work/l$i"
  head -c "${per}M" /dev/urandom >"$work/l$i/data-$i"
  tar -C "$work/l$i" --owner=0 --group=0 --numeric-owner -cf "$work/layer$i.tar" "data-$i"
  rm -rf "$work/l$i"
  size=$(stat -c %s "$work/layer$i.tar")
  h=$(put "$work/layer$i.tar")
  diff_ids+="${diff_ids:+,}\"sha256:$h\""
  layers+="${layers:+,}{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar\",\"size\":$size,\"digest\":\"sha256:$h\"}"
done
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/data-1"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$diff_ids" >"$work/config.json"
csize=$(stat -c %s "$work/config.json")
ch=$(put "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%s,"digest":"sha256:%s"},"layers":[%s]}' \
  "$csize" "$ch" "$layers" >"$work/manifest.json"
mh=$(put "$work/manifest.json")
image=$host/bench/big:1
echo "image-pull: pushing $image ($LAYERS layers, ${SIZE_MB} MB) with hull-image push" >&2
"$HULL_IMAGE" --root "$work/src" push --manifest "sha256:$mh" "$image" >/dev/null

# --- dockerd, private
mkdir -p "$work/docker"
echo '{}' >"$work/docker/daemon.json"
dsock=$work/docker/docker.sock
/usr/sbin/dockerd --config-file "$work/docker/daemon.json" --data-root "$work/docker/data" \
  --exec-root "$work/docker/exec" --pidfile "$work/docker/dockerd.pid" --host "unix://$dsock" \
  --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  --userland-proxy=false --storage-driver=overlay2 --exec-opt native.cgroupdriver=cgroupfs \
  --insecure-registry "$host" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
docker() { DOCKER_CONFIG=$work/docker/cli /usr/bin/docker --host "unix://$dsock" "$@"; }
for _ in $(seq 600); do
  if docker version >/dev/null 2>&1; then break; fi
  kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$work/dockerd.log" >&2; exit 1; }
  sleep 0.1
done

now() { date +%s%N; }
hull_times=() nounpack_times=() docker_times=()
hull_pull() { # ROOT [FLAGS...] -> prints ms; checks the blobs
  local dir=$1 t0 t1 got
  shift
  rm -rf "$dir"
  sync
  t0=$(now)
  "$HULL_IMAGE" --root "$dir" pull "$@" "$image" >/dev/null 2>&1
  t1=$(now)
  # every blob is there (the pull verified each on commit)
  got=$(find "$dir/content/blobs/sha256" -type f | wc -l)
  [ "$got" = $((LAYERS + 2)) ] || { echo "image-pull: hull stored $got blobs, want $((LAYERS + 2))" >&2; exit 1; }
  echo $(((t1 - t0) / 1000000))
}
for i in $(seq "$N"); do
  # rotate which goes first, so load on the machine hits all alike
  for k in 0 1 2; do
    case $(((i + k) % 3)) in
    0)
      # the default: layers are unpacked into snapshots as they arrive (as docker does)
      hull_times+=("$(hull_pull "$work/hull")")
      snaps=$(find "$work/hull/snapshotter/snapshots" -mindepth 1 -maxdepth 1 | wc -l)
      [ "$snaps" = "$LAYERS" ] || { echo "image-pull: hull made $snaps snapshots, want $LAYERS" >&2; exit 1; }
      ;;
    1) nounpack_times+=("$(hull_pull "$work/hull" --no-unpack)") ;;
    2)
      docker image rm -f "$image" >/dev/null 2>&1 || true
      sync
      t0=$(now)
      docker pull -q "$image" >/dev/null
      t1=$(now)
      docker_times+=($(((t1 - t0) / 1000000)))
      ;;
    esac
  done
  echo "image-pull: round $i: hull ${hull_times[-1]} ms, hull --no-unpack ${nounpack_times[-1]} ms, docker ${docker_times[-1]} ms" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
h=$(median "${hull_times[@]}")
hn=$(median "${nounpack_times[@]}")
d=$(median "${docker_times[@]}")
echo "image: $LAYERS layers, $SIZE_MB MB (uncompressed tar layers of random data), N=$N"
echo "hull-image pull median (unpacks):  $h ms"
echo "hull-image pull --no-unpack median: $hn ms"
echo "docker pull median (unpacks):      $d ms"
awk -v h="$h" -v hn="$hn" -v d="$d" 'BEGIN { printf "ratio docker/hull: %.2fx (no-unpack: %.2fx)\n", d / h, d / hn }'
