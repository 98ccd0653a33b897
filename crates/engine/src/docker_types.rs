//! The Docker Engine API (v1.41+) container-create body, as the docker CLI, docker-py and
//! compose send it, and the subset of an image's config that a container inherits.
//!
//! Every field is optional on the wire: clients send `null`, `[]` or leave fields out, and
//! fields this version does not know are ignored (newer clients send more). Where `null` and
//! "empty" mean different things to Docker (`Cmd`, `Entrypoint`, `PidsLimit`, ...) the field
//! is an `Option`; elsewhere `null` reads as empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DockerTypesError {
    /// The body is not JSON.
    #[error("the request body is not valid JSON: {0}")]
    ParseBody(#[source] serde_json::Error),
    /// A field has the wrong type; `field` is its path (`HostConfig.Memory`).
    #[error("{field}: {message}")]
    FieldType { field: String, message: String },
}

/// Reads `null` as the type's default (empty list, empty map, zero).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's `strslice`: a JSON string or a list of strings (`"Cmd": "sh"` is `["sh"]`).
fn str_slice<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// The container's own settings (`container.Config` in moby).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    #[serde(deserialize_with = "nullable")]
    pub hostname: String,
    #[serde(deserialize_with = "nullable")]
    pub domainname: String,
    #[serde(deserialize_with = "nullable")]
    pub user: String,
    #[serde(deserialize_with = "nullable")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "nullable")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "nullable")]
    pub attach_stderr: bool,
    #[serde(deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(deserialize_with = "nullable")]
    pub open_stdin: bool,
    #[serde(deserialize_with = "nullable")]
    pub stdin_once: bool,
    /// `NAME=value`; a bare `NAME` removes the variable the image sets.
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    /// `None` (absent or `null`): the image's; `Some([])`: none.
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    /// `None`: the image's; `Some([])` or `Some([""])`: reset (no entrypoint).
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub image: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub working_dir: String,
    /// `"80/tcp": {}`.
    #[serde(deserialize_with = "nullable")]
    pub exposed_ports: BTreeMap<String, Value>,
    /// Anonymous volumes: `"/data": {}`.
    #[serde(deserialize_with = "nullable")]
    pub volumes: BTreeMap<String, Value>,
    #[serde(deserialize_with = "nullable")]
    pub stop_signal: String,
    pub stop_timeout: Option<i64>,
    /// Kept as JSON: the daemon's health checker reads it, the spec does not.
    pub healthcheck: Option<Value>,
    #[serde(deserialize_with = "nullable")]
    pub network_disabled: bool,
    #[serde(deserialize_with = "nullable")]
    pub mac_address: String,
    #[serde(deserialize_with = "nullable")]
    pub args_escaped: bool,
    #[serde(deserialize_with = "nullable")]
    pub on_build: Vec<String>,
}

/// `HostConfig.Mounts[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(deserialize_with = "nullable")]
    pub r#type: String,
    #[serde(deserialize_with = "nullable")]
    pub source: String,
    #[serde(deserialize_with = "nullable")]
    pub target: String,
    #[serde(deserialize_with = "nullable")]
    pub read_only: bool,
    pub bind_options: Option<BindOptions>,
    pub volume_options: Option<Value>,
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    /// `private`, `rprivate`, `shared`, `rshared`, `slave` or `rslave`.
    #[serde(deserialize_with = "nullable")]
    pub propagation: String,
    #[serde(deserialize_with = "nullable")]
    pub non_recursive: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    #[serde(deserialize_with = "nullable")]
    pub size_bytes: i64,
    /// The permission bits as a number (`1023` is `0o1777`).
    #[serde(deserialize_with = "nullable")]
    pub mode: u32,
}

/// `HostConfig.Ulimits[]`: `nofile=1024:2048` is `{Name: "nofile", Soft: 1024, Hard: 2048}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub soft: i64,
    #[serde(deserialize_with = "nullable")]
    pub hard: i64,
}

/// `HostConfig.Devices[]`: `--device /dev/fuse:/dev/fuse:rwm`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    #[serde(deserialize_with = "nullable")]
    pub path_on_host: String,
    #[serde(deserialize_with = "nullable")]
    pub path_in_container: String,
    #[serde(deserialize_with = "nullable")]
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    #[serde(deserialize_with = "nullable")]
    pub host_ip: String,
    #[serde(deserialize_with = "nullable")]
    pub host_port: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(deserialize_with = "nullable")]
    pub r#type: String,
    #[serde(deserialize_with = "nullable")]
    pub config: BTreeMap<String, String>,
}

