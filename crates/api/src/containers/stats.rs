//! `GET /containers/{id}/stats`: Docker's stats JSON from the container's cgroup (through
//! the runtime library), the host's /proc/stat and /proc/meminfo, and the container's
//! network namespace (`/proc/<pid>/net/dev`). Streamed once a second, or one sample
//! (`stream=false`, after a second so that `precpu_stats` is filled, or at once with
//! `one-shot=true`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::record::Record;
use super::{ContainerService, ContainersError};
use crate::body::{response, ApiBody};
use crate::errors::ApiError;
use crate::query::Query;

const ZERO_READ: &str = "0001-01-01T00:00:00Z";

/// Host CPU time in nanoseconds (the `cpu` line of /proc/stat, in USER_HZ = 100 ticks) and
/// the number of online CPUs.
fn host_cpu() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut total = 0u64;
    let mut cpus = 0u64;
    for l in text.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("cpu") => {
                // user nice system idle iowait irq softirq steal (guest is inside user)
                total = f.take(8).filter_map(|x| x.parse::<u64>().ok()).sum::<u64>()
                    * (1_000_000_000 / 100);
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus.max(1))
}

/// MemTotal of /proc/meminfo, in bytes.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The interfaces of the namespace `pid` lives in, without `lo`.
fn networks(pid: i32) -> Option<Map<String, Value>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(parse_net_dev(&text))
}

pub(crate) fn parse_net_dev(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let n: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if n.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": n[0], "rx_packets": n[1], "rx_errors": n[2], "rx_dropped": n[3],
                "tx_bytes": n[8], "tx_packets": n[9], "tx_errors": n[10], "tx_dropped": n[11],
            }),
        );
    }
    out
}

fn empty_cpu() -> Value {
    json!({
        "cpu_usage": { "total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
        "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
    })
}

/// One sample, in Docker's shape; `pre` is the previous sample (its cpu_stats become
/// precpu_stats) or None.
fn sample(svc: &ContainerService, rec: &Record, pre: Option<&Value>) -> Value {
    let now = hull_runtime::state::now_rfc3339();
    let (preread, precpu) = match pre {
        Some(p) => (p["read"].clone(), p["cpu_stats"].clone()),
        None => (json!(ZERO_READ), empty_cpu()),
    };
    let mut v = json!({
        "read": now,
        "preread": preread,
        "name": format!("/{}", rec.name),
        "id": rec.id,
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": empty_cpu(),
        "precpu_stats": precpu,
        "memory_stats": {},
    });
    if !rec.running() {
        v["read"] = json!(ZERO_READ);
        return v;
    }
    let st = match hull_runtime::Runtime::new(&svc.paths.runtime_root).stats(&rec.id) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("stats of container {}: {e}", rec.id);
            return v;
        }
    };
    let (system, cpus) = host_cpu();
    let mut usage = json!({
        "total_usage": st.cpu.usage_total_ns,
        "usage_in_kernelmode": st.cpu.usage_system_ns,
        "usage_in_usermode": st.cpu.usage_user_ns,
    });
    if !st.cpu.per_cpu_ns.is_empty() {
        usage["percpu_usage"] = json!(st.cpu.per_cpu_ns);
    }
    v["cpu_stats"] = json!({
        "cpu_usage": usage,
        "system_cpu_usage": system,
        "online_cpus": cpus,
        "throttling_data": {
            "periods": st.cpu.nr_periods,
            "throttled_periods": st.cpu.nr_throttled,
            "throttled_time": st.cpu.throttled_time_ns,
        },
    });
    let host_mem = host_memory();
    let limit = match st.memory.limit {
        Some(l) if host_mem == 0 || l < host_mem => l,
        _ => host_mem,
    };
    v["memory_stats"] = json!({
        "usage": st.memory.usage,
        "max_usage": st.memory.max_usage,
        "limit": limit,
        "failcnt": st.memory.failcnt,
        "stats": st.memory.stat,
    });
    let mut pids = json!({ "current": st.pids.current });
    if let Some(l) = st.pids.limit {
        pids["limit"] = json!(l);
    }
    v["pids_stats"] = pids;
    let devs: Vec<[u64; 6]> = st
        .io
        .devices
        .iter()
        .map(|d| {
            [
                d.major,
                d.minor,
                d.read_bytes,
                d.write_bytes,
                d.read_ops,
                d.write_ops,
            ]
        })
        .collect();
    let entries = |r: usize| -> Value {
        let out: Vec<Value> = devs
            .iter()
            .flat_map(|d| {
                [("read", d[r]), ("write", d[r + 1])].map(
                    |(op, value)| json!({ "major": d[0], "minor": d[1], "op": op, "value": value }),
                )
            })
            .collect();
        if out.is_empty() {
            Value::Null
        } else {
            Value::Array(out)
        }
    };
    v["blkio_stats"]["io_service_bytes_recursive"] = entries(2);
    v["blkio_stats"]["io_serviced_recursive"] = entries(4);
    if let Some(n) = networks(rec.state.pid) {
        if !n.is_empty() {
            v["networks"] = Value::Object(n);
        }
    }
    v
}

impl ContainerService {
    /// One stats sample of a container (for tests and `one-shot`).
    pub fn stats_once(&self, name: &str) -> Result<Value, ContainersError> {
        let rec = self.get(name)?;
        Ok(sample(self, &rec, None))
    }
}

pub async fn route(
    svc: Arc<ContainerService>,
    name: String,
    q: &Query,
) -> Result<Response<ApiBody>, ApiError> {
    // Absent means true (Docker's default); docker-py sends "False".
    let stream = q.get("stream").is_none() || q.flag("stream");
    let one_shot = q.flag("one-shot");
    if one_shot && stream {
        return Err(ApiError::bad(
            "one-shot",
            "cannot be used together with stream=true",
        ));
    }
    let s2 = svc.clone();
    let n2 = name.clone();
    let rec = tokio::task::spawn_blocking(move || s2.get(&n2))
        .await
        .map_err(|_| ApiError::TaskFailed("stats"))??;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let line = |v: &Value| Bytes::from(format!("{v}\n"));
        let mut pre: Option<Value> = None;
        let mut rec = rec;
        loop {
            let v = sample(&svc, &rec, pre.as_ref());
            let first = pre.is_none();
            if !stream {
                if one_shot || !first || !rec.running() {
                    let _ = tx.blocking_send(line(&v));
                    return;
                }
            } else if tx.blocking_send(line(&v)).is_err() {
                return;
            }
            pre = Some(v);
            // Wait a second, ending early if the client goes.
            for _ in 0..10 {
                if tx.is_closed() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            match svc.get(&rec.id) {
                Ok(r) => rec = r,
                Err(_) => return,
            }
            if stream && !rec.running() {
                let _ = tx.blocking_send(line(&sample(&svc, &rec, None)));
                return;
            }
        }
    });
    let _ = name;
    Ok(response(
        StatusCode::OK,
        "application/json",
        ApiBody::Stream(rx),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_without_lo() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";
        let m = parse_net_dev(text);
        assert_eq!(m.len(), 1);
        assert_eq!(m["eth0"]["rx_bytes"], 2000);
        assert_eq!(m["eth0"]["tx_packets"], 30);
        assert_eq!(m["eth0"]["tx_dropped"], 4);
    }

    #[test]
    fn host_figures_are_read() {
        let (cpu, n) = host_cpu();
        assert!(cpu > 0 && n >= 1);
        assert!(host_memory() > 0);
    }
}
