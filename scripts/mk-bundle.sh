#!/usr/bin/env bash
# Make an OCI bundle: a busybox rootfs (scripts/mk-busybox-rootfs.sh) and a
# config.json like `runc spec` writes (read-only root, pid/net/ipc/uts/mount
# namespaces, 3 capabilities, no_new_privs, masked and read-only /proc paths),
# but without a terminal and with the process, hostname and cgroup given here.
#
# Usage: scripts/mk-bundle.sh [-h HOSTNAME] [-c CGROUPS_PATH] [-w] DIR -- ARGS...
#   -h  hostname (default: hull)
#   -c  linux.cgroupsPath, e.g. /hull/bench (default: none: the runtime decides)
#   -w  writable root (default: read-only)
# Needs jq and busybox-static; run as root (the rootfs is owned by root).
set -euo pipefail

hostname=hull
cgroups_path=
readonly_root=true
while getopts 'h:c:w' opt; do
  case "$opt" in
    h) hostname=$OPTARG ;;
    c) cgroups_path=$OPTARG ;;
    w) readonly_root=false ;;
    *) sed -n '2,11p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
dir=${1:?usage: mk-bundle.sh [-h HOSTNAME] [-c CGROUPS_PATH] [-w] DIR -- ARGS...}
shift
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || set -- sh

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
"$here/mk-busybox-rootfs.sh" "$dir/rootfs"

caps='["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]'
jq -n \
  --arg hostname "$hostname" \
  --arg cgroups "$cgroups_path" \
  --argjson ro "$readonly_root" \
  --argjson caps "$caps" \
  '{
  ociVersion: "1.0.2",
  process: {
    terminal: false,
    user: {uid: 0, gid: 0},
    args: $ARGS.positional,
    env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
    cwd: "/",
    capabilities: {bounding: $caps, effective: $caps, permitted: $caps},
    rlimits: [{type: "RLIMIT_NOFILE", hard: 1024, soft: 1024}],
    noNewPrivileges: true
  },
  root: {path: "rootfs", readonly: $ro},
  hostname: $hostname,
  mounts: [
    {destination: "/proc", type: "proc", source: "proc"},
    {destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]},
    {destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]},
    {destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  linux: ({
    resources: {devices: [{allow: false, access: "rwm"}]},
    namespaces: [{type: "pid"}, {type: "network"}, {type: "ipc"}, {type: "uts"}, {type: "mount"}],
    maskedPaths: ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  } + (if $cgroups == "" then {} else {cgroupsPath: $cgroups} end))
}' --args -- "$@" >"$dir/config.json"
