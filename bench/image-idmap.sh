#!/usr/bin/env bash
# Container rootfs with a user-namespace mapping: id-mapped lower layers vs owner-shifted
# copies. Needs root.
#
# Makes one layer from host directories (LAYER_DIRS, default ~6k files / ~60 MB, the size of
# a slim distribution image), unpacks it once, then for each mode and each of MAPPINGS new
# id mappings: times the first rootfs for that mapping (prepare + mount) and N more
# containers with the same mapping. Times come from hull-image's own clock (no process
# start-up in them); each rootfs is unmounted and its writable layer removed afterwards.
set -euo pipefail

N=${N:-20}
MAPPINGS=${MAPPINGS:-3}
LAYER_DIRS=${LAYER_DIRS:-"etc usr/lib/python3 usr/share/perl5"}
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${HULL_IMAGE:-} ]]; then
    cargo build --release -q -p hull-image-cli --manifest-path "$here/Cargo.toml"
    HULL_IMAGE="${CARGO_TARGET_DIR:-$here/target}/release/hull-image"
fi

work=$(mktemp -d /var/tmp/hull-bench-idmap.XXXXXX)
cleanup() {
    umount -l "$work/rootfs" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/rootfs" "$work/store/content/blobs/sha256"

# shellcheck disable=SC2086
tar -C / -cf "$work/layer.tar" $LAYER_DIRS 2>/dev/null || true
files=$(tar -tf "$work/layer.tar" | wc -l)
mb=$(( $(stat -c %s "$work/layer.tar") / 1048576 ))
hex=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mv "$work/layer.tar" "$work/store/content/blobs/sha256/$hex"
hi() { "$HULL_IMAGE" --root "$work/store" "$@"; }

echo "layer: $LAYER_DIRS ($files entries, $mb MB)"
hi unpack "sha256:$hex" >/dev/null 2>"$work/unpack.txt"
echo "unpack (once per layer): $(grep -o '[0-9.]* ms' "$work/unpack.txt")"

# Runs one container; prints its total ms (prepare + mount).
one() {
    local id=$1 map=$2 mode=$3
    hi mount --layers "sha256:$hex" --target "$work/rootfs" --id "$id" \
        --idmap "$map" --idmap-mode "$mode" 2>"$work/t.txt" >/dev/null
    # Sanity: the rootfs shows the mapped owner.
    local host=${map#*:}
    host=${host%%:*}
    [[ $(stat -c %u "$work/rootfs/etc") == "$host" ]] || {
        echo "$mode: rootfs not owned by the mapped root $host" >&2
        exit 1
    }
    hi umount --target "$work/rootfs" --id "$id"
    sed -E 's/.* in ([0-9.]+) ms .*/\1/' "$work/t.txt"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf '\n%-9s %-28s %-28s %s\n' mode "first rootfs per mapping (ms)" "per container after (median ms)" "disk per mapping"
for mode in idmapped copy; do
    firsts=() rest=()
    for m in $(seq 1 "$MAPPINGS"); do
        base=100000
        [[ $mode == copy ]] && base=1000000
        map="0:$((base + 100000 * m)):65536"
        firsts+=("$(one "f-$mode-$m" "$map" "$mode")")
        for i in $(seq 1 "$N"); do
            rest+=("$(one "r-$mode-$m-$i" "$map" "$mode")")
        done
    done
    disk=$(du -sm "$work/store/snapshotter/shifted" | cut -f1)
    [[ $mode == copy ]] && disk="$((disk / MAPPINGS)) MB" || disk="0 MB"
    printf '%-9s %-28s %-28s %s\n' "$mode" "${firsts[*]}" "$(printf '%s\n' "${rest[@]}" | median)" "$disk"
done
