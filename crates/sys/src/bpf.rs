//! eBPF program loading for the cgroup v2 device controller (owned by the cgroups work).
