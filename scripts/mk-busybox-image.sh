#!/usr/bin/env bash
# Pack the busybox rootfs (scripts/mk-busybox-rootfs.sh) into an image archive in
# `docker save` format, loadable with `docker load -i` and `ctr images import`.
#
# Usage: scripts/mk-busybox-image.sh OUT.tar [TAG]
#   TAG defaults to docker.io/library/busybox:latest
# Layout of OUT.tar (docker save, one layer):
#   manifest.json                 [{"Config":..., "RepoTags":[TAG], "Layers":[...]}]
#   repositories                  {"<name>": {"<tag>": "<layer id>"}}
#   <config sha256>.json          image config; rootfs.diff_ids = sha256 of layer.tar
#   <layer sha256>/layer.tar      the rootfs, uncompressed, owned by 0:0, mtime 0
#   <layer sha256>/VERSION, json  legacy per-layer metadata
# Digests are computed with sha256sum; the output is reproducible for one busybox.
# Needs root (the rootfs keeps root ownership) and busybox-static.
set -euo pipefail

out=${1:?usage: mk-busybox-image.sh OUT.tar [TAG]}
tag=${2:-docker.io/library/busybox:latest}
here=$(cd "$(dirname "$0")" && pwd)

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  armv7l) arch=arm ;;
  ppc64le) arch=ppc64le ;;
  s390x) arch=s390x ;;
  riscv64) arch=riscv64 ;;
  *) arch=$(uname -m) ;;
esac

work=$(mktemp -d /tmp/hull-mkimage.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/rootfs" "$work/img"
"$here/mk-busybox-rootfs.sh" "$work/rootfs"

# The layer: sorted, numeric root ownership, fixed mtime, no "./" prefix.
(cd "$work/rootfs" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort |
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
    -cf "$work/layer.tar" -T -)
layer_sha=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)

mkdir "$work/img/$layer_sha"
mv "$work/layer.tar" "$work/img/$layer_sha/layer.tar"
echo -n "1.0" >"$work/img/$layer_sha/VERSION"

created=1970-01-01T00:00:00Z
path_env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
printf '{"id":"%s","created":"%s","os":"linux","architecture":"%s","config":{"Env":["%s"],"Cmd":["sh"]}}' \
  "$layer_sha" "$created" "$arch" "$path_env" >"$work/img/$layer_sha/json"

printf '{"architecture":"%s","os":"linux","created":"%s","config":{"Env":["%s"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"hull scripts/mk-busybox-image.sh"}]}' \
  "$arch" "$created" "$path_env" "$layer_sha" "$created" >"$work/config.json"
config_sha=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$work/img/$config_sha.json"

printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
  "$config_sha" "$tag" "$layer_sha" >"$work/img/manifest.json"
repo=${tag%:*}
tag_only=${tag##*:}
case "$tag_only" in
  */* | "$tag") repo=$tag tag_only=latest ;; # no tag (a registry port is not one)
esac
printf '{"%s":{"%s":"%s"}}' "$repo" "$tag_only" "$layer_sha" >"$work/img/repositories"

out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
(cd "$work/img" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
    --no-recursion -cf "$out_abs.tmp" -T -)
mv "$out_abs.tmp" "$out_abs"
echo "mk-busybox-image: $out_abs: $tag, config sha256:$config_sha, layer sha256:$layer_sha" >&2