/// What the host gives the container (`container.HostConfig` in moby).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v src:dst[:opts]`.
    #[serde(deserialize_with = "nullable")]
    pub binds: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub mounts: Vec<MountSpec>,
    /// `--tmpfs /run:size=64m,mode=1777`: target -> options.
    #[serde(deserialize_with = "nullable")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub privileged: bool,
    #[serde(deserialize_with = "nullable")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub userns_mode: String,
    /// `None`: hull's default; `0` or `-1`: unlimited.
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "nullable")]
    pub ulimits: Vec<Ulimit>,
    #[serde(deserialize_with = "nullable")]
    pub memory: i64,
    #[serde(deserialize_with = "nullable")]
    pub memory_reservation: i64,
    #[serde(deserialize_with = "nullable")]
    pub memory_swap: i64,
    /// `None` or `-1`: the kernel's default.
    pub memory_swappiness: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub nano_cpus: i64,
    #[serde(deserialize_with = "nullable")]
    pub cpu_shares: i64,
    #[serde(deserialize_with = "nullable")]
    pub cpu_quota: i64,
    #[serde(deserialize_with = "nullable")]
    pub cpu_period: i64,
    #[serde(deserialize_with = "nullable")]
    pub cpuset_cpus: String,
    #[serde(deserialize_with = "nullable")]
    pub cpuset_mems: String,
    #[serde(deserialize_with = "nullable")]
    pub blkio_weight: u16,
    #[serde(deserialize_with = "nullable")]
    pub devices: Vec<DeviceMapping>,
    #[serde(deserialize_with = "nullable")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub network_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub port_bindings: BTreeMap<String, Option<Vec<PortBinding>>>,
    #[serde(deserialize_with = "nullable")]
    pub publish_all_ports: bool,
    #[serde(deserialize_with = "nullable")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub dns_search: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub extra_hosts: Vec<String>,
    /// Bytes; `0`: hull's default (64 MiB).
    #[serde(deserialize_with = "nullable")]
    pub shm_size: i64,
    #[serde(deserialize_with = "nullable")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub oom_score_adj: i64,
    pub oom_kill_disable: Option<bool>,
    pub init: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub group_add: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub ipc_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub pid_mode: String,
    #[serde(rename = "UTSMode", deserialize_with = "nullable")]
    pub uts_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub cgroupns_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub cgroup_parent: String,
    #[serde(deserialize_with = "nullable")]
    pub restart_policy: RestartPolicy,
    #[serde(deserialize_with = "nullable")]
    pub log_config: LogConfig,
    #[serde(deserialize_with = "nullable")]
    pub auto_remove: bool,
    #[serde(deserialize_with = "nullable")]
    pub volumes_from: Vec<String>,
    /// `None`: hull's default list; `Some`: exactly these.
    pub masked_paths: Option<Vec<String>>,
    /// `None`: hull's default list; `Some`: exactly these.
    pub readonly_paths: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub runtime: String,
    /// `[height, width]` of the client's terminal, for a `Tty` container (API 1.42+).
    #[serde(deserialize_with = "nullable")]
    pub console_size: Vec<u32>,
}

/// The parts of an image's config (`config` in the OCI image config) a container inherits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfigSubset {
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub working_dir: String,
    #[serde(deserialize_with = "nullable")]
    pub user: String,
    /// `"80/tcp": {}`.
    #[serde(deserialize_with = "nullable")]
    pub exposed_ports: BTreeMap<String, Value>,
    /// `"/data": {}`: anonymous volumes every container of the image gets.
    #[serde(deserialize_with = "nullable")]
    pub volumes: BTreeMap<String, Value>,
    #[serde(deserialize_with = "nullable")]
    pub stop_signal: String,
    /// Docker's `HEALTHCHECK` (not in the OCI config), as JSON: the daemon runs it.
    pub healthcheck: Option<Value>,
}

impl From<&oci_spec::image::Config> for ImageConfigSubset {
    fn from(c: &oci_spec::image::Config) -> Self {
        ImageConfigSubset {
            env: c.env().clone().unwrap_or_default(),
            cmd: c.cmd().clone(),
            entrypoint: c.entrypoint().clone(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            exposed_ports: keys(c.exposed_ports()),
            volumes: keys(c.volumes()),
            stop_signal: c.stop_signal().clone().unwrap_or_default(),
            healthcheck: None,
        }
    }
}

fn keys(list: &Option<Vec<String>>) -> BTreeMap<String, Value> {
    list.iter()
        .flatten()
        .map(|k| (k.clone(), Value::Object(Default::default())))
        .collect()
}

/// Deserializes `T` from `value`, naming the failing field as `prefix.Field[2].Name`.
fn from_value<T: serde::de::DeserializeOwned>(
    value: Value,
    prefix: &str,
) -> Result<T, DockerTypesError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix.is_empty(), path.as_str()) {
            (true, ".") => "(body)".to_owned(),
            (true, _) => path,
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{path}"),
        };
        DockerTypesError::FieldType {
            field,
            message: e.into_inner().to_string(),
        }
    })
}

/// Parses a `POST /containers/create` body: the container's config with `HostConfig` (and
/// `NetworkingConfig`, which the network layer reads) beside its fields. Errors name the
/// field (`HostConfig.Memory: invalid type: string "1g", expected i64`).
pub fn parse_create_body(body: &[u8]) -> Result<(ContainerConfig, HostConfig), DockerTypesError> {
    let mut value: Value = serde_json::from_slice(body).map_err(DockerTypesError::ParseBody)?;
    let host = match value.as_object_mut() {
        Some(map) => {
            map.remove("NetworkingConfig");
            map.remove("HostConfig").unwrap_or(Value::Null)
        }
        None => Value::Null,
    };
    let config = from_value(value, "")?;
    let host = if host.is_null() {
        HostConfig::default()
    } else {
        from_value(host, "HostConfig")?
    };
    Ok((config, host))
}

/// Parses an image's config (the `config` object of an OCI or Docker image config).
pub fn parse_image_config(json: &[u8]) -> Result<ImageConfigSubset, DockerTypesError> {
    let value: Value = serde_json::from_slice(json).map_err(DockerTypesError::ParseBody)?;
    from_value(value, "config")
}
